"""The replicator's side of the differential harness (``runner.Replica``), two ways.

- ``WorkerReplica``: the worker's own apply path, without Kafka or S3. The primary's
  ``ReplicatingOnlineStore`` encodes and batches every call as it does for Kafka; each
  committed call's records land in ``CommittedLog`` (offsets per partition, the record limit
  Kafka enforces), and a real ``Worker`` (``assembly.build_worker``: header checks, schema
  gate on the manifest ``registry sync`` builds, far-future check, the apply script through
  ``RegionStore`` as the region's writer user) applies them to a region Redis of this test's
  own (``PrivateRedis``). Dead letters fail the example.
- ``PipelineReplica``: the whole pipeline on the local stack (harness.ReplicatedProject):
  ReplicatingOnlineStore -> Kafka -> one worker per region -> every region's Redis, the
  registry released to every region's bucket by ``registry sync``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from harness import FeastKeys, ReplicatedProject
from private_redis import PrivateRedis
from unit.fakes import FakeDeadLetters, FakeMessage, FakeSource  # tests/ is on sys.path

from differential.models import describe_difference
from replicator.adapters.kafka_publisher import MAX_RECORD_BYTES, OutgoingRecord
from replicator.adapters.s3_catalog import S3ManifestCatalog
from replicator.assembly import build_worker, region_pattern, worker_options
from replicator.errors import PublishError
from replicator.registry_sync import RegistryReleaser, primary_repo, sync_once
from replicator.worker import Worker


class MemoryBucket:
    """A region's bucket, in memory (``core.ports.ObjectStore``)."""

    bucket = "memory"

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def where(self, key: str = "") -> str:
        return f"memory://{key}"

    def get(self, key: str) -> bytes | None:
        return self.objects.get(key)

    def put(self, key: str, body: bytes, *, content_type: str | None = None) -> None:
        self.objects[key] = bytes(body)

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)

    def keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self.objects if k.startswith(prefix))


class CommittedLog:
    """Kafka as ``read_committed`` workers see it, in place of the primary's KafkaPublisher:
    the records of each committed call, offsets counted per partition. Like Kafka, it refuses
    a record over the topic's limit, and then the whole call (``PublishError``)."""

    def __init__(self) -> None:
        self.messages: list[FakeMessage] = []
        self._next: dict[tuple[str, int], int] = defaultdict(int)

    def ensure_topics(self, topics: Iterable[str], *args: Any, **kwargs: Any) -> None:
        pass

    def record_limit(self, topic: str) -> int:
        return MAX_RECORD_BYTES

    def publish_atomically(self, records: Sequence[OutgoingRecord], timeout: float) -> None:
        for topic, partition, payload, headers in records:
            size = len(payload) + sum(len(k) + len(v or b"") for k, v in headers)
            if size > MAX_RECORD_BYTES:
                raise PublishError(f"{topic}[{partition}]: record of {size} bytes: too large")
        for topic, partition, payload, headers in records:
            offset = self._next[(topic, partition)]
            self._next[(topic, partition)] += 1
            encoded = [(k, v if isinstance(v, bytes) else (v or "").encode()) for k, v in headers]
            self.messages.append(FakeMessage(topic, partition, offset, payload, encoded))
        for touched in {(topic, partition) for topic, partition, *_ in records}:
            self._next[touched] += 1  # the commit marker takes an offset, as in Kafka

    def close(self) -> None:
        pass


class WorkerReplica:
    """Regions through the worker's apply path (module docstring); one region, the primary's."""

    name = "worker"

    def __init__(self, server: PrivateRedis) -> None:
        self.server = server
        self.admin = server.admin
        self.worker: Worker | None = None

    def open(self, project: ReplicatedProject) -> None:
        """A fresh log, bucket, worker and region Redis for each scenario."""
        self.server.serve(project)
        self.admin.flushall()  # this test's own server: the previous example's keys
        self.log, self.bucket = CommittedLog(), MemoryBucket()
        self.source, self.dead_letters, self._delivered = FakeSource(), FakeDeadLetters(), 0
        region = project.topology.primary_region
        catalog = S3ManifestCatalog(
            project.topology.region(region).s3,
            project.name,
            min_refresh_seconds=0,
            store=self.bucket,
        )
        # Unknown schemas are dead-lettered at once: that fails the example, with the reason.
        options = worker_options(project.topology)
        self.worker = build_worker(
            project.topology,
            region,
            source=self.source,
            dead_letters=self.dead_letters,  # type: ignore[arg-type]
            options=replace(options, publish_stats=False, schema_wait_seconds=0.0),
            catalog=catalog,
        )

    def primary(self, project: ReplicatedProject) -> Any:
        store = project.primary_store()
        store._get_provider().online_store._publisher = self.log  # no Kafka: see CommittedLog
        return store

    def registry_changed(self, project: ReplicatedProject) -> None:
        settings, registry = primary_repo(project.repo)
        releaser = RegistryReleaser(project.topology, settings=settings, stores=self._buckets)
        releaser.release(releaser.snapshot(registry), [project.topology.primary_region])

    def _buckets(self, region: str) -> MemoryBucket:
        return self.bucket

    def settle(self, project: ReplicatedProject, expected: FeastKeys) -> list[Any]:
        assert self.worker is not None
        pattern = re.compile(region_pattern(project.topology, project.topology.primary_region))
        fresh = self.log.messages[self._delivered :]
        self._delivered = len(self.log.messages)
        unsubscribed = {m.topic() for m in fresh if not pattern.match(m.topic())}
        assert not unsubscribed, f"topics the region does not subscribe to: {unsubscribed}"
        self.source.add(*fresh)
        while self.worker.step():
            pass
        letters = [(d.reason, d.detail) for d in self.dead_letters.sent]
        assert not letters, f"rows the primary acknowledged were dead-lettered: {letters[:3]}"
        admin = self.admin
        actual = project.feast_keys(admin)
        if actual != expected:
            raise AssertionError(
                "the region differs from the replicator's rule: "
                + describe_difference(expected, actual)
            )
        return [admin]

    def close(self, project: ReplicatedProject) -> None:
        if self.worker is not None:
            self.worker.store.close()  # type: ignore[attr-defined]
            self.worker = None


class PipelineReplica:
    """Every region of the local stack through Kafka and running workers (module docstring)."""

    name = "pipeline"

    def __init__(self) -> None:
        self._started: set[str] = set()

    def open(self, project: ReplicatedProject) -> None:
        pass

    def primary(self, project: ReplicatedProject) -> Any:
        return project.primary_store()

    def registry_changed(self, project: ReplicatedProject) -> None:
        sync_once(project.topology, repo=project.repo)  # as `replicator registry sync` does
        if project.name not in self._started:
            self._started.add(project.name)
            project.start_workers()

    def settle(self, project: ReplicatedProject, expected: FeastKeys) -> list[Any]:
        try:
            project.wait_converged(expected)
        except AssertionError as exc:
            details = [
                f"{r}: {describe_difference(expected, project.feast_keys(project.admin(r)))}"
                for r in project.topology.regions
            ]
            raise AssertionError(f"{exc}\n" + "\n".join(details)) from None
        return [project.admin(region) for region in project.topology.regions]

    def close(self, project: ReplicatedProject) -> None:
        project.stop()
