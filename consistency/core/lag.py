"""Consumer lag, catch-up and retention headroom: arithmetic on readings, no I/O.

Offsets come from Kafka (end offsets, the workers' committed offsets); record times are
producer timestamps (the primary's clock); rates are measured between rounds on the
checker's monotonic clock (a duration on one machine: skew does not enter).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

TopicPartition = tuple[str, int]


def lag_offsets(
    positions: Iterable[TopicPartition],
    ends: Mapping[TopicPartition, int],
    committed: Mapping[TopicPartition, int | None],
) -> dict[TopicPartition, int]:
    """Records not consumed yet per partition (only where the end offset is known)."""
    return {pos: max(0, ends[pos] - (committed.get(pos) or 0)) for pos in positions if pos in ends}


def lag_seconds(
    emitted_ns: int,
    lag: Mapping[TopicPartition, int],
    record_times_ms: Mapping[TopicPartition, int],
) -> dict[TopicPartition, float]:
    """Age of the oldest unconsumed record, both ends on the primary's clock: 0 for a
    partition without lag, absent where the record's time is unknown."""
    out = {pos: 0.0 for pos, n in lag.items() if n == 0}
    for pos, ms in record_times_ms.items():
        out[pos] = max(0.0, (emitted_ns / 1e6 - ms) / 1e3)
    return out


@dataclass(frozen=True)
class Progress:
    """A region's consumption at one moment: the sum of its committed offsets and the
    smoothed rate (records/s) measured up to then."""

    at: float
    """Checker's monotonic clock, seconds."""
    consumed: int
    rate: float | None


def catch_up(
    previous: Progress | None, consumed: int, now: float, lag: int | None
) -> tuple[Progress, float | None]:
    """(new progress, seconds to consume ``lag`` at the measured rate).

    None until two readings exist; ``math.inf`` when the group stopped consuming with lag
    left; 0 without lag. The rate is an exponential average (weight 0.5) of the rates
    between consecutive readings.
    """
    rate: float | None = None
    if previous is not None and now > previous.at:
        instant = max(0.0, (consumed - previous.consumed) / (now - previous.at))
        rate = instant if previous.rate is None else 0.5 * previous.rate + 0.5 * instant
    progress = Progress(now, consumed, rate)
    if not lag:
        return progress, 0.0
    if rate:
        return progress, lag / rate
    return progress, None if previous is None else math.inf


def retention_headroom(
    limits_ms: Iterable[int | None], lag_seconds: float | None, catchup_seconds: float | None
) -> tuple[float, float] | None:
    """(retention, headroom) in seconds: the shortest ``retention.ms`` of the region's
    topics, minus how far behind it is (lag + catch-up). None when retention is unlimited."""
    limits = [ms for ms in limits_ms if ms is not None]
    if not limits:
        return None
    retention = min(limits) / 1e3
    return retention, retention - (lag_seconds or 0.0) - (catchup_seconds or 0.0)
