"""``run``: one scenario through the replicator's side and through Feast's own store, checked."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from unittest import mock

import pandas as pd
from harness import FeastKeys, ReferenceRedis, ReplicatedProject
from hypothesis import event as hypothesis_event
from hypothesis.control import currently_in_test_context

from differential.inputs import FeastRow, feast_objects, feast_rows, frame
from differential.models import (
    Invocation,
    KeyBytes,
    describe_difference,
    feast_model,
    record,
    replicated_model,
    written,
)
from differential.scenario import Evolve, Scenario, Write
from replicator.adapters.kafka_publisher import MAX_RECORD_BYTES
from replicator.errors import RefusedWrite
from replicator.feast_layout import entity_text


def event(what: str) -> None:
    """Counted in hypothesis' statistics (``--hypothesis-show-statistics``) when generated."""
    if currently_in_test_context():
        hypothesis_event(what)


MATERIALIZE_FROM = datetime(1899, 1, 1, tzinfo=UTC)
RECORD_SLACK = 8192
"""Bytes a row may need in a Kafka record beyond its key, ts and values (msgpack framing,
field keys, headers): a row within the limit by less than this may go either way."""


class Replica(Protocol):
    """The replicator's side of the comparison, for one scenario at a time."""

    def open(self, project: ReplicatedProject) -> None:
        """Before the primary's FeatureStore exists: point ``project`` at this replica."""

    def primary(self, project: ReplicatedProject) -> Any:
        """The primary's FeatureStore (replicating online store) on ``project``."""

    def registry_changed(self, project: ReplicatedProject) -> None:
        """``feast apply`` ran at the primary: release the registry to the regions."""

    def settle(self, project: ReplicatedProject, expected: FeastKeys) -> list[Any]:
        """Once every region holds exactly ``expected`` (else AssertionError naming the first
        difference), admin clients of the regions."""

    def close(self, project: ReplicatedProject) -> None: ...


@dataclass
class Outcome:
    """What one scenario did: the two models and the refusals seen."""

    feast: FeastKeys
    replicated: FeastKeys
    refused: list[RefusedWrite] = field(default_factory=list)


def run(
    scenario: Scenario, replica: Replica, project: ReplicatedProject, reference: ReferenceRedis
) -> Outcome:
    """Make every step of ``scenario`` through the primary and through Feast's own store,
    then check both Redis states (package docstring). Raises AssertionError on a difference."""
    reference.client.flushall()  # the reference Redis is this harness's own
    replica.open(project)
    primary = replica.primary(project)
    primary.apply(feast_objects(scenario, project.repo, 0))
    replica.registry_changed(project)
    expected_store = project.reference_store(reference)
    ours, theirs = record(primary, scenario.versioning), record(expected_store, scenario.versioning)
    keys = KeyBytes(project.name, scenario.serialization_version)
    skew = project.topology.worker.max_future_skew_seconds
    refused: list[RefusedWrite] = []
    for step, action in enumerate(scenario.steps):
        if isinstance(action, Evolve):
            # Regions catch up before the schema changes (a region lagging behind a schema
            # change is the schema gate's case, not parity's).
            replica.settle(project, replicated_model(ours, keys))
            primary.apply(feast_objects(scenario, project.repo, step + 1))
            replica.registry_changed(project)
            expected_store.refresh_registry()
            event("step: schema change")
            continue
        mine, feasts = len(ours), len(theirs)
        now = datetime.now(UTC)  # relative event times resolve alike for both stores
        outcomes = [_write(store, scenario, step, now) for store in (primary, expected_store)]
        refused += _check_calls(ours[mine:], theirs[feasts:], outcomes, keys, skew)
    outcome = Outcome(feast_model(theirs, keys), replicated_model(ours, keys), refused)
    _assert_same(project.feast_keys(reference.client), outcome.feast, "Feast's rule (the model)")
    regions = replica.settle(project, outcome.replicated)
    _assert_ttls(scenario, reference, regions, outcome.replicated)
    if outcome.feast != outcome.replicated:
        event("regions differ from Feast (documented)")
    return outcome


