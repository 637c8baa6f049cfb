"""``apply``: rows/s a region's worker applies into one Redis, against two baselines.

Same Redis (the primary region's), same 100,000 rows x 10 features, same run, the project's
keys deleted before every timed repetition, repetitions interleaved across variants so a
burst of load from other users hits all of them alike:

- ``worker`` (the value): a ``Worker`` from ``build_worker`` that already joined its consumer
  group (its partitions paused while the topic is filled), then resumed; timed from the
  first poll to the step whose rows Redis acknowledged and whose offsets were committed.
- ``apply_script`` (sub-figure): ``RegionStore.apply`` on the same pre-encoded batches,
  grouped as the worker groups them, without Kafka.
- ``feast_online_write_batch``: Feast's own ``RedisOnlineStore.online_write_batch`` with its
  default dedup (HMGET every ``_ts`` field, then HSET the newer rows): one call, all rows.
- ``naive_pipelined_hset``: one ``HSET key mapping`` per row in a redis-py pipeline (hiredis
  parser), executed every 10,000 rows; no ordering check at all.

Target: worker >= 10x feast_online_write_batch and >= 1.5x naive_pipelined_hset, and Redis
CPU per row (``INFO cpu`` deltas; an upper bound on the shared stack's Redis) of the worker
<= 1.4x that of the naive pipelined HSET (a plain HSET of the same fields).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from benchmarks.context import CallTimes, Context, diff_stats, redis_server_stats
from benchmarks.dataset import feast_rows
from benchmarks.project import (
    ROWS_PER_RECORD,
    BenchProject,
    bench_options,
    step_until_rows,
)
from benchmarks.report import Check, Result, median
from replicator.adapters.kafka_config import client_config
from replicator.adapters.redis_store import RegionStore
from replicator.core import wire
from replicator.core.records import EncodedBatch, RowBatch

NAME = "apply"
NAIVE_PIPELINE_ROWS = 10_000
WARMUP_ROWS = 1000


def run(ctx: Context) -> list[Result]:
    rows = ctx.size(100_000, 20_000)
    repetitions = 3
    region = ctx.topology.primary_region
    with BenchProject(ctx.config_path, "apply") as project:
        ctx.progress(f"apply: registering {project.view_name} in project {project.name}")
        project.register()
        ctx.progress(f"apply: building {rows:,} rows x 10 features")
        data = feast_rows(rows)
        batches = project.encode(data)
        records = [(partition, *wire.encode_rows(batch)) for partition, batch in batches]
        variants = _Variants(project, region, data, batches, records, rows)
        try:
            timings, server = _repetitions(ctx, variants, repetitions)
        finally:
            variants.close()

    rate = {name: median([rows / s for s in secs]) for name, secs in timings.items()}
    value = rate["worker"]
    feast = rate["feast_online_write_batch"]
    naive = rate["naive_pipelined_hset"]
    profile = {name: _server_profile(stats, rows) for name, stats in server.items()}
    cpu_ratio = profile["worker"]["redis_cpu_us_per_row"] / max(
        profile["naive_pipelined_hset"]["redis_cpu_us_per_row"], 1e-9
    )
    return [
        Result(
            name=NAME,
            unit="rows/s",
            value=value,
            target=">= 10x feast_online_write_batch and >= 1.5x naive_pipelined_hset",
            checks=[
                Check("worker / feast_online_write_batch", value / feast, ">=", 10.0),
                Check("worker / naive_pipelined_hset", value / naive, ">=", 1.5),
                Check("Redis CPU per row, worker / plain HSET", cpu_ratio, "<=", 1.4),
            ],
            baselines={"feast_online_write_batch": feast, "naive_pipelined_hset": naive},
            figures={
                "apply_script_rows_per_s": rate["apply_script"],
                "rows_per_s_per_repetition": {
                    name: [round(rows / s) for s in secs] for name, secs in timings.items()
                },
                "redis_server_side": profile,
                "redis_cpu_us_per_row": {
                    name: p["redis_cpu_us_per_row"] for name, p in profile.items()
                },
                "byte_identical_to_feast_sample": variants.identical,
                "worker_time_split_per_repetition": variants.splits,
            },
            params={
                "rows": rows,
                "features": 10,
                "entities": rows,
                "repetitions": repetitions,
                "statistic": "median of repetitions, interleaved across variants",
                "warmup_rows": WARMUP_ROWS,
                "region_redis": region,
                "rows_per_kafka_record": ROWS_PER_RECORD,
                "records_per_store_apply": variants.group,
                "naive_rows_per_pipeline_execute": NAIVE_PIPELINE_ROWS,
                "kafka_partitions": project.partitions,
            },
        )
    ]


def _repetitions(
    ctx: Context, variants: _Variants, repetitions: int
) -> tuple[dict[str, list[float]], dict[str, list[dict[str, float]]]]:
    """Warm every variant up, then time ``repetitions`` rounds of all of them, interleaved,
    the project's keys deleted before each: seconds and Redis server deltas per variant."""
    project, region, rows = variants.project, variants.region, variants.rows
    for name, variant in variants.all().items():
        ctx.progress(f"apply: warming up {name}")
        variant(WARMUP_ROWS)
    timings: dict[str, list[float]] = {name: [] for name in variants.all()}
    server: dict[str, list[dict[str, float]]] = {name: [] for name in variants.all()}
    for rep in range(repetitions):
        for name, variant in variants.all().items():
            project.clear_region(region)
            before = redis_server_stats(project.admin(region))
            seconds = variant(rows)
            server[name].append(diff_stats(before, redis_server_stats(project.admin(region))))
            timings[name].append(seconds)
            ctx.progress(f"apply: rep {rep + 1}/{repetitions} {name}: {rows / seconds:,.0f} rows/s")
            variants.verify(name)
    return timings, server


