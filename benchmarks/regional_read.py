"""``regional_read``: ``get_online_features`` through ``RegionalOnlineStore`` vs plain Feast.

Same run, same Redis (eu-west-1 of the local stack), same reader user, same registry: a
throwaway Feast project with one view of 10 float features and 1,000 entities written by
Feast itself. Calls alternate between the two stores, for 1 and for 100 entities; the figures
are p50/p99 latencies in ms and the ratio regional/plain (target <= 1.05 at p50). The regional
store runs its health checks in the background as it would in production.

    python -m benchmarks.regional_read [--quick]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.report import ROOT, quantile
from replicator.adapters.redis_store import feast_connection_string
from replicator.config import Topology, load_topology
from replicator.read_plan import plan_document, read_plan

NAME = "regional_read"
REGION = "eu-west-1"
ENTITIES = 1000
TARGET_RATIO = 1.05


def _topology(project: str) -> Topology:
    return load_topology(ROOT / "infra" / "topology.yaml").model_copy(update={"project": project})


@contextmanager
def feast_project(project: str, topology: Topology) -> Iterator[tuple[Any, Any, list[str]]]:
    """(plain Feast store as reader, regional store, feature refs); keys removed afterwards."""
    import pandas as pd
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, RepoConfig
    from feast.types import Float64

    workdir = Path(tempfile.mkdtemp(prefix=f"{project}-"))
    redis_cfg = topology.region(REGION).redis

    def config(online_store: dict[str, Any]) -> Any:
        return RepoConfig(
            project=project,
            provider="local",
            registry=str(workdir / "registry.db"),
            online_store=online_store,
            offline_store={"type": "file"},
            entity_key_serialization_version=3,
            repo_path=workdir,
        )

    def conn(user: Any) -> str:
        return feast_connection_string(redis_cfg, user)  # with the topology's TLS

    names = [f"f{i}" for i in range(10)]
    frame = pd.DataFrame({"merchant_id": [f"m{i}" for i in range(ENTITIES)]})
    for n in names:
        frame[n] = [float(i) for i in range(ENTITIES)]
    frame["ts"] = datetime.now(UTC)
    frame.to_parquet(workdir / "rows.parquet")
    entity = Entity(name="merchant", join_keys=["merchant_id"])
    view = FeatureView(
        name="bench_view",
        entities=[entity],
        schema=[Field(name=n, dtype=Float64) for n in names],
        source=FileSource(path=str(workdir / "rows.parquet"), timestamp_field="ts"),
    )
    admin = FeatureStore(
        config=config({"type": "redis", "connection_string": conn(redis_cfg.admin)})
    )
    admin.apply([entity, view])
    admin.write_to_online_store("bench_view", frame)
    plain = FeatureStore(
        config=config({"type": "redis", "connection_string": conn(redis_cfg.reader)})
    )
    regional = FeatureStore(
        config=config(
            {
                "type": "replicator.feast_reader.RegionalOnlineStore",
                "plan": plan_document(read_plan(topology, REGION)),
            }
        )
    )
    try:
        yield plain, regional, [f"bench_view:{n}" for n in names]
    finally:
        admin.teardown()
        shutil.rmtree(workdir, ignore_errors=True)


def _timed(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def run(quick: bool = False) -> dict[str, Any]:
    project = f"bench_rr_{uuid.uuid4().hex[:8]}"
    topology = _topology(project)
    rounds = {1: 300 if quick else 3000, 100: 60 if quick else 600}
    figures: dict[str, Any] = {}
    with feast_project(project, topology) as (plain, regional, refs):
        for size, n in rounds.items():
            rows = [{"merchant_id": f"m{i}"} for i in range(size)]
            times: dict[str, list[float]] = {"plain": [], "regional": []}
            for i in range(n + 20):
                for label, store in (("plain", plain), ("regional", regional))[
                    :: 1 if i % 2 else -1
                ]:
                    ms = _timed(
                        lambda s=store, r=rows: s.get_online_features(features=refs, entity_rows=r)
                    )
                    if i >= 20:  # warm-up
                        times[label].append(ms)
            for label, values in times.items():
                figures[f"{label}_{size}_p50_ms"] = round(quantile(values, 0.5), 3)
                figures[f"{label}_{size}_p99_ms"] = round(quantile(values, 0.99), 3)
            figures[f"ratio_{size}_p50"] = round(
                figures[f"regional_{size}_p50_ms"] / figures[f"plain_{size}_p50_ms"], 3
            )
    worst = max(figures["ratio_1_p50"], figures["ratio_100_p50"])
    return {
        "unit": "x plain Feast (p50, worst of 1 and 100 entities)",
        "value": worst,
        "target": f"<= {TARGET_RATIO}",
        "met": worst <= TARGET_RATIO,
        "baselines": {"plain_1_p50_ms": figures["plain_1_p50_ms"]},
        "params": {"calls": rounds, "region": REGION, "features": 10},
        **figures,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.regional_read")
    parser.add_argument("--quick", action="store_true")
    print(json.dumps(run(parser.parse_args().quick), indent=2))


if __name__ == "__main__":
    main()
