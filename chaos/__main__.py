"""``python -m chaos``: run the fault matrix on the suite's own stack, write the table.

    python -m chaos                   # every fault (make chaos), ~30 min
    python -m chaos --ci              # the CI subset: worker kill, region cut 30 s, hostile
    python -m chaos --only worker-kill --only control
    python -m chaos --seed 42         # replay a run's choices (entities, hostile bytes)

Starts the chaos stack (infra/chaos/topology.yaml) and Toxiproxy if they are not running,
and stops them at the end if it started them. Exit 1 if any cell fails.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from chaos.cluster import ROOT, ChaosCluster
from chaos.nemesis import CI_SUBSET, FAULTS, by_name
from chaos.runner import RunResult, commit_id, run_fault
from chaos.table import render

DEFAULT_TABLE = ROOT / "docs" / "fault-table.md"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__.split("\n")[0])
    parser.add_argument("--ci", action="store_true", help="the three-fault CI subset")
    parser.add_argument("--only", action="append", metavar="FAULT", help="run this fault")
    parser.add_argument("--seed", type=int, help="base seed (default: from the clock)")
    parser.add_argument("--table", type=Path, default=DEFAULT_TABLE, help="markdown output")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    if args.only:
        faults = [by_name(n) for n in args.only]
    elif args.ci:
        faults = [by_name(n) for n in CI_SUBSET]
    else:
        faults = list(FAULTS)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    results = run_matrix(faults, seed, print)
    command = "python -m chaos " + " ".join(sys.argv[1:] if argv is None else argv)
    tested = next((r.history.commit for r in results if r.history), None) or commit_id()
    args.table.write_text(
        render(results, seed=seed, commit=tested, command=command.strip()), encoding="utf-8"
    )
    print(f"table: {args.table}")
    return 0 if all(r.ok for r in results) else 1


def run_matrix(faults: Sequence[object], seed: int, progress: object) -> list[RunResult]:
    """Start the cluster if needed, run each fault once, stop what was started."""
    say = progress if callable(progress) else print
    cluster = ChaosCluster()
    started = not cluster.stack.status()["ok"]
    began = time.monotonic()
    say(f"chaos: {'starting' if started else 'using'} the chaos stack (seed {seed})")
    results: list[RunResult] = []
    try:
        cluster.up()
        commit = commit_id()
        for i, fault in enumerate(faults):
            say(f"[{time.monotonic() - began:6.0f}s] {fault.name}: {fault.description}")  # type: ignore[attr-defined]
            result = run_fault(cluster, fault, seed + i, commit, say)  # type: ignore[arg-type]
            results.append(result)
            verdict = "ok" if result.ok else "FAIL"
            say(f"  {fault.name}: {verdict} in {result.seconds:.0f} s")  # type: ignore[attr-defined]
    finally:
        if started:
            cluster.down()
        else:
            cluster.toxiproxy.stop()
    return results


if __name__ == "__main__":
    sys.exit(main())
