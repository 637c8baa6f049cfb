"""``replicator registry sync | status``: Feast registry versions in every region."""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

from replicator.config import find_config_path, load_topology

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    registry = subparsers.add_parser("registry", help="feature definitions across regions")
    commands = registry.add_subparsers(dest="registry_command", metavar="ACTION", required=True)
    sync = commands.add_parser(
        "sync",
        help="release the primary's current registry to every region's bucket",
        description=(
            "Snapshots the primary's registry into an immutable version (kept in the primary "
            "bucket), copies it to each region's bucket, verifies its checksum there, then "
            "switches the region's manifest to it. Idempotent; repairs a region whose copy is "
            "missing or corrupted. Workers apply only rows whose schema the manifest lists."
        ),
    )
    sync.add_argument(
        "--repo",
        type=Path,
        metavar="DIR",
        help=(
            "the primary's Feast repo: its feature_store.yaml gives the registry (a local "
            "file) and the Feast settings regions need (default: the current directory when "
            "it holds a feature_store.yaml)"
        ),
    )
    sync.add_argument(
        "--registry",
        type=Path,
        help="a local registry file (default: the repo's; else the primary's object in S3)",
    )
    sync.add_argument(
        "--watch",
        type=float,
        metavar="SECONDS",
        help="keep syncing, checking every SECONDS (Kafka/S3 outages are logged and retried)",
    )
    sync.set_defaults(handler=_sync)

    status = commands.add_parser("status", help="the registry version live in each region")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=_status)


def _sync(args: argparse.Namespace) -> int:
    from replicator.errors import RolloutInProgress, TransientError
    from replicator.registry_sync import FEATURE_STORE_YAML, sync_once

    # Like Feast commands, found from inside the feature repo: the nearest infra/topology.yaml.
    topology = load_topology(find_config_path(args.config))
    repo = args.repo
    if repo is None and (Path.cwd() / FEATURE_STORE_YAML).exists():
        repo = Path.cwd()
    while True:
        try:
            result = sync_once(topology, args.registry, repo=repo)
        except TransientError as exc:
            if not args.watch:
                raise
            log.warning("registry sync failed, next try in %.0fs: %s", args.watch, exc)
            time.sleep(args.watch)
            continue
        except RolloutInProgress as exc:
            if not args.watch:
                raise
            log.info("registry sync waits for rollout %s (next in %.0fs)", exc.rollout, args.watch)
            time.sleep(args.watch)
            continue
        if result.regions_updated or not args.watch:
            print(
                f"registry {result.version}: released to "
                f"{', '.join(result.regions_updated) or 'no region'}; already live in "
                f"{', '.join(result.regions_current) or 'no region'}"
            )
        if not args.watch:
            return 0
        time.sleep(args.watch)


def _status(args: argparse.Namespace) -> int:
    from replicator.registry_sync import RegistryReleaser

    topology = load_topology(args.config)
    releaser = RegistryReleaser(topology)
    rows = {}
    for region in topology.regions:
        manifest = releaser.live(region) or {}
        rows[region] = {
            "version": manifest.get("version"),
            "previous_version": manifest.get("previous_version"),
            "released_at": manifest.get("released_at"),
            "verified": releaser.verified(region),
        }
    if args.json:
        print(json.dumps({"regions": rows}, indent=2))
    else:
        print(f"{'region':<16} {'version':<18} {'verified':<9} released at")
        for region, row in rows.items():
            print(
                f"{region:<16} {row['version'] or '-':<18} "
                f"{'yes' if row['verified'] else 'NO':<9} {row['released_at'] or '-'}"
            )
    return 0 if all(r["verified"] for r in rows.values()) else 1
