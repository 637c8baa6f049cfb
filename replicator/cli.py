"""The ``replicator`` command line.

Each command group lives in its own module with a ``register(subparsers)`` function; heavy
dependencies (Feast above all, which takes seconds to import) are imported only by the
commands that need them, so ``replicator worker`` starts in well under a second.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from replicator import logs
from replicator.commands import demo as demo_cli
from replicator.commands import heartbeats as heartbeats_cli
from replicator.commands import kafka as kafka_cli
from replicator.commands import models as models_cli
from replicator.commands import region as region_cli
from replicator.commands import registry as registry_cli
from replicator.commands import rollout as rollout_cli
from replicator.commands import worker as worker_cli
from replicator.errors import ReplicatorError
from replicator.stack import cli as stack_cli

COMMAND_GROUPS = [
    demo_cli,
    stack_cli,
    worker_cli,
    region_cli,
    registry_cli,
    models_cli,
    rollout_cli,
    heartbeats_cli,
    kafka_cli,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="replicator",
        description="Replicate a primary Feast online store to read-only Redis in every region.",
    )
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="topology YAML (default: $REPLICATOR_CONFIG, else infra/topology.yaml)",
    )
    parser.add_argument(
        "--log-format", choices=["text", "json"], default="text", help="log line format"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in COMMAND_GROUPS:
        group.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(json_lines=args.log_format == "json", verbose=args.verbose)
    try:
        return int(args.handler(args) or 0)
    except ReplicatorError as exc:
        print(f"replicator: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
