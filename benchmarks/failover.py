"""``failover``: time from the local Redis dying to the first successful read from the fallback.

Each trial starts a throwaway ``redis-server`` (the local region, the stack's ACL users) whose
fallback is eu-west-1 of the local stack, opens a ``RegionalReader`` (the read path under
``RegionalOnlineStore``), reads once from the local region, kills the server (SIGKILL) and
reads in a loop until a read succeeds; the time from the kill to that success is one sample.
Errors that reached the caller are counted. Target: p99 <= 1 s over 20 trials.

    python -m benchmarks.failover [--quick]
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import redis
from pydantic import SecretStr

from benchmarks.report import ROOT, quantile
from replicator.adapters.redis_store import connect
from replicator.config import RedisUser, load_topology
from replicator.read_plan import read_plan
from replicator.regional_reads import RegionalReader, RegionUnavailable
from replicator.stack.pki import StackPki
from replicator.stack.redis_server import RedisServer, acl_file

NAME = "failover"
TARGET_SECONDS = 1.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _trial(workdir: Path) -> tuple[float, int]:
    base = load_topology(ROOT / "infra" / "topology.yaml")
    local = base.regions["ap-southeast-1"]
    port = _free_port()
    local = local.model_copy(update={"redis": local.redis.model_copy(update={"port": port})})
    regions = {"local-1": local, "eu-west-1": base.regions["eu-west-1"]}
    regions["local-1"] = local.model_copy(update={"read_fallbacks": ["eu-west-1"]})
    topology = base.model_copy(update={"regions": {**base.regions, **regions}})
    (workdir / "users.acl").write_text(acl_file(local.redis))
    # The port as the stack's Redis serves it: TLS with the stack's certificates if so set.
    pki = StackPki(ROOT / base.stack.state_dir / "tls")
    listener = RedisServer(topology, "local-1", workdir, pki=pki).listener()
    (workdir / "listener.conf").write_text("\n".join(listener) + "\n")
    server = subprocess.Popen(
        [
            *("redis-server", str(workdir / "listener.conf"), "--bind", "127.0.0.1", "--save", ""),
            *("--dir", str(workdir), "--aclfile", str(workdir / "users.acl")),
        ],
        stdout=subprocess.DEVNULL,
    )
    reader = None
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                probe = RedisUser(username="reader", password=SecretStr("x"))
                connect(local.redis, probe, timeout=1).ping()
            except redis.AuthenticationError:
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        plan = read_plan(topology, "local-1").model_copy()
        # A project of its own: no heartbeat emission record, so only reachability decides.
        project = f"bench_failover_{uuid.uuid4().hex[:8]}"
        plan = plan.model_copy(update={"regions": plan.regions[:2], "project": project})
        reader = RegionalReader(plan)
        assert reader.redis.hmget([(b"k", ["f"])])[0] == "local-1"
        server.kill()
        killed = time.perf_counter()
        errors = 0
        while True:
            try:
                reader.hmget([(b"k", ["f"])])
                return time.perf_counter() - killed, errors
            except RegionUnavailable:
                errors += 1
    finally:
        server.kill()
        server.wait(10)
        if reader is not None:
            reader.close()


def run(quick: bool = False) -> dict[str, Any]:
    trials = 5 if quick else 20
    samples, errors = [], 0
    for _ in range(trials):
        with tempfile.TemporaryDirectory(prefix="bench-failover-") as tmp:
            seconds, failed = _trial(Path(tmp))
        samples.append(seconds)
        errors += failed
    p99 = quantile(samples, 0.99)
    return {
        "unit": "s (p99, kill -> first successful read)",
        "value": round(p99, 4),
        "target": f"<= {TARGET_SECONDS}",
        "met": p99 <= TARGET_SECONDS,
        "baselines": {},
        "params": {"trials": trials},
        "p50_seconds": round(quantile(samples, 0.5), 4),
        "p99_seconds": round(p99, 4),
        "max_seconds": round(max(samples), 4),
        "errors_seen_by_caller": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.failover")
    parser.add_argument("--quick", action="store_true")
    print(json.dumps(run(parser.parse_args().quick), indent=2))


if __name__ == "__main__":
    main()
