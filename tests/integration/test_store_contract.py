"""One contract, two stores: the in-memory FakeStore and RegionStore on a region's real Redis.

Every test body runs against both. What a user can observe is compared: the outcome counts,
the bytes of Feast's hashes, TTLs, and what a refused batch leaves behind (nothing). The real
store runs as the region's writer user, on keys and views unique to the test, removed after.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

import msgpack
import pytest
from unit.fakes import (  # tests/ is on sys.path
    FakeStore,
    encoded,
    feast_hash,
    make_batch,
    make_row,
    newest_hashes,
    random_writes,
    shuffled_deliveries,
)

from replicator.adapters.redis_store import RegionStore, connect
from replicator.config import Topology
from replicator.core import wire
from replicator.core.keys import NAMESPACE, row_versions_key
from replicator.core.records import (
    ApplyOutcome,
    DeleteView,
    EncodedBatch,
    Heartbeat,
    Row,
    RowBatch,
)
from replicator.errors import MalformedRecord

PARTITIONS = 6


@dataclass
class Backend:
    """A store under test plus read-only views of what it holds, named for this test only."""

    name: str
    open_store: Callable[[int | None], Any]
    read: Callable[[bytes], dict[bytes, bytes]]
    """HGETALL of one Feast key ({} when absent)."""
    ttl: Callable[[bytes], int]
    """Redis TTL semantics: -2 no such key, -1 no expiry, else seconds left."""
    scan: Callable[[bytes], set[bytes]]
    """Feast keys matching a glob pattern."""
    versions_exist: Callable[[str, int], bool]
    overwrite: Callable[[bytes, bytes, bytes], None]
    """Change one field behind the store's back (a damaged copy)."""
    drop: Callable[[bytes], None]
    """The key vanishes (its TTL ran out)."""
    heartbeat: Callable[[str, int], dict[str, int] | None]
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    store: Any = None

    def open(self, key_ttl_seconds: int | None = None) -> Any:
        self.store = self.open_store(key_ttl_seconds)
        return self.store

    @property
    def view(self) -> str:
        return f"ct_{self.tag}"

    @property
    def project(self) -> str:
        return f"ct_{self.tag}"

    @property
    def key_prefix(self) -> bytes:
        return b"\x01\x00\x00\x00ct-" + self.tag.encode() + b"|"

    def key(self, entity: str, project: str | None = None) -> bytes:
        return self.key_prefix + entity.encode() + (project or self.project).encode()

    def footprint(self) -> tuple[dict[bytes, dict[bytes, bytes]], list[int]]:
        """Every Feast key of this test with its hash, and the partitions holding versions."""
        keys = self.scan(self.key_prefix + b"*")
        held = [p for p in range(PARTITIONS) if self.versions_exist(self.view, p)]
        return {k: self.read(k) for k in sorted(keys)}, held


def fake_backend() -> Iterator[Backend]:
    holder: list[FakeStore] = []

    def open_store(ttl: int | None) -> FakeStore:
        holder.append(FakeStore(key_ttl_seconds=ttl))
        return holder[-1]

    def store() -> FakeStore:
        return holder[-1]

    def overwrite(key: bytes, name: bytes, value: bytes) -> None:
        store().hashes[key][name] = value

    yield Backend(
        name="fake",
        open_store=open_store,
        read=lambda key: dict(store().hashes.get(key, {})),
        ttl=lambda key: store().ttls.get(key, -1) if key in store().hashes else -2,
        scan=lambda pattern: {k for k in store().hashes if fnmatchcase(k, pattern)},
        versions_exist=lambda view, p: bool(store().versions.get((view, p))),
        overwrite=overwrite,
        drop=lambda key: store().expire(key),
        heartbeat=lambda topic, p: store().heartbeats.get((topic, p)),
    )


