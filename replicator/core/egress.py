"""Bytes a region's workers fetch from Kafka, per topic: what cross-region egress costs.

Two figures per feature-view topic, both counted by the region's consumer:

- ``record_bytes``: the records as the worker receives them, decompressed (key, value,
  header names and values): what the region would carry without compression.
- ``wire_bytes``: bytes actually read from the brokers' sockets (librdkafka's ``rx_bytes``:
  compressed batches plus the protocol around them). The client reports it for the whole
  client, not per topic, so each statistics interval's wire bytes are shared among the
  topics in proportion to the message bytes the client fetched for each in that same
  interval (its per-partition ``rxbytes``, from the same report); exact in total. An interval
  without fetched messages (group heartbeats, empty fetches) is counted as ``OVERHEAD``.

``EgressMeter`` keeps the running totals in a worker; ``EgressCounts`` is what the workers
of a consumer group (one project in one region) add up in the region's Redis
(``_replicator:egress:<group>``, fields below) and what the consistency checker reads back.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

OVERHEAD = "_overhead"
"""Pseudo-topic of wire bytes no record was received with (protocol, heartbeats, commits)."""
F_SINCE_NS = "since_ns"
"""Field of the Redis hash: when the region's first worker started counting (its clock)."""
MEASURES = ("records", "record_bytes", "wire_bytes")
"""Counted per topic; Redis field ``<topic>|<measure>``."""


@dataclass(frozen=True)
class TopicBytes:
    records: int = 0
    record_bytes: int = 0
    wire_bytes: int = 0

    def __add__(self, other: TopicBytes) -> TopicBytes:
        return TopicBytes(
            self.records + other.records,
            self.record_bytes + other.record_bytes,
            self.wire_bytes + other.wire_bytes,
        )

    def __sub__(self, other: TopicBytes) -> TopicBytes:
        return TopicBytes(
            self.records - other.records,
            self.record_bytes - other.record_bytes,
            self.wire_bytes - other.wire_bytes,
        )

    def __bool__(self) -> bool:
        return bool(self.records or self.record_bytes or self.wire_bytes)


@dataclass(frozen=True)
class EgressCounts:
    """Running totals of a worker, or of its consumer group, since ``since_ns`` (wall clock,
    ns)."""

    group: str
    """The consumer group (one project in one region)."""
    since_ns: int
    topics: Mapping[str, TopicBytes] = field(default_factory=dict)
    """Topic (or ``OVERHEAD``) -> its bytes."""

    @property
    def record_bytes(self) -> int:
        return sum(t.record_bytes for t in self.topics.values())

    @property
    def wire_bytes(self) -> int:
        return sum(t.wire_bytes for t in self.topics.values())

    def to_fields(self) -> dict[str, int]:
        """The Redis hash fields to add (HINCRBY) for these counts; ``since_ns`` apart."""
        return {
            f"{topic}|{measure}": getattr(counts, measure)
            for topic, counts in self.topics.items()
            for measure in MEASURES
            if getattr(counts, measure)
        }

    @classmethod
    def from_fields(
        cls, group: str, fields: Mapping[str, str | bytes | int]
    ) -> EgressCounts | None:
        """The inverse of ``to_fields`` (plus ``since_ns``); None when nothing was counted.
        Unknown or malformed fields are ignored."""
        since = fields.get(F_SINCE_NS)
        if since is None:
            return None
        topics: dict[str, dict[str, int]] = {}
        for name, value in fields.items():
            topic, _, measure = name.rpartition("|")
            if not topic or measure not in MEASURES:
                continue
            try:
                topics.setdefault(topic, {})[measure] = int(value)
            except ValueError:
                continue
        return cls(group, int(since), {t: TopicBytes(**m) for t, m in topics.items()})


class EgressMeter:
    """One consumer's running totals. ``fetched`` per record received, ``wire_total`` with
    each statistics report of the client; ``unpublished``/``published`` hand the increase
    since the last successful publication to the region's totals exactly once."""

    def __init__(self, group: str, since_ns: int) -> None:
        self.group = group
        self.since_ns = since_ns
        self._totals: dict[str, TopicBytes] = {}
        self._published: dict[str, TopicBytes] = {}
        self._wire_seen = 0
        self._fetched_seen: dict[str, int] = {}

    def fetched(self, topic: str, record_bytes: int) -> None:
        """One record of ``record_bytes`` (decompressed) handed to the worker from ``topic``."""
        self._add(topic, TopicBytes(1, record_bytes, 0))

    def wire_total(self, rx_bytes: int, fetched_by_topic: Mapping[str, int]) -> None:
        """One statistics report of the client: its running total of bytes received from the
        brokers, and per topic its running total of message bytes fetched. A total below the
        last one (a new client) counts from zero."""
        weights = {
            t: _increase(self._fetched_seen.get(t, 0), n) for t, n in fetched_by_topic.items()
        }
        self._fetched_seen = dict(fetched_by_topic)
        delta = _increase(self._wire_seen, rx_bytes)
        self._wire_seen = rx_bytes
        for topic, share in apportion(delta, weights).items():
            self._add(topic, TopicBytes(0, 0, share))

    def counts(self) -> EgressCounts:
        return EgressCounts(self.group, self.since_ns, dict(self._totals))

    def unpublished(self) -> EgressCounts:
        """What was counted since the last ``published`` call (empty topics left out)."""
        delta = {
            topic: total - self._published.get(topic, TopicBytes())
            for topic, total in self._totals.items()
        }
        return EgressCounts(self.group, self.since_ns, {t: d for t, d in delta.items() if d})

    def published(self, delta: EgressCounts) -> None:
        """``delta`` (from ``unpublished``) is now part of the region's totals."""
        for topic, counts in delta.topics.items():
            self._published[topic] = self._published.get(topic, TopicBytes()) + counts

    def _add(self, topic: str, counts: TopicBytes) -> None:
        self._totals[topic] = self._totals.get(topic, TopicBytes()) + counts


def _increase(before: int, now: int) -> int:
    """How much a running total grew; one that went down restarted from zero."""
    return now - before if now >= before else now


def apportion(total: int, weights: Mapping[str, int]) -> dict[str, int]:
    """``total`` split in proportion to ``weights``, in integers that add up to ``total``
    exactly (largest remainders first); with no positive weight, all of it is ``OVERHEAD``."""
    if total <= 0:
        return {}
    weight = sum(w for w in weights.values() if w > 0)
    if weight == 0:
        return {OVERHEAD: total}
    shares = {k: total * w // weight for k, w in weights.items() if w > 0}
    remainders = sorted((k for k in shares), key=lambda k: (-(total * weights[k] % weight), k))
    for k in remainders[: total - sum(shares.values())]:
        shares[k] += 1
    return shares
