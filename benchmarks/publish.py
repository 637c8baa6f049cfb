"""``publish``: rows/s of the primary's Feast write path, against Feast's own Redis writer.

Same 100,000 rows x 10 features (``benchmarks.dataset.feast_rows``: what Feast hands an
online store), same process, same run, repetitions interleaved so a burst of load from other
users hits both alike:

- ``replicating`` (the value): ``ReplicatingOnlineStore.online_write_batch``, one call with
  every row, timed until it returns, i.e. until Kafka acknowledged and committed the call's
  transaction (Feast-layout encoding, record cutting, produce, commit).
- ``feast_redis`` (the baseline): Feast's ``RedisOnlineStore.online_write_batch`` with its
  default dedup (HMGET every ``_ts`` field, then HSET the newer rows), one call with every
  row, into a ``redis-server`` of the benchmark's own (emptied before each repetition), so
  neither disturbs the stack's Redis nor is disturbed by other suites' traffic on it.

Per repetition: wall seconds, CPU seconds of this process (every thread: librdkafka's
compression and I/O threads count) and the machine's load average, since the 2 cores are
shared. After the timed part, one call of each runs under cProfile (not timed: the profiler
inflates per-call costs) and its top functions go into the results. Each run checks that the
bytes are Feast's: the rows as the replicating store encodes them, written as Redis hashes,
equal what Feast's writer left on a sample of keys.

Target: replicating >= 3x feast_redis (median of the per-repetition ratios).

    python -m benchmarks --only publish [--quick]
"""

from __future__ import annotations

import cProfile
import pstats
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.context import Context
from benchmarks.dataset import feast_rows
from benchmarks.processes import PrivateRedis
from benchmarks.project import BenchProject
from benchmarks.report import Check, Result, load_average, median

NAME = "publish"
TARGET_RATIO = 3.0
WARMUP_ROWS = 1000
PROFILE_TOP = 14


def run(ctx: Context) -> list[Result]:
    rows = ctx.size(100_000, 20_000)
    repetitions = ctx.size(5, 3)
    with (
        tempfile.TemporaryDirectory(prefix="bench-publish-") as workdir,
        BenchProject(ctx.config_path, "publish") as project,
        PrivateRedis(Path(workdir)) as redis,
    ):
        ctx.progress(f"publish: registering {project.view_name} in project {project.name}")
        project.register()
        ctx.progress(f"publish: building {rows:,} rows x 10 features")
        data = feast_rows(rows)
        variants = _Variants(project, redis, data)
        try:
            runs = _repetitions(ctx, variants, repetitions)
            ctx.progress("publish: one profiled call of each")
            profiles = {name: _profile(call) for name, call in variants.all().items()}
            identical = variants.identical_to_feast()
        finally:
            variants.close()
    return [_result(rows, repetitions, runs, profiles, identical, project.partitions)]


def _result(
    rows: int,
    repetitions: int,
    runs: dict[str, list[dict[str, Any]]],
    profiles: dict[str, dict[str, Any]],
    identical: bool,
    partitions: int,
) -> Result:
    rates = {name: [rows / r["seconds"] for r in rs] for name, rs in runs.items()}
    ratios = [a / b for a, b in zip(rates["replicating"], rates["feast_redis"], strict=True)]
    value, feast = median(rates["replicating"]), median(rates["feast_redis"])
    ratio = median(ratios)
    return Result(
        name=NAME,
        unit="rows/s",
        value=value,
        target=f">= {TARGET_RATIO:g}x feast_redis, bytes identical",
        checks=[
            Check("replicating / feast_redis (median of paired repetitions)", ratio, ">=", 3.0),
            Check("encoded bytes identical to Feast's on the sample", float(identical), ">=", 1),
        ],
        baselines={"feast_redis": feast},
        figures={
            "ratio": round(ratio, 2),
            "ratio_per_repetition": [round(r, 2) for r in ratios],
            "rows_per_s_per_repetition": {
                name: [round(r) for r in rs] for name, rs in rates.items()
            },
            "spread_pct": {name: _spread(rs) for name, rs in rates.items()},
            "cpu_us_per_row": {
                name: round(median([r["cpu_s"] for r in rs]) * 1e6 / rows, 2)
                for name, rs in runs.items()
            },
            "load_average_per_repetition": {
                name: [r["load_average"] for r in rs] for name, rs in runs.items()
            },
            "byte_identical_to_feast_sample": identical,
            "profile": profiles,
        },
        params={
            "rows": rows,
            "features": 10,
            "entities": rows,
            "repetitions": repetitions,
            "statistic": "median of repetitions, interleaved; ratio: median of paired ratios",
            "warmup_rows": WARMUP_ROWS,
            "kafka_partitions": partitions,
            "feast_redis": "private redis-server, emptied before each repetition, dedup on",
        },
    )


