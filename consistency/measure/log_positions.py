"""Kafka as the staleness round reads it: end offsets, the workers' committed offsets, the
age of the oldest unconsumed record, the catch-up rate and the topics' retention.

State kept between rounds: each region's consumption (for the rate) and the topics'
``retention.ms`` (re-read every ``RETENTION_MAX_AGE`` seconds or for a new topic).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence

from consistency.core.lag import Progress, TopicPartition, catch_up, lag_seconds, retention_headroom
from consistency.core.report import RegionReport
from consistency.errors import SourceUnavailable
from consistency.ports import LogAdmin

MAX_TIMED_POSITIONS = 256
"""Lagging partitions whose oldest unconsumed record is timed per round (one fetch each)."""

RETENTION_MAX_AGE = 300.0


class LogMeter:
    def __init__(self, log: LogAdmin, monotonic: Callable[[], float]) -> None:
        self.log = log
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._progress: dict[str, Progress] = {}
        self._retention: tuple[float, dict[str, int | None]] = (-math.inf, {})
        self._down: str | None = None
        """Why Kafka failed this round (set by ``end_offsets``, the round's first call):
        the other calls of the round report it instead of waiting out their timeouts."""

    def end_offsets(
        self, topics: Mapping[str, int], errors: list[str]
    ) -> dict[TopicPartition, int]:
        """High watermark of every partition of ``topics``; {} (reason in ``errors``) when
        Kafka does not answer."""
        positions = [(t, p) for t, n in topics.items() for p in range(n)]
        self._down = None
        try:
            return self.log.end_offsets(positions)
        except SourceUnavailable as exc:
            self._down = str(exc)
            errors.append(self._down)
            return {}

    def committed(
        self, group: str, positions: Sequence[TopicPartition], errors: list[str]
    ) -> dict[TopicPartition, int | None]:
        if self._down is not None:
            errors.append(self._down)
            return {}
        try:
            return self.log.committed(group, positions)
        except SourceUnavailable as exc:
            errors.append(str(exc))
            return {}

    def lag_seconds(
        self,
        emitted_ns: int | None,
        committed: Mapping[TopicPartition, int | None],
        lag: Mapping[TopicPartition, int],
        errors: list[str],
    ) -> dict[TopicPartition, float]:
        """Age of the oldest unconsumed record of the most lagging partitions (primary clock)."""
        lagging = {pos: committed.get(pos) or 0 for pos, n in lag.items() if n > 0}
        times: dict[TopicPartition, int] = {}
        if emitted_ns is not None and lagging and self._down is None:
            chosen = sorted(lagging.items(), key=lambda i: -lag[i[0]])[:MAX_TIMED_POSITIONS]
            try:
                times = self.log.record_times_ms(dict(chosen))
            except SourceUnavailable as exc:
                errors.append(str(exc))
        return lag_seconds(emitted_ns or 0, lag, times)

    def add_catch_up(
        self, region: str, committed: Mapping[TopicPartition, int | None], report: RegionReport
    ) -> None:
        """``report.catchup_seconds`` from the region's rate between rounds (checker's
        monotonic clock); left alone when Kafka did not answer this round."""
        if not committed:
            return
        consumed = sum(o or 0 for o in committed.values())
        with self._lock:
            previous = self._progress.get(region)
            progress, seconds = catch_up(previous, consumed, self._monotonic(), report.lag_offsets)
            self._progress[region] = progress
        report.catchup_seconds = seconds

    def add_retention(self, topics: Sequence[str], report: RegionReport) -> None:
        """``report.retention_seconds`` and ``retention_headroom_seconds`` (None: unlimited)."""
        with self._lock:
            loaded_at, cache = self._retention
        stale = self._monotonic() - loaded_at > RETENTION_MAX_AGE
        if (stale or any(t not in cache for t in topics)) and self._down is None:
            try:
                cache = {**cache, **self.log.retention_ms(list(topics))}
            except SourceUnavailable as exc:
                report.errors.append(str(exc))
                return
            with self._lock:
                self._retention = (self._monotonic(), cache)
        found = retention_headroom(
            (cache.get(t) for t in topics), report.lag_seconds, report.catchup_seconds
        )
        if found is not None:
            report.retention_seconds, report.retention_headroom_seconds = found
