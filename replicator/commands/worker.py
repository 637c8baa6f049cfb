"""``replicator worker --region R``: run one region's worker until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import logging
import signal
from typing import Any

from replicator.adapters.dead_letters import KafkaDeadLetters
from replicator.adapters.kafka_publisher import KafkaPublisher
from replicator.adapters.kafka_source import KafkaSource, subscription_pattern
from replicator.adapters.redis_store import RegionStore
from replicator.adapters.s3_catalog import S3ManifestCatalog
from replicator.config import Topology, load_topology
from replicator.worker import Worker, WorkerOptions

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
    parser.set_defaults(handler=_run)


def consumer_group(topology: Topology, region: str) -> str:
    return f"{topology.worker.consumer_group_prefix}-{topology.project}-{region}"


def build_worker(topology: Topology, region: str) -> Worker:
    config = topology.region(region)
    bootstrap = topology.bootstrap_servers_for(region)
    source = KafkaSource(
        bootstrap,
        group_id=consumer_group(topology, region),
        pattern=subscription_pattern(
            topology.kafka.topic_prefix, topology.project, config.feature_views
        ),
    )
    dead_letters = KafkaDeadLetters(
        KafkaPublisher(bootstrap, client_id=f"replicator-{region}-dlq"),
        topology.kafka.dead_letter_topic,
        region,
    )
    dead_letters.ensure_topic(1, topology.kafka.replication_factor)
    store = RegionStore(
        config.redis, config.redis.writer, key_ttl_seconds=topology.worker.key_ttl_seconds
    )
    return Worker(
        region,
        source=source,
        store=store,
        dead_letters=dead_letters,
        catalog=S3ManifestCatalog(config.s3, topology.project),
        options=WorkerOptions(
            partitions=topology.kafka.partitions,
            max_future_skew_seconds=topology.worker.max_future_skew_seconds,
            max_messages=max(1, topology.worker.max_batch_rows // 100),
            poll_timeout_seconds=topology.worker.poll_timeout_seconds,
        ),
    )


def _run(args: argparse.Namespace) -> int:
    topology = load_topology(args.config)
    worker = build_worker(topology, args.region)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: worker.stop())
    worker.run()
    return 0
