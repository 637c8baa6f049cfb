"""The workers of ``e2e_lag``: one per region, as ``replicator worker`` builds them, each
stamping every record it applies with its lag (and the time it was taken).

``ProcessFleet`` runs each in its own process (``python -m benchmarks.e2e_workers REGION``,
reporting through a JSON status file), ``ThreadFleet`` in threads of the caller's process.
Experiments (``--experiment``) wrap the worker's Kafka source without editing it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks import processes
from benchmarks.context import CallTimes
from benchmarks.processes import wait_until
from benchmarks.project import BenchProject, bench_options, rows_done
from replicator.assembly import build_worker
from replicator.config import load_topology
from replicator.core import wire

DRAIN_POLL = "drain-poll"
LAZY_COMMIT = "drain-poll-lazy-commit"


class _TimedSamples(list[tuple[int, float]]):
    """Stands in for ``WorkerStats.lag_ms``: keeps every sample with the time it was taken."""

    def append(self, lag_ms: float) -> None:  # type: ignore[override]
        super().append((time.time_ns(), lag_ms))


class WorkerLoop:
    """One region's worker as ``replicator worker`` builds it, without stats publishing."""

    def __init__(self, topology_path: Path, region: str, *, experiment: str | None = None) -> None:
        topology = load_topology(topology_path)
        self.partitions = topology.kafka.partitions
        self.worker = build_worker(topology, region, options=bench_options(topology))
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
        return rows_done(self.worker)

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


class ThreadFleet:
    def __init__(
        self, project: BenchProject, regions: list[str], *, experiment: str | None
    ) -> None:
        self.loops = {
            r: WorkerLoop(project.topology_path, r, experiment=experiment) for r in regions
        }
        self.threads = [
            threading.Thread(target=loop.run, daemon=True) for loop in self.loops.values()
        ]
        self.cpu_start = time.process_time()
        for thread in self.threads:
            thread.start()

    def wait_ready(self, timeout: float) -> None:
        wait_until(
            lambda: all(loop.ready for loop in self.loops.values()), timeout, "workers ready", 0.05
        )

    def wait_applied(self, rows: int, timeout: float) -> None:
        wait_until(
            lambda: all(loop.rows >= rows for loop in self.loops.values()), timeout, "drain", 0.05
        )

    def stop(self) -> dict[str, dict[str, Any]]:
        for loop in self.loops.values():
            loop.stop.set()
        for thread in self.threads:
            thread.join(30)
        return {region: loop.report() for region, loop in self.loops.items()}


class ProcessFleet:
    """``python -m benchmarks.e2e_workers REGION ...``: one process per region."""

    def __init__(
        self, project: BenchProject, regions: list[str], *, experiment: str | None
    ) -> None:
        self.status = {r: project.workdir / f"worker-{r}.json" for r in regions}
        self.logs = {r: project.workdir / f"worker-{r}.log" for r in regions}
        self.procs = {
            region: processes.start(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.e2e_workers",
                    region,
                    "--topology",
                    str(project.topology_path),
                    "--status",
                    str(self.status[region]),
                    *(["--experiment", experiment] if experiment else []),
                ],
                self.logs[region],
            )
            for region in regions
        }

    def _read(self, region: str) -> dict[str, Any]:
        proc = self.procs[region]
        if proc.poll() is not None and proc.returncode != 0:
            tail = processes.tail(self.logs[region])
            raise RuntimeError(f"worker {region} exited with {proc.returncode}:\n{tail}")
        try:
            return dict(json.loads(self.status[region].read_text()))
        except (OSError, ValueError):
            return {}

    def wait_ready(self, timeout: float) -> None:
        wait_until(
            lambda: all(self._read(r).get("ready") for r in self.procs),
            timeout,
            "workers ready",
            0.05,
        )

    def wait_applied(self, rows: int, timeout: float) -> None:
        wait_until(
            lambda: all(self._read(r).get("rows", 0) >= rows for r in self.procs),
            timeout,
            "drain",
            0.05,
        )

    def stop(self) -> dict[str, dict[str, Any]]:
        processes.stop(self.procs.values(), grace_seconds=30)
        return {region: self._read(region) for region in self.procs}


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


def worker_process(
    region: str, topology_path: Path, status_path: Path, experiment: str | None
) -> int:
    loop = WorkerLoop(topology_path, region, experiment=experiment)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: loop.stop.set())

    def tick(current: WorkerLoop) -> None:
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
        prog="python -m benchmarks.e2e_workers",
        description="One worker of e2e_lag (its ProcessFleet starts them).",
    )
    parser.add_argument("region")
    parser.add_argument("--topology", type=Path, required=True)
    parser.add_argument("--status", type=Path, required=True)
    parser.add_argument("--experiment", choices=[DRAIN_POLL, LAZY_COMMIT])
    args = parser.parse_args(argv)
    return worker_process(args.region, args.topology, args.status, args.experiment)


if __name__ == "__main__":
    sys.exit(main())
