"""``detection``: seconds from a fault to the consistency checker's VIOLATED, per fault.

Runs on the fault suite's stack and WAN (chaos/), with the suite's checker settings
(staleness bound 5 s, checked every 2 s, VIOLATED after 2 rounds above the bound), while the
suite's workload writes through Feast. Faults, each held until the flag is certainly up:
- a stopped worker: SIGSTOP of eu-west-1's worker;
- a cut region: eu-west-1's links drop every byte (no RST);
- a broker loss: every broker unreachable (SIGSTOP of all three: how a lost Kafka looks to
  its clients without RST; losing one of three brokers loses nothing and raises nothing).
Figure: ``first /api/status sample with eu-west-1 violated - injection``, polled every
0.5 s, for ``REPEATS`` injections of each fault (the phase of the checker's rounds against
the fault moves the figure by up to a round): the median per fault, and the worst of them
is the value. Target: <= bound + 2 rounds (9 s).
"""

from __future__ import annotations

import math
import os
import random
import signal
import statistics
import sys
import time
from typing import Any

from chaos import checkers
from chaos.cluster import CHECK_INTERVAL_S, ChaosCluster, staleness_bound
from chaos.nemesis import REMOTE, Fault, World
from chaos.runner import commit_id, run_fault

NAME = "detection"
HOLD_S = 40.0
REPEATS = 3


def _signal_brokers(sig: signal.Signals) -> Any:
    def act(w: World) -> None:
        for broker in w.cluster.stack.brokers:
            pid = broker.pid()
            if pid is not None:
                os.kill(pid, sig)

    return act


def _cut(w: World) -> None:
    for link in w.cluster.wan.region_links(REMOTE):
        link.cut("cut")


def _worker(sig: signal.Signals) -> Any:
    return lambda w: w.deployment.signal(f"worker:{REMOTE}", sig)


FAULTS = (
    Fault(
        "stopped worker",
        "SIGSTOP eu-west-1's worker",
        HOLD_S,
        _worker(signal.SIGSTOP),
        _worker(signal.SIGCONT),
        flags=(REMOTE,),
    ),
    Fault(
        "cut region",
        "eu-west-1 cut off",
        HOLD_S,
        _cut,
        lambda w: w.cluster.heal_network(),
        flags=(REMOTE,),
    ),
    Fault(
        "broker loss",
        "every broker SIGSTOPped",
        HOLD_S,
        _signal_brokers(signal.SIGSTOP),
        _signal_brokers(signal.SIGCONT),
        flags=(REMOTE,),
    ),
)


def run(quick: bool) -> dict[str, Any]:
    bound = staleness_bound(REMOTE)
    target = bound + 2 * CHECK_INTERVAL_S
    cluster = ChaosCluster()
    repeats = 1 if quick else REPEATS
    started = not cluster.stack.status()["ok"]
    seed = random.SystemRandom().randrange(10**6)
    runs: dict[str, list[float]] = {}
    try:
        cluster.up()
        for i, fault in enumerate(FAULTS * repeats):
            print(f"[{time.strftime('%H:%M:%S')}] detection: {fault.name}", file=sys.stderr)
            result = run_fault(cluster, fault, seed + i, commit_id(), lambda m: None)
            history = result.history
            start = history.first("fault-start") if history else None
            at = (
                checkers.first_status(history, REMOTE, "violated", start)
                if history and start is not None
                else None
            )
            runs.setdefault(fault.name, []).append(
                math.inf if at is None or start is None else round(at - start, 2)
            )
    finally:
        if started:
            cluster.down()
        else:
            cluster.toxiproxy.stop()
    figures = {name: statistics.median(seconds) for name, seconds in runs.items()}
    worst = max(figures.values())
    return {
        "unit": "s (worst fault's median -> VIOLATED)",
        "value": worst,
        "target": f"<= bound + 2 rounds ({target:.0f} s) for every fault",
        "met": worst <= target,
        "seconds_to_violated": figures,
        "runs": runs,
        "params": {
            "region": REMOTE,
            "bound_s": bound,
            "round_s": CHECK_INTERVAL_S,
            "violate_after": 2,
            "repeats": repeats,
            "seed": seed,
        },
    }
