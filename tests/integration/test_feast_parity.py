"""Parity with Feast's own RedisOnlineStore for inputs Feast accepts (issue 8).

Each test writes the same calls through the replicating store and through Feast's own store
into a reference Redis; every region must match the reference byte for byte, or the call must
fail at the primary as documented (docs/replication.md, "Intended differences from Feast").
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from harness import END, ReferenceRedis, ReplicatedProject, recent_window

from replicator.config import Topology

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReferenceRedis]:
    server = ReferenceRedis(tmp_path_factory.mktemp("reference-redis"))
    yield server
    server.close()


@pytest.fixture
def project(topology: Topology, config_file: Path, tmp_path: Path) -> Iterator[ReplicatedProject]:
    replicated = ReplicatedProject(config_file, tmp_path)
    replicated.generate_data(n_cards=60, n_merchants=20, days=2)
    yield replicated
    replicated.stop()


def _applied(project: ReplicatedProject, reference: ReferenceRedis) -> tuple[Any, Any]:
    primary = project.primary_store()
    primary.apply(project.feature_objects())
    project.sync_registry()
    return primary, project.reference_store(reference)


def _push_frame(project: ReplicatedProject, rows: int, shift: timedelta) -> pd.DataFrame:
    frame = pd.read_parquet(project.repo / "data" / "card_spending_stats.parquet")
    frame = frame.drop_duplicates(subset=["card_id"]).head(rows).copy()
    frame["event_timestamp"] = END + shift
    frame["created"] = END + shift
    return frame


def test_null_created_time_is_stored_as_feast_stores_it(
    project: ReplicatedProject, reference: ReferenceRedis
) -> None:
    # A batch source where some rows have no created time: `feast materialize` stores them.
    source = project.repo / "data" / "merchant_risk.parquet"
    batch = pd.read_parquet(source)
    batch["created"] = batch["created"].astype("datetime64[ns, UTC]")
    batch.loc[batch.index[::3], "created"] = pd.NaT
    batch.to_parquet(source)
    primary, expected_store = _applied(project, reference)
    project.start_workers()
    first = _push_frame(project, 20, timedelta(hours=1))
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


def _merchant_frame(project: ReplicatedProject, rows: int, shift: timedelta) -> pd.DataFrame:
    frame = pd.read_parquet(project.repo / "data" / "merchant_risk.parquet")
    frame = frame.drop_duplicates(subset=["merchant_id"]).head(rows).copy()
    frame["event_timestamp"] = END + shift
    frame["created"] = END + shift
    return frame


def test_writes_larger_than_a_kafka_record_are_cut_by_bytes(
    topology: Topology, config_file: Path, tmp_path: Path, reference: ReferenceRedis
) -> None:
    project = ReplicatedProject(config_file, tmp_path, partitions=1)  # every row, one partition
    try:
        project.generate_data(n_cards=20, n_merchants=20, days=1)
        primary, expected_store = _applied(project, reference)
        project.start_workers()
        wide = _merchant_frame(project, 12, timedelta(hours=1))
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

    primary, expected_store = _applied(project, reference)
    project.start_workers()
    refused = _merchant_frame(project, 12, timedelta(hours=1))
    refused.loc[refused.index[5], "merchant_category"] = "x" * (8 * 1024 * 1024 + 1)
    with pytest.raises(RefusedWrite) as error:
        primary.write_to_online_store("merchant_risk", refused)
    entity = refused.loc[refused.index[5], "merchant_id"]
    assert error.value.feature_view == "merchant_risk"
    assert error.value.entity == f"merchant_id={entity!r}"
    assert str(8 * 1024 * 1024) in str(error.value)
    # Nothing of the refused call reaches a region; a later call does, all of it.
    later = _merchant_frame(project, 3, timedelta(hours=2))
    for store in (primary, expected_store):
        store.write_to_online_store("merchant_risk", later)
    expected = project.feast_keys(reference.client)
    assert len(expected) == 3
    project.wait_converged(expected)
