"""``takeover``: seconds from ``kill -9`` of one of a region's two workers until the survivor
has applied a record on every partition, the dead worker's included.

Two ``replicator worker --region R`` processes share the region's consumer group (a new one
per run) and split its partitions. Once both hold partitions and have applied a warm-up
record on every partition, one is killed with SIGKILL, one record per partition is published
at once, and the region's Redis is polled every 5 ms until every one of those keys exists.
The survivor applies its own partitions at once; the dead worker's wait until the group's
session timeout (``worker.session_timeout_seconds``) expires and the survivor is assigned
them. Median of 3 runs. Target: <= 5 s (librdkafka's default session timeout alone is 45 s).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from confluent_kafka.admin import AdminClient

from benchmarks import processes
from benchmarks.context import Context
from benchmarks.dataset import FastRows
from benchmarks.processes import wait_until
from benchmarks.project import BenchProject
from benchmarks.report import Check, Result, median
from replicator.adapters.kafka_config import client_config

NAME = "takeover"
TARGET_SECONDS = 5.0
ENTITIES_PER_WAVE = 120
"""Enough entities that every partition gets at least one record."""


def run(ctx: Context) -> list[Result]:
    runs = 2 if ctx.quick else 3
    region = ctx.replica()
    with BenchProject(ctx.config_path, "takeover") as project:
        project.register()
        rows = FastRows(project.name, project.view_name)
        seconds = []
        for i in range(runs):
            elapsed = _one_run(project, rows, region, i)
            seconds.append(elapsed)
            ctx.progress(f"takeover: run {i + 1}/{runs}: {elapsed:.2f} s")
    value = median(seconds)
    session = project.topology.worker.session_timeout_seconds
    return [
        Result(
            name=NAME,
            unit="s",
            value=value,
            target=f"<= {TARGET_SECONDS:.0f} s",
            checks=[Check("kill -9 to every partition applied (s)", value, "<=", TARGET_SECONDS)],
            baselines={"librdkafka default session timeout (s)": 45.0},
            figures={"seconds_per_run": [round(s, 2) for s in seconds]},
            params={
                "runs": runs,
                "statistic": "median",
                "region": region,
                "workers": 2,
                "partitions": project.partitions,
                "session_timeout_seconds": session,
                "probe_interval_ms": 5,
            },
        )
    ]


def _one_run(project: BenchProject, rows: FastRows, region: str, run: int) -> float:
    group_prefix = f"takeover{run}"
    env = {**os.environ, "REPLICATOR_WORKER__CONSUMER_GROUP_PREFIX": group_prefix}
    command = processes.replicator_command(project.topology_path, "worker", "--region", region)
    procs = []
    try:
        for n in (0, 1):
            log = project.workdir / f"{group_prefix}-{n}.log"
            procs.append(processes.start(command, log, env=env))
        group = f"{group_prefix}-{project.name}-{region}"
        admin = AdminClient(client_config(project.topology, "admin"))
        wait_until(lambda: _members_with_partitions(admin, group) == 2, 90, "both workers assigned")
        wait_until(
            _all_applied(project, rows, region, _publish(project, rows, run, 0)), 60, "warm-up"
        )
        procs[0].kill()  # SIGKILL: no LeaveGroup, no final commit
        procs[0].wait(10)
        began = time.perf_counter()
        applied = _all_applied(project, rows, region, _publish(project, rows, run, 1))
        wait_until(applied, 120, "the survivor to apply every partition", probe=0.005)
        return time.perf_counter() - began
    finally:
        processes.stop(procs)


def _publish(project: BenchProject, rows: FastRows, run: int, wave: int) -> range:
    """One record per partition of entities not written before; returns their ids."""
    first = (run * 2 + wave) * ENTITIES_PER_WAVE
    project.publish_entities(
        rows, ENTITIES_PER_WAVE, first=first, max_rows=ENTITIES_PER_WAVE, flush_seconds=30
    )
    return range(first, first + ENTITIES_PER_WAVE)


def _all_applied(
    project: BenchProject, rows: FastRows, region: str, ids: range
) -> Callable[[], bool]:
    client = project.admin(region)
    keys = [rows.key(i) for i in ids]
    return lambda: bool(client.exists(*keys) == len(keys))


def _members_with_partitions(admin: AdminClient, group: str) -> int:
    try:
        description = admin.describe_consumer_groups([group])[group].result(10)
    except Exception:  # the group does not exist yet: confluent_kafka raises KafkaException
        return 0
    return sum(1 for m in description.members if m.assignment.topic_partitions)
