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
from replicator.errors import (
    ConfigError,
    Incomplete,
    PrerequisiteError,
    ReplicatorError,
    TransientError,
)
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


EXIT_OK = 0
EXIT_UNHEALTHY = 1
EXIT_USAGE = 2
EXIT_ROLLED_BACK = 3
EXIT_UNAVAILABLE = 4
EXIT_INCOMPLETE = 5
EXIT_REFUSED = 6

EXIT_CODES: list[tuple[int, str]] = [
    (EXIT_OK, "done"),
    (EXIT_UNHEALTHY, "done, and what it checked is not healthy (status: a region not verified)"),
    (EXIT_USAGE, "bad arguments or configuration (topology file, unknown region, no registry)"),
    (EXIT_ROLLED_BACK, "`rollout start`: a region went out of bounds; the rollout was undone"),
    (EXIT_UNAVAILABLE, "Kafka, Redis or S3 did not answer or failed: retry once it is back"),
    (EXIT_INCOMPLETE, "stopped before finishing; the message names what is missing (re-run)"),
    (EXIT_REFUSED, "refused: S3 denied access or holds an unusable object, a stack failed, ..."),
]
"""What each exit code means; ``--help`` prints this table."""

_ERROR_EXIT_CODES: list[tuple[type[ReplicatorError], int]] = [
    (ConfigError, EXIT_USAGE),
    (PrerequisiteError, EXIT_USAGE),
    (TransientError, EXIT_UNAVAILABLE),
    (Incomplete, EXIT_INCOMPLETE),
    (ReplicatorError, EXIT_REFUSED),
]


def exit_code_for(error: ReplicatorError) -> int:
    """The exit code of a command that failed with ``error`` (decided by its class)."""
    return next(code for cls, code in _ERROR_EXIT_CODES if isinstance(error, cls))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="replicator",
        description="Replicate a primary Feast online store to read-only Redis in every region.",
        epilog="exit codes:\n"
        + "\n".join(f"  {code}  {meaning}" for code, meaning in EXIT_CODES)
        + "\nAn error is one line on stderr: `replicator: error: ...`.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
        return exit_code_for(exc)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