def redis_backend(topology: Topology) -> Iterator[Backend]:
    endpoint = topology.region(topology.replica_regions[-1]).redis
    admin = connect(endpoint, endpoint.admin, timeout=5)
    stores: list[RegionStore] = []

    def open_store(ttl: int | None) -> RegionStore:
        stores.append(RegionStore(endpoint, endpoint.writer, key_ttl_seconds=ttl))
        return stores[-1]

    def heartbeat(topic: str, partition: int) -> dict[str, int] | None:
        raw = admin.hgetall(NAMESPACE + b"hb:" + topic.encode() + b":" + str(partition).encode())
        return {k.decode(): int(v) for k, v in raw.items()} or None

    backend = Backend(
        name="redis",
        open_store=open_store,
        read=lambda key: admin.hgetall(key),
        ttl=lambda key: admin.ttl(key),
        scan=lambda pattern: set(admin.scan_iter(match=pattern, count=10_000)),
        versions_exist=lambda view, p: bool(admin.exists(row_versions_key(view, p))),
        overwrite=lambda key, name, value: admin.hset(key, name, value),
        drop=lambda key: admin.delete(key),
        heartbeat=heartbeat,
    )
    try:
        yield backend
    finally:
        for store in stores:
            store.close()
        leftovers = [
            *admin.scan_iter(match=backend.key_prefix + b"*", count=10_000),
            *admin.scan_iter(match=NAMESPACE + b"v:" + backend.view.encode() + b"*", count=10_000),
            *admin.scan_iter(match=NAMESPACE + b"hb:" + backend.tag.encode() + b"*"),
        ]
        if leftovers:
            admin.delete(*leftovers)
        admin.close()


