"""``python -m benchmarks``: run the benchmarks side by side, write JSON, print a table.

    python -m benchmarks                      # everything, full sizes
    python -m benchmarks --quick              # smaller sizes, shorter runs
    python -m benchmarks --only apply --only rebuild
    python -m benchmarks --out /tmp/bench.json
    python -m benchmarks --only security_cost  # plaintext vs secure stack (not in the default run)

Starts the local stack when it is not running (and stops it again at the end, as the test
fixtures do). Each benchmark works in its own throwaway Feast project and removes its
topics, keys, consumer groups and registry objects afterwards.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from benchmarks import (
    apply,
    bootstrap,
    cold_start,
    e2e_lag,
    egress,
    materialize,
    publish,
    rebuild,
    takeover,
)
from benchmarks.context import Context
from benchmarks.report import ROOT, Check, Result, load_average, machine, summary_table, write_json
from replicator.config import load_topology

BENCHMARKS: dict[str, ModuleType] = {
    apply.NAME: apply,
    e2e_lag.NAME: e2e_lag,
    rebuild.NAME: rebuild,
    cold_start.NAME: cold_start,
    takeover.NAME: takeover,
    egress.NAME: egress,
    bootstrap.NAME: bootstrap,
    publish.NAME: publish,
    materialize.NAME: materialize,
}
EXTERNAL = {
    "divergence_full": "benchmarks.divergence_full",
    "staleness_resolution": "benchmarks.staleness_resolution",
    "regional_read": "benchmarks.regional_read",
    "failover": "benchmarks.failover",
    "e2e_lag_wan": "benchmarks.e2e_lag_wan",
    "detection": "benchmarks.detection",
    "security_cost": "benchmarks.security_cost",
}
"""Benchmarks with their own runner, ``run(quick) -> dict`` already in the results shape."""
OPT_IN = {"security_cost"}
"""Run only when named with ``--only`` (``security_cost`` brings up a second, plaintext stack)."""
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "latest.json"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=[*BENCHMARKS, *EXTERNAL],
        help="run this benchmark (repeatable)",
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes and shorter runs")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON file ({DEFAULT_OUT})")
    parser.add_argument(
        "--config",
        type=Path,
        default=Path(os.environ.get("REPLICATOR_CONFIG") or ROOT / "infra" / "topology.yaml"),
        help="base topology (default: $REPLICATOR_CONFIG, else infra/topology.yaml)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="replicator logs too")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    began = time.monotonic()
    progress = _progress(began)
    topology = load_topology(args.config)
    selected = args.only or [
        *BENCHMARKS,
        *(n for n in EXTERNAL if n not in OPT_IN and _external(n) is not None),
    ]
    ctx = Context(args.config.resolve(), topology, args.quick, progress)

    with _stack(topology, progress):
        document: dict[str, Any] = {
            "machine": {**machine(topology), "load_average_before": load_average()},
            "run": {
                "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "quick": args.quick,
                "selected": selected,
            },
            "benchmarks": {},
        }
        results: list[Result] = []
        failed: list[str] = []
        for name in selected:
            progress(f"== {name} (load average {load_average()})")
            started = time.monotonic()
            try:
                produced = _run_one(name, ctx)
            except Exception as exc:  # one broken benchmark must not hide the others
                failed.append(name)
                traceback.print_exc()
                document["benchmarks"][name] = {"error": f"{type(exc).__name__}: {exc}"}
                continue
            for result in produced:
                result.params["seconds"] = round(time.monotonic() - started, 1)
                document["benchmarks"][result.name] = result.as_json()
                results.append(result)
        document["machine"]["load_average_after"] = load_average()
        document["run"]["wall_seconds"] = round(time.monotonic() - began, 1)
        write_json(args.out, document)

    print()
    print(summary_table(results))
    print(f"\nwall time {time.monotonic() - began:.0f} s; results in {args.out}")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _run_one(name: str, ctx: Context) -> list[Result]:
    if name in BENCHMARKS:
        return list(BENCHMARKS[name].run(ctx))
    module = _external(name)
    if module is None:
        raise RuntimeError(f"{EXTERNAL[name]} cannot be imported")
    document = dict(module.run(ctx.quick))
    met = bool(document.get("met"))
    result = Result(
        name=name,
        unit=str(document.get("unit", "")),
        value=float(document.get("value", 0.0)),
        target=str(document.get("target", "")),
        checks=[Check("met (as reported by the benchmark)", float(met), ">=", 1.0)],
        baselines=dict(document.get("baselines", {})),
        figures={k: v for k, v in document.items() if k not in _RESULT_KEYS},
        params=dict(document.get("params", {})),
    )
    return [result]


_RESULT_KEYS = {"unit", "value", "baselines", "params", "target", "met"}


def _external(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(EXTERNAL[name])
    except ImportError:
        return None


def _progress(began: float) -> Callable[[str], None]:
    def progress(message: str) -> None:
        print(f"[{time.monotonic() - began:7.1f}s] {message}", file=sys.stderr, flush=True)

    return progress


class _stack:
    """Use the running local stack, or start it and stop it again afterwards."""

    def __init__(self, topology: Any, progress: Callable[[str], None]) -> None:
        from replicator.stack import LocalStack

        self._stack = LocalStack(topology, cwd=ROOT, progress=progress)
        self._started = False

    def __enter__(self) -> None:
        if self._stack.status()["ok"]:
            return
        self._started = True
        try:
            self._stack.up()
        except BaseException:
            self._stack.down()
            raise

    def __exit__(self, *exc: object) -> None:
        if self._started:
            self._stack.down()


if __name__ == "__main__":
    sys.exit(main())
