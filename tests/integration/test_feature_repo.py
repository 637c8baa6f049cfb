"""The feature repo applies, materializes into the primary Redis and serves what was generated.

Uses Feast's own Redis online store (no replication code) on the topology's primary Redis as
the admin user, a copy of ``feature_repo/`` in a temporary directory with its own registry, and
a project name unique to the run so that its keys never mix with other tests' keys.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest
from feast import Entity, FeatureService, FeatureStore, FeatureView, RepoConfig
from feast.data_source import DataSource, PushMode

from replicator.adapters.redis_store import feast_connection_string

pytestmark = pytest.mark.integration

REPO_DIR = Path(__file__).resolve().parents[2] / "feature_repo"
END = datetime(2025, 6, 1, tzinfo=UTC)
DAYS = 3
N_CARDS = 300
N_MERCHANTS = 50
SAMPLE = 25


@dataclass
class AppliedRepo:
    store: FeatureStore
    module: ModuleType
    frames: dict[str, pd.DataFrame]
    """Generated rows per feature view (the Parquet files as written)."""


def _load_module(path: Path) -> ModuleType:
    """Import a file of the copied repo under a unique name (as `feast apply` would)."""
    name = f"{path.stem}_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


def _feast_objects(module: ModuleType) -> list[Any]:
    kinds = (Entity, FeatureView, FeatureService, DataSource)
    return [obj for obj in vars(module).values() if isinstance(obj, kinds)]


@pytest.fixture(scope="module")
def applied(topology: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppliedRepo]:
    repo = tmp_path_factory.mktemp("feature_repo")
    for name in ("fraud_features.py", "generate_data.py", ".feastignore"):
        shutil.copy(REPO_DIR / name, repo / name)

    written = _load_module(repo / "generate_data.py").generate(
        repo / "data", n_cards=N_CARDS, n_merchants=N_MERCHANTS, days=DAYS, seed=11, end=END
    )
    frames = {w.name: pd.read_parquet(w.path) for w in written}

    redis = topology.regions[topology.primary_region].redis
    connection = feast_connection_string(redis, redis.admin)  # with the topology's TLS
    config = RepoConfig(
        project=f"{topology.project}_it_{uuid.uuid4().hex[:8]}",
        provider="local",
        registry=str(repo / "data" / "registry.db"),
        offline_store={"type": "file"},
        online_store={"type": "redis", "connection_string": connection},
        entity_key_serialization_version=3,
        repo_path=repo,
    )
    store = FeatureStore(repo_path=str(repo), config=config)
    module = _load_module(repo / "fraud_features.py")
    store.apply(_feast_objects(module))
    store.materialize(start_date=END - timedelta(days=DAYS + 1), end_date=END)
    try:
        yield AppliedRepo(store, module, frames)
    finally:
        store.teardown()  # deletes this run's keys (project-suffixed) from the primary Redis


def _latest(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """What materialization must serve: per entity, the row with the newest event time
    (created time breaks ties), indexed by the join keys."""
    ordered = df.sort_values(["event_timestamp", "created"], kind="stable")
    return ordered.groupby(keys, sort=True).tail(1).set_index(keys).sort_index()


def _python(value: Any) -> Any:
    """A Parquet cell as get_online_features returns it."""
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def _sample(index: pd.Index, n: int = SAMPLE) -> list[Any]:
    rng = np.random.default_rng(3)
    picks = rng.choice(len(index), size=min(n, len(index)), replace=False)
    return [index[i] for i in sorted(picks)]


def _row(keys: list[str], key: Any) -> dict[str, Any]:
    values = key if isinstance(key, tuple) else (key,)
    return {k: _python(v) for k, v in zip(keys, values, strict=True)}


@pytest.mark.parametrize(
    ("view", "keys"),
    [
        ("card_spending_stats", ["card_id"]),
        ("merchant_risk", ["merchant_id"]),
        ("card_merchant_affinity", ["card_id", "merchant_id"]),
    ],
)
def test_online_features_are_the_latest_generated_rows(
    applied: AppliedRepo, view: str, keys: list[str]
) -> None:
    fv = applied.store.get_feature_view(view)
    features = [f.name for f in fv.features]
    latest = _latest(applied.frames[view], keys)
    sample = _sample(latest.index)

    response = applied.store.get_online_features(
        features=[f"{view}:{name}" for name in features],
        entity_rows=[_row(keys, key) for key in sample],
    ).to_dict(include_event_timestamps=True)

    for i, key in enumerate(sample):
        expected = latest.loc[key]
        for name in features:
            assert response[name][i] == _python(expected[name]), (view, key, name)
        ts = response[f"{features[0]}__ts"][i]
        assert ts == int(expected["event_timestamp"].timestamp()), (view, key)


def test_unknown_entities_come_back_empty(applied: AppliedRepo) -> None:
    response = applied.store.get_online_features(
        features=["card_spending_stats:txn_count_24h", "merchant_risk:risk_score"],
        entity_rows=[{"card_id": 1, "merchant_id": "no_such_merchant"}],
    ).to_dict()
    assert response["txn_count_24h"] == [None]
    assert response["risk_score"] == [None]


def test_feature_service_serves_all_three_views(applied: AppliedRepo) -> None:
    service = applied.store.get_feature_service("fraud_model_v1")
    cards = _latest(applied.frames["card_spending_stats"], ["card_id"])
    merchants = _latest(applied.frames["merchant_risk"], ["merchant_id"])
    pairs = _latest(applied.frames["card_merchant_affinity"], ["card_id", "merchant_id"])
    sample = _sample(pairs.index)

    response = applied.store.get_online_features(
        features=service,
        entity_rows=[_row(["card_id", "merchant_id"], key) for key in sample],
    ).to_dict()

    served = {
        (projection.name, feature.name)
        for projection in service.feature_view_projections
        for feature in projection.features
    }
    assert {view for view, _ in served} == {
        "card_spending_stats",
        "merchant_risk",
        "card_merchant_affinity",
    }
    for i, (card_id, merchant_id) in enumerate(sample):
        for view, name in sorted(served):
            if view == "card_spending_stats":
                source, key = cards, card_id
            elif view == "merchant_risk":
                source, key = merchants, merchant_id
            else:
                source, key = pairs, (card_id, merchant_id)
            expected = _python(source.loc[key, name]) if key in source.index else None
            assert response[name][i] == expected, (view, card_id, merchant_id, name)


def test_push_reaches_the_online_store(applied: AppliedRepo) -> None:
    """Both push sources, including the two-key view, write through to Redis."""
    card_id = 9_000_000_001  # not a generated card, so other tests are unaffected
    event = END + timedelta(minutes=5)
    applied.store.push(
        "card_spending_push",
        pd.DataFrame(
            {
                "card_id": [card_id],
                "txn_count_1h": np.array([4], dtype=np.int32),
                "txn_count_24h": [9],
                "amount_sum_24h": [1234.5],
                "amount_avg_30d": np.array([80.25], dtype=np.float32),
                "distinct_merchants_24h": np.array([3], dtype=np.int32),
                "foreign_txn_ratio_24h": np.array([0.5], dtype=np.float32),
                "home_country": ["SG"],
                "last_card_present": [False],
                "last_txn_at": [pd.Timestamp(event)],
                "event_timestamp": [pd.Timestamp(event)],
                "created": [pd.Timestamp(event)],
            }
        ),
        to=PushMode.ONLINE,
    )
    applied.store.push(
        "card_merchant_affinity_push",
        pd.DataFrame(
            {
                "card_id": [card_id],
                "merchant_id": ["m_000001"],
                "pair_txn_count_90d": np.array([7], dtype=np.int32),
                "pair_amount_sum_90d": [350.0],
                "pair_amount_avg_90d": np.array([50.0], dtype=np.float32),
                "pair_first_seen_at": [pd.Timestamp(END - timedelta(days=40))],
                "pair_is_trusted": [True],
                "event_timestamp": [pd.Timestamp(event)],
                "created": [pd.Timestamp(event)],
            }
        ),
        to=PushMode.ONLINE,
    )

    response = applied.store.get_online_features(
        features=[
            "card_spending_stats:txn_count_1h",
            "card_spending_stats:home_country",
            "card_spending_stats:last_txn_at",
            "card_merchant_affinity:pair_txn_count_90d",
            "card_merchant_affinity:pair_is_trusted",
        ],
        entity_rows=[{"card_id": card_id, "merchant_id": "m_000001"}],
    ).to_dict()
    assert response["txn_count_1h"] == [4]
    assert response["home_country"] == ["SG"]
    assert response["last_txn_at"] == [event]
    assert response["pair_txn_count_90d"] == [7]
    assert response["pair_is_trusted"] == [True]