def _spread(rates: list[float]) -> float:
    """(max - min) / median of the repetitions, in percent."""
    return round(100 * (max(rates) - min(rates)) / median(rates), 1) if rates else 0.0


def _repetitions(
    ctx: Context, variants: _Variants, repetitions: int
) -> dict[str, list[dict[str, Any]]]:
    for name, call in variants.all().items():
        ctx.progress(f"publish: warming up {name}")
        call(WARMUP_ROWS)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants.all()}
    for rep in range(repetitions):
        for name, call in variants.all().items():
            load = load_average()
            cpu, wall = time.process_time(), time.perf_counter()
            call(None)
            seconds, cpu_s = time.perf_counter() - wall, time.process_time() - cpu
            runs[name].append({"seconds": seconds, "cpu_s": cpu_s, "load_average": load})
            ctx.progress(
                f"publish: rep {rep + 1}/{repetitions} {name}: "
                f"{len(variants.data) / seconds:,.0f} rows/s (load {load[0]})"
            )
    return runs


def _profile(call: Callable[[int | None], None]) -> dict[str, Any]:
    """Top functions by own time of one profiled call, with their share of the total."""
    profiler = cProfile.Profile()
    profiler.enable()
    call(None)
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = max(float(getattr(stats, "total_tt", 0.0)), 1e-9)
    entries: dict[Any, Any] = getattr(stats, "stats", {})
    top = sorted(entries.items(), key=lambda item: item[1][2], reverse=True)[:PROFILE_TOP]
    return {
        "profiled_seconds": round(total, 3),
        "top_by_own_time": [
            {
                "function": f"{Path(file).name}:{line}({func})",
                "calls": calls,
                "own_s": round(own, 3),
                "own_pct": round(100 * own / total, 1),
                "cumulative_s": round(cumulative, 3),
            }
            for (file, line, func), (_, calls, own, cumulative, _) in top
        ],
    }


class _Variants:
    """Each variant writes the first ``n`` rows (None: all of them) in one call."""

    def __init__(self, project: BenchProject, redis: PrivateRedis, data: list[Any]) -> None:
        from feast.infra.online_stores.redis import RedisOnlineStore

        from replicator.feast_publisher import ReplicatingOnlineStore

        self.project = project
        self.redis = redis
        self.data = data
        self.replicating = ReplicatingOnlineStore()
        self.feast = RedisOnlineStore()
        self.feast_config = project.feast_redis_config(connection_string=redis.connection_string)

    def all(self) -> dict[str, Callable[[int | None], None]]:
        return {"replicating": self.run_replicating, "feast_redis": self.run_feast}

    def run_replicating(self, n: int | None) -> None:
        rows = self.data[:n]
        self.replicating.online_write_batch(
            self.project.repo_config, self.project.feature_view, rows, None
        )

    def run_feast(self, n: int | None) -> None:
        rows = self.data[:n]
        self.redis.flush()
        self.feast.online_write_batch(self.feast_config, self.project.feature_view, rows, None)

    def identical_to_feast(self, sample_every: int = 499) -> bool:
        """The replicating store's encoding of a sample of rows, as the Redis hashes a region
        writes, equals what Feast's writer left in its Redis."""
        sample = self.data[::sample_every]
        self.redis.flush()
        self.feast.online_write_batch(self.feast_config, self.project.feature_view, sample, None)
        ts_field = f"_ts:{self.project.view_name}".encode()
        expected = {
            row.key: {ts_field: row.ts, **dict(zip(batch.fields, row.values, strict=True))}
            for _, batch in self.project.encode(sample)
            for row in batch.rows
        }
        client = self.redis.client()
        with client.pipeline(transaction=False) as pipe:
            for key in expected:
                pipe.hgetall(key)
            stored = dict(zip(expected, pipe.execute(), strict=True))
        return bool(expected) and stored == expected

    def close(self) -> None:
        self.replicating.teardown(self.project.repo_config, [], [])
