"""Faults: each injected once, held for a bounded time, then healed by the nemesis itself.

A ``Fault`` is data (name, what it does, how long it holds, which regions the consistency
checker must flag) plus two functions: ``inject`` and ``heal``. ``Nemesis.run`` calls them
on schedule in its own thread, so a fault stops by itself even when the workload or a
checker is stuck; ``heal`` is also called from ``finally`` when a run is interrupted.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chaos import hostile
from chaos.cluster import ROOT, ChaosCluster, Deployment
from chaos.history import History

log = logging.getLogger(__name__)

REMOTE = "eu-west-1"
FAR = "ap-southeast-1"
SKEW_SECONDS = -120.0


@dataclass
class World:
    """What a fault acts on."""

    cluster: ChaosCluster
    deployment: Deployment
    history: History
    project: Any
    """``benchmarks.project.BenchProject``: topic, fingerprint, topology."""
    seed: int
    notes: dict[str, Any] = field(default_factory=dict)


Action = Callable[[World], None]


@dataclass(frozen=True)
class Fault:
    name: str
    description: str
    hold_seconds: float
    inject: Action
    heal: Action
    flags: tuple[str, ...] = ()
    """Regions the checker must flag VIOLATED ("*": every region)."""
    detect_within: float | None = None
    """Seconds after injection by which the flag must be up (default: bound + hysteresis)."""
    may_flag: tuple[str, ...] = ()
    """Regions that may go VIOLATED without having to: the product heals the fault itself,
    within their bound when the machine keeps up (not a false alarm either way)."""
    hostile: bool = False
    """Bad input injected: dead letters are expected."""
    full_only: bool = False


class Nemesis:
    """Runs one fault: inject, hold, heal, in its own thread."""

    def __init__(self, fault: Fault, world: World) -> None:
        self.fault = fault
        self.world = world
        self.error: BaseException | None = None
        self._healed = threading.Event()
        self._injected = False
        self._thread = threading.Thread(target=self._run, name="nemesis", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wait(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        history = self.world.history
        try:
            history.event("fault-start", self.fault.name)
            self._injected = True
            self.fault.inject(self.world)
            self._healed.wait(self.fault.hold_seconds)
        except BaseException as exc:  # reported in the table, never hidden
            self.error = exc
            log.exception("fault %s failed", self.fault.name)
        finally:
            self.heal()

    def heal(self) -> None:
        if not self._injected or self._healed.is_set():
            return
        self._healed.set()
        try:
            self.fault.heal(self.world)
        except BaseException as exc:
            self.error = self.error or exc
            log.exception("healing %s failed", self.fault.name)
        self.world.history.event("fault-end", self.fault.name)


# actions -------------------------------------------------------------------------------
def _nothing(world: World) -> None:
    return None


def _kill(component: str) -> Action:
    return lambda w: w.deployment.signal(component, signal.SIGKILL)


def _restart(component: str, env: dict[str, str] | None = None) -> Action:
    def act(w: World) -> None:
        w.deployment.extra_env[component] = dict(env or {})
        proc = w.deployment.processes[component]
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)
        w.deployment.start(component)

    return act


def _stop(component: str, sig: signal.Signals) -> Action:
    return lambda w: w.deployment.signal(component, sig)


def _kill_service(pick: Callable[[World], str]) -> Action:
    def act(w: World) -> None:
        key = pick(w)
        service = w.cluster.service(key)
        pid = service.pid()
        w.notes["service"] = key
        if pid is not None:
            import os

            os.kill(pid, signal.SIGKILL)
        w.history.event("note", f"kill -9 {key} (pid {pid})")

    return act


def _leading_broker(w: World) -> str:
    from confluent_kafka.admin import AdminClient

    from replicator.adapters.kafka_config import client_config

    admin = AdminClient(client_config(w.cluster.topology, "admin"))
    meta = admin.list_topics(w.project.topic, timeout=10)
    leader = meta.topics[w.project.topic].partitions[0].leader
    return "kafka" if leader == 1 else f"kafka-{leader}"


def _restart_services(w: World) -> None:
    w.cluster.restart_stopped()


def _cut(region: str, streams: tuple[str, ...] = ("upstream", "downstream")) -> Action:
    def act(w: World) -> None:
        for link in w.cluster.wan.region_links(region):
            link.cut("cut", streams)  # type: ignore[arg-type]

    return act


def _cut_kafka_downstream(region: str) -> Action:
    return lambda w: w.cluster.wan.link(f"kafka:{region}").cut("cut", ("downstream",))


def _spike(region: str, one_way_ms: float, jitter_ms: float) -> Action:
    return lambda w: w.cluster.wan.link(f"kafka:{region}").latency("spike", one_way_ms, jitter_ms)


def _heal_network(w: World) -> None:
    w.cluster.heal_network()


def _flush(region: str) -> Action:
    def act(w: World) -> None:
        w.project.admin(region).flushall()

    return act


def _rebuild(region: str) -> Action:
    def act(w: World) -> None:
        command = [sys.executable, "-m", "replicator.cli", "--config"]
        command += [str(w.deployment.topology_path), "region", "rebuild", region]
        log_file = w.deployment.workdir / f"rebuild-{region}.log"
        with log_file.open("ab") as out:
            result = subprocess.run(command, stdout=out, stderr=out, cwd=ROOT, timeout=300)
        w.history.event("note", f"replicator region rebuild {region}: exit {result.returncode}")

    return act


def _hostile(w: World) -> None:
    p = w.project
    with p.publisher() as publisher:
        sent = hostile.produce(
            publisher, p.topic, p.name, p.view_name, p.fingerprint, p.partitions, w.seed
        )
    w.history.event("note", f"hostile records sent: {sent}")


FAULTS: tuple[Fault, ...] = (
    Fault("control", "no fault (false-alarm check)", 30, _nothing, _nothing),
    Fault(
        "worker-kill",
        f"kill -9 the {REMOTE} worker, restart it 5 s later",
        5,
        _kill(f"worker:{REMOTE}"),
        _restart(f"worker:{REMOTE}"),
        flags=(REMOTE,),
    ),
    Fault(
        "worker-pause",
        f"SIGSTOP the {FAR} worker for 25 s, then SIGCONT",
        25,
        _stop(f"worker:{FAR}", signal.SIGSTOP),
        _stop(f"worker:{FAR}", signal.SIGCONT),
        flags=(FAR,),
    ),
    Fault(
        "broker-kill",
        "kill -9 the broker leading partition 0, restart it 20 s later",
        20,
        _kill_service(_leading_broker),
        _restart_services,
    ),
    Fault(
        "redis-kill",
        f"kill -9 the Redis of {REMOTE}, restart it 5 s later",
        5,
        _kill_service(lambda w: f"redis:{REMOTE}"),
        _restart_services,
        flags=(REMOTE,),
    ),
    Fault(
        "s3-kill",
        "kill -9 S3Proxy (registries, manifests), restart it 15 s later",
        15,
        _kill_service(lambda w: "s3"),
        _restart_services,
    ),
    Fault(
        "checker-kill",
        "kill -9 the consistency checker, restart it 5 s later",
        5,
        _kill("checker"),
        _restart("checker"),
    ),
    Fault(
        "heartbeats-kill",
        "kill -9 the heartbeat emitter, restart it 20 s later",
        20,
        _kill("heartbeats"),
        _restart("heartbeats"),
        flags=("*",),
    ),
    Fault(
        "region-cut-30s",
        f"{REMOTE} cut off (Kafka and checker links drop every byte) for 30 s",
        30,
        _cut(REMOTE),
        _heal_network,
        flags=(REMOTE,),
    ),
    Fault(
        "asymmetric-cut",
        f"{REMOTE} hears nothing from Kafka (its requests still arrive) for 30 s",
        30,
        _cut_kafka_downstream(REMOTE),
        _heal_network,
        flags=(REMOTE,),
    ),
    Fault(
        "latency-spike",
        f"{FAR} link: +400 ms one way (+-200 ms jitter) for 30 s",
        30,
        _spike(FAR, 400, 200),
        _heal_network,
    ),
    Fault(
        "clock-skew",
        f"{REMOTE} worker restarted with its clock {SKEW_SECONDS:+.0f} s off, for 30 s",
        30,
        _restart(f"worker:{REMOTE}", {"REPLICATOR_WORKER__CLOCK_OFFSET_SECONDS": "-120"}),
        _restart(f"worker:{REMOTE}"),
    ),
    Fault(
        "region-data-loss",
        f"{REMOTE} Redis loses all its data (FLUSHALL); the worker replays it "
        "(`on_data_loss: replay`), then `replicator region rebuild` runs on the live region",
        45,
        _flush(REMOTE),
        _rebuild(REMOTE),
        # No flag required: the worker's replay makes the region whole within seconds, below
        # its staleness bound; its `region_data_lost` log and metric show it. A VIOLATED is
        # right only if the replay outlasts the bound. `on_data_loss: alert`, where the
        # checker must flag, is tested in tests/integration/test_region_lifecycle.py.
        may_flag=(REMOTE,),
    ),
    Fault(
        "hostile-records",
        "garbage, truncated, forged heartbeat, oversized (4 MiB) and wide (5,000 fields)",
        20,
        _hostile,
        _nothing,
        hostile=True,
    ),
    Fault(
        "region-cut-5min",
        f"{FAR} cut off for 5 min",
        300,
        _cut(FAR),
        _heal_network,
        flags=(FAR,),
        full_only=True,
    ),
)

CI_SUBSET = ("worker-kill", "region-cut-30s", "hostile-records")


def by_name(name: str) -> Fault:
    for fault in FAULTS:
        if fault.name == name:
            return fault
    raise KeyError(f"unknown fault {name!r}; known: {', '.join(f.name for f in FAULTS)}")
