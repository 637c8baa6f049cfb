"""The primary's Feast online store: every write is published to Kafka, reads stay Feast's.

Configure it in the primary ``feature_store.yaml``::

    online_store:
      type: replicator.feast_publisher.ReplicatingOnlineStore
      # topology: path/to/topology.yaml   (default: $REPLICATOR_CONFIG, else the nearest
      #                                      infra/topology.yaml from the current directory up)

``feast materialize``, ``materialize-incremental``, ``store.push`` and
``store.write_to_online_store`` all end in ``online_write_batch``; here it publishes the call's
rows in one Kafka transaction and returns only after Kafka acknowledged and committed every
row (idempotent transactional producer, acks=all), and raises otherwise, so a Feast write that
returned is never lost and a call that failed (or whose process died) is applied nowhere.
Before publishing rows of a schema new to the process, the schema gate makes sure every
region gets it, releasing the primary's registry after a ``feast apply`` if needed
(``replicator.schema_release``). ``online_read`` is Feast's own ``RedisOnlineStore`` code,
reading the primary region's Redis (as its read-only user), which that region's worker fills
like any other region's.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from feast import Entity, FeatureView, RepoConfig
from feast.infra.online_stores.redis import RedisOnlineStore, RedisOnlineStoreConfig
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from pydantic import PrivateAttr, model_validator

from replicator import feast_layout
from replicator.adapters.kafka_config import client_config
from replicator.adapters.kafka_publisher import KafkaPublisher
from replicator.adapters.redis_store import feast_connection_string
from replicator.config import Topology, find_config_path, load_topology
from replicator.core import wire
from replicator.errors import ConfigError
from replicator.kafka_acls import primary_client_id
from replicator.schema_release import SchemaGate

log = logging.getLogger(__name__)


STORE_TYPE = "replicator.feast_publisher.ReplicatingOnlineStore"


class ReplicatingOnlineStoreConfig(RedisOnlineStoreConfig):
    type: Literal["replicator.feast_publisher.ReplicatingOnlineStore"] = STORE_TYPE  # type: ignore[assignment]
    topology: str | None = None
    """Topology YAML. Default: $REPLICATOR_CONFIG, else infra/topology.yaml in the current
    directory or the nearest parent that has one."""
    read_region: str | None = None
    """Region whose Redis serves reads at the primary (default: the primary region)."""
    publish_timeout_seconds: float = 60.0
    max_batch_rows: int = 2000
    future_event_time: Literal["refuse", "apply"] = "refuse"
    """A row whose event time is more than the topology's ``worker.max_future_skew_seconds``
    ahead of this host's clock: ``refuse`` fails the write call with ``RefusedWrite`` before
    anything is published; ``apply`` stores it as Feast does (every region applies it)."""
    transactional_id: str | None = None
    """Kafka ``transactional.id`` of this process's producer. Default: unique per process. A
    stable id per writer process lets a restarted process abort the transaction its crashed
    predecessor left open at once, instead of after ``publish_timeout_seconds``, during
    which regions read nothing newer from the partitions that transaction touched. With Kafka
    ACLs, start it with ``feast-primary-<project>-`` (the primary's ACLs cover that prefix)."""

    _topology: Topology | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _derive_connection(self) -> ReplicatingOnlineStoreConfig:
        for name, (value, supported, why) in _unsupported(self).items():
            if value != supported:
                raise ValueError(f"online_store.{name}: {value!r} is not supported: {why}")
        topology = self.topology_config()
        region = topology.region(self.read_region or topology.primary_region)
        if "connection_string" not in self.model_fields_set:
            self.connection_string = feast_connection_string(region.redis, region.redis.reader)
        return self

    def topology_config(self) -> Topology:
        if self._topology is None:
            self._topology = load_topology(find_config_path(self.topology))
        return self._topology


def _unsupported(config: RedisOnlineStoreConfig) -> dict[str, tuple[Any, Any, str]]:
    """Feast settings of its Redis store the replicas cannot honour: field -> (value, the
    only supported value, why). Refused when Feast loads the config (at start)."""
    return {
        "skip_dedup": (
            config.skip_dedup,
            False,
            "every region keeps the newest row by event time (last writer wins); older rows "
            "never overwrite newer ones",
        ),
        "redis_type": (
            str(getattr(config.redis_type, "value", config.redis_type)),
            "redis",
            "the primary reads its region's Redis as the topology describes it (one server)",
        ),
    }


FeastRows = list[tuple[EntityKeyProto, dict[str, ValueProto], datetime, datetime | None]]


class ReplicatingOnlineStore(RedisOnlineStore):
    """Feast's Redis store for reads; Kafka for every write."""

    def __init__(self) -> None:
        super().__init__()
        self._publisher: KafkaPublisher | None = None
        self._registry_digest: tuple[float, str] = (0.0, "")
        self._gate: SchemaGate | None = None
        # Concurrent writes (Feast's async push runs each in a thread) share one gate and
        # one publisher, whose transactions they share too (KafkaPublisher.publish_atomically).
        self._lazy = threading.Lock()

    # Writes ---------------------------------------------------------------------------
    def online_write_batch(
        self,
        config: RepoConfig,
        table: FeatureView,
        data: FeastRows,
        progress: Callable[[int], Any] | None,
    ) -> None:
        topology = self._topology(config)
        view = feast_layout.redis_view_name(table, _versioning(config))
        fingerprint = feast_layout.schema_fingerprint(table, view)
        # Refuses (nothing published) a schema no region would get; after `feast apply`,
        # releases the registry to every region at the first write of the new schema.
        self._schema_gate(topology).admit(view, fingerprint, config)
        topic = topology.topic_for(view)
        store_config: ReplicatingOnlineStoreConfig = config.online_store
        publisher = self._publisher_with_topics(topology, store_config, [topic])
        records = feast_layout.encode_records(
            data,
            project=config.project,
            view_name=view,
            fingerprint=fingerprint,
            registry_version=self._registry_version(config),
            partitions=topology.kafka.partitions,
            serialization_version=config.entity_key_serialization_version,
            published_ns=time.time_ns(),
            max_rows=store_config.max_batch_rows,
            max_bytes=publisher.record_limit(topic),
            max_lead_s=(
                int(topology.worker.max_future_skew_seconds)
                if store_config.future_event_time == "refuse"
                else None
            ),
            key_ttl_seconds=store_config.key_ttl_seconds or 0,
        )
        # Durability and atomicity point: Feast's call returns only once Kafka acknowledged
        # and committed every row; otherwise no row of the call is ever applied.
        publisher.publish_atomically(
            [(topic, partition, payload, headers) for partition, headers, payload in records],
            store_config.publish_timeout_seconds,
        )
        log.debug(
            "published %d rows of %s in %d batches",
            len(data),
            view,
            len(records),
            extra={"event": "rows_published", "feature_view": view, "rows": len(data)},
        )
        if progress:
            progress(len(data))

    async def online_write_batch_async(
        self,
        config: RepoConfig,
        table: FeatureView,
        data: FeastRows,
        progress: Callable[[int], Any] | None,
    ) -> None:
        await asyncio.to_thread(self.online_write_batch, config, table, data, progress)

    def update(
        self,
        config: RepoConfig,
        tables_to_delete: Sequence[FeatureView],
        tables_to_keep: Sequence[FeatureView],
        entities_to_delete: Sequence[Entity],
        entities_to_keep: Sequence[Entity],
        partial: bool,
    ) -> None:
        """``feast apply``: create topics for kept views, replicate removal of the others."""
        topology = self._topology(config)
        versioning = _versioning(config)
        views = [feast_layout.redis_view_name(t, versioning) for t in tables_to_keep]
        topics = [topology.topic_for(v) for v in views]
        self._publisher_with_topics(topology, config.online_store, topics)
        self._publish_deletions(config, tables_to_delete)

    def teardown(
        self, config: RepoConfig, tables: Sequence[FeatureView], entities: Sequence[Entity]
    ) -> None:
        """``feast teardown``: every view's rows leave every region."""
        self._publish_deletions(config, tables)
        if self._publisher is not None:
            self._publisher.close()
            self._publisher = None

    def _publish_deletions(self, config: RepoConfig, tables: Sequence[FeatureView]) -> None:
        if not tables:
            return
        topology = self._topology(config)
        records = []
        for table in tables:
            view = feast_layout.redis_view_name(table, _versioning(config))
            topic = topology.topic_for(view)
            self._publisher_with_topics(topology, config.online_store, [topic])
            marker = feast_layout.delete_view(table, view, config.project, time.time_ns())
            headers, payload = wire.encode_delete_view(marker)
            # Into every partition, so each deletion is ordered after that partition's rows.
            records += [(topic, p, payload, headers) for p in range(topology.kafka.partitions)]
            log.info("replicating removal of feature view %s", view)
        publisher = self._publisher_with_topics(topology, config.online_store, [])
        publisher.publish_atomically(records, config.online_store.publish_timeout_seconds)

    # Helpers ----------------------------------------------------------------------------
    def _topology(self, config: RepoConfig) -> Topology:
        topology = config.online_store.topology_config()
        if topology.project != config.project:
            raise ConfigError(
                f"feature_store.yaml project {config.project!r} differs from the topology's "
                f"project {topology.project!r}: regions would not subscribe to these rows"
            )
        return topology

    def _schema_gate(self, topology: Topology) -> SchemaGate:
        with self._lazy:
            if self._gate is None or self._gate.topology is not topology:
                self._gate = SchemaGate(topology)
            return self._gate

    def _publisher_with_topics(
        self, topology: Topology, store: ReplicatingOnlineStoreConfig, topics: list[str]
    ) -> KafkaPublisher:
        with self._lazy:
            if self._publisher is None:
                client_id = primary_client_id(topology)
                timeout_ms = int(store.publish_timeout_seconds * 1000)
                self._publisher = KafkaPublisher(
                    client_config(topology, "primary"),
                    client_id=client_id,
                    transactional_id=store.transactional_id or f"{client_id}-{uuid.uuid4().hex}",
                    compression=topology.kafka.compression,
                    options={
                        "transaction.timeout.ms": timeout_ms,
                        "delivery.timeout.ms": timeout_ms,
                    },
                )
            publisher = self._publisher
        publisher.ensure_topics(
            topics,
            topology.kafka.partitions,
            topology.kafka.replication_factor,
            retention_ms=topology.kafka.retention_ms,
        )
        return publisher

    def _registry_version(self, config: RepoConfig) -> str:
        """Digest of the local registry file, re-read when it changes; '' when not local."""
        path = Path(str(config.registry.path))
        if not path.is_absolute() and config.repo_path is not None:
            path = Path(config.repo_path) / path
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return ""
        if mtime != self._registry_digest[0]:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
            self._registry_digest = (mtime, digest)
        return self._registry_digest[1]


def _versioning(config: RepoConfig) -> bool:
    return bool(getattr(config.registry, "enable_online_feature_view_versioning", False))