def _write(store: Any, scenario: Scenario, step: int, now: datetime) -> Exception | None:
    """``steps[step]`` made by ``store`` at ``now``; what it raised (None: it returned)."""
    write = scenario.steps[step]
    assert isinstance(write, Write)
    view = scenario.views[write.view]
    event(f"path: {write.path}" + (" (on-demand view)" if write.on_demand else ""))
    # Feast stamps an on-demand view's rows with the time of the call: the same for both.
    clock = mock.patch("feast.utils._utc_now", return_value=now)
    if write.on_demand:
        clock.start()
    try:
        if write.path == "online_write_batch":
            get = store.get_stream_feature_view if view.stream else store.get_feature_view
            rows = feast_rows(scenario, step, now)
            store._get_provider().online_write_batch(store.config, get(view.name), rows, None)
        elif write.path == "write_to_online_store":
            name = f"{view.name}_od" if write.on_demand else view.name
            store.write_to_online_store(name, frame(scenario, step, now))
        elif write.path == "push":
            store.push(f"push{write.view}", frame(scenario, step, now))
        else:
            source = frame(scenario, step, now)
            source.to_parquet(store.repo_path / "data" / f"view{write.view}.parquet")
            end = now + timedelta(days=11 * 365)
            store.materialize(MATERIALIZE_FROM, end, [view.name])
    except Exception as exc:
        return exc
    finally:
        if write.on_demand:
            clock.stop()
    return None


def _check_calls(
    ours: list[Invocation],
    theirs: list[Invocation],
    outcomes: list[Exception | None],
    keys: KeyBytes,
    skew: float,
) -> list[RefusedWrite]:
    """The primary's calls got what Feast's got, and refused exactly the documented rows."""
    mine, feasts = outcomes
    for call, reference in zip(ours, theirs, strict=False):
        assert call.view == reference.view and _plain(call.rows) == _plain(reference.rows), (
            "the replicating store received other rows than Feast's own store"
        )
        if call.failed is not None or reference.failed is not None:
            assert type(call.failed) is type(reference.failed), (call.failed, reference.failed)
            continue
        _check_refusal(call, keys, skew)
    if isinstance(mine, RefusedWrite):
        assert ours and ours[-1].refused is mine, "RefusedWrite from outside online_write_batch"
        assert feasts is None, f"Feast's own store failed too: {feasts!r}"
        return [mine]
    assert len(ours) == len(theirs), "Feast's call wrote in more calls than the primary's"
    assert type(mine) is type(feasts), f"primary raised {mine!r}, Feast's own store {feasts!r}"
    if mine is not None:
        event(f"both failed: {type(mine).__name__}")
    return []


def _check_refusal(call: Invocation, keys: KeyBytes, skew: float) -> None:
    """Refused (``RefusedWrite`` naming the view and an entity) iff a row is more than the
    skew ahead of the primary's clock or larger than a Kafka record (docs/replication.md)."""
    far, big, maybe = set(), set(), set()
    for (entity, *_), row in zip(call.rows, written(call, keys), strict=True):
        if row.event_ns > call.called_ns + skew * 10**9:
            far.add(entity_text(entity))
        size = len(row.key) + sum(len(v) for v in row.fields.values())
        if size > MAX_RECORD_BYTES:
            big.add(entity_text(entity))
        elif size + RECORD_SLACK + 16 * len(row.fields) > MAX_RECORD_BYTES:
            maybe.add(entity_text(entity))
    if call.refused is None:
        assert not far and not big, f"accepted rows to refuse: far ahead {far}, too big {big}"
        return
    event("refused: " + ("event time far ahead" if far else "row larger than a record"))
    assert call.refused.feature_view == call.view, call.refused
    assert call.refused.entity in far | big | maybe, (call.refused, far, big, maybe)


def _plain(rows: list[FeastRow]) -> list[tuple[Any, ...]]:
    def stamp(value: datetime | None) -> Any:
        return None if value is None or pd.isna(value) else value

    return [
        (e.SerializeToString(), {k: v.SerializeToString() for k, v in vs.items()}, t, stamp(c))
        for e, vs, t, c in rows
    ]


def _assert_ttls(
    scenario: Scenario, reference: ReferenceRedis, regions: list[Any], keys: FeastKeys
) -> None:
    """Each key expires in every region as in the reference: never without key_ttl_seconds,
    else within it (both were written moments ago)."""
    limit = scenario.key_ttl_seconds
    for key in keys:
        expected = reference.client.ttl(key)
        for region in regions:
            actual = region.ttl(key)
            if limit is None:
                assert expected == actual == -1, (key, expected, actual)
            else:
                assert 0 < expected <= limit and 0 < actual <= limit, (key, expected, actual)


def _assert_same(actual: FeastKeys, expected: FeastKeys, what: str) -> None:
    if actual != expected:
        raise AssertionError(f"Redis differs from {what}: {describe_difference(expected, actual)}")
