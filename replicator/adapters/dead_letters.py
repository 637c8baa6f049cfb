"""The dead-letter topic: bad input leaves the partition with its reason, and is kept."""

from __future__ import annotations

import logging

from replicator.adapters.kafka_publisher import KafkaPublisher
from replicator.core.ports import Message, position
from replicator.core.wire import H_DETAIL, H_REASON, H_REGION, H_SOURCE, Headers

log = logging.getLogger(__name__)


class KafkaDeadLetters:
    def __init__(self, publisher: KafkaPublisher, topic: str, region: str) -> None:
        self._publisher = publisher
        self._topic = topic
        self._region = region
        self.counts: dict[str, int] = {}

    def ensure_topic(
        self, partitions: int, replication_factor: int, *, retention_ms: int = -1
    ) -> None:
        self._publisher.ensure_topics(
            [self._topic], partitions, replication_factor, retention_ms=retention_ms
        )

    def send(
        self, message: Message, reason: str, detail: str, payload: bytes | None = None
    ) -> None:
        topic, partition, offset = position(message)
        source = f"{topic}:{partition}:{offset}"
        headers: Headers = [
            *(message.headers() or []),
            (H_REASON, reason.encode()),
            (H_DETAIL, detail[:1000].encode()),
            (H_SOURCE, source.encode()),
            (H_REGION, self._region.encode()),
        ]
        value = message.value() if payload is None else payload
        self._publisher.send(self._topic, 0, value or b"", headers)
        self.counts[reason] = self.counts.get(reason, 0) + 1
        log.warning(
            "dead-lettered %s: %s (%s)",
            source,
            reason,
            detail,
            extra={"event": "dead_letter", "reason": reason, "source": source},
        )

    def flush(self) -> None:
        self._publisher.flush()
