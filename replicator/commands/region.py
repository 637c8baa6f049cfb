"""``replicator region rebuild R``, ``feast-config R`` and ``k8s-values R``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from replicator.commands import k8s_values as k8s_values_cli
from replicator.config import load_topology


def register(subparsers: Any) -> None:
    region = subparsers.add_parser("region", help="operate on one region")
    commands = region.add_subparsers(dest="region_command", metavar="ACTION", required=True)

    rebuild = commands.add_parser(
        "rebuild",
        help="bring an empty or damaged regional Redis to the live state by replaying the log",
        description=(
            "Replays every feature-view topic the region subscribes to from its first offset "
            "through the same last-writer-wins script the worker uses. Safe while the region's "
            "worker runs; correct after backfills of older rows. Prints progress and rows/s."
        ),
    )
    rebuild.add_argument("region")
    rebuild.set_defaults(handler=_rebuild)

    feast_config = commands.add_parser(
        "feast-config",
        help="write the feature_store.yaml inference services in a region use",
        description=(
            "Writes feature_store.yaml (the region's Redis as its read-only user, the region's "
            "registry copy) and feast.env (S3 endpoint and credentials for Feast's registry "
            "reader) into OUT_DIR, both readable by the owner only."
        ),
    )
    feast_config.add_argument("region")
    feast_config.add_argument(
        "--out", type=Path, default=None, help="directory (default: regions/<region>)"
    )
    feast_config.set_defaults(handler=_feast_config)
    k8s_values_cli.register(commands)


def _rebuild(args: argparse.Namespace) -> int:
    from replicator.rebuild import rebuild_region

    rebuild_region(load_topology(args.config), args.region)
    return 0


def _feast_config(args: argparse.Namespace) -> int:
    from replicator.regional_config import write_regional_repo

    topology = load_topology(args.config)
    out = args.out or Path("regions") / args.region
    path = write_regional_repo(topology, args.region, out)
    print(f"wrote {path} and {out / 'feast.env'}")
    print(f"use it:  set -a; . {out / 'feast.env'}; set +a; feast -c {out} ...")
    return 0
