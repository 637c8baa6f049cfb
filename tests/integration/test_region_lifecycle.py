"""A region through worker churn, crashes and data loss (issue 9), on the real stack.

Each test has its own project, hence its own topic, consumer group and Redis keys.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import ReplicatedProject, WorkerThread, wait_for
from private_redis import PrivateRedis
from region_log import OffsetWatcher, RegionLog, start_worker_process

from replicator.config import Topology

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
    victim = start_worker_process(project, log.region)
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
