"""``worker_cold_start``: seconds from ``replicator worker`` process start to first row applied.

1,000 rows are published first through the primary's Feast write path. Each run starts
``.venv/bin/replicator --log-format json worker --region R`` with ``subprocess.Popen`` under a
consumer group of its own (``REPLICATOR_WORKER__CONSUMER_GROUP_PREFIX``, so it starts from
the first offset like a new region), and polls the region's Redis every 2 ms for the key of
entity 0. The region's copy of the project's keys is deleted before each run. Median of 5.

The worker's JSON log splits the time: interpreter and imports up to "worker ... started",
consumer-group join up to "assigned", then manifest read, fetch and apply up to "first batch
applied" (log timestamps have millisecond resolution). Target: < 1 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks import processes
from benchmarks.context import Context
from benchmarks.dataset import entity_key, feast_rows
from benchmarks.project import BenchProject
from benchmarks.report import ROOT, Check, Result, median

NAME = "worker_cold_start"
TARGET_SECONDS = 1.0
PUBLISHED_ROWS = 1000


def run(ctx: Context) -> list[Result]:
    runs = 3 if ctx.quick else 5
    region = ctx.replica()
    with BenchProject(ctx.config_path, "cold") as project:
        project.register()
        key = _publish(project)
        seconds: list[float] = []
        phases: list[dict[str, float]] = []
        for i in range(runs):
            project.clear_region(region)
            elapsed, phase = _one_start(project, region, key, f"cold{i}")
            seconds.append(elapsed)
            phases.append(phase)
            ctx.progress(f"worker_cold_start: run {i + 1}/{runs}: {elapsed:.3f} s {phase}")
    imports = _import_seconds()
    value = median(seconds)
    phase_names = sorted({name for phase in phases for name in phase})
    return [
        Result(
            name=NAME,
            unit="s",
            value=value,
            target=f"< {TARGET_SECONDS:.0f} s",
            checks=[Check("seconds to first row", value, "<", TARGET_SECONDS)],
            figures={
                "seconds_per_run": [round(s, 3) for s in seconds],
                "phases_median_s": {
                    name: round(median([p[name] for p in phases if name in p]), 3)
                    for name in phase_names
                },
                "python_import_only_s": round(imports, 3),
            },
            params={
                "runs": runs,
                "statistic": "median",
                "region": region,
                "pre_published_rows": PUBLISHED_ROWS,
                "command": "replicator --log-format json worker --region R",
                "probe_interval_ms": 2,
            },
        )
    ]


def _publish(project: BenchProject) -> bytes:
    from feast.infra.online_stores.helpers import _redis_key

    from replicator.feast_publisher import ReplicatingOnlineStore

    store = ReplicatingOnlineStore()
    rows: list[Any] = feast_rows(PUBLISHED_ROWS)
    store.online_write_batch(project.repo_config, project.feature_view, rows, None)
    return bytes(_redis_key(project.name, entity_key(0), entity_key_serialization_version=3))


def _one_start(
    project: BenchProject, region: str, key: bytes, group_prefix: str
) -> tuple[float, dict[str, float]]:
    admin = project.admin(region)
    log_path = project.workdir / f"{group_prefix}.log"
    env = {**os.environ, "REPLICATOR_WORKER__CONSUMER_GROUP_PREFIX": group_prefix}
    command = processes.replicator_command(
        project.topology_path, "--log-format", "json", "worker", "--region", region
    )
    began_wall = time.time()
    began = time.perf_counter()
    proc = processes.start(command, log_path, env=env)
    try:
        deadline = began + 60
        while not admin.exists(key):
            if proc.poll() is not None:
                tail = processes.tail(log_path, 1500)
                raise RuntimeError(f"worker exited with {proc.returncode}: {tail}")
            if time.perf_counter() > deadline:
                raise RuntimeError(f"no row applied within 60 s: {processes.tail(log_path, 1500)}")
            time.sleep(0.002)
        elapsed = time.perf_counter() - began
    finally:
        processes.stop([proc])
    return elapsed, _phases(log_path, began_wall)


def _phases(log_path: Path, began_wall: float) -> dict[str, float]:
    """Seconds from process start to each milestone the worker logs."""
    marks = {
        "worker_started": lambda e: e.get("event") == "worker_started",
        "partitions_assigned": lambda e: e.get("event") == "assigned",
        "first_batch_applied": lambda e: e.get("event") == "first_batch_applied",
    }
    out: dict[str, float] = {}
    for line in log_path.read_text(errors="replace").splitlines():
        try:
            entry: dict[str, Any] = json.loads(line)
            ts = datetime.fromisoformat(entry["ts"].replace("Z", "+00:00")).timestamp()
        except (ValueError, KeyError, TypeError):
            continue
        for name, matches in marks.items():
            if name not in out and matches(entry):
                out[name] = round(ts - began_wall, 3)
    return out


def _import_seconds(runs: int = 3) -> float:
    """Interpreter start plus the worker command's imports, nothing else."""
    code = "import replicator.cli, replicator.assembly"
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
        samples.append(time.perf_counter() - started)
    return median(samples)
