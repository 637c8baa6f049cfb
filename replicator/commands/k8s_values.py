"""``replicator region k8s-values R``: Helm values for a region, from the topology."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from replicator.config import load_topology


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "k8s-values",
        help="print the Helm values of infra/helm/feast-region-replicator for a region",
        description=(
            "Prints (or writes to --out) the chart's values for REGION: the topology without "
            "its secrets (each region names the Kubernetes Secret holding them), the checker "
            "and alert rules at the primary only, workers capped at the partition count. "
            "See docs/deploy.md."
        ),
    )
    parser.add_argument("region")
    parser.add_argument("--out", type=Path, default=None, help="file (default: stdout)")
    parser.add_argument(
        "--secret-prefix",
        default="feast-replicator",
        help="Secret name prefix: <prefix>-<region> (default: feast-replicator)",
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="worker replicas, capped at the partitions"
    )
    parser.add_argument("--image", default=None, help="image repository[:tag]")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from replicator.k8s_values import render

    text = render(
        load_topology(args.config),
        args.region,
        secret_prefix=args.secret_prefix,
        worker_replicas=args.workers,
        image=args.image,
    )
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    else:
        print(text, end="")
    return 0
