"""Runs faults on the suite's cluster and judges each run.

One run = a fresh project (its own topics, keys, consumer groups), the product started as
an operator would, the workload, one fault from the nemesis, a tail of writes after healing,
then waiting for convergence and the checker's recovery, then the checkers. The history is
kept in ``chaos-runs/<stamp>-<fault>/history.json`` with the seed and commit.
"""

from __future__ import annotations

import logging
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos import checkers, probes
from chaos.checkers import Cell
from chaos.cluster import (
    CHECK_INTERVAL_S,
    ROOT,
    VIOLATE_AFTER,
    ChaosCluster,
    Deployment,
    StatusPoller,
    staleness_bound,
    wait_until,
)
from chaos.history import History
from chaos.nemesis import Fault, Nemesis, World
from chaos.workload import Workload
from replicator.adapters.kafka_config import client_config

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 120.0
TAIL_S = 10.0
CONVERGE_LIMIT_S = 120.0
RECOVER_LIMIT_S = 90.0
RUNS_DIR = ROOT / "chaos-runs"


@dataclass
class RunResult:
    fault: Fault
    seed: int
    cells: dict[str, Cell] = field(default_factory=dict)
    error: str = ""
    seconds: float = 0.0
    history_path: Path | None = None
    history: History | None = None

    @property
    def ok(self) -> bool:
        return not self.error and all(c.ok is not False for c in self.cells.values())


def commit_id() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    head = git("rev-parse", "--short=12", "HEAD") or "unknown"
    return head + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def run_fault(
    cluster: ChaosCluster, fault: Fault, seed: int, commit: str, progress: Any = print
) -> RunResult:
    from benchmarks.project import BenchProject

    began = time.monotonic()
    result = RunResult(fault, seed)
    workdir = RUNS_DIR / f"{time.strftime('%Y%m%d-%H%M%S')}-{fault.name}"
    workdir.mkdir(parents=True, exist_ok=True)
    history = History(fault.name, seed, commit)
    with BenchProject(cluster.topology_path, "chaos") as project:
        project.register()
        deployment = Deployment(cluster, project.topology_path, workdir)
        poller = StatusPoller(history)
        workload = Workload(history, project.repo_config, project.feature_view, seed=seed)
        nemesis: Nemesis | None = None
        try:
            deployment.start_all()
            poller.start()
            workload.start()
            regions = list(project.topology.regions)
            ready = wait_until(lambda: _all_ok(history, regions), READY_TIMEOUT_S)
            history.event("ready", "" if ready is not None else "checker never all ok")
            progress(f"  {fault.name}: ready after {ready or READY_TIMEOUT_S:.0f} s, injecting")
            world = World(cluster, deployment, history, project, seed)
            nemesis = Nemesis(fault, world)
            nemesis.start()
            nemesis.wait(fault.hold_seconds + 600)
            if nemesis.error is not None:
                result.error = f"nemesis: {type(nemesis.error).__name__}: {nemesis.error}"
            time.sleep(TAIL_S)
            workload.stop()
            history.event("workload-stop")
            progress(f"  {fault.name}: healed, waiting for convergence")
            converged = wait_until(lambda: _converged(project), CONVERGE_LIMIT_S, step=1.0)
            end = history.first("fault-end") or history.now()
            wait_until(
                lambda: _all_ok(history, regions, after=end),
                max(0.0, RECOVER_LIMIT_S - (history.now() - end)),
            )
            result.cells = _judge(project, fault, history, converged, regions)
        except Exception as exc:  # the run's error is a FAIL in the table, with its text
            log.exception("run %s failed", fault.name)
            result.error = f"{type(exc).__name__}: {exc}"
        finally:
            if nemesis is not None:
                nemesis.heal()
            for name, status in deployment.exited().items():
                history.event("note", f"{name} had exited with status {status}")
            workload.stop()
            poller.stop()
            deployment.stop_all()
            cluster.heal_network()
            cluster.restart_stopped()
    result.history = history
    result.history_path = workdir / "history.json"
    history.save(result.history_path)
    result.seconds = time.monotonic() - began
    return result


def _latest(history: History) -> Any:
    return next((s for s in reversed(history.samples) if s.regions is not None), None)


def _all_ok(history: History, regions: list[str], after: float = 0.0) -> bool:
    """The latest answer says ``ok`` with a measured staleness for every region."""
    sample = _latest(history)
    return (
        sample is not None
        and sample.at >= after
        and all(sample.regions.get(r) == "ok" for r in regions)
        and all(isinstance(sample.staleness.get(r), int | float) for r in regions)
    )


def _converged(project: Any) -> bool:
    keys = probes.region_keys(project)
    primary = keys[project.topology.primary_region]
    return bool(primary) and all(k == primary for k in keys.values())


def _judge(
    project: Any, fault: Fault, history: History, converged: float | None, regions: list[str]
) -> dict[str, Cell]:
    keys = probes.region_keys(project)
    primary = keys[project.topology.primary_region]
    entities = sorted({e for op in history.ops for e in op.entities})
    final = {r: probes.counters(project, k, entities) for r, k in keys.items()}
    diffs = {
        r: probes.diff_against(primary, k)
        for r, k in keys.items()
        if r != project.topology.primary_region
    }
    dlq = probes.dead_letters(
        client_config(project.topology, "admin"),
        project.topology.kafka.dead_letter_topic,
        project.topic,
    )
    expected = regions if "*" in fault.flags else list(fault.flags)
    # Bound + hysteresis (violate_after rounds) + one round in flight + 2 s to read it.
    deadlines = {
        r: fault.detect_within or staleness_bound(r) + (VIOLATE_AFTER + 1) * CHECK_INTERVAL_S + 2.0
        for r in expected
    }
    start, end = history.first("fault-start"), history.first("fault-end")
    ready = history.first("ready") or 0.0
    return {
        "no lost writes": checkers.lost_writes(history, final),
        "identical": checkers.identical(diffs, len(primary)),
        "converge": checkers.converge(converged, CONVERGE_LIMIT_S),
        "flagged": checkers.flagged(history, expected, deadlines, start),
        "recovered": checkers.recovered(history, regions, end, RECOVER_LIMIT_S, expected),
        "no false alarm": checkers.false_alarms(
            history, [*expected, *fault.may_flag], ready, control=fault.name == "control"
        ),
        "dead letters": checkers.dead_letters(dlq, fault.hostile),
    }
