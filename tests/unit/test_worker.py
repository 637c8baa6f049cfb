"""The worker with in-memory ports: what is applied, dead-lettered and committed, and when."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import msgpack
import pytest
from fakes import (
    FINGERPRINT,
    TOPIC,
    VIEW,
    Event,
    FakeCatalog,
    FakeClock,
    FakeDeadLetters,
    FakeMessage,
    FakeSource,
    FakeStore,
    delete_message,
    feast_hash,
    heartbeat_message,
    make_batch,
    make_row,
    rows_message,
    with_header,
)

from replicator.core import wire
from replicator.core.records import DeleteView, Heartbeat, Row, RowBatch
from replicator.errors import RejectedByStore, RepeatedFailure, TransientError
from replicator.worker import Worker, WorkerOptions

NOW_S = 1_700_000_000
NOW_NS = NOW_S * 1_000_000_000
SKEW_S = 300
PROJECT = "test_project"
KEY_PREFIX = b"\x01\x00\x00\x00driver_id"


def feast_key(entity: bytes) -> bytes:
    return KEY_PREFIX + b"|" + entity + PROJECT.encode()


@dataclass
class Rig:
    worker: Worker
    source: FakeSource
    store: FakeStore
    dead_letters: FakeDeadLetters
    monotonic: FakeClock
    events: list[Event] = field(default_factory=list)

    def step(self) -> None:
        self.worker.step()


def rig(
    messages: list[FakeMessage],
    *,
    catalog: FakeCatalog | None = None,
    publish_stats: bool = False,
    schema_wait_seconds: float = 0.0,
) -> Rig:
    events: list[Event] = []
    source = FakeSource(messages, events=events)
    store = FakeStore(events=events)
    dead_letters = FakeDeadLetters(events=events)
    monotonic = FakeClock()
    worker = Worker(
        "eu-west-1",
        source=source,
        store=store,
        dead_letters=dead_letters,
        catalog=catalog or FakeCatalog(),
        options=WorkerOptions(
            partitions=1,
            max_future_skew_seconds=SKEW_S,
            max_backoff_seconds=0.001,  # retries wait 0.1 s once, then 1 ms
            publish_stats=publish_stats,
            stats_interval_seconds=3600,  # once at the first step, then when the run ends
            schema_wait_seconds=schema_wait_seconds,
        ),
        clock=lambda: NOW_NS,
        monotonic=monotonic,
    )
    return Rig(worker, source, store, dead_letters, monotonic, events)


def one_row(entity: bytes, event_s: int = NOW_S - 60, view: str = VIEW) -> tuple[RowBatch, Row]:
    row = make_row(feast_key(entity), event_s)
    return make_batch([row], view=view), row


def rows_msg(
    entity: bytes,
    offset: int,
    *,
    partition: int = 0,
    topic: str = TOPIC,
    event_s: int = NOW_S - 60,
    view: str = VIEW,
) -> FakeMessage:
    batch, _ = one_row(entity, event_s, view)
    return rows_message(batch, offset, partition=partition, topic=topic)


def stored(store: FakeStore, entity: bytes) -> dict[bytes, bytes] | None:
    return store.hashes.get(feast_key(entity))


def expected_hash(entity: bytes, event_s: int = NOW_S - 60) -> dict[bytes, bytes]:
    return feast_hash(*one_row(entity, event_s))


def kinds(events: list[Event]) -> list[object]:
    return [event[0] for event in events]


# Offsets ---------------------------------------------------------------------------------
def test_commits_the_next_offset_of_every_partition_after_applying() -> None:
    other = "feast.test_project.other_view"
    r = rig(
        [
            rows_msg(b"a", 10, partition=0),
            rows_msg(b"b", 4, partition=1),
            rows_msg(b"c", 11, partition=0),
            rows_msg(b"d", 99, topic=other),
        ]
    )
    r.step()
    assert r.source.commits == [{(TOPIC, 0): 12, (TOPIC, 1): 5, (other, 0): 100}]
    for entity in (b"a", b"b", b"c", b"d"):
        assert stored(r.store, entity) == expected_hash(entity)
    assert kinds(r.events) == ["apply", "flush_dead_letters", "commit"]


def test_no_commit_until_the_store_acknowledges() -> None:
    r = rig([rows_msg(b"a", 0), rows_msg(b"b", 1)])
    commits_seen_while_failing: list[int] = []
    r.store.on_failure = lambda _: commits_seen_while_failing.append(len(r.source.commits))
    r.store.fail("apply", TransientError("redis down"), times=3)

    r.step()

    assert commits_seen_while_failing == [0, 0, 0]
    assert r.store.calls["apply"] == 4
    assert r.source.commits == [{(TOPIC, 0): 2}]
    assert stored(r.store, b"a") == expected_hash(b"a")
    assert stored(r.store, b"b") == expected_hash(b"b")


def test_stop_while_retrying_commits_nothing_and_closes() -> None:
    r = rig([rows_msg(b"a", 0), heartbeat_message(Heartbeat(1, NOW_NS), 1)])
    r.store.fail("apply", TransientError("redis down"), times=1_000)
    r.store.on_failure = lambda _: r.worker.stop()
    r.source.on_drained = r.worker.stop  # ends the run even if the retry loop did not

    r.worker.run()  # returns instead of retrying forever

    assert r.source.commits == []
    assert r.source.closed
    assert r.store.hashes == {}
    assert r.store.heartbeats == {}  # a heartbeat must not claim rows that were not applied


def test_commit_waits_for_dead_letters_to_be_durable() -> None:
    r = rig([FakeMessage(TOPIC, 0, 0, b"", None), rows_msg(b"a", 1)])
    flushes_failed_with_commits: list[int] = []
    r.dead_letters.on_failure = lambda _: flushes_failed_with_commits.append(len(r.source.commits))
    r.dead_letters.fail("flush", TransientError("broker down"), times=2)

    r.step()

    assert flushes_failed_with_commits == [0, 0]
    assert [(d.offset, d.reason) for d in r.dead_letters.durable] == [(0, "malformed")]
    assert kinds(r.events) == ["dead_letter", "apply", "flush_dead_letters", "commit"]
    assert r.source.commits == [{(TOPIC, 0): 2}]


def test_stop_while_dead_letters_cannot_be_flushed_commits_nothing() -> None:
    r = rig([FakeMessage(TOPIC, 0, 0, b"", None), rows_msg(b"a", 1)])
    r.dead_letters.fail("flush", TransientError("broker down"), times=1_000)
    r.dead_letters.on_failure = lambda _: r.worker.stop()
    r.source.on_drained = r.worker.stop

    r.worker.run()

    assert r.source.commits == []


def test_a_failed_commit_is_retried_without_applying_twice() -> None:
    r = rig([rows_msg(b"a", 0)])
    r.source.fail("commit", TransientError("coordinator moved"), times=2)
    r.step()
    assert r.source.commits == [{(TOPIC, 0): 1}]
    assert r.store.calls["apply"] == 1


# Bad input -------------------------------------------------------------------------------
ROWS_HEADERS, ROWS_PAYLOAD = wire.encode_rows(one_row(b"bad")[0])


def bad(headers: wire.Headers | None, value: bytes | None) -> FakeMessage:
    return FakeMessage(TOPIC, 0, 1, value, headers)


BAD_RECORDS = [
    pytest.param(bad(None, ROWS_PAYLOAD), "malformed", id="no headers"),
    pytest.param(
        bad(with_header(ROWS_HEADERS, wire.H_WIRE, b"2"), ROWS_PAYLOAD), "malformed", id="v2"
    ),
    pytest.param(
        bad(with_header(ROWS_HEADERS, wire.H_KIND, b"x"), ROWS_PAYLOAD), "malformed", id="kind"
    ),
    pytest.param(
        bad(with_header(ROWS_HEADERS, wire.H_FINGERPRINT, b"fp-unknown"), ROWS_PAYLOAD),
        "unknown_schema",
        id="unknown fingerprint",
    ),
    pytest.param(
        rows_msg(b"bad", 1, view="unknown_view"),
        "unknown_schema",
        id="unknown view",
    ),
    pytest.param(
        rows_msg(b"bad", 1, event_s=NOW_S + SKEW_S + 1), "future_event_time", id="far future"
    ),
    pytest.param(bad(ROWS_HEADERS, b"\xc1 not msgpack"), "malformed", id="payload not msgpack"),
    pytest.param(
        bad(ROWS_HEADERS, msgpack.packb([1, b"other", [], []], use_bin_type=False)),
        "malformed",
        id="payload view differs from header",
    ),
    pytest.param(
        bad(wire.encode_delete_view(DeleteView(VIEW, (), b"p", "p"))[0], b"\xc1"),
        "malformed",
        id="delete_view not msgpack",
    ),
    pytest.param(
        bad(wire.encode_heartbeat(Heartbeat(1, 1))[0], msgpack.packb([1])),
        "malformed",
        id="heartbeat wrong shape",
    ),
]


@pytest.mark.parametrize(("record", "reason"), BAD_RECORDS)
def test_bad_record_is_dead_lettered_and_the_rest_of_the_poll_applied(
    record: FakeMessage, reason: str
) -> None:
    r = rig([rows_msg(b"before", 0), record, rows_msg(b"after", 2)])

    r.step()

    assert [(d.offset, d.reason) for d in r.dead_letters.durable] == [(1, reason)]
    assert r.dead_letters.durable[0].detail  # says what is wrong
    assert stored(r.store, b"before") == expected_hash(b"before")
    assert stored(r.store, b"after") == expected_hash(b"after")
    assert stored(r.store, b"bad") is None
    assert r.source.commits == [{(TOPIC, 0): 3}]  # the partition moves past it
    assert r.worker.stats.dead_letters == 1


def test_every_kind_of_bad_record_in_one_poll() -> None:
    records = [rows_msg(b"first", 0)]
    for offset, param in enumerate(BAD_RECORDS, start=1):
        message = param.values[0]
        records.append(FakeMessage(message.topic_, 0, offset, message.value_, message.headers_))
    records.append(rows_msg(b"last", len(records)))
    r = rig(records)

    r.step()

    assert [(d.offset, d.reason) for d in r.dead_letters.durable] == [
        (i, p.values[1]) for i, p in enumerate(BAD_RECORDS, start=1)
    ]
    assert set(r.store.hashes) == {feast_key(b"first"), feast_key(b"last")}
    assert r.source.commits == [{(TOPIC, 0): len(records)}]


def test_only_the_future_rows_of_a_batch_are_dead_lettered() -> None:
    limit = NOW_S + SKEW_S
    rows = [
        make_row(feast_key(b"past"), NOW_S - 10),
        make_row(feast_key(b"future"), limit + 1),
        make_row(feast_key(b"at-limit"), limit),
        make_row(feast_key(b"far-future"), limit + 10**6),
        make_row(feast_key(b"now"), NOW_S),
    ]
    batch = make_batch(rows, published_ns=NOW_NS)
    r = rig([rows_message(batch, 5)])

    r.step()

    assert set(r.store.hashes) == {feast_key(b"past"), feast_key(b"at-limit"), feast_key(b"now")}
    for row in (rows[0], rows[2], rows[4]):
        assert r.store.hashes[row.key] == feast_hash(batch, row)
    [letter] = r.dead_letters.durable
    assert (letter.offset, letter.reason) == (5, "future_event_time")
    dead = wire.decode_rows(wire.read_header(letter.message.headers()), letter.value or b"")
    assert dead.rows == (rows[1], rows[3])  # exactly the refused rows, nothing applied twice
    assert r.source.commits == [{(TOPIC, 0): 6}]


def test_a_batch_entirely_in_the_future_applies_nothing() -> None:
    r = rig([rows_msg(b"future", 0, event_s=NOW_S + SKEW_S + 1)])
    r.step()
    assert r.store.hashes == {}
    assert [d.reason for d in r.dead_letters.durable] == ["future_event_time"]
    assert r.source.commits == [{(TOPIC, 0): 1}]


def test_rows_the_primary_accepted_ahead_are_applied_whatever_the_workers_skew() -> None:
    # future_event_time: apply at the primary; the record says how far ahead it accepted.
    ahead = make_row(feast_key(b"ahead"), NOW_S + 9 * 3600)
    batch = replace(make_batch([ahead], published_ns=NOW_NS), accepted_lead_s=9 * 3600)
    r = rig([rows_message(batch, 0)])
    r.step()
    assert r.store.hashes[ahead.key] == feast_hash(batch, ahead)
    assert r.dead_letters.durable == []


# Order inside a poll ---------------------------------------------------------------------
def test_delete_view_applies_after_the_rows_before_it() -> None:
    delete = DeleteView(VIEW, make_batch([]).fields, KEY_PREFIX, PROJECT)
    r = rig([rows_msg(b"old", 0), delete_message(delete, 1), rows_msg(b"new", 2)])

    r.step()

    assert stored(r.store, b"old") is None  # written, then removed with its view
    assert stored(r.store, b"new") == expected_hash(b"new")  # the view came back afterwards
    assert r.events[:3] == [("apply", (0,)), ("delete_view", VIEW, 0), ("apply", (2,))]
    assert r.worker.stats.views_deleted == 1


def test_delete_view_keeps_other_views_of_a_shared_key() -> None:
    other_fields = (b"\x09\x00\x00\x00",)
    shared = make_row(feast_key(b"e"), NOW_S - 5, width=1)
    other = make_batch([shared], view="other_view", fields=other_fields)
    mine = make_batch([make_row(feast_key(b"e"), NOW_S - 5)])
    catalog = FakeCatalog({(VIEW, FINGERPRINT), ("other_view", FINGERPRINT)})
    r = rig([rows_message(other, 0), rows_message(mine, 1)], catalog=catalog)
    r.step()
    assert r.store.hashes == {
        feast_key(b"e"): {**feast_hash(other, shared), **feast_hash(mine, mine.rows[0])}
    }
    r.source.add(delete_message(DeleteView(VIEW, mine.fields, KEY_PREFIX, PROJECT), 2))
    r.step()
    assert r.store.hashes == {feast_key(b"e"): feast_hash(other, shared)}


def test_heartbeat_is_recorded_after_the_rows_before_it() -> None:
    heartbeat = Heartbeat(sequence=3, emitted_ns=NOW_NS - 5_000_000)
    r = rig([rows_msg(b"a", 0), heartbeat_message(heartbeat, 1), rows_msg(b"b", 2)])

    r.step()

    assert kinds(r.events).index("apply") < kinds(r.events).index("heartbeat")
    assert r.store.heartbeats == {
        (TOPIC, 0): {"sequence": 3, "emitted_ns": heartbeat.emitted_ns, "applied_ns": NOW_NS}
    }
    assert kinds(r.events)[-2:] == ["flush_dead_letters", "commit"]


def test_dead_letters_are_flushed_before_the_commit() -> None:
    r = rig([rows_msg(b"a", 0), bad(None, b""), rows_msg(b"b", 2)])
    r.step()
    assert kinds(r.events) == ["dead_letter", "apply", "flush_dead_letters", "commit"]


def test_a_store_that_refuses_one_batch_keeps_the_others() -> None:
    good_before, good_after = rows_msg(b"a", 0), rows_msg(b"b", 2)
    r = rig([good_before, bad(ROWS_HEADERS, b"\x93\x01\x02\x03"), good_after])
    r.step()
    assert r.events[0] == ("apply", (0, 1, 2))  # one round trip for the whole poll
    assert stored(r.store, b"a") and stored(r.store, b"b")
    assert r.worker.stats.batches_applied == 2
    assert r.worker.stats.rows_applied == 2


def test_run_publishes_counters_and_closes_the_source() -> None:
    r = rig([rows_msg(b"a", 0), rows_msg(b"a", 1)], publish_stats=True)
    r.source.max_per_poll = 1
    r.source.on_drained = r.worker.stop
    stats = r.worker.run()
    assert r.source.closed
    assert r.store.stats["eu-west-1"]["rows_applied"] == stats.rows_applied == 2
    assert r.source.committed == {(TOPIC, 0): 2}


# Waiting for the registry -----------------------------------------------------------------
NEW_VIEW = "new_view"


def test_rows_of_a_schema_not_yet_in_the_registry_wait_for_it() -> None:
    r = rig(
        [
            rows_msg(b"a", 0),
            rows_msg(b"new", 1, view=NEW_VIEW),
            rows_msg(b"b", 2),
            rows_msg(b"other-partition", 0, partition=1),
        ],
        schema_wait_seconds=60,
    )

    r.step()

    assert set(r.store.hashes) == {feast_key(b"a"), feast_key(b"other-partition")}
    assert r.source.commits == [{(TOPIC, 0): 1, (TOPIC, 1): 1}]  # not past the waiting row
    assert r.source.is_paused(TOPIC, 0)
    r.step()  # still unknown: the partition keeps waiting, nothing is dropped
    assert r.dead_letters.sent == []
    assert r.source.committed[(TOPIC, 0)] == 1

    r.worker.catalog.known.add((NEW_VIEW, FINGERPRINT))  # type: ignore[attr-defined]
    r.step()

    assert set(r.store.hashes) == {feast_key(e) for e in (b"a", b"new", b"b", b"other-partition")}
    assert r.dead_letters.sent == []
    assert r.source.committed == {(TOPIC, 0): 3, (TOPIC, 1): 1}


def test_rows_whose_schema_never_arrives_go_to_dead_letters_after_the_wait() -> None:
    r = rig([rows_msg(b"new", 0, view=NEW_VIEW), rows_msg(b"b", 1)], schema_wait_seconds=60)
    r.step()
    assert r.store.hashes == {}
    r.monotonic.advance(59)
    r.step()  # not yet: still waiting
    assert r.store.hashes == {} and r.dead_letters.sent == []
    r.monotonic.advance(1)

    r.step()

    assert [(d.offset, d.reason) for d in r.dead_letters.durable] == [(0, "unknown_schema")]
    assert set(r.store.hashes) == {feast_key(b"b")}
    assert r.source.committed == {(TOPIC, 0): 2}


# Replays ---------------------------------------------------------------------------------
def test_replayed_old_delete_view_does_not_remove_newer_rows() -> None:
    delete = DeleteView(VIEW, make_batch([]).fields, KEY_PREFIX, PROJECT)
    log = [rows_msg(b"e", 0), delete_message(delete, 1), rows_msg(b"e", 2, event_s=NOW_S - 30)]
    live = rig([*log, rows_msg(b"e", 3, event_s=NOW_S - 1)])
    live.step()
    newest = dict(live.store.hashes)
    assert newest == {feast_key(b"e"): expected_hash(b"e", NOW_S - 1)}

    # rebuild: replays the log up to its end offset (3) into the same store, later
    rebuild = rig(log)
    rebuild.worker.store = live.store
    rebuild.step()

    assert live.store.hashes == newest


# Failures that a retry cannot fix --------------------------------------------------------
def test_a_record_the_store_refuses_for_good_is_dead_lettered_at_once() -> None:
    r = rig([rows_msg(b"before", 0), rows_msg(b"wedge", 1), rows_msg(b"after", 2)])
    r.store.poisoned[1] = RejectedByStore("redis refused the batch: WRONGTYPE")

    r.step()

    assert [(d.offset, d.reason) for d in r.dead_letters.durable] == [(1, "rejected_by_store")]
    assert stored(r.store, b"before") == expected_hash(b"before")
    assert stored(r.store, b"after") == expected_hash(b"after")
    assert r.source.commits == [{(TOPIC, 0): 3}]


def test_the_same_unexpected_error_every_attempt_dead_letters_its_record() -> None:
    r = rig([rows_msg(b"before", 0), rows_msg(b"wedge", 1), rows_msg(b"after", 2)])
    r.store.poisoned[1] = RuntimeError("too many results to unpack")

    r.step()

    [dead] = r.dead_letters.durable
    assert (dead.offset, dead.reason) == (1, "repeated_failure")
    assert "too many results to unpack" in dead.detail
    assert stored(r.store, b"before") == expected_hash(b"before")
    assert stored(r.store, b"after") == expected_hash(b"after")
    assert r.source.commits == [{(TOPIC, 0): 3}]  # the partition moves on


def test_an_unexpected_error_that_goes_away_is_retried_not_dead_lettered() -> None:
    r = rig([rows_msg(b"a", 0)])
    r.store.fail("apply", RuntimeError("blip"), times=WorkerOptions.max_attempts - 1)

    r.step()

    assert r.dead_letters.durable == []
    assert stored(r.store, b"a") == expected_hash(b"a")


def test_a_heartbeat_the_store_refuses_for_good_is_dead_lettered() -> None:
    r = rig([heartbeat_message(Heartbeat(1, NOW_NS), 0), rows_msg(b"a", 1)])
    r.store.fail("record_heartbeat", RejectedByStore("WRONGTYPE"))

    r.step()

    assert [(d.offset, d.reason) for d in r.dead_letters.durable] == [(0, "rejected_by_store")]
    assert r.source.commits == [{(TOPIC, 0): 2}]


def test_dead_letters_that_keep_failing_stop_the_worker_uncommitted() -> None:
    r = rig([FakeMessage(TOPIC, 0, 0, b"", None)])
    r.dead_letters.fail("flush", RuntimeError("record too large"), times=1_000)

    with pytest.raises(RepeatedFailure):
        r.step()

    assert r.source.commits == []


def test_an_idle_poll_commits_past_transaction_markers_through_the_data_loss_guard() -> None:
    """A position moved only over records never delivered (transaction markers) is
    committed after an empty poll, and like any commit it raises the applied mark first:
    a partition the guard holds (its Redis lost rows) is never committed that way."""
    from test_healing import Group, Marks

    from replicator.healing import DataLossGuard

    r = rig([rows_msg(b"a", 0)])
    r.step()
    tp = (TOPIC, 0)
    assert r.source.committed == {tp: 1}
    r.source.next_offset[tp] = 3  # the commit marker of the transaction, then an aborted one
    r.step()
    assert r.source.committed == {tp: 3}

    marks, group = Marks(), Group()
    guard = DataLossGuard("r", marks, group, policy="alert", check_seconds=0)
    r.worker.guard = guard
    group.committed[tp] = 3  # the group committed 3, the region's Redis holds no mark
    r.source.next_offset[tp] = 5
    r.step()
    assert guard.holds(tp)
    assert r.source.committed == {tp: 3}, "a held partition is not committed by an idle poll"
