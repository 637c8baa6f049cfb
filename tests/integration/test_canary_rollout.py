"""Canary rollouts of registry versions, judged by the real consistency checker."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from harness import ReplicatedProject
from waiting import wait_until

from replicator.config import Topology
from replicator.registry_sync import RegistryReleaser
from replicator.rollout import CheckerHealth, RegistryArtifact, RolloutLog, Rollouts

pytestmark = pytest.mark.slow


@pytest.fixture
def project(topology: Topology, config_file: Path, tmp_path: Path) -> Iterator[ReplicatedProject]:
    replicated = ReplicatedProject(config_file, tmp_path)
    replicated.generate_data(n_cards=100, n_merchants=20, days=2)
    yield replicated
    replicated.stop()


def _checker(project: ReplicatedProject, tmp_path: Path) -> CheckerHealth:
    """``consistency check --once --json`` with a 3 s staleness bound and nothing else."""
    settings = tmp_path / "consistency.yaml"
    settings.write_text(
        yaml.safe_dump(
            {
                "consistency": {
                    "bounds": {
                        "max_staleness_seconds": 3,
                        "max_divergence_ratio": None,
                        "max_freshness_seconds": None,
                    }
                }
            }
        )
    )
    return CheckerHealth(
        [
            sys.executable,
            "-m",
            "consistency.cli",
            "--config",
            str(settings),
            "--topology",
            str(project.topology_path),
            "check",
            "--once",
            "--json",
            "--divergence",
            "none",
        ]
    )


def _new_version(project: ReplicatedProject, primary, tag: str) -> str:  # type: ignore[no-untyped-def]
    """Change the definitions at the primary; return the registry version it makes."""
    objects = project.feature_objects()
    for view in (o for o in objects if o.name == "merchant_risk"):
        view.tags["rollout"] = tag
    primary.apply(objects)
    releaser = RegistryReleaser(project.topology)
    return releaser.snapshot(project.repo / "data" / "registry.db").version


def test_rollout_reaches_every_region_in_order_then_stops_and_rolls_back_on_a_bad_canary(
    project: ReplicatedProject, tmp_path: Path
) -> None:
    primary = project.primary_store()
    primary.apply(project.feature_objects())
    project.sync_registry()
    project.start_workers()
    project.start_heartbeats(0.5)  # stopped with the project
    health = _checker(project, tmp_path)
    canary = project.topology.replica_regions[0]
    wait_until(lambda: health.check(canary)[0], 60, "the checker to see every region in bounds")
    artifact = RegistryArtifact(RegistryReleaser(project.topology))
    rollouts = Rollouts(
        project.topology,
        artifact,
        health,
        RolloutLog(project.topology),
        say=lambda _: None,
        check_interval=1,
    )

    # A healthy rollout: canary first, watched, then every other region.
    good = _new_version(project, primary, "good")
    done = rollouts.start(good, canary, wait_seconds=3)
    assert done.status == "completed", done.steps
    assert done.reached == [canary, *(r for r in project.topology.regions if r != canary)]
    assert {artifact.live_version(r) for r in project.topology.regions} == {good}
    recorded = RolloutLog(project.topology).load(done.id)
    assert recorded.status == "completed" and len(recorded.steps) == len(done.steps)

    # The canary's worker dies: its staleness passes the bound while it is watched.
    bad = _new_version(project, primary, "bad")
    next(w for w in project.workers if w.worker.region == canary).stop()
    failed = rollouts.start(bad, canary, wait_seconds=30)
    assert failed.status == "rolled_back", failed.steps
    assert failed.reached == [canary]
    violated = [s for s in failed.steps if s["outcome"] == "violated"]
    assert violated and "staleness" in violated[0]["detail"]
    assert {artifact.live_version(r) for r in project.topology.regions} == {good}
    assert RolloutLog(project.topology).load().status == "rolled_back"
