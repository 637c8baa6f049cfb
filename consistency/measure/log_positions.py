"""Kafka as the staleness round reads it: end offsets, the workers' committed offsets, the
age of the oldest unconsumed record, the catch-up rate and the topics' retention.

State kept between rounds: each region's consumption (for the rate) and the topics'
``retention.ms`` (re-read every ``RETENTION_MAX_AGE`` seconds or for a new topic).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from consistency.core.lag import (
    Progress,
    TopicPartition,
    catch_up,
    lag_offsets,
    lag_seconds,
    retention_headroom,
)
from consistency.core.report import RegionReport
from consistency.errors import SourceUnavailable
from consistency.ports import LogAdmin

MAX_TIMED_POSITIONS = 256
"""Lagging partitions whose oldest unconsumed record is timed per round (one fetch each)."""

RETENTION_MAX_AGE = 300.0


@dataclass
class RegionLog:
    """One region's half of a staleness round that Kafka answers."""

    committed: dict[TopicPartition, int | None] = field(default_factory=dict)
    """The region's consumer group's committed offsets ({} when Kafka did not answer)."""
    lag: dict[TopicPartition, int] = field(default_factory=dict)
    """Records not consumed yet."""
    lag_seconds: dict[TopicPartition, float] = field(default_factory=dict)
    """Age of the oldest unconsumed record (primary clock), most lagging partitions only."""
    errors: list[str] = field(default_factory=list)


@dataclass
class LogRound:
    """Everything one staleness round reads from Kafka, per region."""

    regions: dict[str, RegionLog]
    errors: list[str]
    """The round's own (Kafka as a whole did not answer)."""

    @classmethod
    def unanswered(cls, regions: Sequence[str], reason: str) -> LogRound:
        """Kafka did not answer in time: every region's lag is unknown, for ``reason``."""
        return cls({r: RegionLog(errors=[reason]) for r in regions}, [reason])


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

    def read_round(
        self,
        emitted_ns: int | None,
        topics: Mapping[str, int],
        wanted: Mapping[str, tuple[str, Sequence[TopicPartition]]],
    ) -> LogRound:
        """One round's Kafka readings; ``wanted``: region -> (its consumer group, the
        partitions it subscribes to). Blocks as long as Kafka's calls do (each is bounded by
        the adapter's timeout): the checker runs it beside the regions' reads, under the
        round's deadline, so a Kafka that does not answer cannot hold up staleness."""
        errors: list[str] = []
        ends = self.end_offsets(topics, errors)
        regions = {}
        for region, (group, positions) in wanted.items():
            mine = RegionLog()
            mine.committed = self.committed(group, positions, mine.errors)
            mine.lag = lag_offsets(positions, ends, mine.committed)
            mine.lag_seconds = self.lag_seconds(emitted_ns, mine.committed, mine.lag, mine.errors)
            self.refresh_retention(sorted({t for t, _ in positions}), mine.errors)
            regions[region] = mine
        return LogRound(regions, errors)

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

    def refresh_retention(self, topics: Sequence[str], errors: list[str]) -> None:
        """Re-read the topics' ``retention.ms`` when the cache is old or lacks one."""
        with self._lock:
            loaded_at, cache = self._retention
        stale = self._monotonic() - loaded_at > RETENTION_MAX_AGE
        if (stale or any(t not in cache for t in topics)) and self._down is None:
            try:
                cache = {**cache, **self.log.retention_ms(list(topics))}
            except SourceUnavailable as exc:
                errors.append(str(exc))
                return
            with self._lock:
                self._retention = (self._monotonic(), cache)

    def add_retention(self, topics: Sequence[str], report: RegionReport) -> None:
        """``report.retention_seconds`` and ``retention_headroom_seconds`` (None: unlimited),
        from the topics' ``retention.ms`` as last read (``refresh_retention``)."""
        with self._lock:
            _, cache = self._retention
        if any(t not in cache for t in topics):
            return
        found = retention_headroom(
            (cache.get(t) for t in topics), report.lag_seconds, report.catchup_seconds
        )
        if found is not None:
            report.retention_seconds, report.retention_headroom_seconds = found
