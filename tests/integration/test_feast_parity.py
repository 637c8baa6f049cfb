"""Parity with Feast's own RedisOnlineStore for inputs Feast accepts (issue 8).

Each test writes the same calls through the replicating store and through Feast's own store
into a reference Redis; every region must match the reference byte for byte, or the call must
fail at the primary as documented (docs/replication.md, "Intended differences from Feast").
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from harness import ReferenceRedis, ReplicatedProject, recent_window

from replicator.adapters.kafka_config import client_config
from replicator.config import Topology
from replicator.kafka_acls import primary_client_id

pytestmark = pytest.mark.slow


@pytest.fixture
def project(topology: Topology, config_file: Path, tmp_path: Path) -> Iterator[ReplicatedProject]:
    replicated = ReplicatedProject(config_file, tmp_path)
    replicated.generate_data(n_cards=60, n_merchants=20, days=2)
    yield replicated
    replicated.stop()


def test_null_created_time_is_stored_as_feast_stores_it(
    project: ReplicatedProject, reference: ReferenceRedis
) -> None:
    # A batch source where some rows have no created time: `feast materialize` stores them.
    source = project.repo / "data" / "merchant_risk.parquet"
    batch = pd.read_parquet(source)
    batch["created"] = batch["created"].astype("datetime64[ns, UTC]")
    batch.loc[batch.index[::3], "created"] = pd.NaT
    batch.to_parquet(source)
    primary, expected_store = project.feast_stores(reference)
    project.start_workers()
    first = project.fresh_rows("card_spending_stats", 20, timedelta(hours=1))
    # Same entities and event times, other values, created earlier or null: Feast keeps the
    # first rows (an equal event time is skipped); an earlier or null created time ranks
    # below the first rows', so every region keeps them too.
    second = first.copy()
    second["txn_count_24h"] = second["txn_count_24h"] + 1000
    second["created"] = (second["created"] - timedelta(minutes=1)).astype("datetime64[ns, UTC]")
    second.loc[second.index[0], "created"] = pd.NaT
    for store in (primary, expected_store):
        store.materialize(*recent_window())
        store.push("card_spending_push", first)
        store.push("card_spending_push", second)
    expected = project.feast_keys(reference.client)
    assert expected, "Feast's own store wrote the rows"
    project.wait_converged(expected)


def test_writes_larger_than_a_kafka_record_are_cut_by_bytes(
    topology: Topology, config_file: Path, tmp_path: Path, reference: ReferenceRedis
) -> None:
    project = ReplicatedProject(config_file, tmp_path, partitions=1)  # every row, one partition
    try:
        project.generate_data(n_cards=20, n_merchants=20, days=1)
        primary, expected_store = project.feast_stores(reference)
        project.start_workers()
        wide = project.fresh_rows("merchant_risk", 12, timedelta(hours=1))
        # 12 x 2.5 MB in one partition (30 MB), and one row just under the 8 MiB record limit.
        wide["merchant_category"] = [chr(65 + i) * 2_500_000 for i in range(len(wide))]
        wide.loc[wide.index[0], "merchant_category"] = "z" * (8 * 1024 * 1024 - 8192)
        for store in (primary, expected_store):
            store.write_to_online_store("merchant_risk", wide)
        expected = project.feast_keys(reference.client)
        assert len(expected) == 12
        project.wait_converged(expected)
    finally:
        project.stop()


def test_a_row_larger_than_a_record_is_refused_before_anything_is_published(
    project: ReplicatedProject, reference: ReferenceRedis
) -> None:
    from replicator.errors import RefusedWrite

    primary, expected_store = project.feast_stores(reference)
    project.start_workers()
    refused = project.fresh_rows("merchant_risk", 12, timedelta(hours=1))
    refused.loc[refused.index[5], "merchant_category"] = "x" * (8 * 1024 * 1024 + 1)
    with pytest.raises(RefusedWrite) as error:
        primary.write_to_online_store("merchant_risk", refused)
    entity = refused.loc[refused.index[5], "merchant_id"]
    assert error.value.feature_view == "merchant_risk"
    assert error.value.entity == f"merchant_id={entity!r}"
    assert str(8 * 1024 * 1024) in str(error.value)
    # Nothing of the refused call reaches a region; a later call does, all of it.
    later = project.fresh_rows("merchant_risk", 3, timedelta(hours=2))
    for store in (primary, expected_store):
        store.write_to_online_store("merchant_risk", later)
    expected = project.feast_keys(reference.client)
    assert len(expected) == 3
    project.wait_converged(expected)


KILLED_WRITER = """
import sys, time
import pandas as pd
from feast import FeatureStore
from replicator.adapters import kafka_publisher

send = kafka_publisher.KafkaPublisher.send
sent = 0

def send_then_hang(self, *args, **kwargs):
    global sent
    send(self, *args, **kwargs)
    sent += 1
    if sent == 5:  # part of the call is in the log (not committed): the test kills us here
        self.producer.flush(30)
        print("produced", flush=True)
        time.sleep(600)

