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
