"""Wires a region's ``Worker`` from a topology: Kafka, Redis and S3 adapters behind its ports.

Used by ``replicator worker`` (live consumption) and ``replicator region rebuild`` (a replay of
the log), which differ only in where records come from and what happens to dead letters.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from replicator.adapters.dead_letters import KafkaDeadLetters
from replicator.adapters.kafka_publisher import KafkaPublisher
from replicator.adapters.kafka_source import KafkaSource, subscription_pattern
from replicator.adapters.redis_store import RegionStore
from replicator.adapters.s3_catalog import S3ManifestCatalog
from replicator.config import Topology
from replicator.core.ports import ChangeSource, DeadLetters
from replicator.worker import Worker, WorkerOptions


def region_pattern(topology: Topology, region: str) -> str:
    """Subscription regex of the feature-view topics this region receives."""
    return subscription_pattern(
        topology.kafka.topic_prefix, topology.project, topology.region(region).feature_views
    )


def worker_options(topology: Topology) -> WorkerOptions:
    return WorkerOptions(
        partitions=topology.kafka.partitions,
        max_future_skew_seconds=topology.worker.max_future_skew_seconds,
        max_messages=max(1, topology.worker.max_batch_rows // 100),
        poll_timeout_seconds=topology.worker.poll_timeout_seconds,
        schema_wait_seconds=topology.worker.schema_wait_seconds,
    )


def build_worker(
    topology: Topology,
    region: str,
    *,
    source: ChangeSource | None = None,
    dead_letters: DeadLetters | None = None,
    options: WorkerOptions | None = None,
) -> Worker:
    """A worker for ``region``; by default consuming live with the region's consumer group."""
    config = topology.region(region)
    bootstrap = topology.bootstrap_servers_for(region)
    if source is None:
        source = KafkaSource(
            bootstrap,
            group_id=topology.consumer_group(region),
            pattern=region_pattern(topology, region),
        )
    if dead_letters is None:
        kafka_dead_letters = KafkaDeadLetters(
            KafkaPublisher(bootstrap, client_id=f"replicator-{region}-dlq"),
            topology.kafka.dead_letter_topic,
            region,
        )
        kafka_dead_letters.ensure_topic(1, topology.kafka.replication_factor)
        dead_letters = kafka_dead_letters
    store = RegionStore(
        config.redis, config.redis.writer, key_ttl_seconds=topology.worker.key_ttl_seconds
    )
    return Worker(
        region,
        source=source,
        store=store,
        dead_letters=dead_letters,
        catalog=S3ManifestCatalog(config.s3, topology.project),
        options=options or worker_options(topology),
        clock=worker_clock(topology.worker.clock_offset_seconds),
    )


def worker_clock(offset_seconds: float) -> Callable[[], int]:
    """Unix ns, shifted by ``offset_seconds`` (fault injection: a skewed region)."""
    if not offset_seconds:
        return time.time_ns
    offset_ns = int(offset_seconds * 1e9)
    return lambda: time.time_ns() + offset_ns