kafka_publisher.KafkaPublisher.send = send_then_hang
FeatureStore(repo_path=sys.argv[1]).write_to_online_store(
    "merchant_risk", pd.read_parquet(sys.argv[2])
)
"""


def _many_merchants(project: ReplicatedProject, first: int, rows: int) -> pd.DataFrame:
    frame = project.fresh_rows("merchant_risk", 1, timedelta(hours=1))
    frame = frame.loc[frame.index.repeat(rows)].reset_index(drop=True)
    frame["merchant_id"] = [f"m_killed_{first + i}" for i in range(rows)]
    return frame


def test_a_primary_killed_mid_call_leaves_no_row_of_that_call_in_any_region(
    project: ReplicatedProject, reference: ReferenceRedis, tmp_path: Path
) -> None:
    import os
    import signal
    import subprocess
    import sys

    import yaml
    from confluent_kafka import Consumer, TopicPartition

    _primary, expected_store = project.feast_stores(reference)
    # One writer identity: the next process fences the killed one and aborts its transaction.
    # Under the primary's transactional-id prefix, which its Kafka ACLs cover.
    writer_id = f"{primary_client_id(project.topology)}-w"
    settings = yaml.safe_load((project.repo / "feature_store.yaml").read_text())
    settings["online_store"].update(max_batch_rows=50, transactional_id=writer_id)
    (project.repo / "feature_store.yaml").write_text(yaml.safe_dump(settings))
    project.start_workers()
    frame = tmp_path / "killed.parquet"
    _many_merchants(project, 0, 2000).to_parquet(frame)
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(project.repo), str(frame)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == b"produced"
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(30)
    topic = project.topology.topic_for("merchant_risk")
    probe = Consumer(
        {
            **client_config(project.topology, "admin"),
            "group.id": f"{project.name}-probe",
            "isolation.level": "read_uncommitted",  # sees the open transaction's records
        }
    )
    try:
        in_log = sum(
            probe.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
            for p in range(project.topology.kafka.partitions)
        )
    finally:
        probe.close()
    assert in_log >= 5, "records of the killed call reached the log"
    # A normal call by the next process: all of its rows become visible, none of the other's.
    from feast import FeatureStore

    later = _many_merchants(project, 10_000, 300)
    FeatureStore(repo_path=str(project.repo)).write_to_online_store("merchant_risk", later)
    expected_store.write_to_online_store("merchant_risk", later)
    expected = project.feast_keys(reference.client)
    assert len(expected) == 300
    project.wait_converged(expected)


def _naive_local_now(hours_east_of_utc: int) -> datetime:
    """``datetime.now()`` on a host at UTC+N: naive, so Feast reads it as UTC, N hours ahead."""
    return datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=hours_east_of_utc)


def test_a_far_future_row_is_refused_in_the_write_call_by_default(
    project: ReplicatedProject, reference: ReferenceRedis
) -> None:
    from replicator.errors import RefusedWrite

    primary, expected_store = project.feast_stores(reference)
    project.start_workers()
    frame = project.fresh_rows("merchant_risk", 12, timedelta(hours=1))
    ahead = frame.index[4]
    frame["event_timestamp"] = frame["event_timestamp"].astype(object)
    frame.loc[ahead, "event_timestamp"] = _naive_local_now(9)
    with pytest.raises(RefusedWrite) as error:
        primary.write_to_online_store("merchant_risk", frame)
    assert error.value.feature_view == "merchant_risk"
    assert error.value.entity == f"merchant_id={frame.loc[ahead, 'merchant_id']!r}"
    assert "event time" in str(error.value) and "future_event_time" in str(error.value)
    # Nothing of the refused call reaches a region; a later call does, all of it.
    later = project.fresh_rows("merchant_risk", 3, timedelta(hours=2))
    for store in (primary, expected_store):
        store.write_to_online_store("merchant_risk", later)
    expected = project.feast_keys(reference.client)
    assert len(expected) == 3
    project.wait_converged(expected)


def test_far_future_rows_are_applied_in_every_region_when_set_to_apply(
    project: ReplicatedProject, reference: ReferenceRedis
) -> None:
    import yaml

    primary, expected_store = project.feast_stores(reference)
    settings = yaml.safe_load((project.repo / "feature_store.yaml").read_text())
    settings["online_store"]["future_event_time"] = "apply"
    (project.repo / "feature_store.yaml").write_text(yaml.safe_dump(settings))
    from feast import FeatureStore

    primary = FeatureStore(repo_path=str(project.repo))
    project.start_workers()
    # Hours ahead of every clock (workers allow 300 s): stored as Feast stores them.
    frame = project.fresh_rows("merchant_risk", 10, timedelta(hours=1))
    frame["event_timestamp"] = [_naive_local_now(9)] * len(frame)
    frame["created"] = frame["event_timestamp"]
    for store in (primary, expected_store):
        store.write_to_online_store("merchant_risk", frame)
    expected = project.feast_keys(reference.client)
    assert len(expected) == 10
    project.wait_converged(expected)


def _set_feast(project: ReplicatedProject, **changes: Any) -> Any:
    """Rewrite the primary's feature_store.yaml with ``changes`` (``online_store`` and
    ``registry`` merged); returns a FeatureStore on it."""
    import yaml
    from feast import FeatureStore

    path = project.write_feature_store_yaml()
    settings = yaml.safe_load(path.read_text())
    for name, value in changes.items():
        if isinstance(value, dict):
            current = settings.get(name)
            if not isinstance(current, dict):
                current = {"path": current}
            settings[name] = {**current, **value}
        else:
            settings[name] = value
    path.write_text(yaml.safe_dump(settings))
    return FeatureStore(repo_path=str(project.repo))


def test_key_ttl_seconds_of_the_primary_expires_keys_in_every_region(
    project: ReplicatedProject, reference: ReferenceRedis
) -> None:
    from feast import FeatureStore

    primary = _set_feast(project, online_store={"key_ttl_seconds": 3600})
    primary.apply(project.feature_objects())
    project.sync_registry()
    expected_store = project.reference_store(reference)
    config = expected_store.config.model_copy()
    config.online_store.key_ttl_seconds = 3600
    expected_store = FeatureStore(config=config, repo_path=str(project.repo))
    project.start_workers()
    frame = project.fresh_rows("merchant_risk", 8, timedelta(hours=1))
    for store in (primary, expected_store):
        store.write_to_online_store("merchant_risk", frame)
    expected = project.feast_keys(reference.client)
    assert len(expected) == 8 and all(0 < reference.client.ttl(k) <= 3600 for k in expected)
    project.wait_converged(expected)
    for region in project.topology.regions:
        admin = project.admin(region)
        ttls = {key: admin.ttl(key) for key in expected}
        assert all(0 < ttl <= 3600 for ttl in ttls.values()), (region, ttls)


def test_a_feast_setting_the_replicas_cannot_honour_is_refused_at_start(
    project: ReplicatedProject,
) -> None:
    from feast.repo_config import FeastConfigError

    with pytest.raises(FeastConfigError, match="skip_dedup"):
        _set_feast(project, online_store={"skip_dedup": True})


def test_registry_sync_carries_the_primary_feast_settings_to_every_region(
    project: ReplicatedProject, tmp_path: Path
) -> None:
    import yaml

    from replicator.regional_config import write_regional_repo
    from replicator.registry_sync import RegistryReleaser, sync_once

    primary = _set_feast(project, registry={"enable_online_feature_view_versioning": True})
    primary.apply(project.feature_objects())
    sync_once(project.topology, repo=project.repo)  # the registry found from the repo
    releaser = RegistryReleaser(project.topology)
    for region in project.topology.regions:
        feast = (releaser.live(region) or {}).get("feast")
        assert feast == {
            "entity_key_serialization_version": 3,
            "enable_online_feature_view_versioning": True,
            "key_ttl_seconds": None,
        }
    config = write_regional_repo(project.topology, "eu-west-1", tmp_path / "eu")
    assert yaml.safe_load(config.read_text())["entity_key_serialization_version"] == 3


def test_a_view_name_kafka_would_refuse_is_replicated(
    project: ReplicatedProject, reference: ReferenceRedis
) -> None:
    import copy

    from feast import FeatureView

    name = "händler risiko/€"  # non-ASCII, a space and a slash: Feast accepts it
    objects = project.feature_objects()
    base = next(o for o in objects if isinstance(o, FeatureView) and o.name == "merchant_risk")
    view = copy.copy(base)
    view.name = name
    view.projection.name = name
    primary = project.primary_store()
    primary.apply([*objects, view])
    project.sync_registry()
    expected_store = project.reference_store(reference)
    project.start_workers()
    frame = project.fresh_rows("merchant_risk", 6, timedelta(hours=1))
    for store in (primary, expected_store):
        store.write_to_online_store(name, frame)
    expected = project.feast_keys(reference.client)
    assert len(expected) == 6
    project.wait_converged(expected)


def test_readme_step_3_registry_sync_works_literally_in_a_feast_repo(
    project: ReplicatedProject,
) -> None:
    import shutil
    import subprocess
    import sys

    from replicator.registry_sync import RegistryReleaser

    # A Feast repo with a plain file registry, the topology at infra/topology.yaml above it.
    (project.workdir / "infra").mkdir()
    shutil.copy(project.topology_path, project.workdir / "infra" / "topology.yaml")
    primary = project.primary_store()
    primary.apply(project.feature_objects())
    env = {k: v for k, v in os.environ.items() if k != "REPLICATOR_CONFIG"}
    done = subprocess.run(
        [sys.executable, "-m", "replicator.cli", "registry", "sync"],
        cwd=project.repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,  # a hang bound: importing Feast alone took over a minute at load 18
    )
    assert done.returncode == 0, done.stderr
    releaser = RegistryReleaser(project.topology)
    for region in project.topology.regions:
        assert releaser.verified(region)
        assert "merchant_risk" in (releaser.live(region) or {})["feature_views"]
