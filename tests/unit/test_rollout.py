"""Rollout orchestration: order, watching the canary, stopping and restoring, the record."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeClock

from replicator.config import load_topology
from replicator.errors import ConfigError
from replicator.rollout import CheckerHealth, Rollout, Rollouts, parse_duration

TOPOLOGY = load_topology(Path(__file__).resolve().parents[2] / "infra" / "topology.yaml")
REGIONS = list(TOPOLOGY.regions)


class FakeArtifact:
    kind = "registry"
    name = "global_fraud"

    def __init__(self, live: dict[str, str | None]) -> None:
        self.live = dict(live)
        self.releases: list[tuple[str, str]] = []

    def live_version(self, region: str) -> str | None:
        return self.live[region]

    def release(self, version: str, region: str) -> None:
        self.live[region] = version
        self.releases.append((region, version))


class FakeHealth:
    def __init__(self, unhealthy: set[str] | None = None, after_checks: int = 0) -> None:
        self.unhealthy = unhealthy or set()
        self.after_checks = after_checks
        self.checks: list[str] = []

    def check(self, region: str) -> tuple[bool, str]:
        self.checks.append(region)
        bad = region in self.unhealthy and self.checks.count(region) > self.after_checks
        return (not bad, "staleness 42s > 5s" if bad else "within bounds")


class MemoryLog:
    def __init__(self) -> None:
        self.saved: list[str] = []

    def save(self, rollout: Rollout) -> None:
        self.saved.append(rollout.status)


def _rollouts(artifact: FakeArtifact, health: FakeHealth, log: MemoryLog) -> Rollouts:
    clock = FakeClock()
    return Rollouts(
        TOPOLOGY,
        artifact,
        health,
        log,
        say=lambda _: None,
        sleep=clock.sleep,
        clock=clock,
        check_interval=5,
    )


def test_healthy_rollout_reaches_the_canary_first_then_every_region() -> None:
    artifact = FakeArtifact({r: "v1" for r in REGIONS})
    health = FakeHealth()
    rollout = _rollouts(artifact, health, MemoryLog()).start("v2", "eu-west-1", wait_seconds=60)
    assert rollout.status == "completed"
    assert [r for r, _ in artifact.releases] == ["eu-west-1", "us-east-1", "ap-southeast-1"]
    assert set(artifact.live.values()) == {"v2"}
    # The canary was watched for the whole wait (a check every 5 s), the others once each.
    assert health.checks.count("eu-west-1") == 13
    assert health.checks.count("ap-southeast-1") == 1


def test_canary_out_of_bounds_stops_and_restores_the_previous_version() -> None:
    artifact = FakeArtifact({"us-east-1": "v1", "eu-west-1": "v1", "ap-southeast-1": "v1"})
    log = MemoryLog()
    rollout = _rollouts(artifact, FakeHealth({"eu-west-1"}, after_checks=3), log).start(
        "v2", "eu-west-1", wait_seconds=600
    )
    assert rollout.status == "rolled_back"
    assert artifact.live == {"us-east-1": "v1", "eu-west-1": "v1", "ap-southeast-1": "v1"}
    assert artifact.releases == [("eu-west-1", "v2"), ("eu-west-1", "v1")]
    outcomes = [(s["region"], s["action"], s["outcome"]) for s in rollout.steps]
    assert ("eu-west-1", "check", "violated") in outcomes
    assert ("eu-west-1", "restore", "ok") in outcomes
    assert "staleness 42s" in next(s["detail"] for s in rollout.steps if s["outcome"] == "violated")
    assert log.saved[-1] == "rolled_back" and len(log.saved) == len(rollout.steps) + 1


def test_a_later_region_out_of_bounds_restores_every_region_reached() -> None:
    artifact = FakeArtifact({"us-east-1": "v1", "eu-west-1": "v1", "ap-southeast-1": None})
    rollout = _rollouts(artifact, FakeHealth({"ap-southeast-1"}), MemoryLog()).start(
        "v2", "eu-west-1", wait_seconds=0
    )
    assert rollout.status == "rolled_back"
    assert rollout.reached == ["eu-west-1", "us-east-1", "ap-southeast-1"]
    # A region that had no version before keeps the new one, and the record says so.
    assert artifact.live == {"us-east-1": "v1", "eu-west-1": "v1", "ap-southeast-1": "v2"}
    skipped = [s for s in rollout.steps if s["outcome"] == "skipped"]
    assert [s["region"] for s in skipped] == ["ap-southeast-1"]


def test_manual_rollback_of_a_completed_rollout() -> None:
    artifact = FakeArtifact({r: "v1" for r in REGIONS})
    rollouts = _rollouts(artifact, FakeHealth(), MemoryLog())
    rollout = rollouts.start("v2", "us-east-1", wait_seconds=0)
    rollouts.rollback(rollout)
    assert rollout.status == "rolled_back"
    assert set(artifact.live.values()) == {"v1"}


def test_unknown_canary_region_is_refused_before_anything_is_released() -> None:
    artifact = FakeArtifact({r: "v1" for r in REGIONS})
    with pytest.raises(ConfigError, match="unknown region"):
        _rollouts(artifact, FakeHealth(), MemoryLog()).start("v2", "mars-1", wait_seconds=0)
    assert artifact.releases == []


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("30s", 30), ("10m", 600), ("1h", 3600)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_bad_duration_says_how_to_write_one() -> None:
    with pytest.raises(ConfigError, match="10m"):
        parse_duration("ten minutes")


def _report_command(report: dict[str, Any]) -> list[str]:
    return [sys.executable, "-c", f"print({json.dumps(json.dumps(report))})"]


def test_checker_health_ignores_the_version_skew_a_rollout_creates() -> None:
    report = {
        "regions": {"eu-west-1": {"status": "violated", "errors": []}},
        "violations": [
            {"region": "eu-west-1", "feature_view": "registry", "measure": "version_skew"}
        ],
    }
    assert CheckerHealth(_report_command(report)).check("eu-west-1") == (True, "within bounds")


def test_checker_health_reports_data_violations_and_unmeasurable_regions() -> None:
    stale = {
        "regions": {"eu-west-1": {"status": "violated", "errors": []}},
        "violations": [{"region": "eu-west-1", "feature_view": "v", "measure": "staleness"}],
    }
    healthy, detail = CheckerHealth(_report_command(stale)).check("eu-west-1")
    assert not healthy and "staleness" in detail
    broken = {"regions": {"eu-west-1": {"status": "ok", "errors": ["redis: refused"]}}}
    healthy, detail = CheckerHealth(_report_command(broken)).check("eu-west-1")
    assert not healthy and "redis: refused" in detail
    healthy, detail = CheckerHealth([sys.executable, "-c", "print('oops')"]).check("eu-west-1")
    assert not healthy and "no status" in detail
