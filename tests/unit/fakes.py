"""In-memory twins of the worker's ports, and builders for the records they carry.

``FakeStore`` keeps the contract of ``adapters/redis_store.RegionStore`` (checked against the
real one by ``tests/integration/test_store_contract.py``): it decodes the same wire-v1
payloads, decides with ``core.version`` (the definition ``apply_rows.lua`` is rendered from)
what the script decides in Redis, numbers rows as the script does, and lays hashes out the
way Feast does. Every fake can append to a shared ``events`` list so a
test can check the order of calls across ports (apply, dead letters, flush, commit).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

import msgpack

from replicator.core import wire
from replicator.core.egress import EgressCounts
from replicator.core.records import (
    ApplyOutcome,
    DeleteView,
    EncodedBatch,
    Heartbeat,
    Kind,
    Row,
    RowBatch,
)
from replicator.core.version import FIRST_ROW_INDEX, Version
from replicator.errors import MalformedRecord, PermanentError

TOPIC = "feast.test_project.driver_stats"
VIEW = "driver_stats"
FINGERPRINT = "fp-1"
FIELDS = (b"\x01\x00\x00\x00", b"\x02\x00\x00\x00")

Event = tuple[object, ...]


# Builders --------------------------------------------------------------------------------
def make_row(
    key: bytes,
    event_s: int,
    event_nanos: int = 0,
    created_s: int = 0,
    created_nanos: int = 0,
    *,
    values: Sequence[bytes] | None = None,
    ts: bytes | None = None,
    width: int = len(FIELDS),
) -> Row:
    """A row whose ts and values name its key and version, so bytes tell writes apart."""
    tag = b"%s@%d.%d/%d.%d" % (key, event_s, event_nanos, created_s, created_nanos)
    if values is None:
        values = tuple(b"v%d:" % i + tag for i in range(width))
    return Row(
        key, ts or b"ts:" + tag, event_s, event_nanos, created_s, created_nanos, tuple(values)
    )


def make_batch(
    rows: Iterable[Row],
    *,
    view: str = VIEW,
    fields: Sequence[bytes] = FIELDS,
    fingerprint: str = FINGERPRINT,
    registry_version: str = "reg-1",
    published_ns: int = 0,
) -> RowBatch:
    return RowBatch(view, tuple(fields), tuple(rows), fingerprint, registry_version, published_ns)


def encoded(batch: RowBatch, *, offset: int = 0, partition: int = 0) -> EncodedBatch:
    _, payload = wire.encode_rows(batch)
    return EncodedBatch(payload, batch.feature_view, partition, offset)


def feast_hash(batch: RowBatch, row: Row) -> dict[bytes, bytes]:
    """What Feast's Redis hash holds for this row's view after the row was written."""
    return {batch.ts_field: row.ts, **dict(zip(batch.fields, row.values, strict=True))}


class FakeClock:
    """A monotonic clock in seconds that moves only when told (``sleep`` or ``advance``)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    advance = sleep


Record = tuple[int, list[Row]]
"""(Kafka offset, rows) of one row batch."""


def random_writes(rng: random.Random, key: Callable[[int], bytes]) -> list[Record]:
    """Records for a few keys with many ties on every part of the version, negative (pre-1970)
    seconds included; each write's ts and values are bytes unique to it."""
    keys = [key(i) for i in range(rng.randint(1, 4))]
    records = []
    for offset in range(rng.randint(1, 25)):
        rows = []
        for index in range(rng.randint(1, 4)):
            stamps = [rng.randint(-1, 1) for _ in range(4)]
            stamps[1] = stamps[1] + 1  # nanos are never negative
            stamps[3] = stamps[3] + 1
            tag = b"o%d/i%d" % (offset, index)
            values = (b"a" + tag, b"b" + tag)
            rows.append(make_row(rng.choice(keys), *stamps, values=values, ts=b"t" + tag))
        records.append((offset, rows))
    return records


def newest_hashes(records: Sequence[Record], view: str = VIEW) -> dict[bytes, dict[bytes, bytes]]:
    """What every key must hold once all records are applied: its greatest version's row."""
    newest: dict[bytes, tuple[Version, Row]] = {}
    for offset, rows in records:
        for index, row in enumerate(rows, start=FIRST_ROW_INDEX):
            version = row.version(offset, index)
            if row.key not in newest or version > newest[row.key][0]:
                newest[row.key] = (version, row)
    return {k: feast_hash(make_batch([r], view=view), r) for k, (_, r) in newest.items()}


