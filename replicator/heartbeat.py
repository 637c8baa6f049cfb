"""The primary's heartbeat emitter: the fence every staleness measurement is taken against.

Every ``interval`` seconds it reads the primary's clock once and produces a heartbeat
``(sequence, emitted_ns)`` into every partition of every feature-view topic of the project
(topics are re-listed every ``relist_seconds``, so new views are covered), through an
idempotent producer with acks=all. Once Kafka acknowledged the whole round, it records that
round in the primary region's Redis, hash ``_replicator:emitted:<project>``:

    sequence      the round's sequence number (continues across restarts)
    emitted_ns    the primary clock reading of the round
    interval_ns   the emission interval
    t:<topic>     "<partitions>:<emitted_ns of the first round that reached this topic>"

with a TTL of ``max(10 s, 10 intervals)``, so the record disappears when the emitter stops
(the checker then reports staleness as unmeasurable instead of a reassuring zero).

Workers apply a heartbeat after every row before it in its partition and store it in their
region as ``_replicator:hb:<topic>:<partition>`` (see ``RegionStore.record_heartbeat``). The
checker's staleness is ``emitted_ns`` here minus ``emitted_ns`` there: two readings of the
primary's clock, never the checker's or a worker's (see docs/consistency.md).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, cast

import redis

from replicator.core import wire
from replicator.core.keys import (
    F_EMITTED_NS,
    F_INTERVAL_NS,
    F_SEQUENCE,
    TOPIC_FIELD_PREFIX,
    applied_heartbeat_key,
    emission_key,
)
from replicator.core.records import Heartbeat
from replicator.core.topics import topic_head
from replicator.errors import PublishError, TransientError

log = logging.getLogger(__name__)

# Key and field names live in replicator.core.keys (imported above, so older callers that
# import them from here keep working); ``applied_key`` is the old name of the applied key.
applied_key = applied_heartbeat_key


def emission_ttl_ms(interval_seconds: float) -> int:
    return int(max(10.0, 10 * interval_seconds) * 1000)


@dataclass(frozen=True, slots=True)
class Round:
    sequence: int
    emitted_ns: int
    topics: Mapping[str, int]
    """Topic -> partitions the round went into."""


class TopicLister(Protocol):
    def partitions(self) -> dict[str, int]:
        """Feature-view topics of the project and their partition counts."""


class HeartbeatProducer(Protocol):
    def send(self, topic: str, partition: int, payload: bytes, headers: wire.Headers) -> None: ...
    def flush(self, timeout: float = 30.0) -> None: ...


class EmissionRecord(Protocol):
    def last_sequence(self) -> int:
        """The newest recorded sequence, 0 when there is none."""

    def record(self, round_: Round, interval_ns: int) -> None:
        """Make the round visible to the checker (only after Kafka acknowledged it)."""


class HeartbeatEmitter:
    def __init__(
        self,
        *,
        topics: TopicLister,
        producer: HeartbeatProducer,
        record: EmissionRecord,
        interval_seconds: float = 1.0,
        relist_seconds: float = 10.0,
        clock: Callable[[], int] = time.time_ns,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval_seconds <= 0:
            raise ValueError("the heartbeat interval must be positive")
        self._topics = topics
        self._producer = producer
        self._record = record
        self.interval_seconds = interval_seconds
        self._relist_seconds = relist_seconds
        self._clock = clock
        self._monotonic = monotonic
        self._known: dict[str, int] = {}
        self._listed_at = float("-inf")
        self._sequence: int | None = None
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def emit_once(self) -> Round | None:
        """One round; returns it once durable and recorded, None when there is no topic yet.

        Raises TransientError when Kafka or Redis could not take it (the next round retries).
        """
        now = self._monotonic()
        if now - self._listed_at >= self._relist_seconds or not self._known:
            self._known = self._topics.partitions()
            self._listed_at = now
        if not self._known:
            return None
        if self._sequence is None:
            self._sequence = self._record.last_sequence()
        sequence = self._sequence + 1
        emitted_ns = self._clock()
        headers, payload = wire.encode_heartbeat(Heartbeat(sequence, emitted_ns))
        for topic, partitions in sorted(self._known.items()):
            for partition in range(partitions):
                self._producer.send(topic, partition, payload, headers)
        # Durability first: the checker must never see a round Kafka might not have.
        self._producer.flush(max(5.0, 5 * self.interval_seconds))
        round_ = Round(sequence, emitted_ns, dict(self._known))
        self._record.record(round_, int(self.interval_seconds * 1e9))
        self._sequence = sequence
        return round_

    def run(self) -> int:
        """Emit until ``stop()``; rounds start on a fixed monotonic schedule. Returns rounds."""
        log.info(
            "heartbeat emitter started (every %.3fs)",
            self.interval_seconds,
            extra={"event": "heartbeats_started", "interval_seconds": self.interval_seconds},
        )
        rounds = 0
        next_at = self._monotonic()
        while not self._stop.is_set():
            try:
                if self.emit_once() is not None:
                    rounds += 1
            except (TransientError, PublishError) as exc:
                log.warning("heartbeat round failed: %s", exc, extra={"event": "heartbeat_failed"})
            next_at += self.interval_seconds
            now = self._monotonic()
            if next_at < now:  # fell behind (slow broker): skip the missed slots
                next_at = now
            self._stop.wait(next_at - now)
        log.info(
            "heartbeat emitter stopped", extra={"event": "heartbeats_stopped", "rounds": rounds}
        )
        return rounds


class RedisEmissionRecord:
    """The emission record in the primary region's Redis (lazily connected)."""

    def __init__(
        self, connect: Callable[[], redis.Redis], project: str, interval_seconds: float
    ) -> None:
        self._connect = connect
        self._key = emission_key(project)
        self._ttl_ms = emission_ttl_ms(interval_seconds)
        self._client: redis.Redis | None = None
        self._topics_recorded: set[str] = set()

    @property
    def client(self) -> redis.Redis:
        if self._client is None:
            self._client = self._connect()
        return self._client

    def last_sequence(self) -> int:
        try:
            raw = self.client.hget(self._key, F_SEQUENCE)
        except redis.RedisError as exc:
            raise TransientError(f"cannot read the heartbeat record: {exc}") from exc
        return int(cast(bytes, raw)) if raw else 0

    def record(self, round_: Round, interval_ns: int) -> None:
        try:
            with self.client.pipeline(transaction=True) as pipe:
                pipe.hset(
                    self._key,
                    mapping={
                        F_SEQUENCE: round_.sequence,
                        F_EMITTED_NS: round_.emitted_ns,
                        F_INTERVAL_NS: interval_ns,
                    },
                )
                for topic, partitions in round_.topics.items():
                    # HSETNX keeps the first round that reached the topic.
                    pipe.hsetnx(
                        self._key, TOPIC_FIELD_PREFIX + topic, f"{partitions}:{round_.emitted_ns}"
                    )
                pipe.pexpire(self._key, self._ttl_ms)
                pipe.execute()
        except redis.RedisError as exc:
            raise TransientError(f"cannot record the heartbeat round: {exc}") from exc

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class KafkaTopicLister:
    """Feature-view topics of one project, from the broker's metadata."""

    def __init__(self, admin: object, topic_prefix: str, project: str) -> None:
        self._admin = admin
        self._head = topic_head(topic_prefix, project)

    def partitions(self) -> dict[str, int]:
        try:
            metadata = self._admin.list_topics(timeout=10)  # type: ignore[attr-defined]
        except Exception as exc:  # confluent_kafka raises KafkaException
            raise TransientError(f"cannot list topics: {exc}") from exc
        return {
            name: len(meta.partitions)
            for name, meta in metadata.topics.items()
            if name.startswith(self._head) and len(name) > len(self._head) and not meta.error
        }
