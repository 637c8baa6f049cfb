"""``e2e_lag``: publish-to-applied latency in three regions at a sustained 20,000 rows/s.

A producer thread calls ``ReplicatingOnlineStore.online_write_batch`` (the Feast write path
of the primary: Feast-layout encoding, produce, flush until Kafka acknowledged) every 10 ms
with 200 rows of the synthetic 10-feature view, paced on an absolute schedule, event times
from the primary's clock. Entities cycle through a fixed pool of 20,000, so every row is
newer than the one it replaces and is applied.

Each region has its worker built by ``build_worker`` (the ``replicator worker`` code path),
by default as a separate process (``--workers threads`` runs them inside the producer's
process, where they share its GIL). A worker stamps every applied record with
``lag = clock after Redis acknowledged the pipeline - published_ns``, where ``published_ns``
is taken by ``online_write_batch`` just before it encodes the rows. Both clocks are the same
host's, so the figure has no skew. It is an upper bound of "readable in the region": a reader
sees the rows as soon as the script ran, one reply earlier. Samples are per Kafka record
(~33 rows: 200 rows over 6 partitions), kept when published inside the measured window
(after a warm-up); the window ends with the producer, and workers drain before they stop.
Target: p99 <= 50 ms.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.context import CallTimes, Context, CpuMeter
from benchmarks.project import BenchProject
from benchmarks.report import ROOT, Check, Result, load_average, quantile
from replicator.core import wire

NAME = "e2e_lag"
RATE = 20_000
ROWS_PER_CALL = 200
POOL = 20_000
TARGET_P99_MS = 50.0
DRAIN_POLL = "drain-poll"
LAZY_COMMIT = "drain-poll-lazy-commit"


def run(
    ctx: Context,
    *,
    workers: str = "processes",
    overrides: dict[str, Any] | None = None,
    experiment: str | None = None,
    rate: int = RATE,
) -> list[Result]:
    warmup = 1.0 if ctx.quick else 3.0
    duration = 8.0 if ctx.quick else 25.0
    with BenchProject(ctx.config_path, "e2e", overrides=overrides) as project:
        project.register()
        regions = list(project.topology.regions)
        fleet_type = _ProcessFleet if workers == "processes" else _ThreadFleet
        fleet = fleet_type(project, regions, experiment=experiment)
        try:
            ctx.progress(f"e2e_lag: starting {len(regions)} workers ({workers})")
            fleet.wait_ready(timeout=60)
            producer = _Producer(project, rate)
            ctx.progress(
                f"e2e_lag: publishing {rate:,} rows/s, {warmup:.0f} s warm-up + {duration:.0f} s"
            )
            meter = CpuMeter(project.topology, ROOT)
            load_before = load_average()
            before = meter.read()
            window = producer.run(warmup, duration)
            cpu = CpuMeter.diff(before, meter.read())
            cpu["load_average_before"] = load_before
            cpu["load_average_after"] = load_average()
            meter.close()
            fleet.wait_applied(producer.rows_sent, timeout=120)
        finally:
            outcome = fleet.stop()
    params = {"workers": workers, "warmup_s": warmup, "measured_s": duration}
    if overrides:
        params["topology_overrides"] = overrides
    if experiment:
        params["experiment"] = experiment
    result = _result(window, producer, outcome, params)
    if rate != RATE:
        result.params["target_rows_per_s"] = rate
        result.checks[-1] = Check("achieved rows/s", result.checks[-1].actual, ">=", rate * 0.98)
    cpu["producer_s"] = round(producer.cpu_s, 2)
    worker_cpu = [r.get("cpu_s") for r in outcome.values()]
    if all(isinstance(c, float | int) for c in worker_cpu):
        cpu["workers_s"] = round(sum(worker_cpu), 2)  # whole process lives, not just the window
    result.figures["cpu_during_run"] = cpu
    # The load profile: what else the machine did decides the tail (docs: BENCHMARKS.md).
    result.figures["load_profile"] = {
        key: cpu.get(key)
        for key in (
            "load_average_before",
            "load_average_after",
            "machine_busy_pct",
            "kafka_cpu_s",
            "redis_cpu_s",
            "producer_s",
            "workers_s",
        )
    }
    result.figures["offset_commits_per_s"] = round(
        sum(r.get("calls_ms", {}).get("commit", {}).get("calls", 0) for r in outcome.values())
        / (warmup + duration),
        1,
    )  # commits over warm-up and window, per second of both (all regions)
    return [result]


def _result(
    window: tuple[int, int],
    producer: _Producer,
    outcome: dict[str, dict[str, Any]],
    params: dict[str, Any],
) -> Result:
    start_ns, end_ns = window
    per_region: dict[str, Any] = {}
    pooled: list[float] = []
    received = [
        lag
        for report in outcome.values()
        for published, lag in report.get("received", ())
        if start_ns <= published < end_ns
    ]
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


class _Producer:
    """Calls the primary's Feast write path on an absolute schedule."""

    def __init__(self, project: BenchProject, rate: int = RATE) -> None:
        from benchmarks.dataset import entity_key, feature_values
        from replicator.feast_publisher import ReplicatingOnlineStore

        self.project = project
        self.rate = rate
        self.store = ReplicatingOnlineStore()
        self.pool = [(entity_key(i), feature_values(i)) for i in range(POOL)]
        self.rows_sent = 0
        self.rows_in_window = 0
        self.call_ms: list[float] = []
        self.cpu_s = 0.0
        self.error: BaseException | None = None

    def run(self, warmup: float, duration: float) -> tuple[int, int]:
        window: list[int] = []
        thread = threading.Thread(target=self._loop, args=(warmup, duration, window), daemon=True)
        thread.start()
        thread.join()
        if self.error is not None:
            raise self.error
        return window[0], window[1]

    def _loop(self, warmup: float, duration: float, window: list[int]) -> None:
        try:
            self._paced(warmup, duration, window)
        except BaseException as exc:  # surfaced by run()
            self.error = exc

    def _paced(self, warmup: float, duration: float, window: list[int]) -> None:
        """Open loop: call ``i`` is due at ``began + i * interval`` whatever earlier calls took
        (a late producer catches up); the window is the schedule's, in wall-clock ns."""
        config, view = self.project.repo_config, self.project.feature_view
        interval = ROWS_PER_CALL / self.rate
        cpu_start = time.process_time()
        began = time.monotonic()
        wall_offset_ns = time.time_ns() - int(began * 1e9)
        window_start = began + warmup
        end = window_start + duration
        calls = 0
        cursor = 0
        while (due := began + calls * interval) < end:
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            stamp = datetime.now(UTC)
            rows: list[Any] = []
            for _ in range(ROWS_PER_CALL):
                key, values = self.pool[cursor]
                rows.append((key, values, stamp, stamp))
                cursor = (cursor + 1) % POOL
            started = time.perf_counter()
            self.store.online_write_batch(config, view, rows, None)
            if due >= window_start:
                self.call_ms.append((time.perf_counter() - started) * 1000)
                self.rows_in_window += ROWS_PER_CALL
            self.rows_sent += ROWS_PER_CALL
            calls += 1
        finished = max(end, time.monotonic())
        window.extend(
            [wall_offset_ns + int(window_start * 1e9), wall_offset_ns + int(finished * 1e9)]
        )
        self.cpu_s = time.process_time() - cpu_start


