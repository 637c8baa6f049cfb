"""Rebuild a region from the log: replay every feature-view topic from its first offset.

Safe while the region's worker keeps running: both go through the same last-writer-wins
script, so whichever applies a row second changes nothing. Correct when a backfill published
older rows after newer ones, because the script orders by event time, not by arrival.
It needs the topics' full history (the publisher creates them with retention.ms=-1): when a
partition's log no longer starts at offset 0, it applies what is there and then raises
``IncompleteRebuild`` naming the partitions and offsets that are gone.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from replicator.adapters.kafka_source import drain
from replicator.assembly import build_worker, region_pattern, worker_options
from replicator.config import Topology
from replicator.core.ports import Message, position
from replicator.errors import IncompleteRebuild

log = logging.getLogger(__name__)


class LogReplaySource:
    """Every partition of the matching topics, from the start to the end seen at creation."""

    def __init__(self, bootstrap_servers: str, pattern: str, *, group_id: str) -> None:
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap_servers,
                "group.id": group_id,
                "enable.auto.commit": False,
                "isolation.level": "read_committed",  # aborted Feast calls are never applied
                "fetch.max.bytes": 64 * 1024 * 1024,
                "max.partition.fetch.bytes": 16 * 1024 * 1024,
                "queued.max.messages.kbytes": 256 * 1024,
            }
        )
        admin = AdminClient({"bootstrap.servers": bootstrap_servers})
        matcher = re.compile(pattern)
        metadata = admin.list_topics(timeout=30)
        self.end: dict[tuple[str, int], int] = {}
        self.missing: dict[tuple[str, int], tuple[int, int]] = {}
        """Partitions whose log no longer starts at 0 -> offsets gone (retention,
        ``delete_records``)."""
        self.total = 0
        assignments = []
        for topic, meta in sorted(metadata.topics.items()):
            if not matcher.match(topic):
                continue
            for partition in meta.partitions:
                low, high = self._consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=30
                )
                if low > 0:
                    self.missing[(topic, partition)] = (0, low)
                if high > low:
                    self.end[(topic, partition)] = high
                    self.total += high - low
                    assignments.append(TopicPartition(topic, partition, OFFSET_BEGINNING))
        self._consumer.assign(assignments)
        self.position: dict[tuple[str, int], int] = {}

    @property
    def done(self) -> bool:
        # The consumer's position moves past transaction markers and aborted records too.
        tps = [TopicPartition(t, p) for t, p in self.end]
        reached = {(tp.topic, tp.partition): tp.offset for tp in self._consumer.position(tps)}
        return all(reached[tp] >= end for tp, end in self.end.items())

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

    def positions_past_markers(self) -> dict[tuple[str, int], int]:
        """None: a replay commits nothing."""
        return {}

    @property
    def committed(self) -> dict[tuple[str, int], int]:
        """None: a replay raises the region's applied marks but never checks them."""
        return {}

    def rewind(self, topic: str, partition: int, offset: int) -> int:
        raise NotImplementedError

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
        topology.bootstrap_servers_for(region),
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
    if source.missing:
        raise IncompleteRebuild(_describe_missing(region, source.missing), source.missing)
    return report


def _describe_missing(region: str, missing: dict[tuple[str, int], tuple[int, int]]) -> str:
    gone = "\n".join(
        f"  {topic}[{partition}]: offsets {first} to {end - 1} ({end - first:,} records)"
        for (topic, partition), (first, end) in sorted(missing.items())
    )
    return (
        f"the rebuild of {region} is INCOMPLETE: the log no longer holds\n{gone}\n"
        "(removed by retention or delete_records). Every record still in the log was applied; "
        "rows written only in the missing records are absent from the region until the "
        "primary writes those entities again (e.g. feast materialize over that period)."
    )
