"""``e2e_lag_wan``: publish-to-applied latency per region with the regions behind a WAN.

The ``e2e_lag`` benchmark (same producer, same worker processes, same samples) run on the
fault suite's own stack (infra/chaos/topology.yaml: 3 Kafka brokers) with its Toxiproxy WAN:
eu-west-1 and ap-southeast-1 reach the brokers through links with half their round-trip time
to us-east-1 in each direction (chaos/wan.py: 76 ms and 220 ms RTT, 10 % jitter).
Target per region: p99 <= one-way delay + 50 ms at 20,000 rows/s. A Feast call returns only
once its transaction committed on 3 brokers (acks=all, ``min.insync.replicas=2``), so one
writer thread reaches at most 200 rows per commit round trip; the rows come from ``WRITERS``
threads, as a feature server's concurrent pushes would, whose calls share transactions.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from benchmarks import e2e_lag
from benchmarks.context import Context
from chaos.cluster import TOPOLOGY, ChaosCluster
from chaos.wan import rtt_ms

NAME = "e2e_lag_wan"
RATE = 20_000
WRITERS = 4
MARGIN_MS = 50.0


def run(quick: bool) -> dict[str, Any]:
    cluster = ChaosCluster()
    started = not cluster.stack.status()["ok"]
    try:
        cluster.up()
        ctx = Context(TOPOLOGY, cluster.topology, quick, _progress)
        (result,) = e2e_lag.run(ctx, rate=RATE, writers=WRITERS)
    finally:
        if started:
            cluster.down()
        else:
            cluster.toxiproxy.stop()
    primary = cluster.topology.primary_region
    per_region = result.figures["per_region"]
    targets = {r: rtt_ms(primary, r) / 2 + MARGIN_MS for r in per_region}
    met = all(per_region[r]["p99_ms"] <= targets[r] for r in per_region)
    worst = max(per_region[r]["p99_ms"] - targets[r] for r in per_region)
    return {
        "unit": "ms (worst p99 minus its target)",
        "value": round(worst, 2),
        "target": "p99 <= one-way WAN delay + 50 ms, per region",
        "met": met and all(c.met for c in result.checks[1:]),
        "per_region": {
            r: {**per_region[r], "target_p99_ms": round(targets[r], 1)} for r in per_region
        },
        "p50_ms": result.figures["p50_ms"],
        "p99_ms": result.figures["p99_ms"],
        "achieved_rows_per_s": result.figures["achieved_rows_per_s"],
        "write_call_ms": result.figures["write_call_ms"],
        "write_calls_per_transaction": result.figures["write_calls_per_transaction"],
        "load_profile": result.figures["load_profile"],
        "windows": result.figures["windows"],
        "params": {**result.params, "rtt_ms": {r: rtt_ms(primary, r) for r in per_region}},
    }


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
