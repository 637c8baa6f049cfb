"""``materialize``: ``feast materialize`` wall time with the replicating store against Feast's.

One Feast repo state (the benchmarks' 10-feature view, ``benchmarks.dataset``), one parquet
source of 100,000 rows (one per entity, event times spread over a day, so no two rows of a
run share a time) and one window; two ``feature_store.yaml`` that differ only in
``online_store``:

- ``replicating`` (the value): ``type: replicator.feast_publisher.ReplicatingOnlineStore``
  on the stack's Kafka; no worker consumes the throwaway project's topics, so no worker shares
  the cores during the timed part.
- ``feast_redis`` (the baseline): ``type: redis`` on a ``redis-server`` of the benchmark's
  own, emptied before each repetition (Feast's dedup would skip rows it already holds).

Timed: the wall time of the ``feast -c REPO materialize START END`` process, as a data
engineer runs it (Feast's import, about 5 s here, included), repetitions interleaved,
with the load average of each. Then one child process per store runs the same call,
``FeatureStore(repo).materialize(start, end)``, under cProfile, to split the call into
reading the source, converting it to Feast's protobufs and the online store's
``online_write_batch`` (not timed: the profiler inflates per-call costs).

Target: replicating / feast_redis <= 0.8 (median of the paired repetitions).

    python -m benchmarks --only materialize [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from benchmarks.context import Context
from benchmarks.dataset import ENTITY, EVENT_TIME, FEATURES, feature_value
from benchmarks.processes import PrivateRedis, tail
from benchmarks.project import BenchProject
from benchmarks.report import ROOT, Check, Result, load_average, median

NAME = "materialize"
TARGET_RATIO = 0.8
FEAST_CLI = Path(sys.executable).parent / "feast"
START, END = EVENT_TIME - timedelta(days=2), EVENT_TIME + timedelta(days=1)
PHASES = {
    "online_write_batch": "online_write_batch",
    "arrow_to_protobuf": "_convert_arrow_to_proto",
    "offline_read_to_arrow": "to_arrow",
}
"""Profile phases: name -> the function whose cumulative time it is."""


def run(ctx: Context) -> list[Result]:
    rows = ctx.size(100_000, 20_000)
    repetitions = ctx.size(3, 2)
    with (
        tempfile.TemporaryDirectory(prefix="bench-materialize-") as tmp,
        BenchProject(ctx.config_path, "materialize") as project,
        PrivateRedis(Path(tmp) / "redis") as redis,
    ):
        workdir = Path(tmp)
        ctx.progress(f"materialize: {rows:,} rows into {project.workdir / 'source.parquet'}")
        write_source(project.workdir / "source.parquet", rows)
        project.register()
        repos = {
            "replicating": _repo(project, workdir / "replicating", project.repo_config),
            "feast_redis": _repo(
                project,
                workdir / "feast_redis",
                project.feast_redis_config(connection_string=redis.connection_string),
            ),
        }
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in repos}
        for rep in range(repetitions):
            for name, repo in repos.items():
                if name == "feast_redis":
                    redis.flush()
                load = load_average()
                seconds = _cli(repo, workdir / f"{name}.log")
                runs[name].append({"seconds": seconds, "load_average": load})
                ctx.progress(f"materialize: rep {rep + 1}/{repetitions} {name}: {seconds:.1f} s")
        keys = int(redis.client().dbsize())
        if keys != rows:
            raise RuntimeError(f"feast materialize left {keys} keys in Redis, expected {rows}")
        ctx.progress("materialize: one profiled call of each")
        redis.flush()
        profiles = {
            name: _profiled_child(repo, workdir / f"{name}.log") for name, repo in repos.items()
        }
    return [_result(rows, repetitions, runs, profiles)]


def _result(
    rows: int,
    repetitions: int,
    runs: dict[str, list[dict[str, Any]]],
    profiles: dict[str, dict[str, Any]],
) -> Result:
    seconds = {name: [r["seconds"] for r in rs] for name, rs in runs.items()}
    ratios = [a / b for a, b in zip(seconds["replicating"], seconds["feast_redis"], strict=True)]
    value, feast = median(seconds["replicating"]), median(seconds["feast_redis"])
    ratio = median(ratios)
    return Result(
        name=NAME,
        unit="s (feast materialize wall time)",
        value=value,
        target=f"<= {TARGET_RATIO:g}x feast_redis",
        checks=[
            Check("replicating / feast_redis (median of paired repetitions)", ratio, "<=", 0.8),
        ],
        baselines={"feast_redis": feast},
        figures={
            "ratio": round(ratio, 3),
            "ratio_per_repetition": [round(r, 3) for r in ratios],
            "seconds_per_repetition": {
                name: [round(s, 2) for s in ss] for name, ss in seconds.items()
            },
            "spread_pct": {
                name: round(100 * (max(ss) - min(ss)) / median(ss), 1)
                for name, ss in seconds.items()
            },
            "rows_per_s": {name: round(rows / median(ss)) for name, ss in seconds.items()},
            "load_average_per_repetition": {
                name: [r["load_average"] for r in rs] for name, rs in runs.items()
            },
            "profile": profiles,
        },
        params={
            "rows": rows,
            "features": 10,
            "entities": rows,
            "repetitions": repetitions,
            "window": [START.isoformat(), END.isoformat()],
            "statistic": "median of repetitions, interleaved; ratio: median of paired ratios",
            "command": "feast -c REPO materialize START END",
            "feast_redis": "private redis-server, emptied before each repetition",
            "workers": "none consume the project's topics",
        },
    )


def write_source(path: Path, rows: int) -> None:
    """The batch source: one row per entity ``0..rows-1``, event times one second apart
    going back from ``EVENT_TIME`` (wrapping after a day), values from ``feature_value``."""
    import numpy as np
    import pandas as pd

    ids = range(rows)
    columns: dict[str, Any] = {ENTITY: np.arange(rows, dtype="int64")}
    dtypes = {"int64": "int64", "double": "float64", "float": "float32", "string": "object"}
    for index, (name, kind) in enumerate(FEATURES):
        columns[name] = pd.Series([feature_value(i, index) for i in ids], dtype=dtypes[kind])
    columns["ts"] = pd.Series([EVENT_TIME - timedelta(seconds=i % 86_400) for i in ids])
    pd.DataFrame(columns).to_parquet(path, index=False)


def _repo(project: BenchProject, directory: Path, config: Any) -> Path:
    """A repo directory whose feature_store.yaml holds ``config`` (project, registry and
    offline store shared by both stores)."""
    directory.mkdir(parents=True, exist_ok=True)
    online = config.online_store.model_dump(exclude_unset=True, mode="json")
    online["type"] = config.online_store.type
    document = {
        "project": project.name,
        "provider": "local",
        "registry": str(project.registry_path),
        "offline_store": {"type": "file"},
        "online_store": online,
        "entity_key_serialization_version": 3,
    }
    (directory / "feature_store.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    return directory


def _env() -> dict[str, str]:
    """This checkout's packages first, as ``make bench`` runs them."""
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)}


