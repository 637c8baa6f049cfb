"""A region's consumer: subscribes to the feature-view topics, commits only what was applied."""

from __future__ import annotations

import json
import logging
import time
from types import TracebackType

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from replicator.adapters.kafka_config import KafkaConnection, client_settings
from replicator.core.egress import EgressMeter
from replicator.errors import ConfigError, TransientError

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


def record_bytes(message: Message) -> int:
    """A record's size as received (decompressed): key, value, header names and values."""
    size = len(message.key() or b"") + len(message.value() or b"")
    headers = message.headers() or []
    for name, value in headers.items() if isinstance(headers, dict) else headers:
        size += len(name) + len(value or b"")
    return size


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
            # Rows of a Feast call are one transaction: apply all of them or none.
            "isolation.level": "read_committed",
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
        self.egress = EgressMeter(group_id, time.time_ns())
        """Bytes fetched per topic: records as received, wire bytes from the statistics."""

    @property
    def consumer(self) -> Consumer:
        if self._consumer is None:
            self._consumer = Consumer(self._config)
            self._consumer.subscribe(
                [self._pattern],
                on_assign=self._on_assign,
                on_revoke=self._on_revoke,
                on_lost=self._on_lost,
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
        fetched: dict[str, int] = {}
        for topic, data in stats.get("topics", {}).items():
            for partition, p in data.get("partitions", {}).items():
                if int(partition) >= 0 and p.get("consumer_lag", -1) >= 0:
                    lag[(topic, int(partition))] = int(p["consumer_lag"])
                fetched[topic] = fetched.get(topic, 0) + int(p.get("rxbytes", 0))
        self.consumer_lag = lag
        self.egress.wire_total(int(stats.get("rx_bytes", 0)), fetched)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        keys = {(p.topic, p.partition) for p in partitions}
        self.assigned.update(keys)
        for key in keys:
            self._committed.pop(key, None)  # another member may have moved it since
        if partitions:
            self._committed.update(self._group_offsets(consumer, partitions))
        log.info("assigned %d partition(s)", len(partitions), extra={"event": "assigned"})

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Nothing is in flight here: every poll is applied before the next one. What was
        # applied is committed now, synchronously, before another member can take over.
        revoked = {(p.topic, p.partition) for p in partitions}
        final = {tp: o for tp, o in self._committed.items() if tp in revoked}
        self._commit_now(consumer, final, "on revoke")
        self._forget(revoked)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # The group moved on without us (session timeout): committing now could only undo
        # what the new owner committed.
        self._forget({(p.topic, p.partition) for p in partitions})

    def _forget(self, partitions: set[tuple[str, int]]) -> None:
        self.assigned -= partitions
        self.paused -= partitions
        for key in partitions:
            self._committed.pop(key, None)

    def _group_offsets(
        self, consumer: Consumer, partitions: list[TopicPartition]
    ) -> dict[tuple[str, int], int]:
        """The group's committed offsets of ``partitions`` (none yet: left out)."""
        try:
            committed = consumer.committed(partitions, timeout=10)
        except KafkaException as exc:
            log.warning("cannot read committed offsets on assignment: %s", exc)
            return {}
        return {(tp.topic, tp.partition): tp.offset for tp in committed if tp.offset >= 0}

    def _commit_now(
        self, consumer: Consumer, positions: dict[tuple[str, int], int], when: str
    ) -> None:
        if not positions:
            return
        try:
            offsets = [TopicPartition(t, p, o) for (t, p), o in positions.items()]
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            log.warning("offset commit %s failed (records will be redelivered): %s", when, exc)

    def poll_batch(self, max_messages: int, timeout: float) -> list[Message]:
        messages = drain(self.consumer, max_messages, timeout)
        out = []
        for message in messages:
            err = message.error()
            if err is None:
                self.egress.fetched(str(message.topic()), record_bytes(message))
                out.append(message)
            elif err.code() == KafkaError._PARTITION_EOF:
                continue
            elif err.fatal():
                raise KafkaException(err)
            elif err.code() == KafkaError.INVALID_SESSION_TIMEOUT:
                raise ConfigError(self._session_refused())
            else:
                log.warning("kafka: %s", err, extra={"event": "kafka_error"})
        return out

    def _session_refused(self) -> str:
        seconds = int(str(self._config.get("session.timeout.ms", 45000))) / 1000
        servers = self._config["bootstrap.servers"]
        return (
            f"kafka {servers}: the broker refuses a consumer session timeout of "
            f"{seconds:g} s (worker.session_timeout_seconds): its group.min.session.timeout.ms "
            "is higher (6 s on a stock broker). Lower that broker setting (the local stack "
            "and docker-compose.yml use 1 s) or raise worker.session_timeout_seconds to it; "
            "see docs/replication.md"
        )

    def positions_past_markers(self) -> dict[tuple[str, int], int]:
        """See ``ChangeSource``: called after an empty poll, when every record returned
        before was applied, so a position beyond the committed offset moved only over
        transaction markers or aborted records."""
        live = [TopicPartition(t, p) for t, p in self.assigned - self.paused]
        live = [tp for tp in live if (tp.topic, tp.partition) in self._committed]
        if not live:
            return {}
        return {
            (tp.topic, tp.partition): tp.offset
            for tp in self.consumer.position(live)
            if tp.offset > self._committed[(tp.topic, tp.partition)]
        }

    def pause(self, topic: str, partition: int, offset: int) -> None:
        tp = TopicPartition(topic, partition, offset)
        self.consumer.pause([tp])
        self.consumer.seek(tp)  # drops what was fetched past it; resume starts here
        self.paused.add((topic, partition))

    def resume(self, topic: str, partition: int) -> None:
        self.consumer.resume([TopicPartition(topic, partition)])
        self.paused.discard((topic, partition))

    def rewind(self, topic: str, partition: int, offset: int) -> int:
        """Deliver ``partition`` again from ``offset``, or from the log's start if retention
        removed it; returns where delivery starts. Commits stay put until passed."""
        tp = TopicPartition(topic, partition, offset)
        try:
            low, _ = self.consumer.get_watermark_offsets(tp, timeout=10)
            tp.offset = max(offset, low)
            self.consumer.seek(tp)
        except KafkaException as exc:
            raise TransientError(f"cannot rewind {topic}[{partition}]: {exc}") from exc
        return int(tp.offset)

    def is_paused(self, topic: str, partition: int) -> bool:
        return (topic, partition) in self.paused

    @property
    def committed(self) -> dict[tuple[str, int], int]:
        """Per assigned partition, the highest offset committed (by us, or by the group before
        we were assigned it)."""
        return dict(self._committed)

    def commit(self, positions: dict[tuple[str, int], int]) -> None:
        """Commit in the background, only forwards: a position at or below what the group
        already committed, or of a partition no longer assigned to us (revoked while the
        batch was in hand), is not sent, so committed offsets never move backwards. The
        caller applied everything before these offsets, so a lost commit (crash) only means
        harmless redelivery. Revocation and ``close`` commit synchronously."""
        forward = {
            tp: o
            for tp, o in positions.items()
            if tp in self.assigned and o > self._committed.get(tp, -1)
        }
        if not forward:
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in forward.items()]
        try:
            self.consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException as exc:
            raise TransientError(f"offset commit failed: {exc}") from exc
        self._committed.update(forward)

    def close(self) -> None:
        if self._consumer is None:
            return
        mine = {tp: o for tp, o in self._committed.items() if tp in self.assigned}
        self._commit_now(self._consumer, mine, "on close")
        self._consumer.close()
        self._consumer = None
