"""Region snapshots and bootstrap (issue 9), on the real stack: Kafka, S3 and a Redis of the
test's own for the region that loses its data.

Each test has its own project, hence its own topic, consumer group, S3 prefix and Redis keys.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from confluent_kafka.admin import AdminClient, ConfigResource
from harness import ReplicatedProject, wait_for
from private_redis import PrivateRedis
from region_log import FIELDS, RegionLog

from replicator.adapters.kafka_config import client_config
from replicator.adapters.kafka_publisher import KafkaPublisher
from replicator.adapters.redis_state import field_owners, read_states, restore_states
from replicator.adapters.redis_store import RegionStore
from replicator.adapters.s3 import S3ObjectStore
from replicator.bootstrap import bootstrap_region
from replicator.config import Topology, load_topology
from replicator.core import version
from replicator.core.keys import manifest_key, row_versions_key, worker_stats_key
from replicator.core.wire import partition_for
from replicator.redrive import redrive_region
from replicator.snapshots import snapshot_ids, take_snapshot
from replicator.stack.kafka_security import grant_project

pytestmark = pytest.mark.slow


def _quiet(_: str) -> None:
    pass


def _lost_partitions(project: ReplicatedProject, server: PrivateRedis, region: str) -> int:
    value = server.admin.hget(worker_stats_key(region), "data_lost_partitions")
    return -1 if value is None else int(float(value))


def test_an_emptied_region_is_bootstrapped_from_a_snapshot_and_the_log_tail_while_its_worker_runs(
    topology: Topology, config_file: Path, tmp_path: Path
) -> None:
    project = ReplicatedProject(
        config_file, tmp_path, partitions=6, worker={"on_data_loss": "alert"}
    )
    region = project.topology.replica_regions[0]
    server = PrivateRedis(project, region, tmp_path / "stack")
    try:
        log = RegionLog(project, region)
        log.write(rounds=4)
        project.run_worker(log.worker())
        log.wait_committed_to_end()
        snapshot = take_snapshot(project.topology, region, progress=_quiet)
        assert snapshot.keys == 5 * log.partitions
        assert {p: o for (_, p), o in snapshot.offsets.items()} == log.written
        log.write(rounds=2)  # the log tail after the snapshot: v4, v5
        log.write(rounds=1, event_s=1_000_000_000)  # a backfill of older rows: must lose
        log.wait_committed_to_end()
        expected = project.feast_keys(server.admin)
        assert {h[FIELDS[0]] for h in expected.values()} == {b"v5"}
        # History before the snapshot is gone (retention): bootstrap does not need it.
        for (_, partition), offset in snapshot.offsets.items():
            log.delete_before(partition, offset)

        server.admin.flushall()  # the region's Redis comes back empty
        wait_for(
            lambda: _lost_partitions(project, server, region) == log.partitions,
            30,
            "the worker to report the lost data",
        )
        log.write(rounds=1)  # live rows (v7) arrive while the region is bootstrapped
        report = bootstrap_region(project.topology, region, progress=_quiet)

        assert report.snapshot == snapshot.id and report.skipped == []
        hashes = project.feast_keys(server.admin)
        assert len(hashes) == 5 * log.partitions
        assert {h[FIELDS[0]] for h in hashes.values()} == {b"v7"}
        # The marks are back: the worker commits again by itself.
        wait_for(
            lambda: _lost_partitions(project, server, region) == 0, 30, "the region to be whole"
        )
        log.wait_committed_to_end()
    finally:
        project.stop()
        server.stop()


def test_bootstrap_falls_back_from_a_corrupt_snapshot_and_names_a_log_truncated_past_them(
    project_log: tuple[ReplicatedProject, RegionLog],
) -> None:
    project, log = project_log
    region = log.region
    worker = project.run_worker(log.worker())
    log.write(rounds=2)
    log.wait_committed_to_end()
    older = take_snapshot(project.topology, region, progress=_quiet)
    log.write(rounds=2)
    log.wait_committed_to_end()
    newer = take_snapshot(project.topology, region, progress=_quiet)
    worker.stop()
    store = S3ObjectStore.at(project.topology.region(region).s3)
    assert snapshot_ids(store, project.name, region)[0] == [newer.id, older.id]
    store.put(newer.chunks[0]["key"], b"not what was written")

    report = bootstrap_region(project.topology, region, progress=_quiet)
    assert report.snapshot == older.id
    assert "does not match its checksum" in report.skipped[0]

    log.delete_before(partition=3, offset=log.written[3])  # past both snapshots' offsets
    command = [sys.executable, "-m", "replicator.cli", "--config", str(project.topology_path)]
    done = subprocess.run(
        [*command, "region", "bootstrap", region], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 5, done.stdout  # EXIT_INCOMPLETE
    assert "no usable snapshot" in done.stderr
    assert f"{log.topic}[3]: offsets " in done.stderr
    assert "does not match its checksum" in done.stderr


@pytest.fixture
def project_log(config_file: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    project = ReplicatedProject(config_file, tmp_path, partitions=6)
    yield project, RegionLog(project, project.topology.replica_regions[0])
    project.stop()


def test_topics_the_publisher_creates_keep_records_for_the_configured_retention(
    config_file: Path, tmp_path: Path
) -> None:
    project = ReplicatedProject(config_file, tmp_path, partitions=2)
    kafka = project.topology.kafka
    topic = project.topology.topic_for("retention_probe")
    primary = client_config(project.topology, "primary")
    publisher = KafkaPublisher(primary, client_id=f"{project.name}-retention")
    try:
        publisher.ensure_topics(
            [topic], kafka.partitions, kafka.replication_factor, retention_ms=kafka.retention_ms
        )
    finally:
        publisher.close()
    admin = AdminClient(client_config(project.topology, "admin"))
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    configs = admin.describe_configs([resource])[resource].result(30)
    assert configs["retention.ms"].value == str(7 * 24 * 3600 * 1000)  # 7 days by default


def test_rows_refused_for_an_unknown_schema_are_redriven_once_the_schema_arrives(
    config_file: Path, tmp_path: Path
) -> None:
    project = ReplicatedProject(
        config_file, tmp_path, partitions=6, worker={"schema_wait_seconds": 0.2}
    )
    raw = yaml.safe_load(project.topology_path.read_text())
    raw["kafka"]["dead_letter_topic"] = f"{project.name}.dead-letter"  # this test's own
    project.topology_path.write_text(yaml.safe_dump(raw))
    project.topology = load_topology(project.topology_path)
    grant_project(project.topology)  # the workers may write this dead-letter topic
    try:
        log = RegionLog(project, project.topology.replica_regions[0])
        region = log.region
        s3 = project.topology.region(region).s3
        bucket = S3ObjectStore.at(s3)
        manifest = bucket.get(manifest_key(project.name))
        assert manifest is not None
        bucket.put(manifest_key(project.name), b'{"version": "none", "feature_views": {}}')
        log.write(rounds=2)
        worker = project.run_worker(log.worker())
        log.wait_committed_to_end()  # every record dead-lettered, then committed
        assert worker.worker.stats.dead_letters == 2 * log.partitions
        admin = project.admin(region)
        assert project.feast_keys(admin) == {}

        bucket.put(manifest_key(project.name), manifest)  # the schema arrives
        redriven, report = redrive_region(project.topology, region, progress=_quiet)

        assert redriven == 2 * log.partitions
        assert report.skipped_bad == 0
        hashes = project.feast_keys(admin)
        assert len(hashes) == 5 * log.partitions
        assert {h[FIELDS[0]] for h in hashes.values()} == {b"v1"}
    finally:
        project.stop()


def test_a_restore_keeps_views_the_region_holds_newer_and_restores_the_others(
    config_file: Path, tmp_path: Path
) -> None:
    """A key shared by two views: the live worker wrote view B newer than the snapshot
    while view A is only in the snapshot. The restore writes A's fields, keeps B's."""
    project = ReplicatedProject(config_file, tmp_path, partitions=6)
    region = project.topology.replica_regions[0]
    a, b = f"{project.name}_a", f"{project.name}_b"
    key = b"shared-entity" + project.name.encode()
    partition = partition_for(key, 6)
    v_a, v_b = row_versions_key(a, partition), row_versions_key(b, partition)
    field_a, field_b = b"\x0a\x00\x00\x00", b"\x0b\x00\x00\x00"

    def stamp(event_s: int) -> bytes:
        return version.encode(version.Version(event_s, 0))

    writer = RegionStore(
        project.topology.region(region).redis, project.topology.region(region).redis.writer
    )
    client = writer.client
    try:
        snapshot_hash = {
            f"_ts:{a}".encode(): b"ts-a-1",
            field_a: b"a-1",
            f"_ts:{b}".encode(): b"ts-b-1",
            field_b: b"b-1",
        }
        client.hset(key, mapping=snapshot_hash)
        client.hset(v_a, key, stamp(10))
        client.hset(v_b, key, stamp(10))
        states = read_states(client, [key], 6)
        client.delete(key, v_a, v_b)  # the region lost it; then the live worker wrote B anew
        client.hset(key, mapping={f"_ts:{b}".encode(): b"ts-b-3", field_b: b"b-3"})
        client.hset(v_b, key, stamp(30))
        owners = field_owners(
            {
                "views": {
                    a: {"features": {"fa": field_a.hex()}},
                    b: {"features": {"fb": field_b.hex()}},
                }
            }
        )

        counts = restore_states(client, states, owners)

        assert counts.mixed == 1 and counts.unowned_fields == 0
        assert client.hgetall(key) == {
            f"_ts:{a}".encode(): b"ts-a-1",
            field_a: b"a-1",
            f"_ts:{b}".encode(): b"ts-b-3",
            field_b: b"b-3",
        }
        assert client.hget(v_a, key) == stamp(10)
        assert client.hget(v_b, key) == stamp(30)
    finally:
        client.delete(key, v_a, v_b)
        writer.close()
