"""A region through worker churn, crashes and data loss (issue 9), on the real stack.

Each test has its own project, hence its own topic, consumer group and Redis keys.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from harness import ReplicatedProject, WorkerThread, wait_for
from private_redis import PrivateRedis
from region_log import FIELDS, OffsetWatcher, RegionLog

from replicator.adapters.kafka_config import client_config
from replicator.adapters.kafka_source import KafkaSource
from replicator.assembly import region_pattern
from replicator.config import Topology
from replicator.core.keys import worker_stats_key
from replicator.errors import ConfigError
from replicator.rebuild import rebuild_region

pytestmark = pytest.mark.slow


@pytest.fixture
def project(topology: Topology, config_file: Path, tmp_path: Path) -> Iterator[ReplicatedProject]:
    replicated = ReplicatedProject(config_file, tmp_path, partitions=6)
    yield replicated
    replicated.stop()


@pytest.fixture
def log(project: ReplicatedProject) -> RegionLog:
    return RegionLog(project, project.topology.replica_regions[0])


def _assigned(thread: WorkerThread) -> int:
    return len(getattr(thread.worker.source, "assigned", ()))


def test_committed_offsets_never_move_backwards_as_workers_join_and_leave(
    project: ReplicatedProject, log: RegionLog
) -> None:
    watcher = OffsetWatcher(log.committed)
    try:
        log.write(rounds=30)
        a = project.run_worker(log.worker())
        log.wait_committed_to_end()
        b = project.run_worker(log.worker())
        wait_for(lambda: _assigned(a) and _assigned(b), 60, "the second worker to get a share")
        log.write(rounds=30)  # applied by both, each on its own partitions
        log.wait_committed_to_end()
        b.stop()
        wait_for(lambda: _assigned(a) == log.partitions, 60, "the first worker to take all back")
        a.stop()
    finally:
        watcher.stop()
    assert watcher.reads > 10, "the watcher should have seen the offsets many times"
    assert watcher.latest == log.written
    assert watcher.backwards == [], "committed offsets moved backwards (partition, from, to)"


def test_a_killed_workers_partitions_are_applied_by_the_survivor_within_seconds(
    project: ReplicatedProject, log: RegionLog
) -> None:
    log.write(rounds=3)
    victim = project.start_worker_process(log.region)
    wait_for(lambda: log.committed(), 60, "the first worker to apply")
    survivor = project.run_worker(log.worker())
    wait_for(
        lambda: 0 < _assigned(survivor) < log.partitions, 60, "the two workers to share the log"
    )
    log.wait_committed_to_end()
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(10)
    log.write(rounds=1)  # one record on every partition, the dead worker's included
    # librdkafka's default session timeout would leave them idle for 45 s.
    wait_for(
        lambda: log.committed() == log.written, 20, "the survivor to apply the dead one's share"
    )
    assert _assigned(survivor) == log.partitions


def test_a_session_timeout_the_broker_refuses_stops_the_worker_naming_the_setting(
    project: ReplicatedProject, log: RegionLog
) -> None:
    # Below any broker's group.min.session.timeout.ms (the local stack's is 1 s).
    source = KafkaSource(
        client_config(project.topology, "worker", region=log.region),
        group_id=log.group,
        pattern=region_pattern(project.topology, log.region),
        options={"session.timeout.ms": 500, "heartbeat.interval.ms": 100},
    )
    refused: list[ConfigError] = []

    def poll() -> bool:
        try:
            source.poll_batch(10, 0.2)
        except ConfigError as exc:
            refused.append(exc)
        return bool(refused)

    try:
        wait_for(poll, 30, "the broker to refuse the session timeout")
    finally:
        source.close()
    assert "group.min.session.timeout.ms" in str(refused[0])
    assert "worker.session_timeout_seconds" in str(refused[0])


def test_redis_of_the_local_stack_keeps_what_it_acknowledged_through_kill_9(
    project: ReplicatedProject, tmp_path: Path
) -> None:
    region = project.topology.replica_regions[0]
    server = PrivateRedis(project, region, tmp_path / "stack")
    try:
        key = f"{project.name}:written-before-the-crash".encode()
        server.admin.set(key, b"kept")
        # appendfsync everysec: the write reaches the file within about a second.
        wait_for(lambda: server.aof_holds(key), 10, "the write to reach the append-only file")
        server.kill()
        server.start()
        assert server.admin.get(key) == b"kept"
    finally:
        server.stop()


def test_rows_the_worker_applied_survive_kill_9_of_the_regions_redis(
    topology: Topology, config_file: Path, tmp_path: Path
) -> None:
    """The apply script's writes reach the append-only file as MULTI/EXEC blocks; Redis
    replays those as the ``default`` user and dropped every one while ``default`` had no
    rights (redis/redis#14541): a restart lost every applied row, while the worker's applied
    marks (plain writes) survived and vouched for them. No worker runs across the restart,
    so nothing re-applies what the restart loses."""
    project = ReplicatedProject(config_file, tmp_path, partitions=6)
    region = project.topology.replica_regions[0]
    server = PrivateRedis(project, region, tmp_path / "stack")
    try:
        log = RegionLog(project, region)
        log.write(rounds=10)
        worker = project.run_worker(log.worker())
        log.wait_committed_to_end()
        worker.stop()
        before = project.feast_keys(server.admin)
        assert len(before) == 5 * log.partitions
        wait_for(
            lambda: all(server.aof_holds(key) for key in before),
            10,
            "every applied row to reach the append-only file",
        )
        server.kill()
        server.start()
        assert project.feast_keys(server.admin) == before
    finally:
        project.stop()
        server.stop()


def _reported(client: redis.Redis, region: str, field: str) -> int | None:
    """A counter the worker publishes next to the data (what `make demo` and the checker
    read), or None before the worker wrote it."""
    value = client.hget(worker_stats_key(region), field)
    return None if value is None else int(float(value))


@pytest.mark.parametrize("policy", ["replay", "alert"])
def test_a_region_whose_redis_lost_committed_rows_replays_them_or_alerts(
    topology: Topology, config_file: Path, tmp_path: Path, policy: str
) -> None:
    project = ReplicatedProject(
        config_file, tmp_path, partitions=6, worker={"on_data_loss": policy}
    )
    region = project.topology.replica_regions[0]
    server = PrivateRedis(project, region, tmp_path / "stack")
    try:
        log = RegionLog(project, region)
        log.write(rounds=10)
        project.run_worker(log.worker())
        log.wait_committed_to_end()
        admin = server.admin
        before = project.feast_keys(admin)
        assert len(before) == 5 * log.partitions
        admin.flushall()  # as a restart from an old snapshot or an empty replica would
        if policy == "replay":
            wait_for(lambda: project.feast_keys(admin) == before, 60, "the region to heal")
            assert _reported(admin, region, "data_loss_detected") == log.partitions
            return
        _alerts_and_waits_for_a_rebuild(project, log, admin)
    finally:
        project.stop()
        server.stop()


def _alerts_and_waits_for_a_rebuild(
    project: ReplicatedProject, log: RegionLog, admin: redis.Redis
) -> None:
    region = log.region
    wait_for(
        lambda: _reported(admin, region, "data_lost_partitions") == log.partitions,
        30,
        "the worker to report every partition as missing rows",
    )
    committed = log.committed()
    log.write(rounds=1)  # applied, but the lost partitions are not committed
    wait_for(
        lambda: all(h[FIELDS[0]] == b"v10" for h in project.feast_keys(admin).values()),
        30,
        "the new rows to be applied",
    )
    assert log.committed() == committed
    rebuild_region(project.topology, region, progress=lambda _: None)
    wait_for(
        lambda: _reported(admin, region, "data_lost_partitions") == 0,
        30,
        "the worker to see the region whole again",
    )
    log.write(rounds=1)
    log.wait_committed_to_end()
    hashes = project.feast_keys(admin)
    assert len(hashes) == 5 * log.partitions
    assert {h[FIELDS[0]] for h in hashes.values()} == {b"v11"}


def test_rebuild_over_a_truncated_log_fails_and_names_what_is_missing(
    project: ReplicatedProject, log: RegionLog
) -> None:
    log.write(rounds=6)
    log.delete_before(partition=2, offset=4)  # as retention would
    command = [sys.executable, "-m", "replicator.cli", "--config", str(project.topology_path)]
    done = subprocess.run(
        [*command, "region", "rebuild", log.region], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 5, done.stdout  # EXIT_INCOMPLETE
    assert f"{log.topic}[2]: offsets 0 to 3 (4 records)" in done.stderr
    assert "INCOMPLETE" in done.stderr
    # what the log still holds was applied: partition 2's newest rows are there
    hashes = project.feast_keys(project.admin(log.region))
    assert hashes[log.key(2, 0)][FIELDS[0]] == b"v5"


def test_a_worker_whose_clock_runs_an_hour_slow_refuses_no_current_rows(
    project: ReplicatedProject, log: RegionLog
) -> None:
    now_ns = time.time_ns()
    log.write(rounds=2, event_s=now_ns // 1_000_000_000, published_ns=now_ns)
    slow = project.run_worker(log.worker(clock=lambda: time.time_ns() - 3600 * 1_000_000_000))
    log.wait_committed_to_end()
    assert slow.worker.stats.dead_letters == 0
    hashes = project.feast_keys(project.admin(log.region))
    assert len(hashes) == 5 * log.partitions
    assert {h[FIELDS[0]] for h in hashes.values()} == {b"v1"}
