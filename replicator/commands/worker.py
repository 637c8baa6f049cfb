"""``replicator worker --region R``: run one region's worker until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import logging
import signal
from typing import Any

from replicator.adapters.kafka_source import KafkaSource
from replicator.assembly import build_worker
from replicator.config import load_topology

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="apply the primary's writes to one region's Redis",
        description=(
            "Consume the feature-view topics this region subscribes to and apply them to the "
            "region's Redis in Feast's layout, last writer wins. Stops cleanly on SIGTERM or "
            "Ctrl-C: the batch in hand is applied and committed first."
        ),
    )
    parser.add_argument("--region", required=True, help="region name from the topology")
    parser.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve Prometheus /metrics on PORT of worker.metrics_host (default 127.0.0.1; "
        "port default: worker.metrics_port)",
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    topology = load_topology(args.config)
    worker = build_worker(topology, args.region)
    port = args.metrics_port or topology.worker.metrics_port
    if port:
        from replicator.adapters.prometheus import serve_metrics

        assert isinstance(worker.source, KafkaSource)
        serve_metrics(worker, worker.source, port, topology.worker.metrics_host)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: worker.stop())
    worker.run()
    return 0
