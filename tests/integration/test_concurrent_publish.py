"""Concurrent write calls on one transactional producer, against the real broker.

Feast's async push runs each write call in a thread, all on the primary store's one
publisher. Every call must return, and every record of every call must be readable by a
``read_committed`` reader exactly once (calls that met share transactions).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient

from replicator.adapters.kafka_config import client_config
from replicator.adapters.kafka_publisher import KafkaPublisher
from replicator.config import Topology
from replicator.kafka_acls import primary_client_id, project_topic_prefix

PARTITIONS = 6
THREADS = 6
CALLS = 20


@pytest.fixture
def topic(topology: Topology, kafka_admin: AdminClient) -> Iterator[str]:
    # under the project's prefix and transactional ids: what the primary's ACLs allow
    name = f"{project_topic_prefix(topology)}concurrent-publish-{uuid.uuid4().hex[:12]}"
    yield name
    kafka_admin.delete_topics([name])


def _ours(headers: list[tuple[str, bytes]] | None) -> bool:
    return any(key == "w" for key, _ in headers or [])


def _read_committed(topology: Topology, topic: str, expected: int) -> list[bytes]:
    consumer = Consumer(
        {
            **client_config(topology, "admin"),
            "group.id": f"{topic}-reader",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe([topic])
    values: list[bytes] = []
    try:
        for _ in range(600):  # at most 60 s of 0.1 s polls
            batch = consumer.consume(500, 0.1)
            # this test's records only (a heartbeat emitter may write into the project's topics)
            values += [m.value() for m in batch if m.error() is None and _ours(m.headers())]
            if len(values) >= expected:
                break
    finally:
        consumer.close()
    return values


def test_concurrent_calls_all_return_and_every_record_is_read_once(
    topology: Topology, topic: str
) -> None:
    publisher = KafkaPublisher(
        client_config(topology, "primary"),
        client_id="test-concurrent",
        transactional_id=f"{primary_client_id(topology)}-test-concurrent-{uuid.uuid4().hex}",
    )
    publisher.ensure_topics([topic], PARTITIONS, topology.kafka.replication_factor)
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        start.wait(30)
        for call in range(CALLS):
            records = [
                (topic, p, f"{k}-{call}-{p}".encode(), [("w", str(k).encode())])
                for p in range(PARTITIONS)
            ]
            try:
                publisher.publish_atomically(records, 30)
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(THREADS)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        publisher.close()
    assert errors == []
    expected = sorted(
        f"{k}-{c}-{p}".encode()
        for k in range(THREADS)
        for c in range(CALLS)
        for p in range(PARTITIONS)
    )
    assert sorted(_read_committed(topology, topic, len(expected))) == expected
    assert 0 < publisher.transactions <= THREADS * CALLS
