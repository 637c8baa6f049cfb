"""The primary's schema gate on in-memory buckets: what a write call costs and does when its
schema is new (tests/integration/test_schema_release.py runs it on the real stack)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from replicator import feast_layout
from replicator.config import load_topology
from replicator.core.keys import manifest_key
from replicator.core.schema_history import RECENT_SCHEMA_VERSIONS
from replicator.errors import ObjectStoreUnavailable, SchemaNotReleased
from replicator.registry_sync import RegistryReleaser
from replicator.rollout import Rollout, RolloutLog
from replicator.schema_release import RELEASE_ATTEMPTS, SchemaGate

TOPOLOGY = load_topology(Path(__file__).resolve().parents[2] / "infra" / "topology.yaml")
PROJECT = TOPOLOGY.project
PRIMARY = TOPOLOGY.primary_region
VIEW = "merchant_risk"


class MemoryBucket:
    """``ObjectStore`` in memory; ``down`` makes every call fail as an unreachable S3."""

    def __init__(self, region: str, calls: list[tuple[str, str, str]]) -> None:
        self.bucket = f"feast-{region}"
        self.region = region
        self.objects: dict[str, bytes] = {}
        self.down = False
        self.calls = calls

    def where(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{key}"

    def _call(self, action: str, key: str) -> None:
        if self.down:
            raise ObjectStoreUnavailable(f"{self.where(key)}: unreachable", service=self.where())
        self.calls.append((self.region, action, key))

    def get(self, key: str) -> bytes | None:
        self._call("get", key)
        return self.objects.get(key)

    def put(self, key: str, body: bytes, *, content_type: str | None = None) -> None:
        self._call("put", key)
        self.objects[key] = body

    def delete(self, key: str) -> None:
        self._call("delete", key)
        self.objects.pop(key, None)

    def keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self.objects if k.startswith(prefix))


def _view(features: list[str]) -> Any:
    from feast import Entity, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64, String

    merchant = Entity(name="merchant", join_keys=["merchant_id"], value_type=ValueType.STRING)
    source = FileSource(name="src", path="data.parquet", timestamp_field="event_timestamp")
    return FeatureView(
        name=VIEW,
        entities=[merchant],
        ttl=timedelta(days=1),
        schema=[Field(name="merchant_id", dtype=String)]
        + [Field(name=f, dtype=Float64) for f in features],
        source=source,
    )


def _registry_file(path: Path, view: Any) -> Path:
    from feast.protos.feast.core.Registry_pb2 import Registry as RegistryProto

    registry = RegistryProto()
    proto = view.to_proto()
    proto.spec.project = PROJECT
    registry.feature_views.append(proto)
    path.write_bytes(registry.SerializeToString())
    return path


def _fingerprint(view: Any) -> str:
    return feast_layout.schema_fingerprint(view, VIEW)


class Setup:
    def __init__(self, tmp_path: Path) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.buckets = {r: MemoryBucket(r, self.calls) for r in TOPOLOGY.regions}
        self.view = _view(["risk_score", "chargeback_rate"])
        self.registry = _registry_file(tmp_path / "registry.db", self.view)
        self.config = SimpleNamespace(
            registry=SimpleNamespace(path=str(self.registry)),
            repo_path=None,
            entity_key_serialization_version=3,
            online_store=SimpleNamespace(key_ttl_seconds=None),
        )
        self.gate = SchemaGate(TOPOLOGY, stores=self.buckets.__getitem__)

    def live(self, region: str) -> dict[str, Any] | None:
        body = self.buckets[region].objects.get(manifest_key(PROJECT))
        return json.loads(body) if body else None

    def manifest_writes(self) -> list[str]:
        """Regions whose manifest was written, in order."""
        key = manifest_key(PROJECT)
        return [r for r, action, k in self.calls if action == "put" and k == key]


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


def test_a_new_schema_is_released_to_every_region_primary_last_then_costs_no_s3_call(
    setup: Setup,
) -> None:
    fingerprint = _fingerprint(setup.view)
    setup.gate.admit(VIEW, fingerprint, setup.config)

    assert setup.manifest_writes() == [*TOPOLOGY.replica_regions, PRIMARY]
    for region in TOPOLOGY.regions:
        assert setup.live(region)["feature_views"][VIEW] == fingerprint  # type: ignore[index]
    calls = len(setup.calls)
    setup.gate.admit(VIEW, fingerprint, setup.config)
    assert len(setup.calls) == calls, "an admitted schema touches no bucket"


def test_a_schema_the_primary_admits_is_published_without_a_release(setup: Setup) -> None:
    releaser = RegistryReleaser(TOPOLOGY, stores=setup.buckets.__getitem__)
    releaser.release(releaser.snapshot(setup.registry), [PRIMARY])  # a manual release
    setup.calls.clear()
    setup.gate.admit(VIEW, _fingerprint(setup.view), setup.config)
    assert setup.calls == [(PRIMARY, "get", manifest_key(PROJECT))]


def test_a_region_that_cannot_take_the_release_fails_the_write_until_it_can(
    setup: Setup,
) -> None:
    fingerprint = _fingerprint(setup.view)
    unreachable = TOPOLOGY.replica_regions[-1]
    setup.buckets[unreachable].down = True
    with pytest.raises(ObjectStoreUnavailable, match=f"to {unreachable} failed"):
        setup.gate.admit(VIEW, fingerprint, setup.config)
    assert setup.live(PRIMARY) is None, "the primary does not admit what a region lacks"

    with pytest.raises(ObjectStoreUnavailable):  # still down: still refused, not remembered
        setup.gate.admit(VIEW, fingerprint, setup.config)
    setup.buckets[unreachable].down = False
    setup.gate.admit(VIEW, fingerprint, setup.config)
    for region in TOPOLOGY.regions:
        assert setup.live(region)["feature_views"][VIEW] == fingerprint  # type: ignore[index]


def test_a_schema_the_registry_does_not_hold_is_refused_and_nothing_is_released(
    setup: Setup,
) -> None:
    stale = _view(["risk_score"])  # the writer's cache: one feature fewer
    with pytest.raises(SchemaNotReleased) as refused:
        setup.gate.admit(VIEW, _fingerprint(stale), setup.config)
    assert refused.value.feature_view == VIEW
    assert refused.value.fingerprint == _fingerprint(stale)
    assert _fingerprint(setup.view) in str(refused.value)  # what the registry holds
    assert setup.manifest_writes() == []


def test_a_new_schema_during_a_registry_rollout_is_refused(setup: Setup) -> None:
    log = RolloutLog(TOPOLOGY, store=setup.buckets[PRIMARY])
    rollout = Rollout(
        id="r1",
        kind="registry",
        name=PROJECT,
        version="abc",
        canary="eu-west-1",
        order=list(TOPOLOGY.regions),
        wait_seconds=600,
        started_by="test",
        started_at="2026-11-30T00:00:00+00:00",
    )
    log.save(rollout)
    with pytest.raises(SchemaNotReleased, match="replicator rollout rollback --id r1"):
        setup.gate.admit(VIEW, _fingerprint(setup.view), setup.config)
    assert setup.manifest_writes() == []

    rollout.status = "rolled_back"  # ended: the next write releases
    log.save(rollout)
    setup.gate.admit(VIEW, _fingerprint(setup.view), setup.config)
    assert setup.manifest_writes() == [*TOPOLOGY.replica_regions, PRIMARY]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_admission_is_checked_again_each_period_and_refused_once_released_away(
    setup: Setup, tmp_path: Path
) -> None:
    """A long-lived writer keeps its first schema; once later releases leave it out of every
    region's recent versions, its writes are refused instead of dead-lettered everywhere."""
    clock = Clock()
    setup.gate = SchemaGate(TOPOLOGY, stores=setup.buckets.__getitem__, monotonic=clock)
    old = _fingerprint(setup.view)
    setup.gate.admit(VIEW, old, setup.config)
    releaser = RegistryReleaser(TOPOLOGY, stores=setup.buckets.__getitem__)
    for n in range(RECENT_SCHEMA_VERSIONS):  # five newer schemas released by `registry sync`
        newer = _registry_file(tmp_path / f"r{n}.db", _view([f"f{i}" for i in range(n + 1)]))
        releaser.release(releaser.snapshot(newer), TOPOLOGY.regions)
    setup.config.registry.path = str(newer)  # the registry holds the newest only
    setup.gate.admit(VIEW, old, setup.config)  # within the period: not read again
    clock.now += 61
    with pytest.raises(SchemaNotReleased):
        setup.gate.admit(VIEW, old, setup.config)


