"""A throwaway Feast project on the running stack, so a benchmark disturbs nobody.

Each ``BenchProject`` has its own project name and feature-view name, hence its own topics,
Redis keys, version hashes, consumer groups and registry objects. ``close()`` removes all of
them (Redis through each region's admin user), whatever happened in between.

On a broker with SASL (the local stack's default), every Kafka client connects as the
principal ``replicator kafka acls`` describes, and the project's own ACLs (``grant_project``
of its topology) are added at the start and deleted by ``close()``.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis
import yaml
from confluent_kafka.admin import AdminClient

from replicator.adapters.kafka_config import client_config
from replicator.adapters.kafka_publisher import MAX_RECORD_BYTES, KafkaPublisher
from replicator.adapters.kafka_source import KafkaSource
from replicator.adapters.redis_store import connect, feast_connection_string
from replicator.adapters.s3 import s3_client
from replicator.adapters.s3_catalog import manifest_key
from replicator.assembly import build_worker, region_pattern, worker_options
from replicator.config import Topology, load_topology, read_topology_document
from replicator.core import wire
from replicator.core.keys import NAMESPACE
from replicator.core.records import RowBatch
from replicator.stack.kafka_security import grant_project, revoke_project
from replicator.worker import Worker, WorkerOptions

if TYPE_CHECKING:
    from benchmarks.dataset import FastRows

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
ROWS_PER_RECORD = 2000
"""Rows per Kafka record, as the primary publishes a bulk write
(``ReplicatingOnlineStoreConfig.max_batch_rows``'s default)."""


def bench_options(topology: Topology, **changes: Any) -> WorkerOptions:
    """The worker options ``replicator worker`` derives from ``topology``, without writing
    stats to the region's Redis, with ``changes`` (``WorkerOptions`` fields) applied."""
    return dataclasses.replace(worker_options(topology), publish_stats=False, **changes)


def rows_done(worker: Worker) -> int:
    """Rows ``worker`` has dealt with: applied, or skipped as older than the stored ones."""
    return worker.stats.rows_applied + worker.stats.rows_skipped_older


def step_until(worker: Worker, done: Callable[[], bool], what: str, timeout: float = 300.0) -> None:
    """Step ``worker`` until ``done()``; ``RuntimeError`` naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not done():
        worker.step()
        if time.monotonic() > deadline:
            raise RuntimeError(f"the worker did not {what} within {timeout:.0f} s")


def step_until_rows(worker: Worker, rows: int, timeout: float = 300.0) -> None:
    """Step ``worker`` until ``rows_done(worker)`` reaches ``rows``."""
    step_until(worker, lambda: rows_done(worker) >= rows, f"deal with {rows:,} rows", timeout)


class BenchProject:
    """Its own topology file (the base one with another project name) in a temp dir."""

    def __init__(
        self, base_config: Path, kind: str, *, overrides: dict[str, Any] | None = None
    ) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.name = f"bench_{kind}_{suffix}"
        self.view_name = f"{kind}_fv_{suffix}"
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{self.name}-"))
        raw = read_topology_document(base_config)
        raw["project"] = self.name
        for section, values in (overrides or {}).items():
            raw.setdefault(section, {}).update(values)
        self.topology_path = self.workdir / "topology.yaml"
        self.topology_path.write_text(yaml.safe_dump(raw), encoding="utf-8")
        self.topology: Topology = load_topology(self.topology_path)
        self.registry_path = self.workdir / "registry.db"
        self.fingerprint = ""
        self.feature_view: Any = None
        self.repo_config: Any = None
        self._admins: dict[str, redis.Redis] = {}
        # this project's Kafka ACLs on a secure stack, removed again by close()
        grant_project(self.topology)  # removed again by close()

    def __enter__(self) -> BenchProject:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def topic(self) -> str:
        return self.topology.topic_for(self.view_name)

    @property
    def partitions(self) -> int:
        return self.topology.kafka.partitions

    # Feast at the primary ---------------------------------------------------------------
    def register(self) -> None:
        """``feast apply`` the synthetic view (creates its topic), then sync the registry to
        every region's bucket so workers admit its schema fingerprint."""
        from feast import FeatureStore, RepoConfig

        from benchmarks.dataset import feast_definitions
        from replicator import feast_layout
        from replicator.registry_sync import sync_once

        self.repo_config = RepoConfig(
            project=self.name,
            provider="local",
            registry=str(self.registry_path),
            offline_store={"type": "file"},
            online_store={
                "type": "replicator.feast_publisher.ReplicatingOnlineStore",
                "topology": str(self.topology_path),
            },
            entity_key_serialization_version=3,
            repo_path=self.workdir,
        )
        entity, view = feast_definitions(self.view_name, str(self.workdir / "source.parquet"))
        store = FeatureStore(config=self.repo_config, repo_path=str(self.workdir))
        store.apply([entity, view])
        self.feature_view = store.get_feature_view(self.view_name)
        self.fingerprint = feast_layout.schema_fingerprint(self.feature_view, self.view_name)
        sync_once(self.topology, self.registry_path)

    def feast_redis_config(
        self,
        region: str | None = None,
        *,
        skip_dedup: bool = False,
        connection_string: str | None = None,
    ) -> Any:
        """A RepoConfig for Feast's own RedisOnlineStore on ``region``'s Redis (writer user),
        or on the Redis ``connection_string`` names."""
        from feast import RepoConfig

        if connection_string is None:
            if region is None:
                raise ValueError("feast_redis_config needs a region or a connection_string")
            endpoint = self.topology.region(region).redis
            connection_string = feast_connection_string(endpoint, endpoint.writer)
        return RepoConfig(
            project=self.name,
            provider="local",
            registry=str(self.registry_path),
            offline_store={"type": "file"},
            online_store={
                "type": "redis",
                "connection_string": connection_string,
                "skip_dedup": skip_dedup,
            },
            entity_key_serialization_version=3,
            repo_path=self.workdir,
        )

    def encode(self, data: list[Any], *, published_ns: int = 0) -> list[tuple[int, RowBatch]]:
        """Feast rows as the primary's publisher encodes them (Feast's key and value
        functions), in records of up to ``ROWS_PER_RECORD`` rows."""
        from replicator import feast_layout

        return feast_layout.encode_rows(
            data,
            project=self.name,
            view_name=self.view_name,
            fingerprint=self.fingerprint,
            registry_version="",
            partitions=self.partitions,
            serialization_version=3,
            published_ns=published_ns,
            max_rows=ROWS_PER_RECORD,
            max_bytes=MAX_RECORD_BYTES,
        )

    def publisher(self) -> KafkaPublisher:
        topology = self.topology
        return KafkaPublisher(client_config(topology, "primary"), client_id=f"bench-{self.name}")

    def publish(
        self,
        batches: Iterable[tuple[int, RowBatch]],
        *,
        flush_seconds: float = 120.0,
        publisher: KafkaPublisher | None = None,
    ) -> None:
        """Send ``(partition, batch)`` records to this project's topic and wait until Kafka
        acknowledged them. ``publisher``: the caller's, left open (default: a new one)."""
        own = publisher is None
        producer = self.publisher() if publisher is None else publisher
        try:
            for partition, batch in batches:
                headers, payload = wire.encode_rows(batch)
                producer.send(self.topic, partition, payload, headers)
            producer.flush(flush_seconds)
        finally:
            if own:
                producer.close()

    def publish_entities(
        self,
        rows: FastRows,
        count: int,
        *,
        first: int = 0,
        max_rows: int = ROWS_PER_RECORD,
        flush_seconds: float = 120.0,
    ) -> None:
        """One row for each entity ``first..first+count-1`` (the fast path, no Feast per
        row) with the view's fingerprint, stamped now, published as ``publish`` does."""
        batches = rows.batches(
            count,
            partitions=self.partitions,
            max_rows=max_rows,
            fingerprint=self.fingerprint,
            published_ns=time.time_ns(),
            first=first,
        )
        self.publish(batches, flush_seconds=flush_seconds)

    def worker(
        self,
        region: str,
        *,
        group: str,
        options: WorkerOptions,
        consumer: dict[str, object] | None = None,
    ) -> tuple[Worker, KafkaSource]:
        """A worker for ``region`` from ``build_worker`` (its Redis store, S3 catalog and dead
        letters) reading with consumer group ``group`` and the librdkafka settings
        ``consumer``; returned with its Kafka source. The caller closes the source."""
        topology = self.topology
        source = KafkaSource(
            client_config(topology, "worker", region=region),
            group_id=group,
            pattern=region_pattern(topology, region),
            options=consumer,
        )
        return build_worker(topology, region, source=source, options=options), source

    # Redis ------------------------------------------------------------------------------
    def admin(self, region: str) -> redis.Redis:
        if region not in self._admins:
            endpoint = self.topology.region(region).redis
            self._admins[region] = connect(endpoint, endpoint.admin, timeout=60)
        return self._admins[region]

    def writer(self, region: str) -> redis.Redis:
        endpoint = self.topology.region(region).redis
        return connect(endpoint, endpoint.writer, timeout=60)

    def clear_region(self, region: str) -> int:
        """Delete this project's Feast keys and replication metadata; returns Feast keys."""
        client = self.admin(region)
        feast_keys = self._unlink(client, b"*" + self.name.encode())
        self._unlink(client, NAMESPACE + b"v:" + self.view_name.encode() + b":*")
        self._unlink(client, NAMESPACE + b"hb:" + self.topic.encode() + b":*")
        return feast_keys

    def _unlink(self, client: redis.Redis, pattern: bytes) -> int:
        deleted = 0
        batch: list[bytes] = []
        for key in client.scan_iter(match=pattern, count=10_000):
            if pattern.startswith(b"*") and key.startswith(NAMESPACE):
                continue
            batch.append(key)
            if len(batch) >= 10_000:
                deleted += int(client.unlink(*batch))  # type: ignore[arg-type]
                batch = []
        if batch:
            deleted += int(client.unlink(*batch))  # type: ignore[arg-type]
        return deleted

    def count_keys(self, region: str) -> int:
        client = self.admin(region)
        pattern = b"*" + self.name.encode()
        return sum(1 for _ in client.scan_iter(match=pattern, count=10_000))

    # Clean-up ---------------------------------------------------------------------------
    def close(self) -> None:
        for region in self.topology.regions:
            try:
                self.clear_region(region)
            except redis.RedisError as exc:
                log.warning("cannot clear %s keys in %s: %s", self.name, region, exc)
        for client in self._admins.values():
            client.close()
        self._admins.clear()
        self._delete_kafka_state()
        # Everything registry sync wrote for this project sits next to its manifest.
        prefix = manifest_key(self.name).rsplit("/", 1)[0] + "/"
        for config in self.topology.regions.values():
            try:
                s3 = s3_client(config.s3)
                listed = s3.list_objects_v2(Bucket=config.s3.bucket, Prefix=prefix)
                for item in listed.get("Contents", []):
                    s3.delete_object(Bucket=config.s3.bucket, Key=item["Key"])
            except Exception as exc:  # boto3 raises several unrelated types
                log.warning("cannot delete %s registry objects: %s", self.name, exc)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _delete_kafka_state(self) -> None:
        admin = AdminClient(client_config(self.topology, "admin"))
        try:
            prefix = f"{self.topology.kafka.topic_prefix}.{self.name}."
            topics = [t for t in admin.list_topics(timeout=30).topics if t.startswith(prefix)]
            for future in (
                admin.delete_topics(topics, operation_timeout=30).values() if topics else ()
            ):
                future.result(timeout=60)
            listed = admin.list_consumer_groups().result(timeout=30)
            groups = [g.group_id for g in listed.valid if self.name in g.group_id]
            for future in admin.delete_consumer_groups(groups).values() if groups else ():
                future.result(timeout=60)
            revoke_project(self.topology)
        except Exception as exc:  # confluent_kafka raises KafkaException with varied codes
            log.warning("cannot delete %s topics, groups or ACLs: %s", self.name, exc)