def shuffled_deliveries(
    rng: random.Random, records: Sequence[Record], view: str = VIEW
) -> list[list[EncodedBatch]]:
    """The records shuffled, a third of them delivered twice, in groups of 1-5 per apply
    call (several records per poll)."""
    deliveries = [encoded(make_batch(rows, view=view), offset=o) for o, rows in records]
    deliveries += rng.sample(deliveries, k=len(deliveries) // 3)
    rng.shuffle(deliveries)
    groups = []
    while deliveries:
        take = rng.randint(1, 5)
        groups.append(deliveries[:take])
        deliveries = deliveries[take:]
    return groups


@dataclass
class FakeMessage:
    """The subset of ``confluent_kafka.Message`` the worker uses (``core.ports.Message``)."""

    topic_: str
    partition_: int
    offset_: int
    value_: bytes | None
    headers_: list[tuple[str, bytes]] | None

    def topic(self) -> str:
        return self.topic_

    def partition(self) -> int:
        return self.partition_

    def offset(self) -> int:
        return self.offset_

    def value(self) -> bytes | None:
        return self.value_

    def headers(self) -> list[tuple[str, bytes]] | None:
        return self.headers_

    def error(self) -> object | None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return (0, -1)  # TIMESTAMP_NOT_AVAILABLE: the worker's clock stands in


def rows_message(
    batch: RowBatch, offset: int, *, partition: int = 0, topic: str = TOPIC
) -> FakeMessage:
    headers, payload = wire.encode_rows(batch)
    return FakeMessage(topic, partition, offset, payload, headers)


def delete_message(
    delete: DeleteView, offset: int, *, partition: int = 0, topic: str = TOPIC
) -> FakeMessage:
    headers, payload = wire.encode_delete_view(delete)
    return FakeMessage(topic, partition, offset, payload, headers)


def heartbeat_message(
    heartbeat: Heartbeat, offset: int, *, partition: int = 0, topic: str = TOPIC
) -> FakeMessage:
    headers, payload = wire.encode_heartbeat(heartbeat)
    return FakeMessage(topic, partition, offset, payload, headers)


def with_header(headers: wire.Headers, name: str, value: bytes | None) -> wire.Headers:
    """A copy of ``headers`` with ``name`` replaced (``None`` removes it)."""
    kept = [(k, v) for k, v in headers if k != name]
    return kept if value is None else [*kept, (name, value)]


# Ports -------------------------------------------------------------------------------------
class _Failures:
    """Exceptions a fake raises on its next calls of one method, before doing anything."""

    def __init__(self) -> None:
        self._queued: dict[str, deque[BaseException]] = {}
        self.on_failure: Callable[[str], None] | None = None

    def fail(self, method: str, error: BaseException, times: int = 1) -> None:
        self._queued.setdefault(method, deque()).extend([error] * times)

    def check(self, method: str) -> None:
        queued = self._queued.get(method)
        if queued:
            error = queued.popleft()
            if self.on_failure is not None:
                self.on_failure(method)
            raise error


class FakeStore(_Failures):
    """In-memory ``RegionStore``: Feast's hashes, last-writer-wins versions, heartbeats."""

    def __init__(
        self, *, key_ttl_seconds: int | None = None, events: list[Event] | None = None
    ) -> None:
        super().__init__()
        self.hashes: dict[bytes, dict[bytes, bytes]] = {}
        """Feast keys -> hash, exactly as HGETALL would return them."""
        self.ttls: dict[bytes, int] = {}
        self.versions: dict[tuple[str, int], dict[bytes, Version]] = {}
        """(view, partition) -> Feast key -> version of the write the hash holds."""
        self.heartbeats: dict[tuple[str, int], dict[str, int]] = {}
        self.stats: dict[str, dict[str, float]] = {}
        self.egress: list[EgressCounts] = []
        self.events: list[Event] = [] if events is None else events
        self.calls: dict[str, int] = {}
        self._ttl = key_ttl_seconds or 0
        self.closed = False
        self.poisoned: dict[int, BaseException] = {}
        """Offset -> error raised by every ``apply`` call that includes that record."""

    def _called(self, method: str) -> None:
        self.calls[method] = self.calls.get(method, 0) + 1
        self.check(method)

    # Store port ----------------------------------------------------------------------------
    def apply(self, batches: Sequence[EncodedBatch]) -> list[ApplyOutcome | PermanentError]:
        self._called("apply")
        self.events.append(("apply", tuple(b.offset for b in batches)))
        for b in batches:
            if b.offset in self.poisoned:
                raise self.poisoned[b.offset]
        return [self._apply_one(b) for b in batches]

    def delete_view(self, delete: DeleteView, partition: int, partitions: int, offset: int) -> int:
        self._called("delete_view")
        self.events.append(("delete_view", delete.feature_view, partition))
        versions = self.versions.setdefault((delete.feature_view, partition), {})
        touched = 0
        for key in list(self.hashes):
            if not fnmatchcase(key, delete.scan_pattern):
                continue
            if wire.partition_for(key, partitions) != partition:
                continue
            version = versions.get(key)
            if version is not None and version.offset > offset:
                continue  # written after the deletion: it stays
            versions.pop(key, None)
            fields = self.hashes[key]
            if delete.ts_field not in fields:
                continue
            touched += 1
            if sum(name.startswith(b"_ts:") for name in fields) == 1:
                del self.hashes[key]
                self.ttls.pop(key, None)
            else:
                for name in (delete.ts_field, *delete.fields):
                    fields.pop(name, None)
        return touched

    def record_heartbeat(
        self,
        topic: str,
        partition: int,
        heartbeat: Heartbeat,
        applied_ns: int,
        *,
        plausible_until_ns: int | None = None,
    ) -> None:
        self._called("record_heartbeat")
        self.events.append(("heartbeat", topic, partition, heartbeat.sequence))
        current = self.heartbeats.get((topic, partition))
        forged = (
            current is not None
            and plausible_until_ns is not None
            and current["emitted_ns"] > plausible_until_ns
        )
        if current is not None and not forged and current["emitted_ns"] > heartbeat.emitted_ns:
            return  # an older heartbeat delivered late never moves the clock back
        self.heartbeats[(topic, partition)] = {
            "sequence": heartbeat.sequence,
            "emitted_ns": heartbeat.emitted_ns,
            "applied_ns": applied_ns,
        }

    def write_stats(self, region: str, stats: dict[str, float]) -> None:
        self.calls["write_stats"] = self.calls.get("write_stats", 0) + 1
        self.stats[region] = dict(stats)

    def add_egress(self, delta: EgressCounts) -> bool:
        self.calls["add_egress"] = self.calls.get("add_egress", 0) + 1
        self.egress.append(delta)
        return True

    def close(self) -> None:
        self.closed = True

    # Test helpers --------------------------------------------------------------------------
    def expire(self, key: bytes) -> None:
        """What Redis does when a Feast key's TTL runs out."""
        self.hashes.pop(key, None)
        self.ttls.pop(key, None)

    def _apply_one(self, b: EncodedBatch) -> ApplyOutcome | PermanentError:
        try:
            batch = _decode_for_apply(b)
        except MalformedRecord as exc:
            return exc  # the whole batch is checked before the first write
        versions = self.versions.setdefault((b.feature_view, b.partition), {})
        applied = skipped = 0
        indexes = b.row_indexes or range(FIRST_ROW_INDEX, FIRST_ROW_INDEX + len(batch.rows))
        if len(indexes) != len(batch.rows):
            return MalformedRecord("row indexes must be one integer per row")
        ttl = self._ttl if b.key_ttl_seconds is None else b.key_ttl_seconds
        for index, row in zip(indexes, batch.rows, strict=True):
            version = row.version(b.offset, index)
            current = versions.get(row.key)
            if current is not None and ttl and row.key not in self.hashes:
                current = None  # the Feast key expired: forget its version, as Feast would
            if not version.supersedes(current):
                skipped += 1
                continue
            self.hashes.setdefault(row.key, {}).update(feast_hash(batch, row))
            if ttl:
                self.ttls[row.key] = ttl
            versions[row.key] = version
            applied += 1
        return ApplyOutcome(applied, skipped)


def _decode_for_apply(b: EncodedBatch) -> RowBatch:
    """The checks apply_rows.lua makes before writing, on the wire-v1 definition."""
    if _has_bin_type(b.payload):
        raise MalformedRecord("payload is not a wire v1 row batch (msgpack bin type)")
    header = wire.RecordHeader(Kind.ROWS, b.feature_view, "", "", 0, 0, 0)
    batch = wire.decode_rows(header, b.payload)  # also: payload view == header view
    if b.max_event_s is not None and any(r.event_s > b.max_event_s for r in batch.rows):
        raise MalformedRecord("a row's event time is after the max_ev header")
    if not all(isinstance(f, bytes) for f in batch.fields):
        raise MalformedRecord("field keys must be bytes")
    for i, row in enumerate(batch.rows):
        stamps = (row.event_s, row.event_nanos, row.created_s, row.created_nanos)
        if any(isinstance(x, bool) for x in stamps):
            raise MalformedRecord(f"row {i}: timestamps must be integers")
    return batch


def _has_bin_type(payload: bytes) -> bool:
    """Whether a msgpack bin type is used (Redis 7.0's cmsgpack only reads raw strings)."""
    try:
        # Raw strings come back as str here (surrogates for non-UTF-8), bin types as bytes.
        body = msgpack.unpackb(payload, raw=False, unicode_errors="surrogateescape")
    except Exception:
        return False  # not msgpack at all: decode_rows says so
    stack = [body]
    while stack:
        item = stack.pop()
        if isinstance(item, bytes):
            return True
        if isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend([*item.keys(), *item.values()])
    return False


class FakeSource(_Failures):
    """A ``ChangeSource`` over an in-memory log; records every commit.

    Messages are delivered in the order given (keep log order within each partition). A
    paused partition delivers nothing; on resume it starts again at the offset it was
    paused at, like ``KafkaSource`` (pause + seek).
    """

    def __init__(
        self,
        messages: Iterable[FakeMessage] = (),
        *,
        events: list[Event] | None = None,
        on_drained: Callable[[], None] | None = None,
        max_per_poll: int | None = None,
    ) -> None:
        super().__init__()
        self.max_per_poll = max_per_poll
        self.log: list[FakeMessage] = list(messages)
        self.next_offset: dict[tuple[str, int], int] = {}
        self.paused: set[tuple[str, int]] = set()
        self.commits: list[dict[tuple[str, int], int]] = []
        self.closed = False
        self.events: list[Event] = [] if events is None else events
        self.on_drained = on_drained
        """Called by a poll that finds nothing to deliver (e.g. ``worker.stop``)."""

    def add(self, *messages: FakeMessage) -> None:
        self.log.extend(messages)

    @property
    def committed(self) -> dict[tuple[str, int], int]:
        """Next offset per partition, as the consumer group would now resume from."""
        out: dict[tuple[str, int], int] = {}
        for positions in self.commits:
            out.update(positions)
        return out

    def poll_batch(self, max_messages: int, timeout: float) -> list[FakeMessage]:
        batch: list[FakeMessage] = []
        limit = min(max_messages, self.max_per_poll or max_messages)
        for message in self.log:
            if len(batch) == limit:
                break
            tp = (message.topic(), message.partition())
            if tp in self.paused or message.offset() < self.next_offset.get(tp, 0):
                continue
            batch.append(message)
            self.next_offset[tp] = message.offset() + 1
        if not batch and self.on_drained is not None:
            self.on_drained()
        return batch

    def pause(self, topic: str, partition: int, offset: int) -> None:
        self.events.append(("pause", topic, partition, offset))
        self.paused.add((topic, partition))
        self.next_offset[(topic, partition)] = offset

    def resume(self, topic: str, partition: int) -> None:
        self.events.append(("resume", topic, partition))
        self.paused.discard((topic, partition))

    def is_paused(self, topic: str, partition: int) -> bool:
        return (topic, partition) in self.paused

    def positions_past_markers(self) -> dict[tuple[str, int], int]:
        """Like Kafka's: delivered positions beyond what was committed (the fake's log may
        skip offsets, as transaction markers do)."""
        committed = self.committed
        return {
            tp: offset
            for tp, offset in self.next_offset.items()
            if tp not in self.paused and tp in committed and offset > committed[tp]
        }

    def commit(self, positions: dict[tuple[str, int], int]) -> None:
        self.check("commit")
        self.events.append(("commit", dict(positions)))
        self.commits.append(dict(positions))

    def close(self) -> None:
        self.closed = True


@dataclass(frozen=True)
class DeadLetter:
    message: FakeMessage
    reason: str
    detail: str
    payload: bytes | None

    @property
    def offset(self) -> int:
        return self.message.offset()

    @property
    def value(self) -> bytes | None:
        """What the dead-letter topic receives as the record's value."""
        return self.message.value() if self.payload is None else self.payload


class FakeDeadLetters(_Failures):
    """A ``DeadLetters`` port: records are queued by ``send`` and durable after ``flush``."""

    def __init__(self, *, events: list[Event] | None = None) -> None:
        super().__init__()
        self.queued: list[DeadLetter] = []
        self.durable: list[DeadLetter] = []
        self.events: list[Event] = [] if events is None else events

    @property
    def sent(self) -> list[DeadLetter]:
        return [*self.durable, *self.queued]

    def send(
        self, message: FakeMessage, reason: str, detail: str, payload: bytes | None = None
    ) -> None:
        self.events.append(("dead_letter", message.offset(), reason))
        self.queued.append(DeadLetter(message, reason, detail, payload))

    def flush(self) -> None:
        self.check("flush")
        self.events.append(("flush_dead_letters",))
        self.durable.extend(self.queued)
        self.queued.clear()


@dataclass
class FakeCatalog:
    """A ``SchemaCatalog`` knowing exactly the given (view, fingerprint) pairs."""

    known: set[tuple[str, str]] = field(default_factory=lambda: {(VIEW, FINGERPRINT)})

    def is_known(self, feature_view: str, fingerprint: str) -> bool:
        return (feature_view, fingerprint) in self.known
