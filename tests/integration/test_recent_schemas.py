"""The schema gate on real Kafka, S3 and Redis: every schema still written is applied.

After ``feast apply`` changes a view, a process whose Feast registry cache still holds the
previous schema keeps writing it, and Feast's own store accepts those rows: every region
applies them (its manifest keeps the view's recent schema versions, core/schema_history.py).
Only a schema never released to a region waits for it, then is dead-lettered; rows of other
views flow meanwhile.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from harness import END, ReferenceRedis, ReplicatedProject, dead_letter_reasons, primary_fingerprint
from waiting import wait_until

from replicator.adapters.kafka_config import client_config
from replicator.config import Topology
from replicator.core import wire
from replicator.core.records import Row, RowBatch
from replicator.worker import Worker

pytestmark = pytest.mark.slow

VIEW = "card_spending_stats"
SCHEMA_WAIT_SECONDS = 20.0
"""Long enough that the other view's rows are applied well within it on a busy machine."""
UNRELEASED = "00000000feedface"


@pytest.fixture
def project(topology: Topology, config_file: Path, tmp_path: Path) -> Iterator[ReplicatedProject]:
    worker = {"schema_wait_seconds": SCHEMA_WAIT_SECONDS}
    replicated = ReplicatedProject(config_file, tmp_path, worker=worker)
    replicated.generate_data(n_cards=200, n_merchants=40, days=2)
    yield replicated
    replicated.stop()


def _changed_view(project: ReplicatedProject, without: str) -> Any:
    """``VIEW`` as a new ``feast apply`` makes it: the same, less the feature ``without``."""
    import copy

    view = copy.copy(next(o for o in project.feature_objects() if o.name == VIEW))
    view.features = [f for f in view.features if f.name != without]
    return view


def _stale_stores(project: ReplicatedProject, reference: ReferenceRedis) -> tuple[Any, Any]:
    """Another process of the primary, and Feast's own store beside it, whose registry cache
    holds the registry as it is now. (A process reading an ``s3://`` registry keeps its copy
    for ``cache_ttl_seconds``; Feast re-reads a local registry file as soon as it changes, so
    the cache is a copy of the file here.)"""
    from feast import FeatureStore, RepoConfig

    cached = project.workdir / "cached-registry.db"
    shutil.copy(project.repo / "data" / "registry.db", cached)
    replicating = {
        "type": "replicator.feast_publisher.ReplicatingOnlineStore",
        "topology": str(project.topology_path),
    }
    feasts = {"type": "redis", "connection_string": reference.connection_string}
    stores = []
    for online_store in (replicating, feasts):
        settings = {**project._feast_config(online_store), "registry": str(cached)}
        config = RepoConfig(**settings, repo_path=project.repo)
        stores.append(FeatureStore(config=config, repo_path=str(project.repo)))
    return stores[0], stores[1]


def _frame(project: ReplicatedProject, first: int, rows: int, hours: int) -> Any:
    """Rows ``first .. first+rows`` of the cards' generated data, ``hours`` after ``END``."""
    import pandas as pd

    frame = pd.read_parquet(project.repo / "data" / f"{VIEW}.parquet")
    frame = frame.drop_duplicates("card_id").iloc[first : first + rows].copy()
    frame["event_timestamp"] = END + timedelta(hours=hours)
    frame["created"] = END + timedelta(hours=hours)
    return frame


def _dead_letters(project: ReplicatedProject) -> int:
    return sum(w.worker.stats.dead_letters for w in project.workers)


def test_rows_of_the_previous_schema_written_after_a_new_release_apply_in_every_region(
    project: ReplicatedProject, reference: ReferenceRedis
) -> None:
    primary, expected_store = project.feast_stores(reference)
    stale, stale_expected = _stale_stores(project, reference)
    project.start_workers()

    primary.apply([_changed_view(project, without="home_country")])
    project.sync_registry()  # every region now has the new schema, not the old one
    expected_store.refresh_registry()
    assert primary_fingerprint(stale, VIEW) != primary_fingerprint(primary, VIEW)

    # Old-schema rows first, then new-schema rows behind them in the same partitions.
    for writer, store in ((stale, stale_expected), (primary, expected_store)):
        first = 0 if writer is stale else 60
        for which in (writer, store):
            which.write_to_online_store(VIEW, _frame(project, first, 60, hours=1))
    expected = project.feast_keys(reference.client)
    assert len(expected) == 120

    project.wait_converged(expected)
    assert _dead_letters(project) == 0
    assert not any(w.worker.parked for w in project.workers)


def _publish_unreleased(project: ReplicatedProject) -> None:
    """One record of ``VIEW`` on partition 0 with a schema no release ever had (a writer
    ahead of every region's registry), as a producer other than Feast's call would send it."""
    from confluent_kafka import Producer

    key = b"\x02\x00\x00\x00" + project.name.encode()  # any key: it must not be written
    row = Row(key, b"\x08\x01", int(END.timestamp()), 0, 0, 0, (b"\x10\x01",))
    headers, payload = wire.encode_rows(RowBatch(VIEW, (b"\x00\x00\x00\x01",), (row,), UNRELEASED))
    producer = Producer(client_config(project.topology, "primary"))
    producer.produce(project.topology.topic_for(VIEW), payload, headers=headers, partition=0)
    assert producer.flush(30) == 0


def test_a_schema_never_released_waits_then_is_dead_lettered_and_other_views_flow(
    project: ReplicatedProject, reference: ReferenceRedis
) -> None:
    primary, expected_store = project.feast_stores(reference)
    project.start_workers()
    _publish_unreleased(project)

    workers = [w.worker for w in project.workers]

    def waiting(worker: Worker) -> bool:
        return any(p.fingerprint == UNRELEASED for p in worker.parked.values())

    wait_until(
        lambda: all(waiting(w) for w in workers),
        60,
        f"every region to park the {VIEW} record of the unreleased schema",
        observe=lambda: {w.region: w.parked for w in workers},
    )

    # Rows of another view, written after, are applied while that record waits.
    merchants = project.fresh_rows("merchant_risk", 30, timedelta(hours=1))
    for store in (primary, expected_store):
        store.write_to_online_store("merchant_risk", merchants)
    project.wait_converged(project.feast_keys(reference.client))
    assert all(waiting(w) for w in workers)
    assert _dead_letters(project) == 0

    # The wait ends: the record goes to the dead-letter topic, in every region.
    wait_until(
        lambda: all(w.stats.dead_letters and not w.parked for w in workers),
        SCHEMA_WAIT_SECONDS + 60,
        f"every region to dead-letter the {VIEW} record once the wait ends",
        observe=lambda: {w.region: (w.stats.dead_letters, w.parked) for w in workers},
    )
    topic = project.topology.topic_for(VIEW)
    reasons = dead_letter_reasons(project.topology, topic, expect=len(workers))
    assert reasons == {w.region: ["unknown_schema"] for w in workers}
    project.wait_converged(project.feast_keys(reference.client))  # nothing of it applied