def _cli(repo: Path, log: Path) -> float:
    """Wall seconds of ``feast materialize`` over the window; raises if it fails."""
    command = [str(FEAST_CLI), "-c", str(repo), "materialize", START.isoformat(), END.isoformat()]
    started = time.perf_counter()
    with log.open("ab") as out:
        done = subprocess.run(
            command, stdout=out, stderr=subprocess.STDOUT, env=_env(), check=False
        )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: {tail(log)}")
    return seconds


def _profiled_child(repo: Path, log: Path) -> dict[str, Any]:
    """``python -m benchmarks.materialize --profile REPO`` in a fresh process."""
    command = [sys.executable, "-m", "benchmarks.materialize", "--profile", str(repo)]
    with log.open("ab") as err:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=err, env=_env(), check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the profiled materialize exited {done.returncode}: {tail(log)}")
    return dict(json.loads(done.stdout.decode().strip().splitlines()[-1]))


def profile_materialize(repo: Path) -> dict[str, Any]:
    """Import Feast, then ``FeatureStore(repo).materialize(START, END)`` under cProfile:
    seconds of the import, of the profiled call, and the call's phases (cumulative)."""
    import cProfile
    import pstats

    began = time.perf_counter()
    from feast import FeatureStore

    imported = time.perf_counter()
    store = FeatureStore(repo_path=str(repo))
    profiler = cProfile.Profile()
    profiler.enable()
    store.materialize(start_date=START, end_date=END)
    profiler.disable()
    stats: dict[Any, Any] = getattr(pstats.Stats(profiler), "stats", {})
    total = max(float(getattr(pstats.Stats(profiler), "total_tt", 0.0)), 1e-9)
    phases = {}
    for phase, function in PHASES.items():
        cumulative = sum(v[3] for (_, _, name), v in stats.items() if name == function)
        phases[phase] = {"s": round(cumulative, 2), "pct": round(100 * cumulative / total, 1)}
    return {
        "import_feast_s": round(imported - began, 2),
        "profiled_call_s": round(total, 2),
        "phases_cumulative": phases,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.materialize")
    parser.add_argument("--profile", type=Path, required=True, help="repo to materialize")
    args = parser.parse_args()
    started = time.perf_counter()
    result = profile_materialize(args.profile)
    result["child_wall_s"] = round(time.perf_counter() - started, 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
