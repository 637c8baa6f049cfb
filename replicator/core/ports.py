"""What the worker needs from the outside world. Adapters implement these; tests use fakes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from replicator.core.egress import EgressCounts
from replicator.core.records import ApplyOutcome, DeleteView, EncodedBatch, Heartbeat
from replicator.errors import PermanentError


class Message(Protocol):
    """The subset of confluent_kafka.Message the worker uses (same signatures)."""

    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def value(self) -> bytes | None: ...
    def headers(self) -> Any: ...
    def error(self) -> Any: ...
    def timestamp(self) -> tuple[int, int]:
        """``(type, milliseconds)``: the broker timestamp; type 0 when there is none."""


def position(message: Message) -> tuple[str, int, int]:
    """Topic, partition and offset of a consumed record (always set once consumed)."""
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    if topic is None or partition is None or offset is None:
        raise ValueError("record without a log position")
    return topic, partition, offset


class ChangeSource(Protocol):
    def poll_batch(self, max_messages: int, timeout: float) -> Sequence[Message]:
        """Up to ``max_messages`` records, in log order within each partition."""

    def pause(self, topic: str, partition: int, offset: int) -> None:
        """Stop delivering this partition; on ``resume`` start again at ``offset``."""

    def resume(self, topic: str, partition: int) -> None: ...

    def is_paused(self, topic: str, partition: int) -> bool:
        """False again once the partition was revoked (its pause ends with it)."""

    def commit(self, positions: dict[tuple[str, int], int]) -> None:
        """Mark ``(topic, partition) -> next offset`` as done. Called only after the region's
        Redis acknowledged every record before that offset."""

    def positions_past_markers(self) -> dict[tuple[str, int], int]:
        """After an empty poll: ``(topic, partition) -> next offset`` of partitions whose
        position moved past what was committed over records never delivered (Kafka's
        transaction markers, aborted records). Committing them (through the same path as
        applied records) brings the group's lag to zero after a transaction."""

    def close(self) -> None: ...


class DeadLetters(Protocol):
    def send(
        self, message: Message, reason: str, detail: str, payload: bytes | None = None
    ) -> None:
        """Queue a record for the dead-letter topic (``payload`` replaces the original)."""

    def flush(self) -> None:
        """Return once every queued record is durable; raise otherwise."""


class SchemaCatalog(Protocol):
    def is_known(self, feature_view: str, fingerprint: str) -> bool:
        """Whether this region's registry lists this exact shape of the view among its recent
        schema versions (core/schema_history.py)."""


class Store(Protocol):
    """The region's online store as the worker writes it (see adapters/redis_store.py)."""

    def apply(self, batches: Sequence[EncodedBatch]) -> list[ApplyOutcome | PermanentError]:
        """One outcome per batch: counts, or why the store refused that record for good.
        Raises TransientError (retry the call) or PermanentError (the call as a whole failed
        for good: apply the batches one by one to find the record)."""

    def delete_view(
        self, delete: DeleteView, partition: int, partitions: int, offset: int
    ) -> int: ...
    def record_heartbeat(
        self,
        topic: str,
        partition: int,
        heartbeat: Heartbeat,
        applied_ns: int,
        *,
        plausible_until_ns: int | None = None,
    ) -> None:
        """Keep the newest heartbeat (by primary stamp) of the partition. A stored stamp above
        ``plausible_until_ns`` was never emitted by the primary (forged) and is replaced."""

    def write_stats(self, region: str, stats: dict[str, float]) -> None: ...
    def add_egress(self, delta: EgressCounts) -> bool:
        """Add a worker's newly fetched bytes to its consumer group's totals; False when they
        could not be written (kept for the next call, never counted twice)."""

    def close(self) -> None: ...


class ObjectStore(Protocol):
    """One bucket of an S3-compatible object store (see adapters/s3.py).

    Keys are ``/``-separated strings, bodies are bytes. Every method raises
    ``ObjectStoreUnavailable`` (transient: unreachable, timed out, 5xx) or
    ``ObjectStoreRefused`` (permanent: access denied, no such bucket), never a library error.
    """

    bucket: str

    def where(self, key: str = "") -> str:
        """``s3://bucket/key`` for messages."""

    def get(self, key: str) -> bytes | None:
        """The object's bytes; None when there is no such object."""

    def put(self, key: str, body: bytes, *, content_type: str | None = None) -> None:
        """Write the whole object (replacing any)."""

    def delete(self, key: str) -> None:
        """Remove the object (no error when it is absent)."""

    def keys(self, prefix: str) -> list[str]:
        """Every object key under ``prefix``, sorted."""


class Clock(Protocol):
    def time_ns(self) -> int: ...
