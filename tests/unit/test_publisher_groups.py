"""Concurrent Feast writes share Kafka transactions (``KafkaPublisher.publish_atomically``).

Feast's async push runs every write call in a thread of its own, and they all reach the one
transactional producer of the primary's store. A producer has one transaction open at a
time: calls that arrive while one commits must wait and go together in the next, and all of
them succeed or fail with it. The producer here is a fake that records each transaction and
refuses a second one opened before the first ended (what librdkafka does).
"""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import Future
from typing import Any, cast

import pytest
from confluent_kafka import KafkaError, KafkaException
from waiting import wait_until

from replicator.adapters import kafka_publisher
from replicator.adapters.kafka_publisher import KafkaPublisher
from replicator.errors import PublishError


class GatedProducer:
    """Records the payloads of every committed transaction. The first commit waits for
    ``gate``; commits whose index is in ``failing`` time out."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.committed: list[list[bytes]] = []
        self.open: list[bytes] | None = None
        self.gate = threading.Event()
        self.failing: set[int] = set()
        self.aborted = 0

    def init_transactions(self, timeout: float) -> None:
        pass

    def begin_transaction(self) -> None:
        if self.open is not None:
            raise KafkaException(KafkaError(KafkaError._STATE, "a transaction is in progress"))
        self.open = []

    def produce(self, topic: str, value: bytes, **_: Any) -> None:
        assert self.open is not None, "produce outside a transaction"
        self.open.append(value)

    def commit_transaction(self, timeout: float) -> None:
        index = len(self.committed) + self.aborted
        if index == 0:
            assert self.gate.wait(10), "the test never opened the gate"
        if index in self.failing:
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "commit timed out"))
        assert self.open is not None
        self.committed.append(self.open)
        self.open = None

    def abort_transaction(self, timeout: float) -> None:
        self.aborted += 1
        self.open = None


@pytest.fixture
def publisher(monkeypatch: pytest.MonkeyPatch) -> KafkaPublisher:
    """A transactional publisher whose librdkafka producer is a ``GatedProducer``."""
    monkeypatch.setattr(kafka_publisher, "Producer", GatedProducer)
    return KafkaPublisher("127.0.0.1:1", client_id="t", transactional_id="t")


def _fake(publisher: KafkaPublisher) -> GatedProducer:
    return cast(GatedProducer, publisher.producer)


def _calls(publisher: KafkaPublisher, names: list[str]) -> tuple[list[threading.Thread], dict]:
    """One thread per name publishing one record (``name``); outcomes by name."""
    outcomes: dict[str, BaseException | None] = {}

    def call(name: str) -> None:
        try:
            publisher.publish_atomically([("t", 0, name.encode(), [])], 10)
            outcomes[name] = None
        except BaseException as exc:
            outcomes[name] = exc

    threads = [threading.Thread(target=call, args=(n,)) for n in names]
    return threads, outcomes


def _queued(publisher: KafkaPublisher) -> int:
    """Records waiting for the next transaction (the publisher's own bookkeeping)."""
    forming = publisher._forming
    return len(forming.records) if forming is not None else 0


def test_calls_made_while_a_transaction_commits_go_together_in_the_next(
    publisher: KafkaPublisher,
) -> None:
    producer = _fake(publisher)
    first, outcomes = _calls(publisher, ["first"])
    first[0].start()
    wait_until(lambda: producer.open is not None, 5, "the first transaction to open")
    later, later_outcomes = _calls(publisher, ["a", "b", "c"])
    for thread in later:
        thread.start()
    wait_until(lambda: _queued(publisher) == 3, 5, "three calls waiting")
    producer.gate.set()
    for thread in [*first, *later]:
        thread.join(10)

    assert {**outcomes, **later_outcomes} == dict.fromkeys(["first", "a", "b", "c"])
    assert producer.committed[0] == [b"first"]
    assert sorted(producer.committed[1]) == [b"a", b"b", b"c"]
    assert publisher.transactions == 2


def test_every_call_of_a_failed_shared_transaction_fails_and_none_is_published(
    publisher: KafkaPublisher,
) -> None:
    producer = _fake(publisher)
    producer.failing = {1}
    first, outcomes = _calls(publisher, ["first"])
    first[0].start()
    wait_until(lambda: producer.open is not None, 5, "the first transaction to open")
    later, later_outcomes = _calls(publisher, ["a", "b"])
    for thread in later:
        thread.start()
    wait_until(lambda: _queued(publisher) == 2, 5, "two calls waiting")
    producer.gate.set()
    for thread in [*first, *later]:
        thread.join(10)

    assert outcomes == {"first": None}
    assert all(isinstance(later_outcomes[n], PublishError) for n in ("a", "b")), later_outcomes
    assert producer.committed == [[b"first"]]
    assert producer.aborted == 1
    # The producer is usable afterwards: the next call has a transaction of its own.
    publisher.publish_atomically([("t", 0, b"after", [])], 10)
    assert producer.committed[-1] == [b"after"]


class CountingAdmin:
    """An AdminClient that counts how many were made; the first two constructions meet at a
    barrier, so two threads making one each at the same time both get through."""

    made: list[CountingAdmin] = []
    meeting = threading.Barrier(2)

    def __init__(self, config: dict[str, Any]) -> None:
        CountingAdmin.made.append(self)
        # Broken when the other thread waits for this one (the publisher's lock): the fix.
        with contextlib.suppress(threading.BrokenBarrierError):
            CountingAdmin.meeting.wait(timeout=1)
        self.created: list[str] = []

    def create_topics(self, new: list[Any], **_: Any) -> dict[str, Any]:
        done: dict[str, Any] = {}
        for topic in new:
            self.created.append(topic.topic)
            future: Future[None] = Future()
            future.set_result(None)
            done[topic.topic] = future
        return done


def test_concurrent_writes_make_one_admin_client_and_create_a_topic_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two write calls of a fresh process both ensure their topic: one admin client (a
    second one replaced the first under its pending call, which then failed 'handle is
    terminating'), one creation."""
    monkeypatch.setattr(kafka_publisher, "AdminClient", CountingAdmin)
    CountingAdmin.made, CountingAdmin.meeting = [], threading.Barrier(2)
    publisher = KafkaPublisher("127.0.0.1:1", client_id="t", transactional_id="t")
    errors: list[BaseException] = []

    def ensure() -> None:
        try:
            publisher.ensure_topics(["feast.p.v"], 6, 1)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ensure) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    assert len(CountingAdmin.made) == 1
    assert CountingAdmin.made[0].created == ["feast.p.v"]