# Workers ----------------------------------------------------------------------------------
class _TimedSamples(list[tuple[int, float]]):
    """Stands in for ``WorkerStats.lag_ms``: keeps every sample with the time it was taken."""

    def append(self, lag_ms: float) -> None:  # type: ignore[override]
        super().append((time.time_ns(), lag_ms))


class _WorkerLoop:
    """One region's worker as ``replicator worker`` builds it, without stats publishing."""

    def __init__(self, topology_path: Path, region: str, *, experiment: str | None = None) -> None:
        from replicator.assembly import build_worker, worker_options
        from replicator.config import load_topology

        topology = load_topology(topology_path)
        self.partitions = topology.kafka.partitions
        options = dataclasses.replace(worker_options(topology), publish_stats=False)
        self.worker = build_worker(topology, region, options=options)
        if experiment:
            self.worker.source = _DrainingSource(
                self.worker.source, commit_every=0.1 if experiment == LAZY_COMMIT else 0.0
            )
        self.received = _ReceiveStamps(self.worker.source)
        self.worker.source = self.received
        self.calls = CallTimes()
        self.worker.source = self.calls.wrap(self.worker.source, "poll_batch", "commit")
        self.worker.store = self.calls.wrap(self.worker.store, "apply")
        self.samples = _TimedSamples()
        self.worker.stats.lag_ms = self.samples  # type: ignore[assignment]
        self.stop = threading.Event()
        self.ready = False

    @property
    def rows(self) -> int:
        return self.worker.stats.rows_applied + self.worker.stats.rows_skipped_older

    def run(self, on_tick: Any = None) -> None:
        """Step until stopped; every 0.2 s refresh ``ready`` (from this thread: a consumer
        must not be called from two threads) and call ``on_tick``."""
        consumer = self.worker.source.consumer  # type: ignore[attr-defined]
        last = 0.0
        try:
            while not self.stop.is_set():
                self.worker.step()
                now = time.monotonic()
                if now - last >= 0.2:
                    last = now
                    self.ready = len(consumer.assignment()) >= self.partitions
                    if on_tick is not None:
                        on_tick(self)
        finally:
            self.worker.source.close()

    def report(self) -> dict[str, Any]:
        return {
            "samples": list(self.samples),
            "received": self.received.samples,
            "calls_ms": self.calls.summary(),
            "rows": self.rows,
        }


