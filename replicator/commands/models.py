"""``replicator models publish | release | status | rollback``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from replicator.config import load_topology


def register(subparsers: Any) -> None:
    models = subparsers.add_parser("models", help="model snapshots in every region")
    commands = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)

    publish = commands.add_parser(
        "publish",
        help="upload a model version to the primary bucket (and release it everywhere)",
        description=(
            "Uploads PATH (a file or a directory tree) as an immutable version with a manifest "
            "of SHA-256 checksums, then releases it to every region unless --no-release is "
            "given (use `replicator rollout start --model NAME` for a canary rollout)."
        ),
    )
    publish.add_argument("path", type=Path)
    publish.add_argument("--name", required=True)
    publish.add_argument("--version", required=True)
    publish.add_argument("--no-release", action="store_true", help="upload only")
    publish.set_defaults(handler=_publish)

    status = commands.add_parser("status", help="the version live in each region, verified")
    status.add_argument("--name", required=True)
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=_status)

    rollback = commands.add_parser("rollback", help="put each region back on its previous version")
    rollback.add_argument("--name", required=True)
    rollback.add_argument("--region", action="append", help="only these regions (repeatable)")
    rollback.set_defaults(handler=_rollback)


def _publish(args: argparse.Namespace) -> int:
    from replicator.models import ModelStore

    topology = load_topology(args.config)
    store = ModelStore(topology)
    model = store.publish(args.path, args.name, args.version)
    print(f"published {args.name} {args.version}: {len(model.manifest['files'])} file(s)")
    if not args.no_release:
        changed = store.release(model, topology.regions)
        print(f"live in {', '.join(changed) or 'no new region'}")
    return 0


def _status(args: argparse.Namespace) -> int:
    from replicator.models import ModelStore

    topology = load_topology(args.config)
    store = ModelStore(topology)
    rows = {}
    for region in topology.regions:
        live = store.live(region, args.name) or {}
        rows[region] = {
            "version": live.get("version"),
            "previous_version": live.get("previous_version"),
            "released_at": live.get("released_at"),
            "verified": store.verified(region, args.name),
        }
    if args.json:
        print(json.dumps({"model": args.name, "regions": rows}, indent=2))
    else:
        print(f"{'region':<16} {'version':<14} {'previous':<14} {'verified':<9} released at")
        for region, row in rows.items():
            print(
                f"{region:<16} {row['version'] or '-':<14} {row['previous_version'] or '-':<14} "
                f"{'yes' if row['verified'] else 'NO':<9} {row['released_at'] or '-'}"
            )
    return 0 if all(r["verified"] for r in rows.values()) else 1


def _rollback(args: argparse.Namespace) -> int:
    from replicator.models import ModelStore

    topology = load_topology(args.config)
    store = ModelStore(topology)
    for region in args.region or list(topology.regions):
        live = store.live(region, args.name)
        previous = live.get("previous_version") if live else None
        if not previous:
            print(f"{region}: no earlier version to go back to")
            continue
        store.release(store.load(args.name, previous), [region])
        print(f"{region}: {args.name} {previous} live again")
    return 0
