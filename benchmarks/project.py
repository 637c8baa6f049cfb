"""A throwaway Feast project on the running stack, so a benchmark disturbs nobody.

Each ``BenchProject`` has its own project name and feature-view name, hence its own topics,
Redis keys, version hashes, consumer groups and registry objects. ``close()`` removes all of
them (Redis through each region's admin user), whatever happened in between.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
import yaml
from confluent_kafka.admin import AdminClient

from replicator.adapters.kafka_publisher import KafkaPublisher
from replicator.adapters.s3 import s3_client
from replicator.adapters.s3_catalog import manifest_key
from replicator.config import Topology, load_topology
from replicator.core.keys import NAMESPACE

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


class BenchProject:
    """Its own topology file (the base one with another project name) in a temp dir."""

    def __init__(
        self, base_config: Path, kind: str, *, overrides: dict[str, Any] | None = None
    ) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.name = f"bench_{kind}_{suffix}"
        self.view_name = f"{kind}_fv_{suffix}"
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{self.name}-"))
        raw = yaml.safe_load(base_config.read_text(encoding="utf-8"))
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

    def feast_redis_config(self, region: str, *, skip_dedup: bool = False) -> Any:
        """A RepoConfig for Feast's own RedisOnlineStore on ``region``'s Redis (writer user)."""
        from feast import RepoConfig

        endpoint = self.topology.region(region).redis
        writer = endpoint.writer
        return RepoConfig(
            project=self.name,
            provider="local",
            registry=str(self.registry_path),
            offline_store={"type": "file"},
            online_store={
                "type": "redis",
                "connection_string": f"{endpoint.host}:{endpoint.port},username={writer.username},"
                f"password={writer.password.get_secret_value()}",
                "skip_dedup": skip_dedup,
            },
            entity_key_serialization_version=3,
            repo_path=self.workdir,
        )

    def publisher(self) -> KafkaPublisher:
        topology = self.topology
        return KafkaPublisher(
            topology.bootstrap_servers_for(topology.primary_region),
            client_id=f"bench-{self.name}",
        )

    # Redis ------------------------------------------------------------------------------
    def admin(self, region: str) -> redis.Redis:
        if region not in self._admins:
            endpoint = self.topology.region(region).redis
            self._admins[region] = redis.Redis(
                host=endpoint.host,
                port=endpoint.port,
                username=endpoint.admin.username,
                password=endpoint.admin.password.get_secret_value(),
                socket_timeout=60,
            )
        return self._admins[region]

    def writer(self, region: str) -> redis.Redis:
        endpoint = self.topology.region(region).redis
        return redis.Redis(
            host=endpoint.host,
            port=endpoint.port,
            username=endpoint.writer.username,
            password=endpoint.writer.password.get_secret_value(),
            socket_timeout=60,
        )

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
        admin = AdminClient({"bootstrap.servers": self.topology.kafka.bootstrap_servers})
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
        except Exception as exc:  # confluent_kafka raises KafkaException with varied codes
            log.warning("cannot delete %s topics or groups: %s", self.name, exc)
