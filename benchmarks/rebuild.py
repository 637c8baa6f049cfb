"""``rebuild``: rows/s replaying the log into an empty region (``rebuild_region``).

A topic is filled with 1,000,000 rows (100,000 with ``--quick``), one per entity, 10
features, in records of 2,000 rows like the primary publishes them. The fill takes the fast
path (``benchmarks.dataset.FastRows`` + ``replicator.core.wire``, no Feast per row) with the
view's real schema fingerprint, which ``registry sync`` put in the region's manifest.

Timed: ``rebuild_region(topology, region)`` on a region holding none of the project's keys,
as the function reports it (from the first poll to the last row applied; its set-up, the
metadata and watermark look-ups, is reported apart). Median of 3, the region emptied before
each; after each rebuild the region must hold exactly one key per entity.
Target: >= 200,000 rows/s.
"""

from __future__ import annotations

import time

from benchmarks.context import Context, diff_stats, redis_server_stats
from benchmarks.dataset import FastRows
from benchmarks.project import ROWS_PER_RECORD, BenchProject
from benchmarks.report import Check, Result, median
from replicator.rebuild import rebuild_region

NAME = "rebuild"
TARGET = 200_000.0


def run(ctx: Context) -> list[Result]:
    entities = ctx.size(1_000_000, 100_000)
    repetitions = 3
    region = ctx.replica(last=True)
    with BenchProject(ctx.config_path, "rebuild") as project:
        project.register()
        fill_seconds = _fill(ctx, project, entities)
        rates: list[float] = []
        walls: list[float] = []
        server: list[dict[str, float]] = []
        for rep in range(repetitions):
            removed = project.clear_region(region)
            if rep == 0 and removed:
                raise AssertionError(f"{region} held {removed} keys of a fresh project")
            before = redis_server_stats(project.admin(region))
            started = time.perf_counter()
            report = rebuild_region(project.topology, region, progress=lambda _line: None)
            walls.append(time.perf_counter() - started)
            server.append(diff_stats(before, redis_server_stats(project.admin(region))))
            rates.append(report.rows_per_second)
            rows = report.rows_applied + report.rows_skipped_older
            keys = project.count_keys(region)
            if rows != entities or keys != entities:
                raise AssertionError(
                    f"rebuild replayed {rows:,} rows into {keys:,} keys; expected {entities:,}"
                )
            ctx.progress(
                f"rebuild: rep {rep + 1}/{repetitions}: {report.rows_per_second:,.0f} rows/s "
                f"({report.seconds:.2f} s, {walls[-1]:.2f} s with set-up)"
            )
        project.clear_region(region)

    value = median(rates)
    cpu = median([s.get("cpu_s", 0.0) for s in server])
    evalsha_usec = median([s.get("evalsha.usec", 0.0) for s in server])
    return [
        Result(
            name=NAME,
            unit="rows/s",
            value=value,
            target=f">= {TARGET:,.0f} rows/s",
            checks=[Check("rows/s", value, ">=", TARGET)],
            figures={
                "rows_per_s_per_repetition": [round(r) for r in rates],
                "seconds_with_setup": [round(w, 3) for w in walls],
                "fill_rows_per_s": round(entities / fill_seconds),
                "redis_cpu_s": round(cpu, 3),
                "redis_cpu_us_per_row": round(cpu * 1e6 / entities, 2),
                "redis_evalsha_us_per_row": round(evalsha_usec / entities, 2),
                "redis_bound_rows_per_s": round(entities / cpu) if cpu else 0,
            },
            params={
                "entities": entities,
                "rows": entities,
                "features": 10,
                "rows_per_kafka_record": ROWS_PER_RECORD,
                "kafka_partitions": project.partitions,
                "region": region,
                "repetitions": repetitions,
                "statistic": "median",
            },
        )
    ]


def _fill(ctx: Context, project: BenchProject, entities: int) -> float:
    fast = FastRows(project.name, project.view_name)
    fast.check_fast_path()
    ctx.progress(f"rebuild: filling {project.topic} with {entities:,} rows")
    started = time.perf_counter()
    project.publish_entities(fast, entities)
    seconds = time.perf_counter() - started
    ctx.progress(f"rebuild: filled in {seconds:.1f} s ({entities / seconds:,.0f} rows/s)")
    return seconds
