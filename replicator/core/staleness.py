"""A region's replication staleness for readers, and the hysteresis that routes on it (no I/O).

The rule is the checker's (docs/consistency.md, ``consistency/core/staleness.py``): two
readings of the primary's clock,

    staleness(partition) = emission.emitted_ns - applied.emitted_ns

where the emission is the newest round the primary's heartbeat emitter made durable (a hash in
the primary region's Redis) and the applied stamp is the newest heartbeat the region's worker
applied to that partition. A partition that never applied one is as stale as its topic's first
heartbeat is old. A region's staleness is its worst partition over the topics it subscribes to.
Seconds throughout; ``None`` means unmeasurable (no emission record: the emitter is stopped).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from replicator.core.keys import F_EMITTED_NS, F_INTERVAL_NS, TOPIC_FIELD_PREFIX
from replicator.core.topics import view_of_topic

NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Emission:
    """The newest heartbeat round the primary made durable in Kafka."""

    emitted_ns: int
    interval_ns: int
    topics: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    """Topic -> (partitions, primary clock at the first heartbeat sent into it)."""


def parse_emission(raw: Mapping[bytes, bytes]) -> Emission | None:
    """The emission hash (``HGETALL _replicator:emitted:<project>``); None when absent."""
    if not raw:
        return None
    fields = {k.decode(): v.decode() for k, v in raw.items()}
    topics: dict[str, tuple[int, int]] = {}
    for name, value in fields.items():
        if name.startswith(TOPIC_FIELD_PREFIX):
            partitions, _, first = value.partition(":")
            topics[name[len(TOPIC_FIELD_PREFIX) :]] = (int(partitions), int(first))
    return Emission(int(fields.get(F_EMITTED_NS, 0)), int(fields.get(F_INTERVAL_NS, 0)), topics)


def subscribed_positions(
    emission: Emission, topic_prefix: str, project: str, views: Sequence[str]
) -> list[tuple[str, int]]:
    """(topic, partition) pairs of this project's topics a region subscribes to (``*``: all)."""
    out: list[tuple[str, int]] = []
    for topic, (partitions, _) in sorted(emission.topics.items()):
        view = view_of_topic(topic, topic_prefix, project)
        if view and ("*" in views or view in views):
            out.extend((topic, p) for p in range(partitions))
    return out


def region_staleness(
    emission: Emission,
    positions: Iterable[tuple[str, int]],
    applied_ns: Mapping[tuple[str, int], int],
) -> float:
    """Worst partition's staleness in seconds (0.0 when there is no partition)."""
    worst = 0
    for topic, partition in positions:
        stamp = applied_ns.get((topic, partition))
        if stamp is None:
            stamp = emission.topics.get(topic, (0, emission.emitted_ns))[1]
        worst = max(worst, emission.emitted_ns - stamp)
    return worst / NS


class StalenessGate:
    """Healthy while staleness <= ``bound``; once above, healthy again only after
    ``recover_checks`` measurements in a row at or below ``recover_below`` (hysteresis, so a
    region hovering at the bound does not flap). Unmeasurable staleness leaves it unchanged:
    with no emission record no region can be judged, and moving would not help."""

    def __init__(self, bound: float, recover_below: float, recover_checks: int) -> None:
        if recover_below > bound:
            raise ValueError("recover_below must not exceed the bound")
        self.bound = bound
        self.recover_below = recover_below
        self.recover_checks = recover_checks
        self.healthy = True
        self._good_in_a_row = 0

    def observe(self, staleness: float | None) -> bool:
        if staleness is None:
            return self.healthy
        if self.healthy:
            if staleness > self.bound:
                self.healthy = False
                self._good_in_a_row = 0
        elif staleness <= self.recover_below:
            self._good_in_a_row += 1
            if self._good_in_a_row >= self.recover_checks:
                self.healthy = True
        else:
            self._good_in_a_row = 0
        return self.healthy


@dataclass(frozen=True, slots=True)
class RegionState:
    """What the last health check of one region found."""

    region: str
    reachable: bool
    staleness_seconds: float | None
    measured_at: float
    """Monotonic seconds of the measurement."""


def first_within(states: Sequence[RegionState], max_staleness: float) -> RegionState | None:
    """The first reachable region (in preference order) measured within ``max_staleness``."""
    for state in states:
        if (
            state.reachable
            and state.staleness_seconds is not None
            and state.staleness_seconds <= max_staleness
        ):
            return state
    return None
