"""``replicator region rebuild R``, ``snapshot R``, ``bootstrap R``, ``redrive R``,
``feast-config R``, ``health R`` and ``k8s-values R``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from replicator.commands import k8s_values as k8s_values_cli
from replicator.commands.server_tls import add_server_tls_arguments, server_tls
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
            "worker runs; correct after backfills of older rows. Prints progress and rows/s. "
            "Never reports success on incomplete data: it exits 5, naming what is missing, "
            "when the log no longer holds all of its history (the partitions and offsets) or "
            "when the region's schema manifest cannot be read from S3 for --retry-for seconds "
            "(the error and the partitions not replayed); re-running it is safe."
        ),
    )
    rebuild.add_argument("region")
    rebuild.add_argument(
        "--retry-for",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long to retry an S3 outage before giving up (default: 30)",
    )
    rebuild.set_defaults(handler=_rebuild)

    snapshot = commands.add_parser(
        "snapshot",
        help="write a consistent snapshot of a region's keys and versions to its S3 bucket",
        description=(
            "Reads the region's applied marks, then every Feast key of the project with its "
            "last-writer-wins versions, and writes them as checksummed chunks plus a manifest "
            "(last) under feast/<project>/snapshots/<region>/<id>/ in the region's bucket. "
            "Keeps the newest snapshots.keep snapshots. With --schedule, repeats every "
            "snapshots.interval_seconds until stopped."
        ),
    )
    snapshot.add_argument("region")
    snapshot.add_argument(
        "--schedule", action="store_true", help="repeat every snapshots.interval_seconds"
    )
    snapshot.add_argument(
        "--keep", type=int, default=None, help="snapshots kept (default: snapshots.keep)"
    )
    snapshot.set_defaults(handler=_snapshot)

    bootstrap = commands.add_parser(
        "bootstrap",
        help="bring an empty or damaged region to the live state from a snapshot and the log tail",
        description=(
            "Restores the newest usable snapshot of the region (or of --from PEER) and replays "
            "the log from the snapshot's offsets through the worker's last-writer-wins script. "
            "Safe while the region's worker runs. Falls back to an older snapshot when one is "
            "unreadable or the log no longer holds the records after it; exits 5 naming each "
            "snapshot tried and why when none is usable, or what the replay could not apply."
        ),
    )
    bootstrap.add_argument("region")
    bootstrap.add_argument(
        "--from", dest="source", default=None, metavar="PEER", help="a peer region's snapshots"
    )
    bootstrap.add_argument(
        "--retry-for",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long to retry an S3 outage during the replay (default: 30)",
    )
    bootstrap.set_defaults(handler=_bootstrap)

    redrive = commands.add_parser(
        "redrive",
        help="re-apply rows a region dead-lettered for a reason that went away",
        description=(
            "Reads the dead-letter topic from its start to its current end and re-applies the "
            "region's dead letters with the given reasons (default: unknown_schema and "
            "future_event_time) as the records they came from, through the worker's checks "
            "and last-writer-wins script. Rows still refused are counted, not dead-lettered "
            "again. Safe to repeat."
        ),
    )
    redrive.add_argument("region")
    redrive.add_argument(
        "--reason",
        action="append",
        choices=[
            "unknown_schema",
            "future_event_time",
            "malformed",
            "rejected_by_store",
            "repeated_failure",
        ],
        help="a dead-letter reason to redrive (repeatable; default: unknown_schema and "
        "future_event_time)",
    )
    redrive.set_defaults(handler=_redrive)

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

    health = commands.add_parser(
        "health",
        help="serve /health/live and /health/ready of a region for traffic managers and probes",
        description=(
            "Ready (200) when the region's Redis answers its reader user, its replication "
            "staleness is within reads.max_staleness_seconds and it serves the reference "
            "registry version; 503 with the reasons otherwise. HTTPS with the region's "
            "health_tls (or --tls-cert/--tls-key). See docs/regional-reads.md."
        ),
    )
    health.add_argument("region")
    health.add_argument("--host", default="0.0.0.0", help="bind address (default: 0.0.0.0)")
    health.add_argument("--port", type=int, default=8081, help="port (default: 8081)")
    add_server_tls_arguments(health, "regions.R.health_tls in the topology")
    health.set_defaults(handler=_health)


def _rebuild(args: argparse.Namespace) -> int:
    from replicator.rebuild import rebuild_region

    rebuild_region(load_topology(args.config), args.region, retry_seconds=args.retry_for)
    return 0


def _snapshot(args: argparse.Namespace) -> int:
    import time

    from replicator.snapshots import take_snapshot

    topology = load_topology(args.config)
    while True:
        take_snapshot(topology, args.region, keep=args.keep)
        if not args.schedule:
            return 0
        time.sleep(topology.snapshots.interval_seconds)


def _bootstrap(args: argparse.Namespace) -> int:
    from replicator.bootstrap import bootstrap_region

    topology = load_topology(args.config)
    if args.source is not None:
        topology.region(args.source)
    bootstrap_region(topology, args.region, source_region=args.source, retry_seconds=args.retry_for)
    return 0


def _redrive(args: argparse.Namespace) -> int:
    from replicator.redrive import REDRIVABLE, redrive_region

    topology = load_topology(args.config)
    topology.region(args.region)
    redrive_region(topology, args.region, reasons=args.reason or REDRIVABLE)
    return 0


def _feast_config(args: argparse.Namespace) -> int:
    from replicator.regional_config import write_regional_repo

    topology = load_topology(args.config)
    out = args.out or Path("regions") / args.region
    path = write_regional_repo(topology, args.region, out)
    print(f"wrote {path} and {out / 'feast.env'}")
    print(f"use it:  set -a; . {out / 'feast.env'}; set +a; feast -c {out} ...")
    return 0


def _health(args: argparse.Namespace) -> int:
    from replicator.health_server import serve

    topology = load_topology(args.config)
    tls = server_tls(args, topology.region(args.region).health_tls)
    serve(topology, args.region, args.host, args.port, tls)
    return 0
