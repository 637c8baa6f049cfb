"""Feature definitions and models through object storage, on real S3, Kafka and Redis."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from harness import END, ReferenceRedis, ReplicatedProject
from waiting import wait_until

from replicator.adapters.s3 import s3_client
from replicator.adapters.s3_catalog import manifest_key
from replicator.config import Topology
from replicator.core.feast_settings import FeastSettings
from replicator.core.keys import registry_version_key
from replicator.feast_registry import RegistryNotReplicated
from replicator.models import ModelNotAvailable, ModelStore
from replicator.regional_config import feast_env, write_regional_repo
from replicator.registry_sync import RegistryReleaser, sync_once

pytestmark = pytest.mark.slow


@pytest.fixture
def project(topology: Topology, config_file: Path, tmp_path: Path) -> Iterator[ReplicatedProject]:
    replicated = ReplicatedProject(config_file, tmp_path)
    replicated.generate_data(n_cards=200, n_merchants=40, days=2)
    yield replicated
    replicated.stop()


def _new_view(project: ReplicatedProject):  # type: ignore[no-untyped-def]
    """A feature view added after the first release: card velocity from the card source."""
    from feast import FeatureView, Field
    from feast.types import Float64, Int32

    objects = {o.name: o for o in project.feature_objects()}
    return FeatureView(
        name="card_velocity",
        entities=[objects["card"]],
        schema=[
            Field(name="txn_count_1h", dtype=Int32),
            Field(name="amount_sum_24h", dtype=Float64),
        ],
        source=objects["card_spending_stats_source"],
        online=True,
    )


def _frame(project: ReplicatedProject, rows: int):  # type: ignore[no-untyped-def]
    import pandas as pd

    frame = pd.read_parquet(project.repo / "data" / "card_spending_stats.parquet")
    frame = frame.drop_duplicates("card_id").head(rows).copy()
    frame["event_timestamp"] = END + timedelta(hours=1)
    frame["created"] = END + timedelta(hours=1)
    return frame


def _views_held(keys: dict[bytes, dict[bytes, bytes]]) -> dict[bytes, int]:
    """How many of ``keys`` hold each feature view (by its ``_ts:`` field)."""
    held: dict[bytes, int] = {}
    for fields in keys.values():
        for name in fields:
            if name.startswith(b"_ts:"):
                held[name] = held.get(name, 0) + 1
    return held


def test_rows_of_a_view_unknown_in_a_region_wait_for_its_registry_then_apply(
    project: ReplicatedProject, reference: ReferenceRedis
) -> None:
    primary, expected_store = project.feast_stores(reference)
    project.start_workers()
    lagging = project.topology.replica_regions[0]
    others = [r for r in project.topology.regions if r != lagging]

    velocity = _new_view(project)
    primary.apply([velocity])
    releaser = RegistryReleaser(project.topology)
    releaser.release(releaser.snapshot(project.repo / "data" / "registry.db"), others)

    frame = _frame(project, 100)
    for store in (primary, expected_store):
        store.write_to_online_store("card_velocity", frame)
        store.write_to_online_store("card_spending_stats", frame)  # an existing view
    expected = project.feast_keys(reference.client)
    project.wait_converged(expected, regions=others)

    # The lagging region parked the new view's rows and applied the view it knows.
    worker = next(w.worker for w in project.workers if w.worker.region == lagging)
    wait_until(
        lambda: [p for p in worker.parked.values() if p.feature_view == "card_velocity"],
        60,
        f"{lagging}'s worker to park the card_velocity rows it has no schema for",
        observe=lambda: worker.parked,
    )
    admin = project.admin(lagging)
    wait_until(
        lambda: (
            len(keys := project.feast_keys(admin)) == 100
            and all(b"_ts:card_spending_stats" in f for f in keys.values())
        ),
        30,
        f"{lagging} to apply the 100 card_spending_stats rows of the view it knows",
        observe=lambda: _views_held(project.feast_keys(admin)),
    )
    assert not any(b"_ts:card_velocity" in f for f in project.feast_keys(admin).values())

    sync_once(project.topology, project.repo / "data" / "registry.db")
    project.wait_converged(expected, regions=[lagging])
    assert worker.stats.dead_letters == 0
    assert not worker.parked


def test_corrupted_regional_registry_is_detected_and_repaired_and_never_half_visible(
    project: ReplicatedProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from feast import FeatureStore

    primary = project.primary_store()
    primary.apply(project.feature_objects())
    project.sync_registry()
    region = project.topology.replica_regions[-1]
    releaser = RegistryReleaser(project.topology)
    live = releaser.live(region)
    assert live and releaser.verified(region)

    repo = write_regional_repo(project.topology, region, tmp_path / region).parent
    for name, value in feast_env(project.topology, region).items():
        monkeypatch.setenv(name, value)

    # A new version whose upload stopped half way (object written, manifest not): invisible.
    s3 = s3_client(project.topology.region(region).s3)
    bucket = project.topology.region(region).s3.bucket
    s3.put_object(
        Bucket=bucket,
        Key=registry_version_key(project.name, "0123456789abcdef"),
        Body=b"\x0a\x03ha",
    )
    assert releaser.live(region)["version"] == live["version"]
    assert {v.name for v in FeatureStore(repo_path=str(repo)).list_feature_views()} == {
        "card_spending_stats",
        "merchant_risk",
        "card_merchant_affinity",
    }

    # The live version's bytes damaged in the bucket: readers refuse it, sync repairs it.
    s3.put_object(Bucket=bucket, Key=live["registry_key"], Body=b"\x00garbage")
    assert not releaser.verified(region)
    with pytest.raises(RegistryNotReplicated, match="checksum"):
        FeatureStore(repo_path=str(repo)).list_feature_views()
    result = sync_once(project.topology, project.repo / "data" / "registry.db")
    assert region in result.regions_updated
    assert releaser.verified(region)
    assert len(FeatureStore(repo_path=str(repo)).list_feature_views()) == 3


def test_regional_reader_on_an_empty_bucket_fails_clearly_and_writes_nothing(
    project: ReplicatedProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from feast import FeatureStore

    region = project.topology.replica_regions[0]
    location = project.topology.region(region).s3
    # Nothing released yet, so feast-config would refuse: the settings are given here.
    settings = FeastSettings()
    repo = write_regional_repo(project.topology, region, tmp_path / region, settings=settings)
    repo = repo.parent
    for name, value in feast_env(project.topology, region).items():
        monkeypatch.setenv(name, value)
    s3 = s3_client(location)

    def keys() -> set[str]:
        listed = s3.list_objects_v2(Bucket=location.bucket, Prefix=f"feast/{project.name}/")
        return {o["Key"] for o in listed.get("Contents", [])}

    assert keys() == set()
    with pytest.raises(RegistryNotReplicated, match="replicator registry sync"):
        FeatureStore(repo_path=str(repo)).get_online_features(
            features=["card_spending_stats:txn_count_1h"], entity_rows=[{"card_id": 1}]
        )
    assert keys() == set(), "a regional reader must never create a registry"
    config = yaml.safe_load((repo / "feature_store.yaml").read_text())
    assert config["registry"]["path"].endswith(manifest_key(project.name))


def test_model_versions_publish_release_status_and_rollback(
    topology: Topology, tmp_path: Path
) -> None:
    store = ModelStore(topology)
    name = f"fraud-gbdt-{uuid.uuid4().hex[:8]}"  # versions are immutable: a new model per run
    for version, weights in (("v1", b"weights one"), ("v2", b"weights two, larger")):
        model_dir = tmp_path / version
        (model_dir / "nested").mkdir(parents=True)
        (model_dir / "model.bin").write_bytes(weights)
        (model_dir / "nested" / "config.json").write_text('{"trees": 300}')
        model = store.publish(model_dir, name, version)
        assert set(store.release(model, topology.regions)) == set(topology.regions)

    for region in topology.regions:
        assert store.live(region, name)["version"] == "v2"
        assert store.verified(region, name)
        fetched = store.fetch(region, name, tmp_path / "fetch" / region)
        assert (fetched / "model.bin").read_bytes() == b"weights two, larger"

    # A damaged file is caught by its checksum, in status and in fetch.
    region = topology.replica_regions[0]
    location = topology.region(region).s3
    s3_client(location).put_object(
        Bucket=location.bucket, Key=f"models/{name}/v2/model.bin", Body=b"tampered"
    )
    assert not store.verified(region, name)
    with pytest.raises(ModelNotAvailable):
        store.fetch(region, name, tmp_path / "damaged")
    store.release(store.load(name, "v2"), [region])  # release again repairs it
    assert store.verified(region, name)

    # Rollback: back to v1 everywhere, checked by content.
    for region in topology.regions:
        previous = store.live(region, name)["previous_version"]
        assert previous == "v1"
        store.release(store.load(name, previous), [region])
        fetched = store.fetch(region, name, tmp_path / "rolled-back" / region)
        assert (
            hashlib.sha256((fetched / "model.bin").read_bytes()).hexdigest()
            == hashlib.sha256(b"weights one").hexdigest()
        )


def test_registry_copied_mid_materialize_still_serves_in_the_regions(
    project: ReplicatedProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Feast refuses views in MATERIALIZING state; a region's copy must not inherit that."""
    from feast import FeatureStore
    from feast.feature_view import FeatureViewState
    from feast.protos.feast.core.Registry_pb2 import Registry as RegistryProto

    primary = project.primary_store()
    primary.apply(project.feature_objects())
    project.start_workers()
    primary.write_to_online_store("card_spending_stats", _frame(project, 20))
    registry_path = project.repo / "data" / "registry.db"
    registry = RegistryProto()
    registry.ParseFromString(registry_path.read_bytes())
    for view in registry.feature_views:
        view.meta.state = FeatureViewState.MATERIALIZING.value  # as the primary sees it mid-run
    registry_path.write_bytes(registry.SerializeToString())
    project.sync_registry()

    region = project.topology.replica_regions[0]
    repo = write_regional_repo(project.topology, region, tmp_path / region).parent
    for name, value in feast_env(project.topology, region).items():
        monkeypatch.setenv(name, value)
    regional = FeatureStore(repo_path=str(repo))
    card = int(_frame(project, 1)["card_id"].iloc[0])

    def served() -> bool:
        response = regional.get_online_features(
            features=["card_spending_stats:txn_count_1h"], entity_rows=[{"card_id": card}]
        ).to_dict()
        return response["txn_count_1h"][0] is not None

    wait_until(served, 60, f"{region} to serve a view the primary was materializing")
