"""Registry and model version skew on the real stack: S3 buckets, the checker and its CLI.

Registry version A goes everywhere, then B to the reference (the primary) and one replica
only; a model goes to the same two regions. The region left out reports both as skew and is
violated (``check --once`` exits 1) until it gets them too. Models are not namespaced per
project in the buckets: the test's model is deleted afterwards, so no skew is left behind
for other tests' checkers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import ReplicatedProject
from waiting import wait_until

from consistency.config import ConsistencySettings
from consistency.core.report import Report
from consistency.core.versions import VersionsReport
from consistency.wiring import build_checker, close_checker
from replicator.adapters.s3 import s3_client
from replicator.config import Topology
from replicator.models import ModelStore
from replicator.registry_sync import RegistryReleaser

pytestmark = pytest.mark.slow

BOUND = 0.5


@pytest.fixture
def project(topology: Topology, config_file: Path, tmp_path: Path) -> Iterator[ReplicatedProject]:
    replicated = ReplicatedProject(config_file, tmp_path)
    replicated.generate_data(n_cards=50, n_merchants=10, days=1)
    yield replicated
    replicated.stop()


@pytest.fixture
def model_name(topology: Topology) -> Iterator[str]:
    name = f"skew-{uuid.uuid4().hex[:8]}"
    yield name
    for region in topology.regions.values():
        client = s3_client(region.s3)
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=region.s3.bucket,
            Prefix=f"models/{name}",  # and {name}-unreleased
        )
        for page in pages:
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=region.s3.bucket, Delete={"Objects": keys})


def check(topology: Topology) -> Report:
    """One ``check --once`` round in process (a fresh checker: its S3 cache is empty)."""
    settings = ConsistencySettings(
        bounds={
            "max_version_skew_seconds": BOUND,
            "max_staleness_seconds": None,  # no workers or heartbeats here
            "max_divergence_ratio": None,
        }
    )
    checker = build_checker(topology, settings)
    try:
        return checker.report(checker.measure_staleness())
    finally:
        close_checker(checker)


def versions(report: Report, region: str) -> VersionsReport:
    found = report.regions[region].versions
    assert found is not None, report.regions[region].errors
    return found


def mine(report: Report, model: str) -> set[tuple[str, str]]:
    """Violations of this test's artifacts (other tests may release models meanwhile)."""
    ours = {"registry", f"model:{model}"}
    return {(v.region, v.feature_view) for v in report.violations if v.feature_view in ours}


def _once_skewed(report: Report, region: str, model: str) -> Report | None:
    """``report`` if ``region``'s registry and ``model`` are both skewed past the bound."""
    found = versions(report, region)
    model_skew = found.models[model].skew_seconds if model in found.models else None
    past = (found.registry.skew_seconds or 0) > BOUND and (model_skew or 0) > BOUND
    return report if past else None


def cli(project: ReplicatedProject, *args: str, env: dict[str, str]) -> Any:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "consistency.cli",
            "--topology",
            str(project.topology_path),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        cwd=project.workdir,
    )


def test_a_region_left_out_of_a_release_reports_skew_until_it_gets_the_version(
    project: ReplicatedProject, model_name: str, tmp_path: Path
) -> None:
    topology = project.topology
    reference = topology.primary_region
    ahead, lagging = topology.replica_regions[0], topology.replica_regions[-1]
    primary = project.primary_store()
    primary.apply(project.feature_objects())
    project.sync_registry()
    releaser = RegistryReleaser(topology)
    version_a = releaser.live(reference)["version"]  # type: ignore[index]

    objects = project.feature_objects()
    for view in (o for o in objects if o.name == "merchant_risk"):
        view.tags["skew"] = "b"
    primary.apply(objects)
    version_b = releaser.snapshot(project.repo / "data" / "registry.db")
    assert version_b.version != version_a
    releaser.release(version_b, [reference, ahead])

    store = ModelStore(topology)
    (tmp_path / "model.bin").write_bytes(b"weights")
    model = store.publish(tmp_path / "model.bin", model_name, "v1")
    store.release(model, [reference, ahead])
    store.publish(tmp_path / "model.bin", model_name + "-unreleased", "v1")  # no live.json
    report = wait_until(
        lambda: _once_skewed(check(topology), lagging, model_name),
        30,
        f"{lagging}'s registry and model skew to pass the {BOUND} s bound",
        observe=lambda: versions(check(topology), lagging),
    )
    left_out = versions(report, lagging)
    assert (left_out.registry.version, left_out.registry.reference_version) == (
        version_a,
        version_b.version,
    )
    assert (left_out.registry.skew_seconds or 0) > BOUND
    assert left_out.models[model_name].version is None
    assert left_out.models[model_name].reference_version == "v1"
    assert (left_out.models[model_name].skew_seconds or 0) > BOUND
    assert mine(report, model_name) == {(lagging, "registry"), (lagging, f"model:{model_name}")}
    assert report.regions[lagging].status == "violated"
    for region in (reference, ahead):
        both = versions(report, region)
        assert both.registry.version == version_b.version and both.registry.skew_seconds == 0
        assert both.models[model_name].skew_seconds == 0
    assert model_name + "-unreleased" not in versions(report, reference).models

    # The command line agrees: exit code 1, the documented JSON, one text line per region.
    env = {"CONSISTENCY_BOUNDS__MAX_VERSION_SKEW_SECONDS": str(BOUND)}
    done = cli(project, "check", "--once", "--json", "--divergence", "none", env=env)
    assert done.returncode == 1, done.stderr
    doc = json.loads(done.stdout)["regions"][lagging]
    assert doc["status"] == "violated"
    registry = doc["versions"]["registry"]
    assert registry["version"] == version_a and registry["reference_version"] == version_b.version
    assert registry["skew_seconds"] > BOUND and registry["released_at"]
    assert doc["versions"]["models"][model_name]["reference_version"] == "v1"
    text = cli(project, "check", "--once", "--divergence", "none", env=env).stdout
    assert f"registry {version_a} (reference {version_b.version}, skew " in text
    assert f"registry {version_b.version} (reference {version_b.version})  models " in text

    # Once the region gets both, it is back on the reference's versions.
    releaser.release(version_b, [lagging])
    store.release(model, [lagging])
    report = check(topology)
    caught_up = versions(report, lagging)
    assert caught_up.registry.skew_seconds == 0 and caught_up.models[model_name].skew_seconds == 0
    assert caught_up.registry.version == version_b.version
    assert mine(report, model_name) == set()
