"""Wide feature views and hostile records on real services.

A Feast view of 5,000 or 20,000 features is written by Feast's own RedisOnlineStore into a
reference Redis and by the replicator's apply script into a region: the hashes must be
byte-identical. A 5,000-field record with valid headers, and a record Redis refuses for good
(WRONGTYPE), go through a running worker: neither holds the partition, later rows apply.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from confluent_kafka import Producer
from harness import ReferenceRedis, ReplicatedProject, dead_letter_reasons, primary_fingerprint

from replicator.adapters.kafka_config import client_config
from replicator.adapters.kafka_publisher import MAX_RECORD_BYTES
from replicator.adapters.redis_store import RegionStore, connect, feast_hashes
from replicator.config import Topology
from replicator.core import wire
from replicator.core.keys import NAMESPACE, row_versions_key
from replicator.core.records import ApplyOutcome, EncodedBatch, Row, RowBatch

pytestmark = pytest.mark.slow
PARTITIONS = 3


def _admin(topology: Topology, region: str) -> redis.Redis:
    endpoint = topology.region(region).redis
    return connect(endpoint, endpoint.admin)


def _forget(client: redis.Redis, *patterns: bytes) -> None:
    for pattern in patterns:
        keys = list(client.scan_iter(match=pattern, count=10_000))
        if keys:
            client.delete(*keys)


@pytest.mark.parametrize("width", [5_000, 20_000])
def test_a_wide_view_is_byte_identical_to_what_feast_writes(
    topology: Topology, reference: ReferenceRedis, tmp_path: Path, width: int
) -> None:
    from feast import Entity, FeatureView, Field, FileSource, RepoConfig, ValueType
    from feast.infra.online_stores.redis import RedisOnlineStore
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value
    from feast.types import Float64

    from replicator import feast_layout

    project = f"wide{uuid.uuid4().hex[:8]}"
    view = FeatureView(
        name=f"wide_{width}",
        entities=[Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)],
        schema=[Field(name=f"f{i}", dtype=Float64) for i in range(width)],
        source=FileSource(path="unused.parquet", timestamp_field="event_timestamp"),
        ttl=timedelta(days=1),
    )
    event = datetime(2026, 11, 1, tzinfo=UTC)
    data = [
        (
            EntityKey(join_keys=["driver_id"], entity_values=[Value(int64_val=d)]),
            {f"f{i}": Value(double_val=d + i / 7) for i in range(width)},
            event + timedelta(seconds=d),
            event,
        )
        for d in range(4)
    ]
    config = RepoConfig(
        project=project,
        provider="local",
        registry=str(tmp_path / "registry.db"),
        online_store={"type": "redis", "connection_string": reference.connection_string},
        entity_key_serialization_version=3,
    )
    RedisOnlineStore().online_write_batch(config, view, data, None)

    region = topology.replica_regions[-1]
    admin = _admin(topology, region)
    batches = feast_layout.encode_rows(
        data,
        project=project,
        view_name=view.name,
        fingerprint="wide",
        registry_version="",
        partitions=PARTITIONS,
        serialization_version=3,
        published_ns=0,
        max_rows=2,
        max_bytes=MAX_RECORD_BYTES,
    )
    endpoint = topology.region(region).redis
    try:
        with RegionStore(endpoint, endpoint.writer) as store:
            records = [
                EncodedBatch(wire.encode_rows(batch)[1], view.name, partition, offset)
                for offset, (partition, batch) in enumerate(batches)
            ]
            outcomes = store.apply(records)
        assert sum(o.applied for o in outcomes if isinstance(o, ApplyOutcome)) == len(data)
        expected = feast_hashes(reference.client, project)
        assert len(expected) == len(data)
        assert all(len(fields) == width + 1 for fields in expected.values())
        assert feast_hashes(admin, project) == expected
    finally:
        _forget(admin, b"*" + project.encode(), NAMESPACE + b"v:" + view.name.encode() + b":*")
        _forget(reference.client, b"*" + project.encode())
        admin.close()


def test_hostile_records_never_hold_the_partition(
    topology: Topology, config_file: Path, tmp_path: Path, reference: ReferenceRedis
) -> None:
    project = ReplicatedProject(config_file, tmp_path)
    project.generate_data(n_cards=60, n_merchants=30, days=2)
    admins = {region: _admin(topology, region) for region in topology.regions}
    outside = project.name + "_hostile"  # keys the project's convergence check does not scan
    wide_key = b"\x01\x00\x00\x00wide|" + outside.encode()
    string_key = b"\x01\x00\x00\x00string|" + outside.encode()
    try:
        primary, expected_store = project.feast_stores(reference)
        project.start_workers()
        topic = project.topology.topic_for("merchant_risk")
        fingerprint = primary_fingerprint(primary, "merchant_risk")
        for admin in admins.values():
            admin.set(string_key, b"not a hash")  # HSET on it fails: WRONGTYPE, every time

        def record(key: bytes, width: int) -> tuple[list[tuple[str, bytes]], bytes]:
            fields = tuple(b"%04d" % i for i in range(width))
            row = Row(key, b"\x08\x01", 1, 0, 0, 0, tuple(b"\x10\x01" for _ in fields))
            return wire.encode_rows(RowBatch("merchant_risk", fields, (row,), fingerprint))

        producer = Producer(client_config(project.topology, "primary"))
        for key, width in [(wide_key, 5_000), (string_key, 2)]:
            headers, payload = record(key, width)
            producer.produce(topic, value=payload, headers=headers, partition=0)
        producer.flush(10)
        later = project.fresh_rows("merchant_risk", 30, timedelta(hours=2))
        for store in (primary, expected_store):
            store.write_to_online_store("merchant_risk", later)

        project.wait_converged(project.feast_keys(reference.client))
        reasons = dead_letter_reasons(project.topology, topic, expect=len(topology.regions))
        for region, admin in admins.items():
            assert reasons[region] == ["rejected_by_store"], region  # the WRONGTYPE record
            assert admin.hlen(wide_key) == 5_001, region  # well-formed and wide: applied
    finally:
        project.stop()
        for admin in admins.values():
            admin.delete(wide_key, string_key)
            for partition in range(project.topology.kafka.partitions):
                admin.hdel(row_versions_key("merchant_risk", partition), wide_key, string_key)
            admin.close()
