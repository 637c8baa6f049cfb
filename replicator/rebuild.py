"""Rebuild a region from the log: replay every feature-view topic from its first offset.

Safe while the region's worker keeps running: both go through the same last-writer-wins
script, so whichever applies a row second changes nothing. Correct when a backfill published
older rows after newer ones, because the script orders by event time, not by arrival.
It needs the topics' full history (the publisher creates them with retention.ms=-1).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from replicator.adapters.kafka_config import KafkaConnection, client_config, client_settings
from replicator.adapters.kafka_source import drain
from replicator.assembly import build_worker, region_pattern, worker_options
from replicator.config import Topology
from replicator.core.ports import Message, position

log = logging.getLogger(__name__)


class LogReplaySource:
    """Every partition of the matching topics, from the start to the end seen at creation."""

    def __init__(self, connection: KafkaConnection, pattern: str, *, group_id: str) -> None:
        self._consumer = Consumer(
            {
                **client_settings(connection),
                "group.id": group_id,
                "enable.auto.commit": False,
                "fetch.max.bytes": 64 * 1024 * 1024,
                "max.partition.fetch.bytes": 16 * 1024 * 1024,
                "queued.max.messages.kbytes": 256 * 1024,
            }
        )
        admin = AdminClient(client_settings(connection))
        matcher = re.compile(pattern)
        metadata = admin.list_topics(timeout=30)
        self.end: dict[tuple[str, int], int] = {}
        self.total = 0
        assignments = []
        for topic, meta in sorted(metadata.topics.items()):
            if not matcher.match(topic):
                continue
            for partition in meta.partitions:
                low, high = self._consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=30
                )
                if high > low:
                    self.end[(topic, partition)] = high
                    self.total += high - low
                    assignments.append(TopicPartition(topic, partition, OFFSET_BEGINNING))
        self._consumer.assign(assignments)
        self.position: dict[tuple[str, int], int] = {}

    @property
    def done(self) -> bool:
        return all(self.position.get(tp, -1) >= end - 1 for tp, end in self.end.items())

    @property
    def records_read(self) -> int:
        return sum(self.position.values()) + len(self.position)

    def poll_batch(self, max_messages: int, timeout: float) -> Sequence[Message]:
        out = []
        for message in drain(self._consumer, max_messages, timeout):
            if message.error():
                continue
            topic, partition, offset = position(message)
            if offset >= self.end.get((topic, partition), 0):
                continue  # written after the rebuild started: the live worker applies it
            self.position[(topic, partition)] = offset
            out.append(message)
        return out

    def commit(self, positions: dict[tuple[str, int], int]) -> None:
        """Nothing to commit: the region's own consumer group keeps its offsets."""

    # A rebuild does not wait for schemas (schema_wait_seconds=0): it never pauses.
    def pause(self, topic: str, partition: int, offset: int) -> None:
        raise NotImplementedError

    def resume(self, topic: str, partition: int) -> None:
        raise NotImplementedError

    def is_paused(self, topic: str, partition: int) -> bool:
        return False

    def close(self) -> None:
        self._consumer.close()


class CountingDeadLetters:
    """Bad records were dead-lettered by the live worker already: count, don't resend."""

    def __init__(self) -> None:
        self.count = 0

    def send(
        self, message: Message, reason: str, detail: str, payload: bytes | None = None
    ) -> None:
        self.count += 1

    def flush(self) -> None:
        pass


@dataclass
class RebuildReport:
    region: str
    records: int
    rows_applied: int
    rows_skipped_older: int
    skipped_bad: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return (self.rows_applied + self.rows_skipped_older) / self.seconds if self.seconds else 0.0


def rebuild_region(
    topology: Topology,
    region: str,
    *,
    progress: Callable[[str], None] = print,
    progress_interval: float = 1.0,
) -> RebuildReport:
    source = LogReplaySource(
        client_config(topology, "worker", region=region),
        region_pattern(topology, region),
        group_id=f"{topology.consumer_group(region)}-rebuild",
    )
    dead = CountingDeadLetters()
    options = replace(
        worker_options(topology),
        max_messages=200,
        poll_timeout_seconds=0.5,
        publish_stats=False,
        schema_wait_seconds=0.0,
    )
    worker = build_worker(topology, region, source=source, dead_letters=dead, options=options)
    progress(f"rebuilding {region}: {source.total:,} records in {len(source.end)} partitions")
    started = last = time.monotonic()
    try:
        while not source.done:
            worker.step()
            now = time.monotonic()
            if now - last >= progress_interval:
                last = now
                rows = worker.stats.rows_applied + worker.stats.rows_skipped_older
                progress(
                    f"  {source.records_read:,}/{source.total:,} records, {rows:,} rows, "
                    f"{rows / (now - started):,.0f} rows/s"
                )
    finally:
        source.close()
        worker.store.close()
    elapsed = time.monotonic() - started
    report = RebuildReport(
        region,
        source.records_read,
        worker.stats.rows_applied,
        worker.stats.rows_skipped_older,
        dead.count,
        elapsed,
    )
    progress(
        f"rebuilt {region}: {report.rows_applied:,} rows applied, "
        f"{report.rows_skipped_older:,} older rows skipped, {report.skipped_bad:,} bad records "
        f"skipped, {elapsed:.1f}s ({report.rows_per_second:,.0f} rows/s)"
    )
    return report
