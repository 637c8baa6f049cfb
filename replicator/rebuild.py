"""Rebuild a region from the log: replay every feature-view topic from its first offset.

Safe while the region's worker keeps running: both go through the same last-writer-wins
script, so whichever applies a row second changes nothing. Correct when a backfill published
older rows after newer ones, because the script orders by event time, not by arrival.
It needs the topics' full history; with finite retention (``kafka.retention_hours``) use
``replicator/bootstrap.py``, which needs only the log after a snapshot.

A rebuild that could not apply every record does not report success: when a partition's log
no longer starts at offset 0, it applies what is there and then raises ``IncompleteRebuild``
naming the partitions and offsets that are gone; when the region's schema manifest cannot be
read (S3 down) for longer than ``retry_seconds`` it stops with ``Incomplete``, naming the S3
error and the partitions not replayed (``replicator region rebuild`` exits 5 in both cases).
Re-running it is safe.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from replicator.adapters.kafka_config import KafkaConnection, client_config, client_settings
from replicator.adapters.kafka_source import drain
from replicator.adapters.s3_catalog import S3ManifestCatalog
from replicator.assembly import build_worker, region_pattern, worker_options
from replicator.config import Topology
from replicator.core.ports import Message, SchemaCatalog, position
from replicator.errors import Incomplete, IncompleteRebuild, KafkaUnavailable, TransientError
from replicator.worker import Worker

log = logging.getLogger(__name__)


class LogReplaySource:
    """Every partition of the matching topics, from ``starts`` (default: offset 0) to the end
    seen at creation."""

    def __init__(
        self,
        connection: KafkaConnection,
        pattern: str,
        *,
        group_id: str,
        starts: dict[tuple[str, int], int] | None = None,
    ) -> None:
        """Raises ``KafkaUnavailable`` when the brokers do not answer within 30 s."""
        self.starts = starts or {}
        self.end: dict[tuple[str, int], int] = {}
        self.missing: dict[tuple[str, int], tuple[int, int]] = {}
        """Partitions whose log no longer starts at their start -> offsets gone (retention,
        ``delete_records``)."""
        self.total = 0
        self.records_read = 0
        self.position: dict[tuple[str, int], int] = {}
        settings = client_settings(connection)
        servers = settings["bootstrap.servers"]
        try:
            self._consumer = Consumer(
                {
                    **settings,
                    "group.id": group_id,
                    "enable.auto.commit": False,
                    "isolation.level": "read_committed",  # aborted Feast calls are never applied
                    "fetch.max.bytes": 64 * 1024 * 1024,
                    "max.partition.fetch.bytes": 16 * 1024 * 1024,
                    "queued.max.messages.kbytes": 256 * 1024,
                }
            )
            self._consumer.assign(self._find_partitions(settings, pattern))
        except KafkaException as exc:
            raise KafkaUnavailable(
                f"kafka {servers}: cannot list the topics to replay: {exc}",
                service=f"kafka {servers}",
            ) from exc

    def _find_partitions(
        self, settings: dict[str, str | int | float | bool], pattern: str
    ) -> list[TopicPartition]:
        admin = AdminClient(dict(settings))
        matcher = re.compile(pattern)
        metadata = admin.list_topics(timeout=30)
        assignments = []
        for topic, meta in sorted(metadata.topics.items()):
            if not matcher.match(topic):
                continue
            for partition in meta.partitions:
                low, high = self._consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=30
                )
                start = self.starts.get((topic, partition), 0)
                if low > start:
                    self.missing[(topic, partition)] = (start, low)
                first = max(start, low)
                if high > first:
                    self.end[(topic, partition)] = high
                    self.total += high - first
                    offset = OFFSET_BEGINNING if first == low else first
                    assignments.append(TopicPartition(topic, partition, offset))
        return assignments

    def unfinished(self, position: dict[tuple[str, int], int]) -> list[str]:
        """``topic[partition]`` of every partition not replayed to its end at ``position``."""
        return [
            f"{topic}[{partition}]"
            for (topic, partition), end in sorted(self.end.items())
            if position.get((topic, partition), -1) < end - 1
        ]

    @property
    def done(self) -> bool:
        # The consumer's position moves past transaction markers and aborted records too.
        tps = [TopicPartition(t, p) for t, p in self.end]
        reached = {(tp.topic, tp.partition): tp.offset for tp in self._consumer.position(tps)}
        return all(reached[tp] >= end for tp, end in self.end.items())

    def poll_batch(self, max_messages: int, timeout: float) -> Sequence[Message]:
        out = []
        for message in drain(self._consumer, max_messages, timeout):
            if message.error():
                continue
            topic, partition, offset = position(message)
            if offset >= self.end.get((topic, partition), 0):
                continue  # written after the rebuild started: the live worker applies it
            self.position[(topic, partition)] = offset
            self.records_read += 1
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


class RetryingCatalog:
    """A rebuild's view of the region's schema catalog: while it cannot answer (S3 down), ask
    again with backoff for up to ``retry_seconds``, then raise ``Incomplete``. Never guesses
    "unknown", which would skip the rows as bad input."""

    def __init__(
        self,
        catalog: SchemaCatalog,
        retry_seconds: float,
        *,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._catalog = catalog
        self._retry_seconds = retry_seconds
        self._sleep = sleep
        self._monotonic = monotonic

    def is_known(self, feature_view: str, fingerprint: str) -> bool:
        deadline = self._monotonic() + self._retry_seconds
        delay = 0.2
        while True:
            try:
                return self._catalog.is_known(feature_view, fingerprint)
            except TransientError as exc:
                left = deadline - self._monotonic()
                if left <= 0:
                    raise Incomplete(f"cannot read the region's schema manifest: {exc}") from exc
                log.warning("%s; retrying in %.1fs", exc, min(delay, left))
                self._sleep(min(delay, left))
                delay = min(delay * 2, 5.0)


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


def _step(worker: Worker, source: LogReplaySource, region: str, what: str) -> None:
    """One poll of the replay; ``Incomplete`` names the partitions not replayed yet."""
    before = dict(source.position)  # a failed step applied none of its records
    try:
        worker.step()
    except Incomplete as exc:
        missing = source.unfinished(before)
        raise Incomplete(
            f"{what} of {region} is INCOMPLETE: {exc}; {len(missing)} of "
            f"{len(source.end)} partitions not replayed to their end "
            f"({', '.join(missing[:10])}{', ...' if len(missing) > 10 else ''}); "
            f"re-run `replicator region {what} {region}` once it answers "
            f"(a {what} is safe to repeat)"
        ) from exc


def rebuild_region(
    topology: Topology,
    region: str,
    *,
    progress: Callable[[str], None] = print,
    progress_interval: float = 1.0,
    retry_seconds: float = 30.0,
) -> RebuildReport:
    """Replay the region's topics into its Redis; returns counts once every record is applied.

    Raises ``Incomplete`` (naming the cause and the partitions not replayed) when the region's
    schema manifest stays unreadable for ``retry_seconds``, ``IncompleteRebuild`` when the log
    no longer starts at offset 0, and ``KafkaUnavailable`` when the brokers cannot list the
    topics.
    """
    source = replay_source(topology, region)
    return replay(
        topology,
        region,
        source,
        progress=progress,
        progress_interval=progress_interval,
        retry_seconds=retry_seconds,
    )


def replay_source(
    topology: Topology, region: str, starts: dict[tuple[str, int], int] | None = None
) -> LogReplaySource:
    """The region's topics from ``starts`` (default: 0) to their current end."""
    return LogReplaySource(
        client_config(topology, "worker", region=region),
        region_pattern(topology, region),
        group_id=f"{topology.consumer_group(region)}-rebuild",
        starts=starts,
    )