class _ThreadFleet:
    def __init__(
        self, project: BenchProject, regions: list[str], *, experiment: str | None
    ) -> None:
        self.loops = {
            r: _WorkerLoop(project.topology_path, r, experiment=experiment) for r in regions
        }
        self.threads = [
            threading.Thread(target=loop.run, daemon=True) for loop in self.loops.values()
        ]
        self.cpu_start = time.process_time()
        for thread in self.threads:
            thread.start()

    def wait_ready(self, timeout: float) -> None:
        _wait(lambda: all(loop.ready for loop in self.loops.values()), timeout, "workers ready")

    def wait_applied(self, rows: int, timeout: float) -> None:
        _wait(lambda: all(loop.rows >= rows for loop in self.loops.values()), timeout, "drain")

    def stop(self) -> dict[str, dict[str, Any]]:
        for loop in self.loops.values():
            loop.stop.set()
        for thread in self.threads:
            thread.join(30)
        return {region: loop.report() for region, loop in self.loops.items()}


class _ProcessFleet:
    """``python -m benchmarks.e2e_lag --worker REGION``: one process per region."""

    def __init__(
        self, project: BenchProject, regions: list[str], *, experiment: str | None
    ) -> None:
        self.status = {r: project.workdir / f"worker-{r}.json" for r in regions}
        self.logs = {r: project.workdir / f"worker-{r}.log" for r in regions}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        for region in regions:
            with self.logs[region].open("wb") as log:
                self.procs[region] = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "benchmarks.e2e_lag",
                        "--worker",
                        region,
                        "--topology",
                        str(project.topology_path),
                        "--status",
                        str(self.status[region]),
                        *(["--experiment", experiment] if experiment else []),
                    ],
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )

    def _read(self, region: str) -> dict[str, Any]:
        proc = self.procs[region]
        if proc.poll() is not None and proc.returncode != 0:
            tail = self.logs[region].read_text(errors="replace")[-2000:]
            raise RuntimeError(f"worker {region} exited with {proc.returncode}:\n{tail}")
        try:
            return dict(json.loads(self.status[region].read_text()))
        except (OSError, ValueError):
            return {}

    def wait_ready(self, timeout: float) -> None:
        _wait(lambda: all(self._read(r).get("ready") for r in self.procs), timeout, "workers ready")

    def wait_applied(self, rows: int, timeout: float) -> None:
        _wait(
            lambda: all(self._read(r).get("rows", 0) >= rows for r in self.procs), timeout, "drain"
        )

    def stop(self) -> dict[str, dict[str, Any]]:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        out = {}
        for region, proc in self.procs.items():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
            out[region] = self._read(region)
        return out


