"""``e2e_lag``: publish-to-applied latency in three regions at a sustained 20,000 rows/s.

A producer thread calls ``ReplicatingOnlineStore.online_write_batch`` (the Feast write path
of the primary: Feast-layout encoding, produce, flush until Kafka acknowledged) every 10 ms
with 200 rows of the synthetic 10-feature view, paced on an absolute schedule, event times
from the primary's clock. Entities cycle through a fixed pool of 20,000, so every row is
newer than the one it replaces and is applied.

Each region has its worker built by ``build_worker`` (the ``replicator worker`` code path),
by default as a separate process (``--workers threads`` runs them inside the producer's
process, where they share its GIL; both in ``benchmarks.e2e_workers``). A worker stamps every
applied record with ``lag = clock after Redis acknowledged the pipeline - published_ns``,
where ``published_ns`` is taken by ``online_write_batch`` just before it encodes the rows.
Both clocks are the same host's, so the figure has no skew. It is an upper bound of "readable
in the region": a reader sees the rows as soon as the script ran, one reply earlier. Samples
are per Kafka record (~33 rows: 200 rows over 6 partitions), kept when published inside the
measured window (after a warm-up); the window ends with the producer, and workers drain
before they stop.

The tail follows how busy the machine is (the stack, the producer and three workers share 2
cores with whatever else runs), so the result carries its load profile: the window is cut
into ``WINDOWS`` equal parts, each with its own p50/p99, machine busy %, load average and
broker/Redis CPU, and the median of the parts' p99 is reported beside the pooled p99 as the
figure that moves least from run to run. ``writers`` > 1 spreads the calls over that many
threads (a feature server pushing concurrently), whose calls share Kafka transactions.
Target: p99 <= 50 ms.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.context import Context, CpuMeter
from benchmarks.e2e_workers import DRAIN_POLL, LAZY_COMMIT, ProcessFleet, ThreadFleet
from benchmarks.project import BenchProject
from benchmarks.report import ROOT, Check, Result, load_average, quantile

NAME = "e2e_lag"
RATE = 20_000
ROWS_PER_CALL = 200
POOL = 20_000
TARGET_P99_MS = 50.0
WINDOWS = 5
"""Parts of the measured window, each with its own quantiles and load profile."""


def run(
    ctx: Context,
    *,
    workers: str = "processes",
    overrides: dict[str, Any] | None = None,
    experiment: str | None = None,
    rate: int = RATE,
    writers: int = 1,
) -> list[Result]:
    warmup = 1.0 if ctx.quick else 3.0
    duration = 8.0 if ctx.quick else 25.0
    parts = 2 if ctx.quick else WINDOWS
    with BenchProject(ctx.config_path, "e2e", overrides=overrides) as project:
        project.register()
        regions = list(project.topology.regions)
        fleet_type = ProcessFleet if workers == "processes" else ThreadFleet
        fleet = fleet_type(project, regions, experiment=experiment)
        try:
            ctx.progress(f"e2e_lag: starting {len(regions)} workers ({workers})")
            fleet.wait_ready(timeout=60)
            producer = _Producer(project, rate, writers)
            ctx.progress(
                f"e2e_lag: publishing {rate:,} rows/s ({writers} writer(s)), "
                f"{warmup:.0f} s warm-up + {duration:.0f} s"
            )
            meter = CpuMeter(project.topology, ROOT)
            load_before = load_average()
            before = meter.read()
            producer.start(warmup, duration)
            profile = _profile_windows(producer, meter, warmup, duration, parts)
            window = producer.join()
            cpu = CpuMeter.diff(before, meter.read())
            cpu["load_average_before"] = load_before
            cpu["load_average_after"] = load_average()
            meter.close()
            fleet.wait_applied(producer.rows_sent, timeout=120)
        finally:
            outcome = fleet.stop()
    params = {"workers": workers, "warmup_s": warmup, "measured_s": duration, "writers": writers}
    if overrides:
        params["topology_overrides"] = overrides
    if experiment:
        params["experiment"] = experiment
    result = _result(window, producer, outcome, params)
    if rate != RATE:
        result.params["target_rows_per_s"] = rate
        result.checks[-1] = Check("achieved rows/s", result.checks[-1].actual, ">=", rate * 0.98)
    result.figures.update(_machine_figures(cpu, producer, outcome, warmup + duration))
    result.figures.update(_window_figures(window, duration, profile, outcome))
    return [result]


def _profile_windows(
    producer: _Producer, meter: CpuMeter, warmup: float, duration: float, parts: int
) -> list[dict[str, Any]]:
    """Machine and stack CPU over each of ``parts`` equal windows of the schedule's measured
    window (while the producer runs), with the load average at its end."""
    reads = []
    for k in range(parts + 1):
        due = producer.began + warmup + k * duration / parts
        time.sleep(max(0.0, due - time.monotonic()))
        reads.append((meter.read(), load_average()[0]))
    out = []
    for (before, _), (after, load_1m) in itertools.pairwise(reads):
        cpu = CpuMeter.diff(before, after)
        out.append(
            {
                "machine_busy_pct": cpu["machine_busy_pct"],
                "load_1m": load_1m,
                "kafka_cpu_s": cpu.get("kafka_cpu_s"),
                "redis_cpu_s": cpu["redis_cpu_s"],
                "seconds": cpu["seconds"],
            }
        )
    return out


def _window_figures(
    window: tuple[int, int],
    duration: float,
    profile: list[dict[str, Any]],
    outcome: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """Per part of the measured window: lag quantiles next to its load profile, and how far
    the parts' p99 spread (their median is the figure that moves least from run to run)."""
    start_ns, end_ns = window
    parts = len(profile)
    step = duration * 1e9 / parts  # the schedule's parts; a late producer's last calls go last
    lags: list[list[float]] = [[] for _ in range(parts)]
    for report in outcome.values():
        for applied_ns, lag in report["samples"]:
            published = applied_ns - lag * 1e6
            if start_ns <= published < end_ns:
                lags[min(parts - 1, int((published - start_ns) // step))].append(lag)
    windows = [
        {
            "p50_ms": round(quantile(part, 0.50), 2),
            "p99_ms": round(quantile(part, 0.99), 2),
            "samples": len(part),
            **load,
        }
        for part, load in zip(lags, profile, strict=True)
    ]
    p99s = [w["p99_ms"] for w in windows]
    return {
        "windows": windows,
        "p99_window_median_ms": round(quantile(p99s, 0.5), 2),
        "p99_window_range_ms": [min(p99s, default=0.0), max(p99s, default=0.0)],
    }


def _machine_figures(
    cpu: dict[str, Any], producer: _Producer, outcome: dict[str, dict[str, Any]], seconds: float
) -> dict[str, Any]:
    """CPU of the run's processes and the machine, the load profile (what else the machine
    did decides the tail: BENCHMARKS.md) and offset commits per second of the whole run."""
    cpu["producer_s"] = round(producer.cpu_s, 2)
    worker_cpu = [r.get("cpu_s") for r in outcome.values()]
    if all(isinstance(c, float | int) for c in worker_cpu):
        cpu["workers_s"] = round(sum(worker_cpu), 2)  # whole process lives, not just the window
    profile = (
        "load_average_before",
        "load_average_after",
        "machine_busy_pct",
        "kafka_cpu_s",
        "redis_cpu_s",
        "producer_s",
        "workers_s",
    )
    commits = sum(
        r.get("calls_ms", {}).get("commit", {}).get("calls", 0) for r in outcome.values()
    )  # over warm-up and window, all regions
    return {
        "cpu_during_run": cpu,
        "load_profile": {key: cpu.get(key) for key in profile},
        "offset_commits_per_s": round(commits / seconds, 1),
        "write_calls_per_transaction": round(producer.calls / max(1, producer.transactions), 2),
    }


def _result(
    window: tuple[int, int],
    producer: _Producer,
    outcome: dict[str, dict[str, Any]],
    params: dict[str, Any],
) -> Result:
    start_ns, end_ns = window
    received = [
        lag
        for report in outcome.values()
        for published, lag in report.get("received", ())
        if start_ns <= published < end_ns
    ]
    per_region, pooled = _per_region(window, outcome)
    seconds = (end_ns - start_ns) / 1e9
    rows_in_window = producer.rows_in_window
    p99 = quantile(pooled, 0.99)
    return Result(
        name=NAME,
        unit="ms (p99)",
        value=p99,
        target=f"p99 <= {TARGET_P99_MS:.0f} ms at {RATE:,} rows/s",
        checks=[
            Check("p99 ms", p99, "<=", TARGET_P99_MS),
            Check("achieved rows/s", rows_in_window / seconds, ">=", RATE * 0.98),
        ],
        figures={
            "p50_ms": round(quantile(pooled, 0.50), 2),
            "p90_ms": round(quantile(pooled, 0.90), 2),
            "p99_ms": round(p99, 2),
            "p999_ms": round(quantile(pooled, 0.999), 2),
            "max_ms": round(max(pooled, default=0.0), 2),
            "publish_to_polled_ms": {
                "p50": round(quantile(received, 0.50), 2),
                "p99": round(quantile(received, 0.99), 2),
            },
            "achieved_rows_per_s": round(rows_in_window / seconds),
            "samples": len(pooled),
            "per_region": per_region,
            "write_call_ms": {
                "p50": round(quantile(producer.call_ms, 0.50), 2),
                "p99": round(quantile(producer.call_ms, 0.99), 2),
            },
        },
        params={
            "target_rows_per_s": RATE,
            "rows_per_call": ROWS_PER_CALL,
            "entity_pool": POOL,
            "regions": len(outcome),
            "sample": "one per Kafka record applied, published inside the window",
            **params,
        },
    )


def _per_region(
    window: tuple[int, int], outcome: dict[str, dict[str, Any]]
) -> tuple[dict[str, Any], list[float]]:
    """Each region's lag figures (samples published inside ``window``), and all samples."""
    start_ns, end_ns = window
    per_region: dict[str, Any] = {}
    pooled: list[float] = []
    for region, report in outcome.items():
        lags = [
            lag
            for applied_ns, lag in report["samples"]
            if start_ns <= applied_ns - lag * 1e6 < end_ns
        ]
        pooled.extend(lags)
        per_region[region] = {
            "p50_ms": round(quantile(lags, 0.50), 2),
            "p99_ms": round(quantile(lags, 0.99), 2),
            "max_ms": round(max(lags, default=0.0), 2),
            "records": len(lags),
            "rows_applied_total": report["rows"],
            "cpu_s": report.get("cpu_s"),
            "worker_calls_ms": report.get("calls_ms", {}),
        }
    return per_region, pooled


class _Producer:
    """Calls the primary's Feast write path on an absolute schedule, from ``writers``
    threads (call ``i`` is made by thread ``i % writers``)."""

    def __init__(self, project: BenchProject, rate: int = RATE, writers: int = 1) -> None:
        from benchmarks.dataset import entity_key, feature_values
        from replicator.feast_publisher import ReplicatingOnlineStore

        self.project = project
        self.rate = rate
        self.writers = writers
        self.store = ReplicatingOnlineStore()
        self.pool = [(entity_key(i), feature_values(i)) for i in range(POOL)]
        self.rows_sent = 0
        self.rows_in_window = 0
        self.calls = 0
        self.call_ms: list[float] = []
        self.cpu_s = 0.0
        self.began = 0.0
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._window = (0.0, 0.0)  # the measured window on the monotonic clock
        self._wall_offset_ns = 0
        self._cpu_start = 0.0

    @property
    def transactions(self) -> int:
        """Kafka transactions the store committed (fewer than calls when writers share)."""
        publisher = getattr(self.store, "_publisher", None)
        return int(getattr(publisher, "transactions", 0))

    def start(self, warmup: float, duration: float) -> None:
        """Open loop: call ``i`` is due at ``began + i * interval`` whatever earlier calls
        took (a late writer catches up)."""
        self._cpu_start = time.process_time()
        self.began = time.monotonic()
        self._wall_offset_ns = time.time_ns() - int(self.began * 1e9)
        self._window = (self.began + warmup, self.began + warmup + duration)
        self._threads = [
            threading.Thread(target=self._loop, args=(k,), daemon=True) for k in range(self.writers)
        ]
        for thread in self._threads:
            thread.start()

    def join(self) -> tuple[int, int]:
        """Wait for every writer; the measured window in wall-clock ns."""
        for thread in self._threads:
            thread.join()
        if self.error is not None:
            raise self.error
        self.cpu_s = time.process_time() - self._cpu_start
        window_start, end = self._window
        finished = max(end, time.monotonic())
        return (
            self._wall_offset_ns + int(window_start * 1e9),
            self._wall_offset_ns + int(finished * 1e9),
        )

    def _loop(self, first: int) -> None:
        try:
            self._paced(first)
        except BaseException as exc:  # surfaced by join()
            self.error = exc

    def _paced(self, call: int) -> None:
        config, view = self.project.repo_config, self.project.feature_view
        interval = ROWS_PER_CALL / self.rate
        window_start, end = self._window
        while (due := self.began + call * interval) < end and self.error is None:
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            stamp = datetime.now(UTC)
            first = call * ROWS_PER_CALL
            rows: list[Any] = [
                (*self.pool[(first + j) % POOL], stamp, stamp) for j in range(ROWS_PER_CALL)
            ]
            started = time.perf_counter()
            self.store.online_write_batch(config, view, rows, None)
            took_ms = (time.perf_counter() - started) * 1000
            with self._lock:
                if due >= window_start:
                    self.call_ms.append(took_ms)
                    self.rows_in_window += ROWS_PER_CALL
                self.rows_sent += ROWS_PER_CALL
                self.calls += 1
            call += self.writers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.e2e_lag",
        description="Run e2e_lag alone, for investigations.",
    )
    parser.add_argument("--workers", choices=["processes", "threads"], default="processes")
    parser.add_argument("--poll-timeout", type=float, help="override worker.poll_timeout_seconds")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rate", type=int, default=RATE, help="rows/s asked of the producer")
    parser.add_argument("--writers", type=int, default=1, help="producer threads (shared txns)")
    parser.add_argument(
        "--experiment",
        choices=[DRAIN_POLL, LAZY_COMMIT],
        help=f"{DRAIN_POLL}: workers wait for the first record only, then take what is queued; "
        f"{LAZY_COMMIT}: that, and offsets committed at most every 100 ms "
        "(a proposed KafkaSource.poll_batch change, tried without editing it)",
    )
    args = parser.parse_args(argv)

    from benchmarks.__main__ import _progress
    from replicator.config import load_topology

    config = Path(os.environ.get("REPLICATOR_CONFIG") or ROOT / "infra" / "topology.yaml")
    ctx = Context(config, load_topology(config), args.quick, _progress(time.monotonic()))
    overrides = (
        {"worker": {"poll_timeout_seconds": args.poll_timeout}} if args.poll_timeout else None
    )
    for result in run(
        ctx,
        workers=args.workers,
        overrides=overrides,
        experiment=args.experiment,
        rate=args.rate,
        writers=args.writers,
    ):
        print(json.dumps({result.name: result.as_json()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
