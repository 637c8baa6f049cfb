"""Wires a region's ``Worker`` from a topology: Kafka, Redis and S3 adapters behind its ports.

Used by ``replicator worker`` (live consumption) and ``replicator region rebuild`` (a replay of
the log), which differ only in where records come from and what happens to dead letters.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from replicator.adapters.dead_letters import KafkaDeadLetters
from replicator.adapters.kafka_config import client_config
from replicator.adapters.kafka_publisher import KafkaPublisher
from replicator.adapters.kafka_source import KafkaSource
from replicator.adapters.redis_marks import RedisAppliedMarks
from replicator.adapters.redis_store import RegionStore
from replicator.adapters.s3_catalog import S3ManifestCatalog
from replicator.config import Topology
from replicator.core.ports import ChangeSource, DeadLetters, SchemaCatalog
from replicator.core.topics import subscription_pattern
from replicator.healing import DataLossGuard, GroupPositions
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
        max_messages=topology.worker.max_records_per_poll,
        poll_timeout_seconds=topology.worker.poll_timeout_seconds,
        commit_interval_seconds=topology.worker.commit_interval_seconds,
        schema_wait_seconds=topology.worker.schema_wait_seconds,
        max_heartbeat_lead_seconds=topology.worker.max_heartbeat_lead_seconds,
    )


def consumer_options(topology: Topology) -> dict[str, object]:
    """librdkafka settings of a region's live consumer: a crashed worker's partitions move
    to a surviving one after ``worker.session_timeout_seconds`` (docs/replication.md)."""
    session_ms = int(topology.worker.session_timeout_seconds * 1000)
    return {"session.timeout.ms": session_ms, "heartbeat.interval.ms": max(100, session_ms // 6)}


def build_worker(
    topology: Topology,
    region: str,
    *,
    source: ChangeSource | None = None,
    dead_letters: DeadLetters | None = None,
    options: WorkerOptions | None = None,
    catalog: SchemaCatalog | None = None,
) -> Worker:
    """A worker for ``region``; by default consuming live with the region's consumer group."""
    config = topology.region(region)
    kafka = client_config(topology, "worker", region=region)
    if source is None:
        source = KafkaSource(
            kafka,
            group_id=topology.consumer_group(region),
            pattern=region_pattern(topology, region),
            options=consumer_options(topology),
        )
    if dead_letters is None:
        kafka_dead_letters = KafkaDeadLetters(
            KafkaPublisher(kafka, client_id=f"replicator-{region}-dlq"),
            topology.kafka.dead_letter_topic,
            region,
        )
        kafka_dead_letters.ensure_topic(
            1, topology.kafka.replication_factor, retention_ms=topology.kafka.retention_ms
        )
        dead_letters = kafka_dead_letters
    store = RegionStore(config.redis, config.redis.writer)
    guard = None
    if isinstance(source, GroupPositions):  # the live consumer, or a rebuild's replay
        guard = DataLossGuard(
            region,
            RedisAppliedMarks(store),
            source,
            policy=topology.worker.on_data_loss,
            check_seconds=topology.worker.data_loss_check_seconds,
        )
    return Worker(
        region,
        source=source,
        store=store,
        dead_letters=dead_letters,
        catalog=catalog or S3ManifestCatalog(config.s3, topology.project),
        options=options or worker_options(topology),
        guard=guard,
        clock=worker_clock(topology.worker.clock_offset_seconds),
    )


def worker_clock(offset_seconds: float) -> Callable[[], int]:
    """Unix ns, shifted by ``offset_seconds`` (fault injection: a skewed region)."""
    if not offset_seconds:
        return time.time_ns
    offset_ns = int(offset_seconds * 1e9)
    return lambda: time.time_ns() + offset_ns
