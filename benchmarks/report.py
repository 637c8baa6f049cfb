"""Results, statistics, the machine description and the summary table."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Check:
    """One comparison behind a target: ``actual op threshold``."""

    what: str
    actual: float
    op: str  # ">=", "<=", "<"
    threshold: float

    @property
    def met(self) -> bool:
        ops: dict[str, Callable[[float, float], bool]] = {
            ">=": lambda a, b: a >= b,
            "<=": lambda a, b: a <= b,
            "<": lambda a, b: a < b,
        }
        return ops[self.op](self.actual, self.threshold)


@dataclass
class Result:
    name: str
    unit: str
    value: float
    target: str
    checks: list[Check]
    baselines: dict[str, float] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    """Sub-figures: other quantiles, phases, server-side profile, per-run samples."""
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def met(self) -> bool:
        return all(check.met for check in self.checks)

    def as_json(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "value": round(self.value, 3),
            "baselines": {k: round(v, 3) for k, v in self.baselines.items()},
            "params": self.params,
            "target": self.target,
            "met": self.met,
            "checks": [{**asdict(c), "met": c.met} for c in self.checks],
            "figures": self.figures,
        }


# Statistics -----------------------------------------------------------------------------
def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def quantile(values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile (the value below which a fraction ``q`` of samples fall)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 1))))
    return float(ordered[rank - 1])


# The machine ------------------------------------------------------------------------------
def machine(topology: Any) -> dict[str, Any]:
    import confluent_kafka
    import msgpack
    import redis

    from replicator.stack.redis_server import admin_client

    info: dict[str, Any] = {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "redis_py": redis.__version__,
        "hiredis": _hiredis(),
        "msgpack": ".".join(map(str, msgpack.version)),
        "confluent_kafka": _package_version("confluent-kafka"),
        "librdkafka": confluent_kafka.libversion()[0],
        "feast": _package_version("feast"),
        "kafka": _kafka_version(topology),
        "git_commit": _git_commit(),
        **_apply_script(),
    }
    region = topology.region(topology.primary_region).redis
    try:
        server = admin_client(region).info("server")
        info["redis"] = server.get("redis_version")
    except redis.RedisError:
        info["redis"] = "unreachable"
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return 0.0


def _hiredis() -> str:
    try:
        import hiredis

        return str(hiredis.__version__)
    except ImportError:
        return "not installed"


def _package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def _kafka_version(topology: Any) -> str:
    jars = ROOT / topology.stack.state_dir / "jars" / "kafka"
    for jar in sorted(jars.glob("kafka_2.13-*.jar")):
        return jar.stem.removeprefix("kafka_2.13-")
    return "unknown (not the local stack)"


def _git_commit() -> str:
    """HEAD at the time of the run (read-only; the tree may hold uncommitted edits)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
        )
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"


def _apply_script() -> dict[str, Any]:
    """Which apply_rows.lua ran, and whether it is the committed one (the tree is shared)."""
    path = "replicator/adapters/apply_rows.lua"
    text = (ROOT / path).read_bytes()
    try:
        head = subprocess.run(
            ["git", "show", f"HEAD:{path}"],
            cwd=ROOT,
            capture_output=True,
            timeout=5,
            check=False,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
        ).stdout
    except OSError:
        head = b""
    return {
        "apply_rows_lua_sha256": hashlib.sha256(text).hexdigest()[:16],
        "apply_rows_lua_is_head": text == head,
    }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# Output ---------------------------------------------------------------------------------
def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


def summary_table(results: Sequence[Result]) -> str:
    rows = [("benchmark", "value", "baselines", "target", "met")]
    for r in results:
        baselines = ", ".join(f"{k} {_num(v)}" for k, v in r.baselines.items()) or "-"
        rows.append((r.name, f"{_num(r.value)} {r.unit}", baselines, r.target, _yes(r.met)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _num(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def _yes(met: bool) -> str:
    return "yes" if met else "NO"
