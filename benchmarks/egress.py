"""``egress``: bytes a region fetches per replicated row, per Kafka compression codec.

For each codec (zstd, lz4, none) a throwaway project is published to by a producer with that
``compression.type`` and applied by a region's real worker (``build_worker``, its own
consumer group), in two shapes of traffic:

- ``bulk``: records of up to 2,000 rows, as ``feast materialize`` publishes them;
- ``push``: one row per record, as ``store.push`` of single events publishes them.

Figures per row, all from the worker's own meter (``replicator.core.egress``, the numbers
its metrics and the checker report): ``wire_bytes`` (read from the broker: compressed
batches and the protocol around them, what a cross-region link carries), ``record_bytes``
(the records decompressed), against ``redis_bytes``, the bytes of the Redis hash the row
becomes (key, ``_ts`` field and value, 4-byte feature fields and values): what replicating
Redis itself (a Redis replica, or copying keys) would at least carry. Also per codec: the
seconds to publish and to apply, and the wire bytes per second of an idle worker (fetch
polls, group heartbeats), which a region pays whether rows flow or not.

Value: zstd's bulk wire bytes per row. Target: compression at least halves the bulk wire
bytes of ``none``.
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.context import Context
from benchmarks.dataset import feast_rows
from benchmarks.project import (
    ROWS_PER_RECORD,
    BenchProject,
    bench_options,
    rows_done,
    step_until,
    step_until_rows,
)
from benchmarks.report import Check, Result
from replicator.adapters.kafka_config import client_config
from replicator.adapters.kafka_publisher import KafkaPublisher
from replicator.adapters.kafka_source import KafkaSource
from replicator.assembly import consumer_options
from replicator.config import Compression
from replicator.core.egress import OVERHEAD, EgressCounts, TopicBytes
from replicator.core.records import RowBatch
from replicator.worker import Worker

NAME = "egress"
CODECS: tuple[Compression, ...] = ("zstd", "lz4", "none")
STATS_MS = 250
"""librdkafka statistics interval of the benchmark's consumer: when wire bytes are read."""
IDLE_SECONDS = 3.0


def run(ctx: Context) -> list[Result]:
    bulk_rows = ctx.size(50_000, 10_000)
    push_rows = ctx.size(5_000, 1_000)
    region = ctx.topology.replica_regions[0]
    ctx.progress(f"egress: building {bulk_rows:,} rows x 10 features")
    data = feast_rows(bulk_rows)
    figures: dict[str, dict[str, Any]] = {}
    for codec in CODECS:
        with BenchProject(ctx.config_path, f"egress_{codec}") as project:
            ctx.progress(f"egress: {codec}: registering {project.view_name}")
            project.register()
            shapes = {
                "bulk": project.encode(data, published_ns=time.time_ns()),
                "push": _encode_single(project, data[:push_rows]),
            }
            figures[codec] = _measure(project, codec, region, shapes, ctx)
    zstd, none = figures["zstd"]["bulk"], figures["none"]["bulk"]
    return [
        Result(
            name=NAME,
            unit="wire bytes/row (bulk, zstd)",
            value=zstd["wire_bytes_per_row"],
            target="compression at least halves the wire bytes of none (bulk)",
            checks=[
                Check(
                    f"{codec} bulk wire bytes / none",
                    figures[codec]["bulk"]["wire_bytes_per_row"] / none["wire_bytes_per_row"],
                    "<=",
                    0.5,
                )
                for codec in CODECS
                if codec != "none"
            ],
            baselines={
                "none_wire_bytes_per_row": none["wire_bytes_per_row"],
                "redis_bytes_per_row": zstd["redis_bytes_per_row"],
            },
            figures=figures,
            params={
                "bulk_rows": bulk_rows,
                "push_rows": push_rows,
                "features": 10,
                "region": region,
                "rows_per_bulk_record": ROWS_PER_RECORD,
                "consumer_statistics_interval_ms": STATS_MS,
                "idle_seconds": IDLE_SECONDS,
            },
        )
    ]


