"""Prometheus ``/metrics`` for a worker, read from its own counters at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import start_http_server
from prometheus_client.core import REGISTRY, CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from replicator.adapters.kafka_source import KafkaSource
from replicator.worker import Worker
from replicator.worker_stats import quantile

EGRESS_METRICS = (
    ("replicator_fetched_records", "Records fetched from Kafka per topic", "records"),
    (
        "replicator_fetched_record_bytes",
        "Bytes of the records fetched per topic, decompressed (key, value, headers)",
        "record_bytes",
    ),
    (
        "replicator_fetched_wire_bytes",
        "Bytes read from the brokers (compressed, with protocol), shared among topics by "
        "their record bytes; topic _overhead: read while no record arrived",
        "wire_bytes",
    ),
)
"""(name, help, ``TopicBytes`` field): cross-region egress (docs/replication.md)."""


class WorkerCollector(Collector):
    def __init__(self, worker: Worker, source: KafkaSource) -> None:
        self._worker = worker
        self._source = source

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        region = self._worker.region
        stats = self._worker.stats
        counters = [
            ("replicator_rows_applied", "Rows written to the region's Redis", stats.rows_applied),
            (
                "replicator_rows_skipped_older",
                "Rows not written: an equal-or-newer version was stored",
                stats.rows_skipped_older,
            ),
            ("replicator_batches_applied", "Row batches applied", stats.batches_applied),
            ("replicator_views_deleted", "View deletions applied", stats.views_deleted),
        ]
        for name, help_text, value in counters:
            family = CounterMetricFamily(name, help_text, labels=["region"])
            family.add_metric([region], value)
            yield family
        dead = CounterMetricFamily(
            "replicator_dead_letters",
            "Records sent to the dead-letter topic",
            labels=["region", "reason"],
        )
        for reason, count in sorted(stats.dead_letter_reasons.items()):
            dead.add_metric([region, reason], count)
        yield dead
        for name, help_text, samples in [
            ("replicator_lag_seconds", "Primary publish to applied in this region", stats.lag_ms),
            ("replicator_apply_seconds", "Redis round trip of one apply", stats.apply_ms),
        ]:
            gauge = GaugeMetricFamily(
                name, f"{help_text}, quantile over recent batches", labels=["region", "quantile"]
            )
            ordered = sorted(samples)
            for q in (0.5, 0.99):
                gauge.add_metric([region, str(q)], quantile(ordered, q) / 1000)
            yield gauge
        lag = GaugeMetricFamily(
            "replicator_consumer_lag_records",
            "Records between the worker's position and the log end",
            labels=["region", "topic", "partition"],
        )
        for (topic, partition), behind in sorted(self._source.consumer_lag.items()):
            lag.add_metric([region, topic, str(partition)], behind)
        yield lag
        assigned = GaugeMetricFamily(
            "replicator_assigned_partitions", "Partitions this worker holds", labels=["region"]
        )
        assigned.add_metric([region], len(self._source.assigned))
        yield assigned
        yield from self._data_loss(region)
        yield from self._egress(region)

    def _egress(self, region: str) -> Iterator[CounterMetricFamily]:
        counts = self._source.egress.counts()
        for name, help_text, measure in EGRESS_METRICS:
            family = CounterMetricFamily(name, help_text, labels=["region", "topic"])
            for topic, bytes_of_topic in sorted(counts.topics.items()):
                family.add_metric([region, topic], getattr(bytes_of_topic, measure))
            yield family

    def _data_loss(self, region: str) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        guard = self._worker.guard
        if guard is None:
            return
        detected = CounterMetricFamily(
            "replicator_data_loss_detected",
            "Partitions found missing committed rows in the region's Redis",
            labels=["region"],
        )
        detected.add_metric([region], guard.detected)
        yield detected
        for name, help_text, partitions in [
            (
                "replicator_data_lost_partitions",
                "Partitions missing rows, not committed until rebuilt (on_data_loss: alert)",
                guard.lost,
            ),
            ("replicator_data_healing_partitions", "Partitions replaying lost rows", guard.healing),
        ]:
            gauge = GaugeMetricFamily(name, help_text, labels=["region"])
            gauge.add_metric([region], len(partitions))
            yield gauge


def serve_metrics(worker: Worker, source: KafkaSource, port: int, host: str = "127.0.0.1") -> None:
    REGISTRY.register(WorkerCollector(worker, source))
    start_http_server(port, addr=host)
