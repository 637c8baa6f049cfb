"""feature_repo/ without services: the generator is deterministic and writes what the
FileSources declare; feature_store.yaml publishes through the replicator and reads the primary."""

from __future__ import annotations

import importlib.util
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[2]
REPO_DIR = ROOT / "feature_repo"
END = datetime(2025, 6, 1, 12, tzinfo=UTC)
SMALL = {"n_cards": 120, "n_merchants": 30, "days": 3, "end": END}


def _load(name: str) -> ModuleType:
    path = REPO_DIR / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"feature_repo_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    return _load("generate_data")


@pytest.fixture(scope="module")
def definitions() -> ModuleType:
    pytest.importorskip("feast")
    return _load("fraud_features")


def _bytes(paths: list[Path]) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in paths}


def test_same_arguments_write_identical_files(gen: ModuleType, tmp_path: Path) -> None:
    first = gen.generate(tmp_path / "a", seed=5, **SMALL)
    second = gen.generate(tmp_path / "b", seed=5, **SMALL)
    assert _bytes([w.path for w in first]) == _bytes([w.path for w in second])
    assert [w.rows for w in first] == [w.rows for w in second]


def test_another_seed_writes_other_values(gen: ModuleType, tmp_path: Path) -> None:
    first = gen.generate(tmp_path / "a", seed=5, **SMALL)
    other = gen.generate(tmp_path / "b", seed=6, **SMALL)
    for a, b in zip(first, other, strict=True):
        assert not pq.read_table(a.path).equals(pq.read_table(b.path)), a.name


def test_cli_writes_the_same_bytes_as_the_function(gen: ModuleType, tmp_path: Path) -> None:
    written = gen.generate(tmp_path / "fn", seed=5, **SMALL)
    argv = ["--out", str(tmp_path / "cli"), "--seed", "5", "--cards", "120"]
    argv += ["--merchants", "30", "--days", "3", "--end", "2025-06-01T12:00:00Z"]
    assert gen.main(argv) == 0
    assert _bytes([w.path for w in written]) == _bytes(sorted((tmp_path / "cli").iterdir()))


def test_event_times_are_whole_seconds_inside_the_window(gen: ModuleType, tmp_path: Path) -> None:
    for written in gen.generate(tmp_path, seed=5, **SMALL):
        df = pq.read_table(written.path).to_pandas()
        ts = df["event_timestamp"]
        assert ts.min() >= END - timedelta(days=SMALL["days"]), written.name
        assert ts.max() < END, written.name
        assert (ts.dt.microsecond == 0).all() and (ts.dt.nanosecond == 0).all()
        assert (df["created"] >= ts).all()
        # One row per entity and event time: the latest row per entity is unambiguous.
        keys = gen.ENTITY_KEYS[written.name]
        assert not df.duplicated([*keys, "event_timestamp"]).any(), written.name


def _arrow_types() -> dict[str, pa.DataType]:
    from feast.types import Bool, Float32, Float64, Int32, Int64, String, UnixTimestamp

    return {
        str(Int32): pa.int32(),
        str(Int64): pa.int64(),
        str(Float32): pa.float32(),
        str(Float64): pa.float64(),
        str(String): pa.string(),
        str(Bool): pa.bool_(),
        str(UnixTimestamp): pa.timestamp("ns", tz="UTC"),
    }


def test_files_have_the_columns_and_types_the_sources_declare(
    gen: ModuleType, definitions: ModuleType, tmp_path: Path
) -> None:
    from feast import FeatureView, FileSource

    gen.generate(tmp_path, seed=5, **SMALL)
    arrow = _arrow_types()
    views = [v for v in vars(definitions).values() if isinstance(v, FeatureView)]
    sources = [s for s in vars(definitions).values() if isinstance(s, FileSource)]
    assert {v.name for v in views} == set(gen.FILES)
    # Every FileSource reads a file the generator writes, relative to the repo directory.
    assert {s.path for s in sources} == {f"data/{name}.parquet" for name in gen.FILES}

    for view in views:
        source = view.batch_source
        assert isinstance(source, FileSource), view.name
        schema = pq.read_schema(tmp_path / Path(source.path).name)
        expected = {field.name: arrow[str(field.dtype)] for field in view.schema}
        expected[source.timestamp_field] = pa.timestamp("ns", tz="UTC")
        expected[source.created_timestamp_column] = pa.timestamp("ns", tz="UTC")
        assert view.join_keys == gen.ENTITY_KEYS[view.name]
        for join_key in view.join_keys:
            assert join_key in expected, (view.name, join_key)
        actual = {name: schema.field(name).type for name in schema.names}
        assert actual == expected, view.name


def test_feature_store_yaml_publishes_through_the_replicator_and_reads_the_primary(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("feast")
    from feast.repo_config import load_repo_config

    from replicator.adapters.redis_store import feast_connection_string
    from replicator.config import load_topology

    for key in list(os.environ):
        if key.startswith("REPLICATOR_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(REPO_DIR)  # the store finds ../infra/topology.yaml from here
    topology = load_topology(ROOT / "infra" / "topology.yaml")

    config = load_repo_config(REPO_DIR, REPO_DIR / "feature_store.yaml")

    primary = topology.regions[topology.primary_region].redis
    reader = primary.reader
    assert config.project == topology.project
    assert config.entity_key_serialization_version == 3
    assert config.online_store.type == "replicator.feast_publisher.ReplicatingOnlineStore"
    assert config.online_store.connection_string == feast_connection_string(primary, reader)
    assert config.online_store.connection_string.startswith(
        f"{primary.host}:{primary.port},username={reader.username},"
        f"password={reader.password.get_secret_value()},ssl=true,"
    )