def _encode_single(project: BenchProject, data: list[Any]) -> list[tuple[int, RowBatch]]:
    """One row per record, as a push of single events publishes them."""
    out: list[tuple[int, RowBatch]] = []
    for row in data:
        out.extend(project.encode([row], published_ns=time.time_ns()))
    return out


def _measure(
    project: BenchProject,
    codec: Compression,
    region: str,
    shapes: dict[str, list[tuple[int, RowBatch]]],
    ctx: Context,
) -> dict[str, Any]:
    topology = project.topology
    worker, source = project.worker(
        region,
        group=f"{topology.consumer_group(region)}-egress",
        options=bench_options(topology),
        consumer={**consumer_options(topology), "statistics.interval.ms": STATS_MS},
    )
    publisher = KafkaPublisher(
        client_config(topology, "primary"),
        client_id=f"bench-{project.name}",
        compression=codec,
    )
    out: dict[str, Any] = {}
    try:
        step_until(worker, lambda: bool(source.assigned), "join its group")
        for shape, batches in shapes.items():
            rows = sum(len(b.rows) for _, b in batches)
            expected = rows_done(worker) + rows
            before = _settled(worker, source)
            started = time.perf_counter()
            project.publish(batches, publisher=publisher)
            published = time.perf_counter()
            step_until_rows(worker, expected)
            applied = time.perf_counter()
            after = _settled(worker, source)
            out[shape] = _per_row(before, after, project.topic, batches, project.view_name)
            out[shape]["publish_seconds"] = round(published - started, 3)
            out[shape]["apply_seconds"] = round(applied - published, 3)
            ctx.progress(
                f"egress: {codec} {shape}: {out[shape]['wire_bytes_per_row']:.1f} wire B/row, "
                f"{out[shape]['record_bytes_per_row']:.1f} record B/row, "
                f"{out[shape]['redis_bytes_per_row']:.1f} Redis B/row"
            )
        out["idle_wire_bytes_per_second"] = _idle(worker, source)
    finally:
        publisher.close()
        source.close()
    return out


def _settled(worker: Worker, source: KafkaSource) -> EgressCounts:
    """The meter after two more statistics reports: every fetched byte is counted."""
    end = time.monotonic() + 2.5 * STATS_MS / 1000
    while time.monotonic() < end:
        worker.step()
    return source.egress.counts()


def _idle(worker: Worker, source: KafkaSource) -> float:
    before = _settled(worker, source)
    started = time.monotonic()
    end = started + IDLE_SECONDS
    while time.monotonic() < end:
        worker.step()
    after = _settled(worker, source)
    return round((after.wire_bytes - before.wire_bytes) / (time.monotonic() - started), 1)


def _per_row(
    before: EgressCounts,
    after: EgressCounts,
    topic: str,
    batches: list[tuple[int, RowBatch]],
    view: str,
) -> dict[str, Any]:
    rows = sum(len(b.rows) for _, b in batches)
    ts_field = len(f"_ts:{view}")
    redis_bytes = sum(
        len(row.key) + ts_field + len(row.ts) + sum(4 + len(v) for v in row.values)
        for _, batch in batches
        for row in batch.rows
    )
    delta = {
        name: after.topics.get(name, TopicBytes()) - before.topics.get(name, TopicBytes())
        for name in (topic, OVERHEAD)
    }
    mine = delta[topic]
    return {
        "rows": rows,
        "records": mine.records,
        "wire_bytes_per_row": round(mine.wire_bytes / rows, 2),
        "record_bytes_per_row": round(mine.record_bytes / rows, 2),
        "redis_bytes_per_row": round(redis_bytes / rows, 2),
        "wire_to_redis_ratio": round(mine.wire_bytes / redis_bytes, 3),
        "overhead_wire_bytes": delta[OVERHEAD].wire_bytes,
    }