def replay(
    topology: Topology,
    region: str,
    source: LogReplaySource,
    *,
    what: str = "rebuild",
    progress: Callable[[str], None] = print,
    progress_interval: float = 1.0,
    retry_seconds: float = 30.0,
) -> RebuildReport:
    """Apply ``source`` to the region through the worker's script, raising the applied marks;
    closes ``source``. Errors as ``rebuild_region``; ``what`` names the command in them."""
    dead = CountingDeadLetters()
    options = replace(
        worker_options(topology),
        max_messages=200,
        poll_timeout_seconds=0.5,
        publish_stats=False,
        schema_wait_seconds=0.0,
        # A replay commits nothing to Kafka; its "commit" raises the region's applied marks,
        # and it must do so on every step: the replay ends with step(), not run(), so a
        # cadence would leave the last positions unmarked (healing would never see it done).
        commit_interval_seconds=0.0,
    )
    config = topology.region(region)
    catalog = RetryingCatalog(S3ManifestCatalog(config.s3, topology.project), retry_seconds)
    worker = build_worker(
        topology, region, source=source, dead_letters=dead, options=options, catalog=catalog
    )
    progress(f"{what} of {region}: {source.total:,} records in {len(source.end)} partitions")
    started = last = time.monotonic()
    try:
        while not source.done:
            _step(worker, source, region, what)
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
        f"replayed {region}: {report.rows_applied:,} rows applied, "
        f"{report.rows_skipped_older:,} older rows skipped, {report.skipped_bad:,} bad records "
        f"skipped, {elapsed:.1f}s ({report.rows_per_second:,.0f} rows/s)"
    )
    if source.missing:
        raise IncompleteRebuild(describe_missing(region, source.missing, what), source.missing)
    return report


def describe_missing(
    region: str, missing: dict[tuple[str, int], tuple[int, int]], what: str = "rebuild"
) -> str:
    gone = "\n".join(
        f"  {topic}[{partition}]: offsets {first} to {end - 1} ({end - first:,} records)"
        for (topic, partition), (first, end) in sorted(missing.items())
    )
    return (
        f"the {what} of {region} is INCOMPLETE: the log no longer holds\n{gone}\n"
        "(removed by retention or delete_records). Every record still in the log was applied; "
        "rows written only in the missing records are absent from the region until the "
        "primary writes those entities again (e.g. feast materialize over that period)"
        + (
            f", or bring the region back from a snapshot: `replicator region bootstrap "
            f"{region}` needs only the log after the snapshot."
            if what == "rebuild"
            else "."
        )
    )
