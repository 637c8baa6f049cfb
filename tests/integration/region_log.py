"""A feature-view topic written directly in the wire format, and watchers of what a region's
consumer group committed: for the region-lifecycle tests (offsets, takeover, data loss).

No Feast: rows carry made-up keys of a unique project, and every region's manifest lists
the one schema used here (as ``registry sync`` would), so a test sets up in milliseconds.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

from confluent_kafka import ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from harness import ReplicatedProject, wait_for

from replicator.adapters.kafka_config import client_config
from replicator.adapters.s3 import s3_client
from replicator.adapters.s3_catalog import manifest_key
from replicator.assembly import build_worker
from replicator.config import Topology
from replicator.core import wire
from replicator.core.records import Row, RowBatch
from replicator.worker import Worker

VIEW = "lifecycle_stats"
FIELDS = (b"\x01\x00\x00\x00",)
FINGERPRINT = "fp-lifecycle"


class RegionLog:
    """One feature-view topic of a throwaway project, and what the region's group committed."""

    def __init__(self, project: ReplicatedProject, region: str) -> None:
        self.project = project
        self.topology = project.topology
        self.region = region
        self.topic = self.topology.topic_for(VIEW)
        self.partitions = self.topology.kafka.partitions
        self.group = self.topology.consumer_group(region)
        self.admin = AdminClient(client_config(self.topology, "admin"))
        futures = self.admin.create_topics([NewTopic(self.topic, self.partitions, 1)])
        futures[self.topic].result(30)
        primary = client_config(self.topology, "primary")
        self._producer = Producer({**primary, "enable.idempotence": True})
        self.written: dict[int, int] = {p: 0 for p in range(self.partitions)}
        manifest = {"version": "v-lifecycle", "feature_views": {VIEW: FINGERPRINT}}
        for config in self.topology.regions.values():
            s3_client(config.s3).put_object(
                Bucket=config.s3.bucket,
                Key=manifest_key(self.topology.project),
                Body=json.dumps(manifest).encode(),
            )

    def key(self, partition: int, entity: int) -> bytes:
        return b"p%d-e%d:%s" % (partition, entity, self.project.name.encode())

    def write(self, rounds: int, *, event_s: int = 1_700_000_000, published_ns: int = 0) -> None:
        """``rounds`` records per partition, each a new version of 5 entities."""
        for _ in range(rounds):
            for partition in range(self.partitions):
                version = self.written[partition]
                rows = tuple(
                    Row(
                        self.key(partition, e),
                        b"ts%d" % version,
                        event_s + version,
                        0,
                        0,
                        0,
                        (b"v%d" % version,),
                    )
                    for e in range(5)
                )
                batch = RowBatch(VIEW, FIELDS, rows, FINGERPRINT, "reg-1", published_ns)
                headers, payload = wire.encode_rows(batch)
                self._producer.produce(self.topic, payload, headers=headers, partition=partition)
                self.written[partition] += 1
        assert self._producer.flush(30) == 0

    def worker(self, **changes: object) -> Worker:
        return region_worker(self.topology, self.region, **changes)

    def committed(self) -> dict[int, int]:
        """Partition -> offset the region's group committed (absent: none yet)."""
        request = ConsumerGroupTopicPartitions(
            self.group, [TopicPartition(self.topic, p) for p in range(self.partitions)]
        )
        result = self.admin.list_consumer_group_offsets([request])[self.group].result(30)
        return {tp.partition: tp.offset for tp in result.topic_partitions if tp.offset >= 0}

    def wait_committed_to_end(self, timeout: float = 60) -> None:
        wait_for(lambda: self.committed() == self.written, timeout, "every record committed")

    def delete_before(self, partition: int, offset: int) -> None:
        """Make ``partition`` start at ``offset``, as retention would."""
        futures = self.admin.delete_records([TopicPartition(self.topic, partition, offset)])
        for future in futures.values():
            future.result(30)


class OffsetWatcher:
    """Reads the group's committed offsets over and over, remembering every move backwards."""

    def __init__(self, read: Callable[[], dict[int, int]]) -> None:
        self._read = read
        self.latest: dict[int, int] = {}
        self.backwards: list[tuple[int, int, int]] = []
        """(partition, from, to) for every committed offset seen to decrease."""
        self.reads = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.check()
            time.sleep(0.02)

    def check(self) -> None:
        for partition, offset in self._read().items():
            before = self.latest.get(partition, -1)
            if offset < before:
                self.backwards.append((partition, before, offset))
            self.latest[partition] = offset
        self.reads += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.check()  # the final commits, made as the last worker left


def region_worker(topology: Topology, region: str, **changes: object) -> Worker:
    """The region's live worker (its consumer group); ``changes`` replace its attributes
    (``clock=...``, ``options=...``)."""
    worker = build_worker(topology, region)
    for name, value in changes.items():
        setattr(worker, name, value)
    return worker
