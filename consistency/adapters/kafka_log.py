"""Kafka as the checker reads it: the workers' committed offsets, end offsets, record times.

Nothing here joins a consumer group or commits. A group's committed offsets are read by a
consumer with that ``group.id`` that only asks for them (``Consumer.committed``: FindCoordinator
and OffsetFetch; it never subscribes, is assigned nothing and cannot commit: the checker may
only DESCRIBE the workers' groups); record timestamps by a probe consumer of a group of its own
that is assigned partitions.

Not the admin API's ListConsumerGroupOffsets: when a broker answers it NOT_COORDINATOR (a group
coordinator that moves or loads: a broker restart, a leader election), librdkafka (2.16.0 and
earlier, its issue 5040) re-queries the coordinator through the client's consumer group, which
an admin client does not have: a NULL dereference, SIGSEGV in librdkafka's own thread, the end
of ``consistency serve``. A consumer of the group has one, and retries.

Every call answers within about ``timeout_seconds`` or raises ``SourceUnavailable``: the
admin requests and offset reads carry that timeout, and the admin futures are awaited a
little longer (``RESULT_GRACE``), so librdkafka's own timeout ends them and no
``concurrent.futures.TimeoutError`` escapes. After a failure the admin client and the probe
are rebuilt on the next call (the group readers are kept: they reconnect by themselves), so
the checker recovers by itself when the broker is back. One ``KafkaLog`` serves every
checker thread.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import TypeVar

from confluent_kafka import Consumer, IsolationLevel, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, OffsetSpec, ResourceType

from consistency.adapters.shared import KafkaConnection, client_settings
from consistency.errors import SourceUnavailable
from consistency.ports import TopicPartition as Position

log = logging.getLogger(__name__)

RESULT_GRACE = 5.0
"""Seconds a future is awaited beyond the request timeout it carries."""

T = TypeVar("T")


class KafkaLog:
    def __init__(self, connection: KafkaConnection, *, timeout_seconds: float = 10.0) -> None:
        self._connection = client_settings(connection)
        self._timeout = timeout_seconds
        self._admin: AdminClient | None = None
        self._probe: Consumer | None = None
        self._readers: dict[str, Consumer] = {}
        self._lock = threading.Lock()

    @property
    def admin(self) -> AdminClient:
        if self._admin is None:
            self._admin = AdminClient({**self._connection, "logger": log})  # type: ignore[dict-item]
        return self._admin

    @property
    def probe(self) -> Consumer:
        if self._probe is None:
            self._probe = Consumer(
                {
                    **self._connection,
                    "group.id": f"consistency-probe-{uuid.uuid4().hex[:8]}",
                    "enable.auto.commit": False,
                    "enable.auto.offset.store": False,
                    "isolation.level": "read_committed",  # what the workers read
                    "fetch.wait.max.ms": 10,
                    "logger": log,
                }
            )
        return self._probe

    def _reader(self, group: str) -> Consumer:
        """The consumer that reads ``group``'s committed offsets (one per group, kept)."""
        with self._lock:
            reader = self._readers.get(group)
            if reader is None:
                reader = self._readers[group] = Consumer(
                    {
                        **self._connection,
                        "group.id": group,
                        "enable.auto.commit": False,
                        # Offsets as committed, without waiting for pending transactional
                        # commits (OffsetFetch with require_stable off).
                        "isolation.level": "read_uncommitted",
                    }
                )
            return reader

    def __enter__(self) -> KafkaLog:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._drop_clients()
        with self._lock:
            readers, self._readers = list(self._readers.values()), {}
        for reader in readers:
            _close(reader, "a group reader")

    def _drop_clients(self) -> None:
        """Forget the admin client and close the probe; the next call makes new ones."""
        probe, self._probe, self._admin = self._probe, None, None
        if probe is not None:
            _close(probe, "the probe consumer")

    def _guard(self, what: str, call: Callable[[], T]) -> T:
        """Run ``call``; Kafka's and the futures' errors become ``SourceUnavailable`` and
        drop the admin client and the probe, so the next call starts afresh."""
        try:
            return call()
        except (KafkaException, concurrent.futures.TimeoutError, RuntimeError) as exc:
            self._drop_clients()
            detail = str(exc) or f"no answer within {self._timeout + RESULT_GRACE:.0f} s"
            raise SourceUnavailable(f"kafka: {what}: {detail}", source="kafka") from exc

    @property
    def _wait(self) -> float:
        return self._timeout + RESULT_GRACE

    def committed(self, group: str, positions: Sequence[Position]) -> dict[Position, int | None]:
        """Offset ``group`` committed per position (None: nothing committed); raises
        ``SourceUnavailable`` after about ``timeout_seconds`` without an answer."""
        if not positions:
            return {}
        partitions = [TopicPartition(t, p) for t, p in positions]
        found = self._guard(
            f"committed offsets of {group}",
            lambda: self._reader(group).committed(partitions, timeout=self._timeout),
        )
        out: dict[Position, int | None] = {pos: None for pos in positions}
        for tp in found:
            out[(tp.topic, tp.partition)] = tp.offset if tp.offset >= 0 else None
        return out

    def end_offsets(self, positions: Sequence[Position]) -> dict[Position, int]:
        if not positions:
            return {}
        request = {TopicPartition(t, p): OffsetSpec.latest() for t, p in positions}

        def call() -> dict[Position, int]:
            # The last stable offset: records of open transactions are not readable yet.
            futures = self.admin.list_offsets(
                request,
                isolation_level=IsolationLevel.READ_COMMITTED,
                request_timeout=self._timeout,
            )
            return {
                (tp.topic, tp.partition): future.result(timeout=self._wait).offset
                for tp, future in futures.items()
            }

        return self._guard("end offsets", call)

    def record_times_ms(self, positions: Mapping[Position, int]) -> dict[Position, int]:
        """CreateTime of each record at the given offsets (the producer's, i.e. primary's,
        clock). Positions whose record cannot be read within the timeout are left out."""
        if not positions:
            return {}
        return self._guard("record timestamps", lambda: self._record_times(dict(positions)))

    def _record_times(self, wanted: dict[Position, int]) -> dict[Position, int]:
        consumer = self.probe
        out: dict[Position, int] = {}
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
        return out

    def retention_ms(self, topics: Sequence[str]) -> dict[str, int | None]:
        if not topics:
            return {}
        resources = [ConfigResource(ResourceType.TOPIC, t) for t in topics]

        def call() -> dict[str, int | None]:
            out: dict[str, int | None] = {}
            futures = self.admin.describe_configs(resources, request_timeout=self._timeout)
            for resource, future in futures.items():
                entry = future.result(timeout=self._wait).get("retention.ms")
                value = int(entry.value) if entry is not None and entry.value else -1
                out[resource.name] = None if value < 0 else value
            return out

        return self._guard("topic configs", call)

    def topics(self, prefix: str) -> dict[str, int]:
        """Topics starting with ``prefix`` and their partition counts."""
        metadata = self._guard("list topics", lambda: self.admin.list_topics(timeout=self._timeout))
        return {
            name: len(meta.partitions)
            for name, meta in metadata.topics.items()
            if name.startswith(prefix)
        }


def _close(consumer: Consumer, what: str) -> None:
    try:
        consumer.close()
    except (KafkaException, RuntimeError) as exc:  # already closed, or broker gone
        log.debug("closing %s: %s", what, exc)
