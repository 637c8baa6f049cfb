"""Produces records to Kafka durably: idempotent, acks=all, and a flush that reports failures."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from types import TracebackType

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from replicator.adapters.kafka_config import KafkaConnection, client_settings, describe
from replicator.core.wire import Headers
from replicator.errors import PublishError

log = logging.getLogger(__name__)

TOPIC_CONFIG = {
    # Rebuilding a region replays the whole log: keep it (docs/replication.md, "Rebuilding").
    "retention.ms": "-1",
    "cleanup.policy": "delete",
    "max.message.bytes": str(8 * 1024 * 1024),
}


class KafkaPublisher:
    """A thin, lazily connected producer. ``flush()`` returns only when every record sent
    since the last flush is acknowledged by all in-sync replicas, and raises otherwise."""

    def __init__(
        self,
        connection: KafkaConnection,
        *,
        client_id: str,
        options: Mapping[str, str | int | float | bool] | None = None,
    ) -> None:
        self._connection = client_settings(connection)
        self._config: dict[str, str | int | float | bool] = {
            **self._connection,
            "client.id": client_id,
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": "lz4",
            "linger.ms": 5,
            "batch.size": 4 * 1024 * 1024,
            "message.max.bytes": 8 * 1024 * 1024,
            "delivery.timeout.ms": 60_000,
            **(options or {}),
        }
        self._producer: Producer | None = None
        self._admin: AdminClient | None = None
        self._known_topics: set[str] = set()
        self._errors: list[str] = []
        self._lock = threading.Lock()

    def __enter__(self) -> KafkaPublisher:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def producer(self) -> Producer:
        if self._producer is None:
            self._producer = Producer(self._config)
        return self._producer

    def ensure_topics(
        self, topics: Iterable[str], partitions: int, replication_factor: int
    ) -> None:
        missing = [t for t in topics if t not in self._known_topics]
        if not missing:
            return
        if self._admin is None:
            self._admin = AdminClient(dict(self._connection))
        new = [NewTopic(t, partitions, replication_factor, config=TOPIC_CONFIG) for t in missing]
        for topic, future in self._admin.create_topics(new, operation_timeout=30).items():
            try:
                future.result(timeout=60)
                log.info(
                    "created topic %s", topic, extra={"event": "topic_created", "topic": topic}
                )
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise PublishError(f"cannot create topic {topic}: {exc}") from exc
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
