"""``replicator demo``: the local multi-region demo (what ``make demo`` runs)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from replicator.commands import add_insecure_option, config_argument
from replicator.config import load_topology, resolve_config_path


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the multi-region demo on the local stack",
        description=(
            "Starts the local stack, applies feature_repo/ at the primary, copies the registry "
            "to every region, starts one worker per region, materializes and pushes through "
            "Feast, reads the same entities with the Feast SDK in every region and prints what "
            "reached where. Workers keep running until Ctrl-C unless --once is given."
        ),
    )
    parser.add_argument("--once", action="store_true", help="stop the workers after the report")
    parser.add_argument(
        "--repo", type=Path, default=Path("feature_repo"), help="Feast repo (default: feature_repo)"
    )
    add_insecure_option(parser)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from replicator.demo import Demo

    config = config_argument(args)
    topology = load_topology(config)
    reports = Demo(topology, args.repo, resolve_config_path(config)).run(once=args.once)
    return 0 if all(r.identical and r.reads_match for r in reports) else 1
