"""A region through worker churn, crashes and data loss (issue 9), on the real stack.

Each test has its own project, hence its own topic, consumer group and Redis keys.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import ReplicatedProject, WorkerThread, wait_for
from region_log import OffsetWatcher, RegionLog

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
