"""Command groups of the ``replicator`` CLI, one module each (see ``replicator.cli``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from replicator.config import INSECURE_CONFIG_PATH
from replicator.errors import ConfigError

INSECURE_WARNING = (
    "WARNING: --insecure: the local stack in PLAINTEXT ({path}): Kafka without TLS, "
    "authentication or ACLs, Redis and S3 without TLS. For debugging only; never for data "
    "that matters."
)


def add_insecure_option(parser: argparse.ArgumentParser) -> None:
    """``--insecure``: the local stack's plaintext twin (infra/insecure/topology.yaml)."""
    parser.add_argument(
        "--insecure",
        action="store_true",
        help=f"for debugging only: the local stack in plaintext ({INSECURE_CONFIG_PATH})",
    )


def config_argument(args: argparse.Namespace) -> str | Path | None:
    """The topology path a command loads: ``--config`` (or the default lookup), or the
    plaintext twin with ``--insecure``, after a warning on stderr. ConfigError when both
    are given (the twin is of the default topology only)."""
    if not getattr(args, "insecure", False):
        return args.config
    if args.config:
        raise ConfigError(
            f"--insecure picks {INSECURE_CONFIG_PATH}; it does not combine with --config "
            "(write the plaintext settings in that file instead)"
        )
    print(INSECURE_WARNING.format(path=INSECURE_CONFIG_PATH), file=sys.stderr, flush=True)
    return INSECURE_CONFIG_PATH