@pytest.fixture(params=["fake", "redis"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "fake":
        yield from fake_backend()
    else:
        yield from redis_backend(request.getfixturevalue("topology"))


def rows_of(backend: Backend, *rows: Row, view: str | None = None) -> RowBatch:
    return make_batch(rows, view=view or backend.view)


def row(backend: Backend, entity: str, *version: int, tag: str = "") -> Row:
    key = backend.key(entity)
    return make_row(key, *version, values=(b"a" + tag.encode(), b"b" + tag.encode()))


# Last writer wins ------------------------------------------------------------------------
def test_last_writer_wins_by_event_then_created_then_log_position(backend: Backend) -> None:
    store = backend.open()
    key = backend.key("e1")
    steps: list[tuple[str, Row, int, ApplyOutcome]] = [
        ("first write", row(backend, "e1", 100, 0), 50, ApplyOutcome(1, 0)),
        ("older event, later in the log", row(backend, "e1", 99, 999), 90, ApplyOutcome(0, 1)),
        ("same event, later created", row(backend, "e1", 100, 0, 1), 10, ApplyOutcome(1, 0)),
        (
            "same event+created, earlier",
            row(backend, "e1", 100, 0, 1, tag="x"),
            9,
            ApplyOutcome(0, 1),
        ),
        (
            "exact tie, later offset",
            row(backend, "e1", 100, 0, 1, tag="fix"),
            11,
            ApplyOutcome(1, 0),
        ),
        ("later event nanos", row(backend, "e1", 100, 1, 0, 5), 5, ApplyOutcome(1, 0)),
        (
            "older created nanos, later offset",
            row(backend, "e1", 100, 1, 0, 4, tag="old"),
            60,
            ApplyOutcome(0, 1),
        ),
    ]
    expected: dict[bytes, bytes] = {}
    for what, r, offset, outcome in steps:
        batch = rows_of(backend, r)
        assert store.apply([encoded(batch, offset=offset)]) == [outcome], what
        if outcome.applied:
            expected = feast_hash(batch, r)
        assert backend.read(key) == expected, what


def test_redelivered_record_reapplies_the_same_bytes_and_repairs_a_damaged_copy(
    backend: Backend,
) -> None:
    store = backend.open()
    batch = rows_of(backend, row(backend, "e1", 100, 5), row(backend, "e2", 100, 5))
    record = encoded(batch, offset=7)
    assert store.apply([record]) == [ApplyOutcome(2, 0)]
    first = backend.footprint()

    assert store.apply([record]) == [ApplyOutcome(2, 0)]  # equal version: applied again
    assert backend.footprint() == first

    backend.overwrite(backend.key("e1"), batch.fields[0], b"damaged")
    store.apply([record])
    assert backend.footprint() == first


def test_older_write_is_skipped_whatever_its_log_position(backend: Backend) -> None:
    store = backend.open()
    newer = rows_of(backend, row(backend, "e1", 200, 0))
    older = rows_of(backend, row(backend, "e1", 100, 0))  # e.g. a backfill, published later
    assert store.apply([encoded(newer, offset=1), encoded(older, offset=2)]) == [
        ApplyOutcome(1, 0),
        ApplyOutcome(0, 1),
    ]
    assert backend.read(backend.key("e1")) == feast_hash(newer, newer.rows[0])


def test_duplicates_of_one_key_within_a_batch(backend: Backend) -> None:
    store = backend.open()
    rows = [
        row(backend, "e1", 5, 0, tag="0"),
        row(backend, "e1", 7, 0, tag="1"),
        row(backend, "e1", 6, 0, tag="2"),  # older than the row before it: skipped
        row(backend, "e1", 7, 0, tag="3"),  # exact tie, later in the batch: wins
        row(backend, "e2", 1, 0, tag="4"),
    ]
    batch = rows_of(backend, *rows)
    assert store.apply([encoded(batch, offset=3)]) == [ApplyOutcome(4, 1)]
    assert backend.read(backend.key("e1")) == feast_hash(batch, rows[3])
    assert backend.read(backend.key("e2")) == feast_hash(batch, rows[4])
    # Delivered again: only the stored writes re-apply (equal versions); the bytes stay.
    assert store.apply([encoded(batch, offset=3)]) == [ApplyOutcome(2, 3)]
    assert backend.read(backend.key("e1")) == feast_hash(batch, rows[3])


@pytest.mark.parametrize("backend", ["redis"], indirect=True)
def test_a_redis_without_the_script_applies_on_the_first_call(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Redis restarted (or SCRIPT FLUSHed) holds no script: the first apply loads it and
    applies, in the same call. Simulated without flushing the shared Redis: a script text of
    this test's own, so its SHA is one Redis has never seen."""
    from replicator.adapters import redis_store

    monkeypatch.setattr(redis_store, "_APPLY_LUA", redis_store._APPLY_LUA + f"\n-- {uuid.uuid4()}")
    store = backend.open()
    batch = rows_of(backend, row(backend, "e1", 100, 0), row(backend, "e2", 100, 0))
    assert store.apply([encoded(batch, offset=1)]) == [ApplyOutcome(2, 0)]
    assert backend.read(backend.key("e1")) == feast_hash(batch, batch.rows[0])


def test_a_later_batch_of_one_call_sees_the_earlier_one(backend: Backend) -> None:
    store = backend.open()
    first = rows_of(backend, row(backend, "e1", 10, 0, tag="first"))
    second = rows_of(backend, row(backend, "e1", 10, 0, tag="second"))
    assert store.apply([encoded(first, offset=4), encoded(second, offset=5)]) == [
        ApplyOutcome(1, 0),
        ApplyOutcome(1, 0),
    ]
    assert backend.read(backend.key("e1")) == feast_hash(second, second.rows[0])
    assert store.apply([encoded(first, offset=4)]) == [ApplyOutcome(0, 1)]


def test_any_delivery_order_ends_with_the_newest_write_per_key(backend: Backend) -> None:
    """Property: shuffled, duplicated, regrouped deliveries converge to max(version)'s bytes
    (ties on every part of the version, pre-1970 seconds included)."""
    rng = random.Random(20240611)
    store = backend.open()
    for trial in range(60):
        view = f"{backend.view}_{trial}"  # a fresh version hash per trial
        records = random_writes(rng, lambda i, t=trial: backend.key(f"p{t}-{i}"))
        for group in shuffled_deliveries(rng, records, view=view):
            store.apply(group)
        expected = newest_hashes(records, view=view)
        assert {k: backend.read(k) for k in expected} == expected, f"trial {trial}: {records}"
        assert backend.scan(backend.key_prefix + b"p%d-*" % trial) == set(expected)


def test_rows_keep_the_indexes_their_batch_names(backend: Backend) -> None:
    store = backend.open()
    first = rows_of(backend, row(backend, "e1", 10, 0, tag="index-7"))
    second = rows_of(backend, row(backend, "e1", 10, 0, tag="index-3"))
    record = EncodedBatch(wire.encode_rows(first)[1], backend.view, 0, 5, None, (7,))
    assert store.apply([record]) == [ApplyOutcome(1, 0)]
    # Same offset, lower index: an earlier row of the same record, whatever the order.
    record = EncodedBatch(wire.encode_rows(second)[1], backend.view, 0, 5, None, (3,))
    assert store.apply([record]) == [ApplyOutcome(0, 1)]
    assert backend.read(backend.key("e1")) == feast_hash(first, first.rows[0])

    wrong = EncodedBatch(wire.encode_rows(second)[1], backend.view, 0, 5, None, (3, 4))
    [outcome] = store.apply([wrong])
    assert isinstance(outcome, MalformedRecord)


# Wide rows -------------------------------------------------------------------------------
@pytest.mark.parametrize("width", [5_000, 20_000])
def test_a_wide_row_applies_whole_and_its_view_deletes_whole(backend: Backend, width: int) -> None:
    store = backend.open()
    fields = tuple(b"f%07d" % i for i in range(width))
    rows = [make_row(backend.key(e), 10, width=width) for e in ("e1", "e2")]
    batch = make_batch(rows, view=backend.view, fields=fields)
    assert store.apply([encoded(batch, offset=1)]) == [ApplyOutcome(2, 0)]
    for r in rows:
        assert backend.read(r.key) == feast_hash(batch, r)

    kept_row = make_row(backend.key("e1"), 10, width=1)
    kept = make_batch([kept_row], view=backend.view + "_kept", fields=(b"\x09\x00\x00\x00",))
    store.apply([encoded(kept, offset=2)])
    delete = DeleteView(backend.view, fields, backend.key_prefix, backend.project)
    partitions = {wire.partition_for(r.key, PARTITIONS) for r in rows}
    assert sum(store.delete_view(delete, p, PARTITIONS, offset=3) for p in partitions) == 2
    assert backend.read(backend.key("e1")) == feast_hash(kept, kept.rows[0])
    assert backend.read(backend.key("e2")) == {}


# Refused batches -------------------------------------------------------------------------
def _payload(backend: Backend, rows: list[list[object]], **kw: Any) -> bytes:
    fields = kw.get("fields", [b"\x01\x00\x00\x00", b"\x02\x00\x00\x00"])
    body = [1, kw.get("view", backend.view).encode(), fields, rows, *kw.get("extra", [])]
    return msgpack.packb(body, use_bin_type=kw.get("bin", False))


def _good(backend: Backend, entity: str) -> list[object]:
    return [backend.key(entity), b"ts", 10, 0, 0, 0, b"a", b"b"]


MALFORMED: dict[str, Callable[[Backend], bytes]] = {
    "not msgpack": lambda b: b"\xc1\x00",
    "not a wire v1 array": lambda b: msgpack.packb([2, b.view.encode(), [], []]),
    "bin-typed strings": lambda b: _payload(b, [_good(b, "e1")], bin=True),
    "second row too short": lambda b: _payload(b, [_good(b, "e1"), _good(b, "e2")[:-1]]),
    "second row too long": lambda b: _payload(b, [_good(b, "e1"), [*_good(b, "e2"), b"c"]]),
    "boolean timestamp": lambda b: _payload(b, [[*_good(b, "e1")[:2], True, 0, 0, 0, b"a", b"b"]]),
    "last value not bytes": lambda b: _payload(b, [_good(b, "e1"), [*_good(b, "e2")[:-1], 5]]),
    "timestamp not a number": lambda b: _payload(
        b, [[*_good(b, "e1")[:2], b"10", 0, 0, 0, b"a", b"b"]]
    ),
    "field key not bytes": lambda b: _payload(b, [_good(b, "e1")], fields=[1, 2]),
}
MORE_MALFORMED = {
    "timestamp a float": lambda b: _payload(b, [[*_good(b, "e1")[:2], 10.5, 0, 0, 0, b"a", b"b"]]),
    "trailing item after rows": lambda b: _payload(b, [_good(b, "e1")], extra=[b"x"]),
}


@pytest.mark.parametrize("case", [*MALFORMED, *MORE_MALFORMED])
def test_malformed_batch_is_refused_and_writes_nothing(backend: Backend, case: str) -> None:
    store = backend.open()
    payload = {**MALFORMED, **MORE_MALFORMED}[case](backend)
    before = backend.footprint()

    [outcome] = store.apply([EncodedBatch(payload, backend.view, 0, 1)])

    assert isinstance(outcome, MalformedRecord)
    assert str(outcome)  # says what is wrong, for the dead-letter record
    assert backend.footprint() == before == ({}, [])


def test_one_malformed_batch_does_not_stop_the_others(backend: Backend) -> None:
    store = backend.open()
    good1 = rows_of(backend, row(backend, "e1", 1, 0))
    good2 = rows_of(backend, row(backend, "e2", 1, 0))
    bad = EncodedBatch(b"\xc1", backend.view, 0, 2)
    outcomes = store.apply([encoded(good1, offset=1), bad, encoded(good2, offset=3)])
    assert outcomes[0] == outcomes[2] == ApplyOutcome(1, 0)
    assert isinstance(outcomes[1], MalformedRecord)
    assert set(backend.footprint()[0]) == {backend.key("e1"), backend.key("e2")}


def test_payload_view_must_match_the_header_view(backend: Backend) -> None:
    store = backend.open()
    batch = rows_of(backend, row(backend, "e1", 1, 0))
    _, payload = wire.encode_rows(batch)
    # Routed and schema-checked as another view: the payload cannot be trusted.
    [outcome] = store.apply([EncodedBatch(payload, backend.view + "_other", 0, 1)])
    assert isinstance(outcome, MalformedRecord)
    assert backend.footprint() == ({}, [])
    assert backend.scan(backend.key_prefix + b"*") == set()


# Feast's key_ttl_seconds -----------------------------------------------------------------
def test_key_ttl_seconds_expires_the_feast_key_after_a_write(backend: Backend) -> None:
    store = backend.open(key_ttl_seconds=3600)
    batch = rows_of(backend, row(backend, "e1", 10, 0))
    store.apply([encoded(batch, offset=1)])
    assert 3500 < backend.ttl(backend.key("e1")) <= 3600


def test_without_key_ttl_the_feast_key_never_expires(backend: Backend) -> None:
    store = backend.open()
    store.apply([encoded(rows_of(backend, row(backend, "e1", 10, 0)), offset=1)])
    assert backend.ttl(backend.key("e1")) == -1


def test_an_expired_key_forgets_its_version_as_feast_would(backend: Backend) -> None:
    store = backend.open(key_ttl_seconds=3600)
    store.apply([encoded(rows_of(backend, row(backend, "e1", 10, 0)), offset=1)])
    backend.drop(backend.key("e1"))
    older = rows_of(backend, row(backend, "e1", 5, 0))
    assert store.apply([encoded(older, offset=2)]) == [ApplyOutcome(1, 0)]
    assert backend.read(backend.key("e1")) == feast_hash(older, older.rows[0])


# delete_view -----------------------------------------------------------------------------
def _entity(backend: Backend, name: str, partition: int, *, inside: bool = True) -> str:
    """``name`` with a suffix that puts its Feast key in (or outside) ``partition``."""
    for i in range(10_000):
        entity = f"{name}{i}"
        if (wire.partition_for(backend.key(entity), PARTITIONS) == partition) == inside:
            return entity
    raise AssertionError("no such entity")


def test_delete_view_removes_one_view_from_one_partition(backend: Backend) -> None:
    store = backend.open()
    target, gone_view, kept_view = 2, backend.view, backend.view + "_kept"
    kept_fields = (b"\x09\x00\x00\x00",)
    only_mine = _entity(backend, "only-mine", target)
    shared = _entity(backend, "shared", target)
    only_kept = _entity(backend, "only-kept", target)
    elsewhere = _entity(backend, "elsewhere", target, inside=False)
    foreign = backend.key(only_mine, backend.project + "_other")  # same entity, other project

    mine = make_batch(
        [make_row(backend.key(e), 10) for e in (only_mine, shared, elsewhere)]
        + [make_row(foreign, 10)],
        view=gone_view,
    )
    kept = make_batch(
        [make_row(backend.key(e), 10, width=1) for e in (shared, only_kept)],
        view=kept_view,
        fields=kept_fields,
    )
    store.apply(
        [encoded(mine, offset=1, partition=target), encoded(kept, offset=2, partition=target)]
    )
    before, _ = backend.footprint()

    delete = DeleteView(gone_view, mine.fields, backend.key_prefix, backend.project)
    touched = store.delete_view(delete, target, PARTITIONS, offset=3)  # after both batches

    after, _ = backend.footprint()
    assert touched == 2
    assert backend.key(only_mine) not in after  # its only view left: the key is gone
    assert after[backend.key(shared)] == feast_hash(kept, kept.rows[0])  # only the kept view
    assert after[backend.key(only_kept)] == before[backend.key(only_kept)]
    assert after[backend.key(elsewhere)] == before[backend.key(elsewhere)]  # other partition
    assert after[foreign] == before[foreign]  # other project
    # The deleted keys' versions are forgotten: a re-created view starts afresh.
    older = make_batch([make_row(backend.key(only_mine), 1)], view=gone_view)
    assert store.apply([encoded(older, offset=0, partition=target)]) == [ApplyOutcome(1, 0)]


# Heartbeats ------------------------------------------------------------------------------
def test_heartbeat_is_readable_with_the_primary_clock(backend: Backend) -> None:
    store = backend.open()
    topic = f"{backend.tag}.topic"
    store.record_heartbeat(topic, 3, Heartbeat(sequence=8, emitted_ns=1_000), applied_ns=5_000)
    assert backend.heartbeat(topic, 3) == {"sequence": 8, "emitted_ns": 1_000, "applied_ns": 5_000}


def test_older_heartbeat_delivered_late_keeps_the_newest(backend: Backend) -> None:
    store = backend.open()
    topic = f"{backend.tag}.topic"
    store.record_heartbeat(topic, 0, Heartbeat(sequence=9, emitted_ns=9_000), applied_ns=9_500)
    store.record_heartbeat(topic, 0, Heartbeat(sequence=2, emitted_ns=2_000), applied_ns=9_900)
    assert backend.heartbeat(topic, 0) == {"sequence": 9, "emitted_ns": 9_000, "applied_ns": 9_500}