class _ReceiveStamps:
    """Splits the lag: ``(published_ns, ms from publish to the poll that returned it)``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.samples: list[tuple[int, float]] = []

    def __getattr__(self, name: str) -> Any:  # consumer, assigned, ...
        return getattr(self.inner, name)

    def poll_batch(self, max_messages: int, timeout: float) -> Any:
        messages = self.inner.poll_batch(max_messages, timeout)
        now = time.time_ns()
        for message in messages:
            for name, value in message.headers() or ():
                if name == wire.H_PUBLISHED_NS and value:
                    published = int(value)
                    self.samples.append((published, (now - published) / 1e6))
        return messages

    def commit(self, positions: dict[tuple[str, int], int]) -> None:
        self.inner.commit(positions)

    def close(self) -> None:
        self.inner.close()


class _DrainingSource:
    """Experiment: block for the first record only, then take whatever is already queued.

    ``confluent_kafka.Consumer.consume(n, timeout)`` waits the whole timeout unless ``n``
    records arrive, so a worker that asks for 50 records when 10 are queued waits 50 ms.
    With ``commit_every`` > 0, offsets (handed over only after Redis acknowledged, as ever)
    are committed at most that often: a crash redelivers a little more, which is harmless.
    """

    def __init__(self, inner: Any, *, commit_every: float = 0.0) -> None:
        self.inner = inner
        self.commit_every = commit_every
        self.pending: dict[tuple[str, int], int] = {}
        self.last_commit = 0.0

    def __getattr__(self, name: str) -> Any:  # consumer, assigned, ...
        return getattr(self.inner, name)

    def poll_batch(self, max_messages: int, timeout: float) -> list[Any]:
        first = list(self.inner.poll_batch(1, timeout))
        if first and max_messages > 1:
            first.extend(self.inner.poll_batch(max_messages - 1, 0))
        if not first:
            self._flush()
        return first

    def commit(self, positions: dict[tuple[str, int], int]) -> None:
        self.pending.update(positions)
        if time.monotonic() - self.last_commit >= self.commit_every:
            self._flush()

    def _flush(self) -> None:
        if self.pending:
            self.inner.commit(self.pending)
            self.pending = {}
            self.last_commit = time.monotonic()

    def close(self) -> None:
        self._flush()
        self.inner.close()


def _wait(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def _worker_process(
    region: str, topology_path: Path, status_path: Path, experiment: str | None
) -> int:
    loop = _WorkerLoop(topology_path, region, experiment=experiment)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: loop.stop.set())

    def tick(current: _WorkerLoop) -> None:
        _write_status(status_path, {"ready": current.ready, "rows": current.rows})

    loop.run(on_tick=tick)
    times = os.times()
    _write_status(
        status_path,
        {
            "ready": True,
            "done": True,
            **loop.report(),
            "cpu_s": round(times.user + times.system, 2),
        },
    )
    return 0


def _write_status(path: Path, status: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(status))
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.e2e_lag",
        description="Run e2e_lag alone (for investigations), or one worker of it (--worker).",
    )
    parser.add_argument("--worker", metavar="REGION", help=argparse.SUPPRESS)
    parser.add_argument("--topology", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--status", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--workers", choices=["processes", "threads"], default="processes")
    parser.add_argument("--poll-timeout", type=float, help="override worker.poll_timeout_seconds")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--experiment",
        choices=[DRAIN_POLL, LAZY_COMMIT],
        help=f"{DRAIN_POLL}: workers wait for the first record only, then take what is queued; "
        f"{LAZY_COMMIT}: that, and offsets committed at most every 100 ms "
        "(a proposed KafkaSource.poll_batch change, tried without editing it)",
    )
    args = parser.parse_args(argv)
    if args.worker:
        return _worker_process(args.worker, args.topology, args.status, args.experiment)

    from benchmarks.__main__ import _progress
    from replicator.config import load_topology

    config = Path(os.environ.get("REPLICATOR_CONFIG") or ROOT / "infra" / "topology.yaml")
    ctx = Context(config, load_topology(config), args.quick, _progress(time.monotonic()))
    overrides = (
        {"worker": {"poll_timeout_seconds": args.poll_timeout}} if args.poll_timeout else None
    )
    for result in run(ctx, workers=args.workers, overrides=overrides, experiment=args.experiment):
        print(json.dumps({result.name: result.as_json()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
