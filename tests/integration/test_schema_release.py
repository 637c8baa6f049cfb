"""Feast's workflow unchanged: after `feast apply` a write releases the new schema to every
region by itself, or is refused with nothing published (issue 8; docs/registry-and-models.md,
"How a new schema reaches the regions"). Real Kafka, S3 and Redis."""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka import Consumer, KafkaException, TopicPartition
from harness import ReferenceRedis, ReplicatedProject, primary_fingerprint
from waiting import wait_until

from benchmarks import processes
from benchmarks.processes import free_port
from replicator.adapters.kafka_config import client_config
from replicator.config import Topology
from replicator.errors import ConfigError, ObjectStoreUnavailable, RefusedWrite
from replicator.registry_sync import RegistryReleaser
from replicator.rollout import RolloutLog

pytestmark = pytest.mark.slow

VIEW = "merchant_risk"


@pytest.fixture
def project(topology: Topology, config_file: Path, tmp_path: Path) -> Iterator[ReplicatedProject]:
    replicated = ReplicatedProject(config_file, tmp_path)
    replicated.generate_data(n_cards=40, n_merchants=20, days=1)
    yield replicated
    replicated.stop()


def _changed(project: ReplicatedProject) -> list[Any]:
    """The repo's objects with ``merchant_risk`` changed: one feature fewer (a new schema)."""
    objects = project.feature_objects()
    for view in (o for o in objects if o.name == VIEW):
        view.features = [f for f in view.features if f.name != "fraud_reports_30d"]
    return objects


def _log_ends(project: ReplicatedProject) -> list[int]:
    """End offset of every partition of the view's topic (a transaction's records and its
    commit marker both move it)."""
    topic = project.topology.topic_for(VIEW)
    probe = Consumer(
        {
            **client_config(project.topology, "admin"),
            "group.id": f"{project.name}-probe",
        }
    )

    def ends() -> list[int] | None:
        try:
            return [
                probe.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
                for p in range(project.topology.kafka.partitions)
            ]
        except KafkaException:  # a topic just created: its leaders are being elected
            return None

    try:
        return wait_until(ends, 30, f"the end offsets of {topic}")
    finally:
        probe.close()


def _live_fingerprints(project: ReplicatedProject) -> dict[str, Any]:
    """Region -> the fingerprint of the view its live manifest lists."""
    releaser = RegistryReleaser(project.topology)
    return {
        region: ((releaser.live(region) or {}).get("feature_views") or {}).get(VIEW)
        for region in project.topology.regions
    }


def test_a_changed_view_written_right_after_feast_apply_reaches_every_region(
    project: ReplicatedProject, reference: ReferenceRedis
) -> None:
    primary, _ = project.feast_stores(reference)  # deployed: applied and released
    project.start_workers()
    old = primary_fingerprint(primary, VIEW)

    primary.apply(_changed(project))  # and nothing else: no `replicator registry sync`
    new = primary_fingerprint(primary, VIEW)
    assert new != old
    rows = project.fresh_rows(VIEW, 20, timedelta(hours=1))
    expected_store = project.reference_store(reference)  # Feast's own store, new registry
    for store in (primary, expected_store):
        store.write_to_online_store(VIEW, rows)

    expected = project.feast_keys(reference.client)
    assert len(expected) == 20
    project.wait_converged(expected, timeout=60)
    assert _live_fingerprints(project) == dict.fromkeys(project.topology.regions, new)
    for worker in project.workers:
        assert worker.worker.stats.dead_letters == 0


HEALTHY = (
    "import json, sys; "
    "print(json.dumps({'regions': {r: {} for r in sys.argv[1:]}, 'violations': []}))"
)


