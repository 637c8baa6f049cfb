"""Replication staleness from heartbeats, on primary-clock readings only.

The emitter at the primary stamps every heartbeat round with one reading of the primary's
clock and records the newest round it made durable (``Emission``). A region's worker stores,
per (topic, partition), the primary stamp of the newest heartbeat it applied, and applies a
heartbeat only after every row before it in that partition. So

    staleness(region, topic, partition) = emission.emitted_ns - applied.emitted_ns

compares two readings of the same clock: neither the checker's nor the worker's clock takes
part, and a skew between machines cannot change it. It is a multiple of the heartbeat
interval, which is therefore its resolution.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from replicator.core import topics

NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class TopicEmission:
    partitions: int
    first_emitted_ns: int
    """Primary clock at the first heartbeat the emitter sent into this topic."""


@dataclass(frozen=True, slots=True)
class Emission:
    """The newest heartbeat round the primary made durable in Kafka."""

    sequence: int
    emitted_ns: int
    interval_ns: int
    topics: Mapping[str, TopicEmission] = field(default_factory=dict)

    @property
    def interval_seconds(self) -> float:
        return self.interval_ns / NS


@dataclass(frozen=True, slots=True)
class AppliedHeartbeat:
    sequence: int
    emitted_ns: int
    """Primary clock of the heartbeat, as the emitter stamped it (not the worker's clock)."""


def partition_staleness(emission: Emission, topic: str, applied: AppliedHeartbeat | None) -> float:
    """Seconds the partition is behind the newest emitted heartbeat (0 when caught up).

    A partition that never applied a heartbeat is as stale as the topic's first heartbeat
    is old: it has applied nothing the emitter could vouch for since. A stamp the primary
    never emitted (above its newest recorded round, beyond the round that may be in flight)
    is not believed: it counts as no heartbeat, so a forged stamp cannot read as fresh.
    """
    if applied is not None and not emitted_by_primary(emission, applied):
        applied = None
    if applied is None:
        topic_info = emission.topics.get(topic)
        since = topic_info.first_emitted_ns if topic_info else emission.emitted_ns
        return max(0, emission.emitted_ns - since) / NS
    return max(0, emission.emitted_ns - applied.emitted_ns) / NS


def emitted_by_primary(emission: Emission, applied: AppliedHeartbeat) -> bool:
    """Whether the primary can have emitted ``applied``: not newer than the newest recorded
    round by more than ``max(10 s, 10 intervals)`` (rounds durable in Kafka but not recorded
    yet, and rounds emitted while the checker read the regions after the record)."""
    margin = max(10 * NS, 10 * emission.interval_ns)
    return applied.emitted_ns <= emission.emitted_ns + margin


def worst(values: Iterable[float | None]) -> float | None:
    """The largest value; None when there is none."""
    present = [v for v in values if v is not None]
    return max(present) if present else None


def view_of_topic(topic: str, topic_prefix: str, project: str) -> str | None:
    """``feast.<project>.<view>`` -> ``<view>``; None for another project's topic (the one
    mapping: ``replicator.core.topics``)."""
    return topics.view_of_topic(topic, topic_prefix, project)