def _server_profile(stats: list[dict[str, float]], rows: int) -> dict[str, float]:
    """Median Redis-side cost per repetition: CPU, and the top commands' time."""
    if not stats:
        return {}
    cpu = median([s.get("cpu_s", 0.0) for s in stats])
    out: dict[str, float] = {
        "redis_cpu_s": round(cpu, 3),
        "redis_cpu_us_per_row": round(cpu * 1e6 / rows, 2),
    }
    for command in ("evalsha", "eval", "hset", "hmget", "exists"):
        usec = median([s.get(f"{command}.usec", 0.0) for s in stats])
        calls = median([s.get(f"{command}.calls", 0.0) for s in stats])
        if calls:
            out[f"{command}_calls"] = calls
            out[f"{command}_usec_per_call"] = round(usec / calls, 2)
            out[f"{command}_usec_total"] = usec
    return out


class _Variants:
    """Each variant writes the first ``n`` rows and returns the seconds it took."""

    def __init__(
        self,
        project: BenchProject,
        region: str,
        data: list[Any],
        batches: list[tuple[int, RowBatch]],
        records: list[tuple[int, Any, bytes]],
        rows: int,
    ) -> None:
        from feast.infra.online_stores.redis import RedisOnlineStore

        self.project = project
        self.region = region
        self.data = data
        self.rows = rows
        self.records = records
        topology = project.topology
        endpoint = topology.region(region).redis
        self.options = bench_options(topology, commit_interval_seconds=0.0)
        # Same grouping as the worker: up to max_messages records per Redis round trip.
        self.group = self.options.max_messages
        self.split = CallTimes()
        self.splits: list[dict[str, float]] = []
        self.worker_runs = 0
        self.store = RegionStore(endpoint, endpoint.writer)
        self.encoded = _with_offsets(batches, project.view_name)
        self.feast_store = RedisOnlineStore()
        self.feast_config = project.feast_redis_config(region)
        self.naive_client = project.writer(region)
        ts_field = f"_ts:{project.view_name}".encode()
        self.naive_rows = [
            (row.key, {ts_field: row.ts, **dict(zip(batch.fields, row.values, strict=True))})
            for _, batch in batches
            for row in batch.rows
        ]
        self.publisher = project.publisher()
        self.reference: dict[bytes, dict[bytes, bytes]] = {}
        self.identical: dict[str, bool] = {}

    def all(self) -> dict[str, Callable[[int], float]]:
        return {
            "worker": self.run_worker,
            "apply_script": self.run_apply_script,
            "feast_online_write_batch": self.run_feast,
            "naive_pipelined_hset": self.run_naive,
        }

    # Variants --------------------------------------------------------------------------
    def run_feast(self, n: int) -> float:
        rows = self.data[:n]
        started = time.perf_counter()
        self.feast_store.online_write_batch(
            self.feast_config, self.project.feature_view, rows, None
        )
        return time.perf_counter() - started

    def run_naive(self, n: int) -> float:
        rows = self.naive_rows[:n]
        started = time.perf_counter()
        for first in range(0, len(rows), NAIVE_PIPELINE_ROWS):
            with self.naive_client.pipeline(transaction=False) as pipe:
                for key, mapping in rows[first : first + NAIVE_PIPELINE_ROWS]:
                    pipe.hset(key, mapping=mapping)
                pipe.execute()
        return time.perf_counter() - started

    def run_apply_script(self, n: int) -> float:
        encoded = self.encoded if n >= self.rows else self.encoded[:1]
        started = time.perf_counter()
        for first in range(0, len(encoded), self.group):
            self.store.apply(encoded[first : first + self.group])
        return time.perf_counter() - started

    def run_worker(self, n: int) -> float:
        """A worker started on a topic that already holds the rows, as after a restart.

        Each run uses a consumer group of its own whose committed offsets point at the start
        of this run's rows, so it reads exactly them. Timed from its first poll (group join,
        ~0.1 s, included) to the step whose offsets were committed after Redis acknowledged.
        """
        from confluent_kafka import Consumer, TopicPartition

        topology, topic = self.project.topology, self.project.topic
        records = self.records if n >= self.rows else self.records[:1]
        expected = sum(int(dict(h)[wire.H_ROWS]) for _, h, _ in records)
        self.worker_runs += 1
        group = f"{topology.consumer_group(self.region)}-bench{self.worker_runs}"
        worker = client_config(topology, "worker", region=self.region)
        marker = Consumer({**worker, "group.id": group})

        try:
            starts = [
                TopicPartition(topic, p, marker.get_watermark_offsets(TopicPartition(topic, p))[1])
                for p in range(self.project.partitions)
            ]
            marker.commit(offsets=starts, asynchronous=False)
        finally:
            marker.close()
        for partition, headers, payload in records:
            self.publisher.send(topic, partition, payload, headers)
        self.publisher.flush(60)

        worker, source = self.project.worker(self.region, group=group, options=self.options)
        # Where the worker's time goes: Kafka poll, Redis apply, offset commit.
        worker.source = self.split.wrap(source, "poll_batch", "commit")
        worker.store = self.split.wrap(worker.store, "apply")
        self.split.reset()
        try:
            started = time.perf_counter()
            step_until_rows(worker, expected)
            seconds = time.perf_counter() - started
        finally:
            source.close()
        if n >= self.rows:
            self.splits.append(self.split.totals(seconds))
        return seconds

    # Checks ----------------------------------------------------------------------------
    def verify(self, name: str) -> None:
        """Every variant leaves the same bytes in Redis on a fixed sample of keys."""
        sample = [key for key, _ in self.naive_rows[:: max(1, self.rows // 200)]]
        client = self.project.admin(self.region)
        with client.pipeline(transaction=False) as pipe:
            for key in sample:
                pipe.hgetall(key)
            got = dict(zip(sample, pipe.execute(), strict=True))
        if any(not v for v in got.values()):
            raise AssertionError(f"{name} left keys missing in Redis")
        if not self.reference:
            self.reference = got
        self.identical[name] = self.identical.get(name, True) and got == self.reference

    def close(self) -> None:
        self.store.close()
        self.naive_client.close()
        self.publisher.close()


def _with_offsets(batches: list[tuple[int, RowBatch]], view: str) -> list[EncodedBatch]:
    """Encoded batches as the worker would hand them over, with per-partition offsets."""
    next_offset: dict[int, int] = {}
    out = []
    for partition, batch in batches:
        offset = next_offset.get(partition, 0)
        next_offset[partition] = offset + 1
        _, payload = wire.encode_rows(batch)
        out.append(EncodedBatch(payload, view, partition, offset))
    return out
