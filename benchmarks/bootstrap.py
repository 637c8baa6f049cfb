"""``bootstrap`` and ``rebuild_vs_history``: an empty region brought to the live state from a
snapshot plus the log tail (``bootstrap_region``), against today's whole-log replay
(``rebuild_region``), and how each grows with the history.

One topic holds N entities (1,000,000; 100,000 with ``--quick``), one row each, 10 features,
in records of 2,000 rows (the fast path of ``benchmarks.rebuild``). Then, per history:

1. ``1x``: the N rows once. Timed: ``rebuild_region`` into the empty region (rows/s of
   state). A snapshot is taken (untimed, its seconds reported), a tail of N/100 rows is
   written, the region is emptied and ``bootstrap_region`` timed (median of 3, emptied before
   each). The region must then hold exactly N keys.
2. ``10x``: the same entities rewritten nine more times (10 N rows in the log); a rebuild
   brings the region up (timed: replaying 10x the history), a new snapshot and tail, then
   bootstrap timed as above.

``bootstrap``: state rows per second of the 1x bootstrap (N / seconds); target >= 200,000
rows/s and >= 2x the rebuild's. ``rebuild_vs_history``: 10x bootstrap seconds / 1x; target
<= 1.2 (time follows the state, not the history).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from benchmarks.context import Context
from benchmarks.dataset import FastRows
from benchmarks.project import ROWS_PER_RECORD, BenchProject
from benchmarks.report import Check, Result, median
from replicator.bootstrap import bootstrap_region
from replicator.rebuild import rebuild_region
from replicator.snapshots import take_snapshot

NAME = "bootstrap"
HISTORY_NAME = "rebuild_vs_history"
TARGET_ROWS = 200_000.0
TARGET_SPEEDUP = 2.0
TARGET_RATIO = 1.2
REPETITIONS = 3


def _quiet(_line: str) -> None:
    pass


def run(ctx: Context) -> list[Result]:
    entities = ctx.size(1_000_000, 100_000)
    region = ctx.replica(last=True)
    with BenchProject(ctx.config_path, "bootstrap") as project:
        project.register()
        rows = FastRows(project.name, project.view_name)
        rows.check_fast_path()
        one = _history(ctx, project, rows, region, entities, rewrites=1)
        ten = _history(ctx, project, rows, region, entities, rewrites=9)
        project.clear_region(region)
    speedup = one["rebuild_seconds"] / one["bootstrap_seconds"]
    rate = entities / one["bootstrap_seconds"]
    ratio = ten["bootstrap_seconds"] / one["bootstrap_seconds"]
    params = {
        "entities": entities,
        "features": 10,
        "rows_per_kafka_record": ROWS_PER_RECORD,
        "tail_rows": entities // 100,
        "kafka_partitions": project.partitions,
        "region": region,
        "repetitions": REPETITIONS,
        "statistic": "median",
    }
    return [
        Result(
            name=NAME,
            unit="rows/s",
            value=rate,
            target=f">= {TARGET_ROWS:,.0f} rows/s and >= {TARGET_SPEEDUP:.0f}x rebuild",
            checks=[
                Check("state rows/s", rate, ">=", TARGET_ROWS),
                Check("x rebuild replay", speedup, ">=", TARGET_SPEEDUP),
            ],
            baselines={"rebuild replay, same state (rows/s)": entities / one["rebuild_seconds"]},
            figures={"1x": one, "speedup": round(speedup, 2)},
            params=params,
        ),
        Result(
            name=HISTORY_NAME,
            unit="ratio",
            value=ratio,
            target=f"<= {TARGET_RATIO}",
            checks=[Check("bootstrap 10x / 1x history", ratio, "<=", TARGET_RATIO)],
            baselines={"rebuild 10x / 1x history": ten["rebuild_seconds"] / one["rebuild_seconds"]},
            figures={"1x": one, "10x": ten},
            params=params,
        ),
    ]


def _history(
    ctx: Context,
    project: BenchProject,
    rows: FastRows,
    region: str,
    entities: int,
    *,
    rewrites: int,
) -> dict[str, float]:
    """Write ``rewrites`` more versions of every entity, rebuild (timed), snapshot, write a
    tail, then bootstrap an emptied region (timed, median)."""
    label = f"{rewrites + 1 if rewrites > 1 else 1}x"
    for _ in range(rewrites):
        project.publish_entities(rows, entities)
    project.clear_region(region)
    rebuild = _timed(lambda: rebuild_region(project.topology, region, progress=_quiet))
    _expect(project, region, entities, "rebuild")
    ctx.progress(f"bootstrap: {label} history: rebuild {rebuild:.2f} s")
    snapshot_seconds = _timed(lambda: take_snapshot(project.topology, region, progress=_quiet))
    project.publish_entities(rows, entities // 100)  # the tail
    seconds, restore, replay, replayed = [], [], [], []
    for rep in range(REPETITIONS):
        project.clear_region(region)
        started = time.perf_counter()
        report = bootstrap_region(project.topology, region, progress=_quiet)
        seconds.append(time.perf_counter() - started)
        restore.append(report.restore_seconds)
        replay.append(report.replay.seconds)
        replayed.append(float(report.replay.records))
        _expect(project, region, entities, "bootstrap")
        ctx.progress(
            f"bootstrap: {label} history: rep {rep + 1}: {seconds[-1]:.2f} s (restore "
            f"{restore[-1]:.2f} s, replay of {replayed[-1]:,.0f} records {replay[-1]:.2f} s)"
        )
    return {
        "rebuild_seconds": round(rebuild, 3),
        "snapshot_seconds": round(snapshot_seconds, 3),
        "bootstrap_seconds": round(median(seconds), 3),
        "restore_seconds": round(median(restore), 3),
        "replay_seconds": round(median(replay), 3),
        "replayed_records": median(replayed),
    }


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _expect(project: BenchProject, region: str, entities: int, what: str) -> None:
    keys = project.count_keys(region)
    if keys != entities:
        raise AssertionError(f"{what} left {keys:,} keys; expected {entities:,}")
