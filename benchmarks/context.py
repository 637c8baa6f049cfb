"""What every benchmark receives from ``python -m benchmarks``."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from benchmarks.report import quantile
from replicator.adapters.redis_store import connect
from replicator.config import Topology


@dataclass(frozen=True)
class Context:
    config_path: Path
    """The base topology file; each benchmark copies it under its own project name."""
    topology: Topology
    quick: bool
    progress: Callable[[str], None]

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def replica(self, *, last: bool = False) -> str:
        """The region a one-region benchmark works in: the first replica region (the last
        with ``last``), or the primary when there is no replica."""
        replicas = self.topology.replica_regions
        if not replicas:
            return self.topology.primary_region
        return replicas[-1] if last else replicas[0]


def redis_server_stats(client: redis.Redis) -> dict[str, float]:
    """Server CPU seconds and per-command totals, to diff around a timed section.

    The stack's Redis is shared: other users' commands land in the same counters, so these
    deltas are an upper bound for the benchmark's own share.
    """
    cpu = client.info("cpu")
    out: dict[str, float] = {
        "cpu_s": float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]),
    }
    for name, stats in client.info("commandstats").items():
        command = name.removeprefix("cmdstat_")
        out[f"{command}.calls"] = float(stats["calls"])
        out[f"{command}.usec"] = float(stats["usec"])
    return out


def diff_stats(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before.get(k, 0.0) for k in after if after[k] - before.get(k, 0.0)}


class CpuMeter:
    """CPU seconds spent by the stack's servers and by the whole machine between two reads.

    Shows whether a run was CPU-bound: on a 2-core machine, ``machine_busy_pct`` near 100
    means every process (ours, the stack's and other users') was queueing for a core.
    """

    def __init__(self, topology: Topology, root: Path) -> None:
        from replicator.stack import LocalStack

        stack = LocalStack(topology, cwd=root)
        self._kafka_pids = [pid for broker in stack.brokers if (pid := broker.pid()) is not None]
        endpoints = {region: config.redis for region, config in topology.regions.items()}
        self._redis = {r: connect(e, e.admin, timeout=10) for r, e in endpoints.items()}
        self._ticks = os.sysconf("SC_CLK_TCK")

    def read(self) -> dict[str, float]:
        out: dict[str, float] = {"wall_s": time.monotonic()}
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        jiffies = [int(x) for x in fields]
        out["machine_total_s"] = sum(jiffies[:8]) / self._ticks
        out["machine_idle_s"] = (jiffies[3] + jiffies[4]) / self._ticks
        try:  # every broker of the stack (the fault suite's runs three)
            for pid in self._kafka_pids:
                stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                cpu = (int(stat[11]) + int(stat[12])) / self._ticks
                out["kafka_cpu_s"] = out.get("kafka_cpu_s", 0.0) + cpu
        except (OSError, IndexError, ValueError):
            out.pop("kafka_cpu_s", None)
        for region, client in self._redis.items():
            try:
                cpu = client.info("cpu")
                out[f"redis_cpu_s.{region}"] = float(cpu["used_cpu_user"]) + float(
                    cpu["used_cpu_sys"]
                )
            except redis.RedisError:
                pass
        return out

    @staticmethod
    def diff(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        delta = {k: after[k] - before[k] for k in after if k in before}
        wall = delta.pop("wall_s", 0.0)
        total = delta.pop("machine_total_s", 0.0)
        idle = delta.pop("machine_idle_s", 0.0)
        out = {k: round(v, 2) for k, v in delta.items()}
        out["redis_cpu_s"] = round(sum(v for k, v in delta.items() if k.startswith("redis_")), 2)
        out["seconds"] = round(wall, 2)
        out["machine_busy_pct"] = round(100 * (1 - idle / total), 1) if total else 0.0
        return out

    def close(self) -> None:
        for client in self._redis.values():
            client.close()


class CallTimes:
    """Durations of the worker's calls to its ports: which one stalls when the tail grows."""

    def __init__(self) -> None:
        self.ms: dict[str, list[float]] = {}

    def wrap(self, target: Any, *methods: str) -> Any:
        times = self

        class Timed:
            def __getattr__(self, name: str) -> Any:
                attribute = getattr(target, name)
                if name not in methods:
                    return attribute

                def timed(*args: Any, **kwargs: Any) -> Any:
                    began = time.perf_counter()
                    try:
                        return attribute(*args, **kwargs)
                    finally:
                        elapsed = (time.perf_counter() - began) * 1000
                        times.ms.setdefault(name, []).append(elapsed)

                return timed

        return Timed()

    def reset(self) -> None:
        self.ms.clear()

    def totals(self, total: float) -> dict[str, float]:
        """Seconds and calls per method, and what the wrapped calls do not account for."""
        out = {f"{name}_s": round(sum(ms) / 1000, 3) for name, ms in self.ms.items()}
        out.update({f"{name}_calls": float(len(ms)) for name, ms in self.ms.items()})
        out["other_s"] = round(total - sum(sum(ms) for ms in self.ms.values()) / 1000, 3)
        out["total_s"] = round(total, 3)
        return out

    def summary(self) -> dict[str, dict[str, float]]:
        return {
            name: {
                "calls": len(ms),
                "p50": round(quantile(ms, 0.5), 2),
                "p99": round(quantile(ms, 0.99), 2),
                "max": round(max(ms), 2),
                "total_s": round(sum(ms) / 1000, 2),
            }
            for name, ms in self.ms.items()
            if ms
        }
