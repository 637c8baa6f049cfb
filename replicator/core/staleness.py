"""Replication staleness from heartbeats, on primary-clock readings only: the one rule, for
the consistency checker and for regional readers alike (no I/O).

The emitter at the primary stamps every heartbeat round with one reading of the primary's
clock and records the newest round it made durable (``Emission``, the hash
``_replicator:emitted:<project>`` in the primary region's Redis). A region's worker stores,
per (topic, partition), the primary stamp of the newest heartbeat it applied
(``AppliedHeartbeat``, the hash ``_replicator:hb:<topic>:<partition>``), and applies a
heartbeat only after every row before it in that partition. So

    staleness(region, topic, partition) = emission.emitted_ns - applied.emitted_ns

compares two readings of the same clock: neither the checker's, the reader's nor the worker's
clock takes part, and a skew between machines cannot change it. It is a multiple of the
heartbeat interval, which is therefore its resolution. A partition that never applied a
heartbeat, or holds a stamp the primary never emitted (forged), is as stale as its topic's
first heartbeat is old. A region's staleness, for readers, is its worst partition over the
topics it subscribes to. Seconds throughout; ``None`` means unmeasurable (no emission record:
the emitter is stopped).

The readers' routing on that figure (hysteresis, choice under a bound) lives here too:
``StalenessGate``, ``RegionState``, ``first_within``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from replicator.core.keys import F_EMITTED_NS, F_INTERVAL_NS, F_SEQUENCE, TOPIC_FIELD_PREFIX
from replicator.core.topics import view_of_topic

NS = 1_000_000_000

BELIEVED_LEAD_NS = 10 * NS
"""A stamp up to ``max(BELIEVED_LEAD_NS, 10 intervals)`` above the newest recorded round is
believed (``emitted_by_primary``); whoever reuses one emission record must read it again well
within this, or it takes stamps applied since for forged ones."""

APPLIED_FIELDS = (F_SEQUENCE, F_EMITTED_NS)
"""Fields of an applied-heartbeat hash to HMGET, in the order ``parse_applied`` takes them."""


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


# Parsing the hashes (the emitter and the worker write them; see replicator.heartbeat) -------
def parse_emission(raw: Mapping[bytes, bytes]) -> Emission | None:
    """The emission hash (``HGETALL _replicator:emitted:<project>``); None when it is absent
    (empty). ``ValueError`` (``UnicodeDecodeError`` included) when a field is not what the
    emitter writes."""
    if not raw:
        return None
    fields = {k.decode(): v.decode() for k, v in raw.items()}
    topics = {}
    for name, value in fields.items():
        if name.startswith(TOPIC_FIELD_PREFIX):
            partitions, _, first = value.partition(":")
            topics[name[len(TOPIC_FIELD_PREFIX) :]] = TopicEmission(int(partitions), int(first))
    return Emission(
        sequence=int(fields.get(F_SEQUENCE, 0)),
        emitted_ns=int(fields.get(F_EMITTED_NS, 0)),
        interval_ns=int(fields.get(F_INTERVAL_NS, 0)),
        topics=topics,
    )


def parse_applied(
    positions: Sequence[tuple[str, int]], replies: Sequence[Sequence[bytes | str | None]]
) -> dict[tuple[str, int], AppliedHeartbeat]:
    """Applied heartbeats from one ``HMGET _replicator:hb:<topic>:<partition> *APPLIED_FIELDS``
    reply per position (same order); a partition that applied none is left out. ``ValueError``
    when a field is not an integer or the replies do not match the positions."""
    applied = {}
    for position, (sequence, emitted) in zip(positions, replies, strict=True):
        if sequence is not None and emitted is not None:
            applied[position] = AppliedHeartbeat(int(sequence), int(emitted))
    return applied


# The rule -----------------------------------------------------------------------------------
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
    margin = max(BELIEVED_LEAD_NS, 10 * emission.interval_ns)
    return applied.emitted_ns <= emission.emitted_ns + margin


def worst(values: Iterable[float | None]) -> float | None:
    """The largest value; None when there is none."""
    present = [v for v in values if v is not None]
    return max(present) if present else None


def subscribed_positions(
    emission: Emission, topic_prefix: str, project: str, views: Sequence[str]
) -> list[tuple[str, int]]:
    """(topic, partition) pairs of this project's topics a region subscribes to (``*``: all)."""
    out: list[tuple[str, int]] = []
    for topic, info in sorted(emission.topics.items()):
        view = view_of_topic(topic, topic_prefix, project)
        if view and ("*" in views or view in views):
            out.extend((topic, p) for p in range(info.partitions))
    return out


def region_staleness(
    emission: Emission,
    positions: Iterable[tuple[str, int]],
    applied: Mapping[tuple[str, int], AppliedHeartbeat],
) -> float:
    """The worst partition's ``partition_staleness`` in seconds (0.0 when there is none)."""
    figures = (partition_staleness(emission, t, applied.get((t, p))) for t, p in positions)
    return worst(figures) or 0.0


# Routing on it (regional readers) ------------------------------------------------------------
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
