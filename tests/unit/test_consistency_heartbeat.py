"""The primary's heartbeat emitter (replicator/heartbeat.py) with in-memory ports."""

from __future__ import annotations

import pytest

from replicator.core import wire
from replicator.core.records import Kind
from replicator.errors import PublishError
from replicator.heartbeat import HeartbeatEmitter, Round, applied_key, emission_key


class Lister:
    def __init__(self, *listings: dict[str, int]) -> None:
        self.listings = list(listings)
        self.calls = 0

    def partitions(self) -> dict[str, int]:
        self.calls += 1
        return self.listings[min(self.calls, len(self.listings)) - 1]


class Producer:
    def __init__(self, events: list[tuple[str, ...]], fail_flush: bool = False) -> None:
        self.sent: list[tuple[str, int, bytes, list[tuple[str, bytes]]]] = []
        self.events = events
        self.fail_flush = fail_flush

    def send(
        self, topic: str, partition: int, payload: bytes, headers: list[tuple[str, bytes]]
    ) -> None:
        self.sent.append((topic, partition, payload, headers))
        self.events.append(("send", topic, str(partition)))

    def flush(self, timeout: float = 30.0) -> None:
        if self.fail_flush:
            raise PublishError("not acknowledged")
        self.events.append(("flush",))


class Record:
    def __init__(self, events: list[tuple[str, ...]], last: int = 0) -> None:
        self.rounds: list[Round] = []
        self.events = events
        self.last = last

    def last_sequence(self) -> int:
        return self.last

    def record(self, round_: Round, interval_ns: int) -> None:
        self.rounds.append(round_)
        self.events.append(("record", str(round_.sequence)))


class Clock:
    def __init__(self) -> None:
        self.ns = 1_000_000_000_000
        self.mono = 0.0

    def time_ns(self) -> int:
        return self.ns

    def monotonic(self) -> float:
        return self.mono


def emitter(lister: Lister, producer: Producer, record: Record, clock: Clock) -> HeartbeatEmitter:
    return HeartbeatEmitter(
        topics=lister,
        producer=producer,
        record=record,
        interval_seconds=0.5,
        relist_seconds=10,
        clock=clock.time_ns,
        monotonic=clock.monotonic,
    )


def test_a_round_reaches_every_partition_of_every_topic_with_one_primary_reading() -> None:
    events: list[tuple[str, ...]] = []
    producer, record, clock = Producer(events), Record(events), Clock()
    e = emitter(Lister({"feast.p.a": 3, "feast.p.b": 2}), producer, record, clock)
    round_ = e.emit_once()
    assert round_ is not None
    assert sorted((t, p) for t, p, _, _ in producer.sent) == [
        ("feast.p.a", 0),
        ("feast.p.a", 1),
        ("feast.p.a", 2),
        ("feast.p.b", 0),
        ("feast.p.b", 1),
    ]
    for _, _, payload, headers in producer.sent:
        assert wire.read_header(headers).kind is Kind.HEARTBEAT
        beat = wire.decode_heartbeat(payload)
        assert (beat.sequence, beat.emitted_ns) == (1, clock.ns)
    assert record.rounds == [Round(1, clock.ns, {"feast.p.a": 3, "feast.p.b": 2})]


def test_the_round_is_recorded_only_after_kafka_acknowledged_it() -> None:
    events: list[tuple[str, ...]] = []
    e = emitter(Lister({"feast.p.a": 2}), Producer(events), Record(events), Clock())
    e.emit_once()
    assert [ev[0] for ev in events] == ["send", "send", "flush", "record"]


def test_an_unacknowledged_round_is_never_recorded() -> None:
    events: list[tuple[str, ...]] = []
    record = Record(events)
    e = emitter(Lister({"feast.p.a": 2}), Producer(events, fail_flush=True), record, Clock())
    with pytest.raises(PublishError):
        e.emit_once()
    assert record.rounds == []


def test_sequences_continue_after_a_restart_and_increase_by_one() -> None:
    events: list[tuple[str, ...]] = []
    record, clock = Record(events, last=41), Clock()
    e = emitter(Lister({"feast.p.a": 1}), Producer(events), record, clock)
    e.emit_once()
    clock.ns += 500_000_000
    e.emit_once()
    assert [(r.sequence, r.emitted_ns - record.rounds[0].emitted_ns) for r in record.rounds] == [
        (42, 0),
        (43, 500_000_000),
    ]


def test_topics_are_listed_again_periodically_so_new_views_get_heartbeats() -> None:
    events: list[tuple[str, ...]] = []
    lister, producer, clock = (
        Lister({"feast.p.a": 1}, {"feast.p.a": 1, "feast.p.new": 2}),
        Producer(events),
        Clock(),
    )
    e = emitter(lister, producer, Record(events), clock)
    e.emit_once()
    clock.mono += 5
    e.emit_once()
    assert {t for t, *_ in producer.sent} == {"feast.p.a"}
    clock.mono += 6
    e.emit_once()
    assert {t for t, *_ in producer.sent[-3:]} == {"feast.p.a", "feast.p.new"}


def test_no_topic_no_round() -> None:
    events: list[tuple[str, ...]] = []
    record = Record(events)
    assert emitter(Lister({}), Producer(events), record, Clock()).emit_once() is None
    assert record.rounds == []


def test_keys_live_in_the_replicators_namespace_apart_from_feast_keys() -> None:
    assert emission_key("proj") == "_replicator:emitted:proj"
    assert applied_key("feast.proj.v", 2) == "_replicator:hb:feast.proj.v:2"


def test_a_non_positive_interval_is_refused() -> None:
    events: list[tuple[str, ...]] = []
    with pytest.raises(ValueError):
        HeartbeatEmitter(
            topics=Lister({}), producer=Producer(events), record=Record(events), interval_seconds=0
        )