def test_a_recheck_s3_cannot_answer_keeps_the_admission(setup: Setup) -> None:
    clock = Clock()
    setup.gate = SchemaGate(TOPOLOGY, stores=setup.buckets.__getitem__, monotonic=clock)
    setup.gate.admit(VIEW, _fingerprint(setup.view), setup.config)
    setup.buckets[PRIMARY].down = True
    clock.now += 61
    setup.gate.admit(VIEW, _fingerprint(setup.view), setup.config)  # no raise: admitted before


class RacingBucket(MemoryBucket):
    """A bucket whose manifest another process replaces right after each write of ours,
    ``times`` times (a concurrent release of an older registry)."""

    def __init__(self, region: str, calls: list[tuple[str, str, str]], times: int) -> None:
        super().__init__(region, calls)
        self.times = times
        self.older: bytes | None = None

    def put(self, key: str, body: bytes, *, content_type: str | None = None) -> None:
        super().put(key, body, content_type=content_type)
        if key == manifest_key(PROJECT) and self.times > 0 and self.older is not None:
            self.times -= 1
            self.objects[key] = self.older


@pytest.mark.parametrize("times", [1, RELEASE_ATTEMPTS])
def test_a_release_replaced_by_a_concurrent_one_is_released_again_or_fails(
    setup: Setup, tmp_path: Path, times: int
) -> None:
    region = TOPOLOGY.replica_regions[0]
    racing = RacingBucket(region, setup.calls, times)
    setup.buckets[region] = racing
    older = _registry_file(tmp_path / "older.db", _view(["risk_score"]))
    releaser = RegistryReleaser(TOPOLOGY, stores=setup.buckets.__getitem__)
    releaser.release(releaser.snapshot(older), [region])
    racing.older = racing.objects[manifest_key(PROJECT)]
    fingerprint = _fingerprint(setup.view)
    if times >= RELEASE_ATTEMPTS:
        with pytest.raises(ObjectStoreUnavailable, match="another release replaced it"):
            setup.gate.admit(VIEW, fingerprint, setup.config)
        return
    setup.gate.admit(VIEW, fingerprint, setup.config)
    for name in TOPOLOGY.regions:
        assert fingerprint in setup.live(name)["recent_schemas"][VIEW]  # type: ignore[index]
