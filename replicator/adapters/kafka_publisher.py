"""Produces records to Kafka durably: idempotent, acks=all, and a flush that reports failures.

With a ``transactional_id`` the producer is transactional and ``publish_atomically`` makes a
set of records, across partitions and topics, visible to ``read_committed`` readers all
together or not at all. Calls from several threads share transactions (group commit): a
producer has one transaction open at a time, so a call that arrives while one commits joins
the next, which carries every call that waited for it.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from replicator.adapters.kafka_config import KafkaConnection, client_settings, describe
from replicator.config import DEFAULT_COMPRESSION, Compression
from replicator.core.wire import Headers
from replicator.errors import KafkaUnavailable, PublishError

log = logging.getLogger(__name__)

MAX_RECORD_BYTES = 8 * 1024 * 1024
"""The record limit of the topics this publisher creates and of its producer."""
ADMIN_TIMEOUT_SECONDS = 60.0
"""How long a topic creation may take before the broker counts as unreachable."""

DEFAULT_RETENTION_MS = 7 * 24 * 3600 * 1000
"""``kafka.retention_hours`` (168) in ms: snapshots, taken well inside it, bound what a
bootstrap needs from the log (docs/replication.md, "Retention")."""

TOPIC_CONFIG = {
    "retention.ms": str(DEFAULT_RETENTION_MS),
    "cleanup.policy": "delete",
    "max.message.bytes": str(MAX_RECORD_BYTES),
}

OutgoingRecord = tuple[str, int, bytes, Headers]
"""(topic, partition, payload, headers)."""


@dataclass
class _Group:
    """The records of the calls that share one transaction, and how it ended."""

    records: list[OutgoingRecord] = field(default_factory=list)
    done: bool = False
    error: PublishError | None = None


class KafkaPublisher:
    """A thin, lazily connected producer. ``flush()`` returns only when every record sent
    since the last flush is acknowledged by all in-sync replicas, and raises otherwise."""

    def __init__(
        self,
        connection: KafkaConnection,
        *,
        client_id: str,
        transactional_id: str | None = None,
        compression: Compression = DEFAULT_COMPRESSION,
        options: Mapping[str, str | int | float | bool] | None = None,
    ) -> None:
        """``compression``: the producer's ``compression.type`` (topology
        ``kafka.compression``)."""
        self._connection = client_settings(connection)
        self._config: dict[str, str | int | float | bool] = {
            **self._connection,
            "client.id": client_id,
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": compression,
            "linger.ms": 5,
            "batch.size": 4 * 1024 * 1024,
            "message.max.bytes": MAX_RECORD_BYTES,
            "delivery.timeout.ms": 60_000,
            **(options or {}),
        }
        if transactional_id is not None:
            self._config["transactional.id"] = transactional_id
        self._producer: Producer | None = None
        self._admin: AdminClient | None = None
        self._admin_lock = threading.Lock()  # topics and limits, asked once by any thread
        self._known_topics: set[str] = set()
        self._record_limits: dict[str, int] = {}
        self._errors: list[str] = []
        self._lock = threading.Lock()
        self._groups = threading.Condition()
        self._forming: _Group | None = None  # calls waiting for the next transaction
        self._committing = False  # a transaction is open (one at a time per producer)
        self.transactions = 0
        """Transactions committed: with concurrent callers, fewer than calls."""

    def __enter__(self) -> KafkaPublisher:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def transactional(self) -> bool:
        return "transactional.id" in self._config

    @property
    def producer(self) -> Producer:
        if self._producer is None:
            producer = Producer(self._config)
            if self.transactional:
                # Fences an earlier producer with the same id and aborts its open transaction.
                try:
                    producer.init_transactions(30)
                except KafkaException as exc:
                    raise PublishError(f"cannot start Kafka transactions: {exc}") from exc
            self._producer = producer
        return self._producer

    def publish_atomically(self, records: Sequence[OutgoingRecord], timeout: float) -> None:
        """Publish ``records`` in one Kafka transaction: once this returns every record is
        acknowledged and visible to ``read_committed`` readers; when it raises
        (``PublishError``) none of them ever is. Needs a ``transactional_id``.

        Thread-safe: calls made while a transaction commits wait and then share the next one
        (all of their records visible together, or none; each call returns or raises with
        it), so concurrent writers cost the broker one transaction per round, not per call.
        ``timeout`` (seconds) bounds the commit of the transaction this call runs itself."""
        if not self.transactional:
            raise PublishError("publish_atomically needs a producer with a transactional_id")
        with self._groups:
            group = self._forming = self._forming or _Group()
            group.records.extend(records)
            while self._committing and not group.done:
                self._groups.wait()
            leads = not group.done
            if leads:  # the group's transaction is this call's to run
                self._committing, self._forming = True, None
        if not leads:
            if group.error is not None:  # a fresh error per caller: threads share none
                raise PublishError(str(group.error)) from group.error
            return
        try:
            self._transact(group.records, timeout)
        except BaseException as exc:  # the others must not take it for a commit
            group.error = (
                exc
                if isinstance(exc, PublishError)
                else PublishError(f"Kafka transaction not committed: {exc!r}")
            )
            raise
        finally:
            with self._groups:
                group.done, self._committing = True, False
                self._groups.notify_all()

    def _transact(self, records: Sequence[OutgoingRecord], timeout: float) -> None:
        """One transaction holding ``records``; raises PublishError when it was aborted."""
        producer = self.producer
        try:
            producer.begin_transaction()
            for topic, partition, payload, headers in records:
                self.send(topic, partition, payload, headers)
            producer.commit_transaction(timeout)
            self.transactions += 1
        except (KafkaException, PublishError) as exc:
            self._abort(exc)
            raise PublishError(f"Kafka transaction aborted, nothing published: {exc}") from exc
        finally:
            with self._lock:
                self._errors = []

    def _abort(self, cause: Exception) -> None:
        """Abort the open transaction; a producer that cannot abort is dropped (the next one
        fences it, aborting the transaction at the broker)."""
        error = cause.args[0] if cause.args and isinstance(cause.args[0], KafkaError) else None
        if error is None or not error.fatal():
            try:
                self.producer.abort_transaction(30)
                return
            except KafkaException as exc:
                log.warning("cannot abort the Kafka transaction: %s", exc)
        self._producer = None

    def record_limit(self, topic: str) -> int:
        """Largest record in bytes that both this producer and ``topic`` accept: the smaller
        of the producer's ``message.max.bytes`` and the topic's effective
        ``max.message.bytes`` (asked of the broker once per topic). Raises PublishError when
        the broker cannot be asked."""
        if topic in self._record_limits:  # known: no wait behind another topic's question
            return self._record_limits[topic]
        with self._admin_lock:
            if topic not in self._record_limits:
                resource = ConfigResource(ResourceType.TOPIC, topic)
                try:
                    future = self._admin_client().describe_configs([resource])[resource]
                    entry = future.result(timeout=30)["max.message.bytes"]
                    topic_limit = int(entry.value)
                except (KafkaException, KeyError, ValueError) as exc:
                    raise PublishError(
                        f"cannot read the record limit of topic {topic}: {exc}"
                    ) from exc
                self._record_limits[topic] = min(
                    topic_limit, int(self._config["message.max.bytes"])
                )
            return self._record_limits[topic]

    def _admin_client(self) -> AdminClient:
        if self._admin is None:
            self._admin = AdminClient(dict(self._connection))
        return self._admin

    def ensure_topics(
        self,
        topics: Iterable[str],
        partitions: int,
        replication_factor: int,
        *,
        retention_ms: int = DEFAULT_RETENTION_MS,
    ) -> None:
        """Create the topics that do not exist yet (``retention_ms``: -1 keeps records
        forever); topics that exist keep their settings."""
        topics = list(topics)
        if all(t in self._known_topics for t in topics):  # no wait behind a creation
            return
        with self._admin_lock:
            self._ensure_topics(topics, partitions, replication_factor, retention_ms)

    def _ensure_topics(
        self, topics: Iterable[str], partitions: int, replication_factor: int, retention_ms: int
    ) -> None:
        missing = [t for t in topics if t not in self._known_topics]
        if not missing:
            return
        config = {**TOPIC_CONFIG, "retention.ms": str(retention_ms)}
        new = [NewTopic(t, partitions, replication_factor, config=config) for t in missing]
        servers = str(self._config["bootstrap.servers"])
        try:
            futures = self._admin_client().create_topics(
                new, operation_timeout=30, request_timeout=ADMIN_TIMEOUT_SECONDS
            )
        except KafkaException as exc:
            raise KafkaUnavailable(
                f"kafka {servers}: cannot create topics: {exc}", service=f"kafka {servers}"
            ) from exc
        for topic, future in futures.items():
            try:
                # The request times out first (and fails the future); the extra wait only
                # guards against a future that never completes.
                future.result(timeout=ADMIN_TIMEOUT_SECONDS + 5)
                log.info(
                    "created topic %s", topic, extra={"event": "topic_created", "topic": topic}
                )
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise PublishError(f"cannot create topic {topic}: {exc}") from exc
            except concurrent.futures.TimeoutError as exc:
                raise KafkaUnavailable(
                    f"kafka {servers}: no answer creating topic {topic} within "
                    f"{ADMIN_TIMEOUT_SECONDS + 5:.0f}s",
                    service=f"kafka {servers}",
                ) from exc
            self._known_topics.add(topic)

    def send(self, topic: str, partition: int, payload: bytes, headers: Headers) -> None:
        while True:
            try:
                self.producer.produce(
                    topic,
                    value=payload,
                    partition=partition,
                    headers=headers,
                    on_delivery=self._on_delivery,
                )
                return
            except BufferError:
                self.producer.poll(0.05)  # local queue full: let deliveries drain
            except KafkaException as exc:
                raise PublishError(f"cannot publish to {topic}[{partition}]: {exc}") from exc

    def flush(self, timeout: float = 30.0) -> None:
        remaining = self.producer.flush(timeout)
        with self._lock:
            errors, self._errors = self._errors, []
        if remaining:
            raise PublishError(
                f"{remaining} record(s) not acknowledged by Kafka within {timeout:.0f}s "
                f"({describe(self._connection)})"
            )
        if errors:
            raise PublishError(f"Kafka refused {len(errors)} record(s): {errors[0]}")

    def _on_delivery(self, err: KafkaError | None, msg: object) -> None:
        if err is not None:
            with self._lock:
                self._errors.append(str(err))

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(10)
            self._producer = None
