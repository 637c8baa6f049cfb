"""The suite's own world: its local stack, its Toxiproxy WAN, and the product's processes.

``ChaosCluster`` starts and stops the stack of ``infra/chaos/topology.yaml`` (3 Kafka
brokers, S3Proxy, one Redis per region, state in ``.stack-chaos``; never the shared stack)
and the Toxiproxy server with every WAN link. ``Deployment`` runs one project on it the way
an operator would: ``replicator worker`` per region, ``replicator heartbeats`` and
``consistency serve``, each a process the nemesis may kill, pause or restart.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from chaos.history import History, Sample
from chaos.toxiproxy import Toxiproxy, find_server
from chaos.wan import Wan
from replicator.config import Topology, load_topology

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
TOPOLOGY = ROOT / "infra" / "chaos" / "topology.yaml"
TOXIPROXY_API_PORT = 28474
CHECKER_PORT = 29108
STALENESS_BOUND_S = 5.0
STALENESS_BOUND_FAR_S = 10.0
"""ap-southeast-1, the farthest region, as in infra/consistency.yaml."""
CHECK_INTERVAL_S = 2.0
VIOLATE_AFTER = 2
RECOVER_AFTER = 3


def staleness_bound(region: str) -> float:
    """The checker's staleness bound for ``region`` in the suite's settings, seconds."""
    return STALENESS_BOUND_FAR_S if region == "ap-southeast-1" else STALENESS_BOUND_S


def toxiproxy_candidates() -> list[Path]:
    return [ROOT / ".tools" / "toxiproxy-server", Path.home() / "go" / "bin" / "server"]


class ChaosCluster:
    """The stack and the WAN. ``up()`` starts what is not running; ``down()`` stops both."""

    def __init__(self, topology_path: Path = TOPOLOGY) -> None:
        from replicator.stack import LocalStack

        self.topology_path = topology_path
        self.topology: Topology = load_topology(topology_path)
        self.stack = LocalStack(self.topology, cwd=ROOT, progress=lambda m: log.info("%s", m))
        self.toxiproxy = Toxiproxy(TOXIPROXY_API_PORT)
        self.wan = Wan(self.topology, self.toxiproxy)

    def up(self) -> None:
        self.stack.up()
        state = ROOT / self.topology.stack.state_dir
        self.toxiproxy.start(find_server(toxiproxy_candidates()), state / "toxiproxy.log")
        self.wan.create()

    def down(self) -> None:
        self.toxiproxy.stop()
        self.stack.down()

    def heal_network(self) -> None:
        """Every proxy back, with its normal WAN latency only."""
        self.wan.create()

    def service(self, key: str) -> Any:
        return next(s for s in self.stack.services if s.key == key)

    def restart_stopped(self) -> None:
        """Start the stack's services that are not running and wait until they answer."""
        self.stack.up()


class Deployment:
    """One project on the cluster: its workers, heartbeat emitter and checker."""

    def __init__(self, cluster: ChaosCluster, topology_path: Path, workdir: Path) -> None:
        self.cluster = cluster
        self.topology_path = topology_path
        self.topology = load_topology(topology_path)
        self.workdir = workdir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.extra_env: dict[str, dict[str, str]] = {}
        self.checker_config = workdir / "consistency.yaml"
        self._write_checker_config()

    # processes ----------------------------------------------------------------------------
    def components(self) -> list[str]:
        return [f"worker:{r}" for r in self.topology.regions] + ["heartbeats", "checker"]

    def start_all(self) -> None:
        for name in self.components():
            self.start(name)

    def start(self, name: str) -> None:
        command, env = self._command(name)
        env = {**os.environ, **env, **self.extra_env.get(name, {})}
        log_file = (self.workdir / f"{name.replace(':', '-')}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            command, stdout=log_file, stderr=log_file, env=env, cwd=ROOT, start_new_session=True
        )
        log_file.close()

    def signal(self, name: str, sig: signal.Signals) -> None:
        proc = self.processes[name]
        if proc.poll() is None:
            os.kill(proc.pid, sig)
        if sig == signal.SIGKILL:
            proc.wait(10)

    def exited(self) -> dict[str, int]:
        """Components whose process has ended, with its exit status (-N: killed by signal N)."""
        return {n: rc for n, p in self.processes.items() if (rc := p.poll()) is not None}

    def stop_all(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.terminate()
        for proc in self.processes.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def _command(self, name: str) -> tuple[list[str], dict[str, str]]:
        replicator = [sys.executable, "-m", "replicator.cli", "--config", str(self.topology_path)]
        if name.startswith("worker:"):
            region = name.split(":", 1)[1]
            return [*replicator, "--log-format", "json", "worker", "--region", region], {}
        if name == "heartbeats":
            return [*replicator, "heartbeats", "--interval", "1"], {}
        if name == "checker":
            command = [
                sys.executable,
                "-m",
                "consistency.cli",
                "--config",
                str(self.checker_config),
                "--topology",
                str(self.topology_path),
                "--log-format",
                "json",
                "serve",
                "--port",
                str(CHECKER_PORT),
            ]
            return command, self.cluster.wan.checker_env()
        raise KeyError(name)

    def _write_checker_config(self) -> None:
        far = {"ap-southeast-1": {"max_staleness_seconds": STALENESS_BOUND_FAR_S}}
        settings = {
            "consistency": {
                "bounds": {
                    "max_staleness_seconds": STALENESS_BOUND_S,
                    "max_divergence_ratio": 0.001,
                    "max_version_skew_seconds": None,
                    "regions": far,
                },
                "hysteresis": {
                    "violate_after": VIOLATE_AFTER,
                    "recover_after": RECOVER_AFTER,
                    "recover_ratio": 0.8,
                },
                "schedule": {
                    "staleness_seconds": CHECK_INTERVAL_S,
                    "sampled_seconds": 10,
                    "full_cron": None,
                },
                "webhook": {"url": None},
                "server": {"host": "127.0.0.1", "port": CHECKER_PORT},
            }
        }
        self.checker_config.write_text(yaml.safe_dump(settings), encoding="utf-8")


class StatusPoller:
    """Reads the checker's ``/api/status`` every ``interval`` s into the history."""

    def __init__(self, history: History, interval: float = 0.5) -> None:
        self.history = history
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="status-poller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _loop(self) -> None:
        url = f"http://127.0.0.1:{CHECKER_PORT}/api/status"
        while not self._stop.is_set():
            at = self.history.now()
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    body = json.loads(response.read())
                regions = body.get("regions") or {}
                self.history.add_sample(
                    Sample(
                        at,
                        {r: str(v.get("status")) for r, v in regions.items()},
                        {r: v.get("staleness_seconds") for r, v in regions.items()},
                    )
                )
            except (urllib.error.URLError, OSError, ValueError) as exc:
                self.history.add_sample(Sample(at, None, error=f"{type(exc).__name__}: {exc}"))
            self._stop.wait(self.interval)


def wait_until(condition: Any, timeout: float, step: float = 0.5) -> float | None:
    """Seconds until ``condition()`` was true, or None after ``timeout``."""
    began = time.monotonic()
    while True:
        if condition():
            return time.monotonic() - began
        if time.monotonic() - began > timeout:
            return None
        time.sleep(step)
