"""Kafka as the checker reads it: the workers' committed offsets, end offsets, record times.

Nothing here joins a consumer group: committed offsets come from the admin API, and record
timestamps are read by a consumer that is assigned partitions and never commits.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from types import TracebackType

from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    IsolationLevel,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, ConfigResource, OffsetSpec, ResourceType

from consistency.errors import SourceUnavailable
from consistency.ports import TopicPartition as Position

log = logging.getLogger(__name__)


class KafkaLog:
    def __init__(self, bootstrap_servers: str, *, timeout_seconds: float = 10.0) -> None:
        self._bootstrap = bootstrap_servers
        self._timeout = timeout_seconds
        self._admin: AdminClient | None = None
        self._probe: Consumer | None = None

    @property
    def admin(self) -> AdminClient:
        if self._admin is None:
            self._admin = AdminClient({"bootstrap.servers": self._bootstrap})
        return self._admin

    @property
    def probe(self) -> Consumer:
        if self._probe is None:
            self._probe = Consumer(
                {
                    "bootstrap.servers": self._bootstrap,
                    "group.id": f"consistency-probe-{uuid.uuid4().hex[:8]}",
                    "enable.auto.commit": False,
                    "enable.auto.offset.store": False,
                    "isolation.level": "read_committed",  # what the workers read
                    "fetch.wait.max.ms": 10,
                }
            )
        return self._probe

    def __enter__(self) -> KafkaLog:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._probe is not None:
            self._probe.close()
            self._probe = None
        self._admin = None

    def committed(self, group: str, positions: Sequence[Position]) -> dict[Position, int | None]:
        if not positions:
            return {}
        request = ConsumerGroupTopicPartitions(group, [TopicPartition(t, p) for t, p in positions])
        try:
            futures = self.admin.list_consumer_group_offsets(
                [request], request_timeout=self._timeout
            )
            result = futures[group].result(timeout=self._timeout)
        except KafkaException as exc:
            raise SourceUnavailable(f"kafka: committed offsets of {group}: {exc}") from exc
        out: dict[Position, int | None] = {pos: None for pos in positions}
        for tp in result.topic_partitions or []:
            out[(tp.topic, tp.partition)] = tp.offset if tp.offset >= 0 else None
        return out

    def end_offsets(self, positions: Sequence[Position]) -> dict[Position, int]:
        if not positions:
            return {}
        request = {TopicPartition(t, p): OffsetSpec.latest() for t, p in positions}
        try:
            # The last stable offset: records of open transactions are not readable yet.
            futures = self.admin.list_offsets(
                request,
                isolation_level=IsolationLevel.READ_COMMITTED,
                request_timeout=self._timeout,
            )
            return {
                (tp.topic, tp.partition): future.result(timeout=self._timeout).offset
                for tp, future in futures.items()
            }
        except KafkaException as exc:
            raise SourceUnavailable(f"kafka: end offsets: {exc}") from exc

    def record_times_ms(self, positions: Mapping[Position, int]) -> dict[Position, int]:
        """CreateTime of each record at the given offsets (the producer's, i.e. primary's,
        clock). Positions whose record cannot be read within the timeout are left out."""
        if not positions:
            return {}
        consumer = self.probe
        wanted = dict(positions)
        out: dict[Position, int] = {}
        try:
            consumer.assign([TopicPartition(t, p, o) for (t, p), o in wanted.items()])
            deadline = time.monotonic() + self._timeout
            while len(out) < len(wanted) and time.monotonic() < deadline:
                for message in consumer.consume(num_messages=len(wanted), timeout=0.2):
                    if message.error():
                        continue
                    topic, partition, offset = (
                        message.topic(),
                        message.partition(),
                        message.offset(),
                    )
                    if topic is None or partition is None or offset is None:
                        continue
                    pos = (topic, partition)
                    if pos in wanted and pos not in out and offset >= wanted[pos]:
                        out[pos] = message.timestamp()[1]
            consumer.unassign()
        except KafkaException as exc:
            raise SourceUnavailable(f"kafka: record timestamps: {exc}") from exc
        return out

    def retention_ms(self, topics: Sequence[str]) -> dict[str, int | None]:
        if not topics:
            return {}
        resources = [ConfigResource(ResourceType.TOPIC, t) for t in topics]
        out: dict[str, int | None] = {}
        try:
            futures = self.admin.describe_configs(resources, request_timeout=self._timeout)
            for resource, future in futures.items():
                entry = future.result(timeout=self._timeout).get("retention.ms")
                value = int(entry.value) if entry is not None and entry.value else -1
                out[resource.name] = None if value < 0 else value
        except KafkaException as exc:
            raise SourceUnavailable(f"kafka: topic configs: {exc}") from exc
        return out

    def topics(self, prefix: str) -> dict[str, int]:
        """Topics starting with ``prefix`` and their partition counts."""
        try:
            metadata = self.admin.list_topics(timeout=self._timeout)
        except KafkaException as exc:
            raise SourceUnavailable(f"kafka: list topics: {exc}") from exc
        return {
            name: len(meta.partitions)
            for name, meta in metadata.topics.items()
            if name.startswith(prefix)
        }