def test_a_write_during_a_registry_rollout_is_refused_and_publishes_nothing(
    project: ReplicatedProject,
) -> None:
    primary = project.primary_store()
    primary.apply(project.feature_objects())
    project.sync_registry()
    primary.apply(_changed(project))
    new = primary_fingerprint(primary, VIEW)
    canary = project.topology.replica_regions[0]
    version = RegistryReleaser(project.topology).snapshot(project.repo / "data" / "registry.db")
    health = shlex.join([sys.executable, "-c", HEALTHY, *project.topology.regions])
    cli = [sys.executable, "-m", "replicator.cli", "--config", str(project.topology_path)]
    start = ["rollout", "start", "--version", version.version, "--canary", canary]
    watch = ["--wait", "10m", "--interval", "1s", "--health-command", health]
    rollout_process = processes.start(
        [*cli, *start, *watch], project.workdir / "rollout.log", cwd=None
    )
    try:
        records = RolloutLog(project.topology)

        def watching_the_canary() -> bool:
            try:
                rollout = records.load()
            except ConfigError:  # no record yet
                return False
            return rollout.status == "running" and rollout.reached == [canary]

        wait_until(watching_the_canary, 60, f"the rollout to release to {canary} and watch it")
        before = _log_ends(project)
        with pytest.raises(RefusedWrite) as refused:
            primary.write_to_online_store(VIEW, project.fresh_rows(VIEW, 10, timedelta(hours=1)))
        rollout_id = records.load().id
        assert refused.value.feature_view == VIEW
        assert new in str(refused.value) and rollout_id in str(refused.value)
        assert f"replicator rollout rollback --id {rollout_id}" in str(refused.value)
        assert _log_ends(project) == before, "a refused write published nothing"
        # Nor does `registry sync` release around the canary.
        synced = subprocess.run(
            [*cli, "registry", "sync", "--registry", str(project.repo / "data" / "registry.db")],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert synced.returncode == 6, synced.stdout + synced.stderr
        assert f"registry rollout {rollout_id}" in synced.stderr, synced.stderr
        others = {r: f for r, f in _live_fingerprints(project).items() if r != canary}
        assert new not in others.values(), others
        # Nor can a second rollout start and hide this one from both.
        model = ["rollout", "start", "--model", "m", "--version", "v1", "--canary", canary]
        second = subprocess.run([*cli, *model], capture_output=True, text=True, timeout=120)
        assert second.returncode == 6, second.stdout + second.stderr
        assert f"rollout {rollout_id}" in second.stderr, second.stderr
        assert records.load().id == rollout_id
    finally:
        processes.stop([rollout_process])

    # What the message says to run ends the rollout; the next write releases and publishes.
    subprocess.run([*cli, "rollout", "rollback", "--id", rollout_id], check=True, timeout=120)
    primary.write_to_online_store(VIEW, project.fresh_rows(VIEW, 10, timedelta(hours=1)))
    assert _live_fingerprints(project) == dict.fromkeys(project.topology.regions, new)
    assert _log_ends(project) != before


def _writer(project: ReplicatedProject, topology: Path | None = None) -> Any:
    """The primary's Feast with ``cache_mode: thread`` (its registry cache is refreshed every
    ``cache_ttl_seconds``, 600, not when another process applies), on ``topology`` (default:
    the project's)."""
    from feast import FeatureStore, RepoConfig

    project.write_feature_store_yaml()
    config = RepoConfig(
        project=project.name,
        provider="local",
        registry={"path": str(project.repo / "data" / "registry.db"), "cache_mode": "thread"},
        offline_store={"type": "file"},
        online_store={
            "type": "replicator.feast_publisher.ReplicatingOnlineStore",
            "topology": str(topology or project.topology_path),
        },
        entity_key_serialization_version=3,
        repo_path=project.repo,
    )
    return FeatureStore(config=config, repo_path=str(project.repo))


def test_a_schema_the_registry_does_not_hold_is_refused_and_publishes_nothing(
    project: ReplicatedProject,
) -> None:
    writer = _writer(project)
    writer.apply(project.feature_objects())
    old = primary_fingerprint(writer, VIEW)  # the writer's Feast registry cache keeps this
    project.primary_store().apply(_changed(project))  # `feast apply` by another process
    rows = project.fresh_rows(VIEW, 10, timedelta(hours=1))

    before = _log_ends(project)
    with pytest.raises(RefusedWrite) as refused:
        writer.write_to_online_store(VIEW, rows)
    assert refused.value.feature_view == VIEW
    assert old in str(refused.value) and "refresh_registry()" in str(refused.value)
    assert _log_ends(project) == before, "a refused write published nothing"
    assert set(_live_fingerprints(project).values()) == {None}, "nothing was released"

    # What the message says to do: refresh the writer's registry, then write again.
    writer.refresh_registry()
    writer.write_to_online_store(VIEW, rows)
    new = primary_fingerprint(writer, VIEW)
    assert new != old
    assert _live_fingerprints(project) == dict.fromkeys(project.topology.regions, new)
    assert _log_ends(project) != before


def test_a_region_whose_bucket_fails_the_release_fails_the_write_with_nothing_published(
    project: ReplicatedProject,
) -> None:
    unreachable = project.topology.replica_regions[-1]
    raw = yaml.safe_load(project.topology_path.read_text())
    raw["regions"][unreachable]["s3"]["endpoint_url"] = f"http://127.0.0.1:{free_port()}"
    cut_off = project.workdir / "topology-cut-off.yaml"
    cut_off.write_text(yaml.safe_dump(raw))
    writer = _writer(project, cut_off)
    writer.apply(project.feature_objects())
    rows = project.fresh_rows(VIEW, 10, timedelta(hours=1))

    before = _log_ends(project)
    with pytest.raises(ObjectStoreUnavailable, match=f"to {unreachable} failed"):
        writer.write_to_online_store(VIEW, rows)
    assert _log_ends(project) == before, "a failed write published nothing"
    assert _live_fingerprints(project)[project.topology.primary_region] is None, (
        "the primary does not admit a schema a region did not get"
    )

    # The bucket answers again (here: a writer that reaches it): the same write goes through.
    _writer(project).write_to_online_store(VIEW, rows)
    fingerprint = primary_fingerprint(writer, VIEW)
    assert _live_fingerprints(project) == dict.fromkeys(project.topology.regions, fingerprint)
    assert _log_ends(project) != before
