"""A region's consumer: subscribes to the feature-view topics, commits only what was applied."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from types import TracebackType

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from replicator.adapters.kafka_config import KafkaConnection, client_settings
from replicator.errors import TransientError

log = logging.getLogger(__name__)


def drain(consumer: Consumer, max_messages: int, timeout: float) -> list[Message]:
    """Wait up to ``timeout`` for one record, then take whatever else is already queued.

    ``consume(n, timeout)`` alone returns early only once ``n`` records are queued, so every
    quiet poll would cost the whole timeout in latency.
    """
    messages = consumer.consume(num_messages=1, timeout=timeout)
    if messages and max_messages > 1:
        messages += consumer.consume(num_messages=max_messages - 1, timeout=0)
    return messages


def subscription_pattern(topic_prefix: str, project: str, feature_views: Iterable[str]) -> str:
    """A librdkafka regex subscription: new views' topics are picked up as they appear."""
    base = re.escape(f"{topic_prefix}.{project}.")
    views = list(feature_views)
    if "*" in views:
        return f"^{base}.+$"
    return f"^{base}({'|'.join(re.escape(v) for v in views)})$"


class KafkaSource:
    def __init__(
        self,
        connection: KafkaConnection,
        *,
        group_id: str,
        pattern: str,
        options: dict[str, object] | None = None,
    ) -> None:
        config: dict[str, object] = {
            **client_settings(connection),
            "group.id": group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "topic.metadata.refresh.interval.ms": 5000,
            "fetch.wait.max.ms": 20,
            "partition.assignment.strategy": "cooperative-sticky",
            **(options or {}),
        }
        config.setdefault("statistics.interval.ms", 5000)
        config["stats_cb"] = self._on_stats
        self._config = config
        self._pattern = pattern
        self._consumer: Consumer | None = None
        self.assigned: set[tuple[str, int]] = set()
        self.paused: set[tuple[str, int]] = set()
        self._committed: dict[tuple[str, int], int] = {}
        self.consumer_lag: dict[tuple[str, int], int] = {}
        """Offsets behind the log end per partition, from librdkafka's statistics."""

    @property
    def consumer(self) -> Consumer:
        if self._consumer is None:
            self._consumer = Consumer(self._config)
            self._consumer.subscribe(
                [self._pattern], on_assign=self._on_assign, on_revoke=self._on_revoke
            )
        return self._consumer

    def __enter__(self) -> KafkaSource:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _on_stats(self, raw: str) -> None:
        stats = json.loads(raw)
        lag = {}
        for topic, data in stats.get("topics", {}).items():
            for partition, p in data.get("partitions", {}).items():
                if int(partition) >= 0 and p.get("consumer_lag", -1) >= 0:
                    lag[(topic, int(partition))] = int(p["consumer_lag"])
        self.consumer_lag = lag

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.assigned.update((p.topic, p.partition) for p in partitions)
        log.info("assigned %d partition(s)", len(partitions), extra={"event": "assigned"})

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Nothing is in flight here: every poll is applied and committed before the next one.
        revoked = {(p.topic, p.partition) for p in partitions}
        self.assigned -= revoked
        self.paused -= revoked

    def poll_batch(self, max_messages: int, timeout: float) -> list[Message]:
        messages = drain(self.consumer, max_messages, timeout)
        out = []
        for message in messages:
            err = message.error()
            if err is None:
                out.append(message)
            elif err.code() == KafkaError._PARTITION_EOF:
                continue
            elif err.fatal():
                raise KafkaException(err)
            else:
                log.warning("kafka: %s", err, extra={"event": "kafka_error"})
        return out

    def pause(self, topic: str, partition: int, offset: int) -> None:
        tp = TopicPartition(topic, partition, offset)
        self.consumer.pause([tp])
        self.consumer.seek(tp)  # drops what was fetched past it; resume starts here
        self.paused.add((topic, partition))

    def resume(self, topic: str, partition: int) -> None:
        self.consumer.resume([TopicPartition(topic, partition)])
        self.paused.discard((topic, partition))

    def is_paused(self, topic: str, partition: int) -> bool:
        return (topic, partition) in self.paused

    def commit(self, positions: dict[tuple[str, int], int]) -> None:
        """Commit in the background: the caller applied everything before these offsets, so
        a commit that is lost (crash, rebalance) only means harmless redelivery. ``close``
        commits the last positions synchronously."""
        if not positions:
            return
        self._committed.update(positions)
        offsets = [TopicPartition(t, p, o) for (t, p), o in positions.items()]
        try:
            self.consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException as exc:
            raise TransientError(f"offset commit failed: {exc}") from exc

    def close(self) -> None:
        if self._consumer is None:
            return
        mine = {tp: o for tp, o in self._committed.items() if tp in self.assigned}
        if mine:
            try:
                final = [TopicPartition(t, p, o) for (t, p), o in mine.items()]
                self._consumer.commit(offsets=final, asynchronous=False)
            except KafkaException as exc:
                log.warning("final offset commit failed (records will be redelivered): %s", exc)
        self._consumer.close()
        self._consumer = None
