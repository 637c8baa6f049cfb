"""``replicator registry sync``: copy the primary's Feast registry to every region."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from replicator.config import load_topology

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    registry = subparsers.add_parser("registry", help="feature definitions across regions")
    commands = registry.add_subparsers(dest="registry_command", metavar="ACTION", required=True)
    sync = commands.add_parser(
        "sync",
        help="copy the primary registry and its schema manifest to every region's bucket",
        description=(
            "Copies the registry file, then a manifest (version, sha256, schema fingerprint of "
            "every feature view) to each region's bucket. Idempotent: regions already at this "
            "version are left alone. Workers apply only rows whose schema the manifest lists."
        ),
    )
    sync.add_argument(
        "--registry",
        type=Path,
        default=Path("feature_repo/data/registry.db"),
        help="the primary's registry file (default: feature_repo/data/registry.db)",
    )
    sync.add_argument(
        "--watch", type=float, metavar="SECONDS", help="keep syncing, checking every SECONDS"
    )
    sync.set_defaults(handler=_sync)


def _sync(args: argparse.Namespace) -> int:
    from replicator.registry_sync import sync_once

    topology = load_topology(args.config)
    while True:
        result = sync_once(topology, args.registry)
        if result.regions_updated or not args.watch:
            updated = ", ".join(result.regions_updated) or "none"
            print(
                f"registry {result.version}: updated {updated}; already current: "
                f"{', '.join(result.regions_current) or 'none'}"
            )
        if not args.watch:
            return 0
        time.sleep(args.watch)
