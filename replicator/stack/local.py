"""``LocalStack``: Kafka, S3Proxy and one Redis per region as background processes.

Everything lives under ``topology.stack.state_dir`` (relative to the current directory):
jars, config files, pid files, logs and data. ``up`` and ``down`` are idempotent and hold a
file lock, so two of them never interleave.
"""

from __future__ import annotations

import fcntl
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from replicator.config import Topology
from replicator.errors import StackError
from replicator.stack import processes
from replicator.stack.artifacts import ensure_artifacts, find_maven_dir, jars_ready
from replicator.stack.kafka_broker import KafkaBroker
from replicator.stack.prereqs import check_java_version, ensure_ports_free, require_tools
from replicator.stack.prometheus import PrometheusServer
from replicator.stack.redis_server import RedisServer
from replicator.stack.s3_server import S3Proxy
from replicator.stack.service import Service

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]


@dataclass
class UpResult:
    started: list[str] = field(default_factory=list)
    """Labels of the services this call started."""
    actions: list[str] = field(default_factory=list)
    """Other changes made, such as buckets created."""
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.started or self.actions)


class LocalStack:
    """The local stack described by a topology. Construct it, then ``up``/``down``/``status``."""

    def __init__(
        self,
        topology: Topology,
        *,
        progress: Progress | None = None,
        cwd: Path | None = None,
        grace_seconds: float = 30.0,
        prometheus: bool = False,
    ) -> None:
        self.topology = topology
        self.state_dir = ((cwd or Path.cwd()) / topology.stack.state_dir).resolve()
        self.grace_seconds = grace_seconds
        self._progress = progress or (lambda message: logger.info("%s", message))
        self.brokers = [
            KafkaBroker(topology, self.state_dir, node)
            for node in range(1, topology.stack.kafka_brokers + 1)
        ]
        self.kafka = self.brokers[0]
        self.s3 = S3Proxy(topology, self.state_dir)
        self.redis = {
            region: RedisServer(topology, region, self.state_dir) for region in topology.regions
        }
        self.prometheus = PrometheusServer(topology, self.state_dir)
        self.services: list[Service] = [*self.brokers, self.s3, *self.redis.values()]
        """What ``up`` starts and ``status`` requires: Prometheus only when asked for."""
        if prometheus:
            self.services.append(self.prometheus)
        self.known: list[Service] = [*self.services]
        """What ``down`` stops: also a Prometheus that another command started."""
        if not prometheus:
            self.known.append(self.prometheus)

    # up ----------------------------------------------------------------------------------
    def up(self) -> UpResult:
        """Start whatever is not running, wait until every service answers, create buckets."""
        began = time.monotonic()
        result = UpResult()
        with self._lock():
            running = {s.key: s.pid() for s in self.services}
            to_start = [s for s in self.services if running[s.key] is None]
            try:
                if to_start:
                    self._start(to_start, result)
                # Deadlines count from here, not from before a slow first Maven download.
                self._wait_healthy(self.services, time.monotonic(), announce=bool(to_start))
            except BaseException:
                self._stop_started(to_start)  # a failed up leaves things as they were
                raise
            for service in self.services:
                result.actions.extend(service.after_healthy())
        result.seconds = time.monotonic() - began
        if result.changed:
            for action in result.actions:
                self._progress(action)
            self._progress(f"stack up in {result.seconds:.1f} s: {self._summary()}")
        else:
            self._progress(f"stack already running, nothing to do: {self._summary()}")
        return result

    def _start(self, services: list[Service], result: UpResult) -> None:
        maven_dir = find_maven_dir()
        artifacts = {s.artifact for s in services if s.artifact}
        missing_jars = [
            a for a in artifacts if not jars_ready(self._jars_dir(a), maven_dir / a / "pom.xml")
        ]
        tools = require_tools([s.tool for s in services] + (["mvn"] if missing_jars else []))
        if "java" in tools:
            check_java_version(tools["java"])
        ensure_ports_free(port for s in services for port in s.ports)
        jars: dict[str, Path] = {}
        for artifact in sorted(artifacts):
            if artifact in missing_jars:
                self._progress(f"resolving {artifact} jars with Maven (first run only)")
            jars[artifact] = ensure_artifacts(artifact, self.state_dir, tools.get("mvn"), maven_dir)
        for service in services:
            pid, notes = service.start(tools, jars.get(service.artifact or ""))
            for note in notes:
                self._progress(note)
            result.started.append(service.label)
            self._progress(f"started {service.label} (pid {pid}), logs in {service.workdir}")

    def _wait_healthy(self, services: list[Service], began: float, *, announce: bool) -> None:
        pending = list(services)
        if announce:
            self._progress("waiting for " + ", ".join(s.label for s in pending) + " to answer")
        while pending:
            for service in list(pending):
                if service.probe():
                    pending.remove(service)
                    if announce:
                        self._progress(
                            f"{service.label} ready after {time.monotonic() - began:.1f} s"
                        )
                    continue
                pid = service.pid()
                if pid is None:
                    raise StackError(
                        f"{service.label} exited during start-up\n{service.failure_report()}"
                    )
                if time.monotonic() - began > service.startup_timeout:
                    raise StackError(
                        f"{service.label} did not answer within {service.startup_timeout:.0f} s"
                        f"\n{service.failure_report()}"
                    )
            if pending:
                time.sleep(0.2)

    def _stop_started(self, services: list[Service]) -> None:
        live = [(s, pid) for s in services if (pid := s.pid()) is not None]
        if not live:
            return
        self._progress("start-up failed: stopping " + ", ".join(s.label for s, _ in live))
        processes.terminate([pid for _, pid in live], grace_seconds=self.grace_seconds)
        for service, _ in live:
            service.pid_file.unlink(missing_ok=True)

    # down --------------------------------------------------------------------------------
    def down(self) -> list[str]:
        """Stop every service this stack started (SIGTERM, SIGKILL after the grace period)."""
        if not self.state_dir.exists():
            self._progress("nothing to stop: the stack is not running")
            return []
        with self._lock():
            live = [(s, pid) for s in self.known if (pid := s.pid()) is not None]
            if not live:
                self._progress("nothing to stop: the stack is not running")
                return []
            self._progress("stopping " + ", ".join(f"{s.label} (pid {pid})" for s, pid in live))
            killed = processes.terminate([pid for _, pid in live], grace_seconds=self.grace_seconds)
            for service, _ in live:
                service.pid_file.unlink(missing_ok=True)
        if killed:
            self._progress(f"killed after {self.grace_seconds:.0f} s: pids {killed}")
        self._progress("stack stopped")
        return [service.label for service, _ in live]

    # status ------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Health of every service, with pids, ports and log locations (no secrets)."""

        def one(service: Service) -> dict[str, Any]:
            return {
                "ok": service.probe(),
                "pid": service.pid(),
                **service.describe(),
                "dir": str(service.workdir),
            }

        kafka, s3 = one(self.kafka), one(self.s3)
        if len(self.brokers) > 1:
            kafka["brokers"] = [one(broker) for broker in self.brokers]
            kafka["ok"] = all(broker["ok"] for broker in kafka["brokers"])
            kafka["bootstrap_servers"] = self.topology.kafka.bootstrap_servers
        regions = {region: {"redis": one(r)} for region, r in self.redis.items()}
        ok = kafka["ok"] and s3["ok"] and all(r["redis"]["ok"] for r in regions.values())
        report: dict[str, Any] = {
            "ok": ok,
            "state_dir": str(self.state_dir),
            "kafka": kafka,
            "s3": s3,
            "regions": regions,
        }
        if self.prometheus in self.services or self.prometheus.pid() is not None:
            report["prometheus"] = one(self.prometheus)
            report["ok"] = ok and report["prometheus"]["ok"]
        return report

    def pids(self) -> dict[str, int]:
        """Pids of the running services, by service key."""
        return {s.key: pid for s in self.known if (pid := s.pid()) is not None}

    # helpers -----------------------------------------------------------------------------
    def _jars_dir(self, artifact: str) -> Path:
        return self.state_dir / "jars" / artifact

    def _summary(self) -> str:
        parts = [
            f"kafka {self.topology.kafka.bootstrap_servers}",
            f"s3 {self.s3.location.endpoint_url}",
        ]
        parts += [f"redis {region} :{r.endpoint.port}" for region, r in self.redis.items()]
        return ", ".join(parts)

    @contextmanager
    def _lock(self) -> Iterator[None]:
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with (self.state_dir / "stack.lock").open("w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
