"""A region's Redis of its own, started through the local stack's code (same config, same ACL
users) on a free port, for tests that lose its data: kill -9, FLUSHALL, restart.

The shared stack's Redis servers are never touched: the test project's topology is pointed at
this one for the chosen region.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import redis
import yaml
from harness import ROOT, ReplicatedProject, free_port, wait_for

from replicator.config import load_topology
from replicator.stack.pki import StackPki
from replicator.stack.redis_server import RedisServer, admin_client


class PrivateRedis:
    """``project``'s ``region`` served by a redis-server in ``state_dir``; ``stop()`` ends it."""

    def __init__(self, project: ReplicatedProject, region: str, state_dir: Path) -> None:
        self.region = region
        self.port = free_port()
        self.serve(project)
        shared_pki = StackPki(ROOT / project.topology.stack.state_dir / "tls")
        self.server = RedisServer(project.topology, region, state_dir, pki=shared_pki)
        self._tools = {"redis-server": shutil.which("redis-server") or "redis-server"}
        self.pid = 0
        self.start()

    def serve(self, project: ReplicatedProject) -> None:
        """Point ``project``'s region at this server (its topology file and ``topology``);
        the ACL users are the same for every project made from the same base topology."""
        raw = yaml.safe_load(project.topology_path.read_text())
        raw["regions"][self.region]["redis"]["port"] = self.port
        project.topology_path.write_text(yaml.safe_dump(raw))
        project.topology = load_topology(project.topology_path)

    @property
    def admin(self) -> redis.Redis:
        return admin_client(self.server.endpoint, timeout=5.0)

    def start(self) -> None:
        self.pid, _ = self.server.start(self._tools, None)
        wait_for(self.server.probe, 20, f"redis-server on port {self.server.endpoint.port}")

    def kill(self) -> None:
        """kill -9: whatever Redis had not persisted is gone."""
        os.kill(self.pid, signal.SIGKILL)
        wait_for(lambda: not self.server.probe(), 10, "redis-server to die")
        self.server.pid_file.unlink(missing_ok=True)

    def without_persistence(self) -> None:
        """No AOF and no RDB snapshots from now on: for data a test throws away."""
        self.admin.config_set("appendonly", "no")
        self.admin.config_set("save", "")

    def aof_holds(self, needle: bytes) -> bool:
        """Whether the append-only file (any part of it) contains ``needle`` yet."""
        return any(needle in p.read_bytes() for p in self.server.workdir.rglob("*.aof"))

    def stop(self) -> None:
        if self.server.probe():
            os.kill(self.pid, signal.SIGTERM)
            wait_for(lambda: not self.server.probe(), 10, "redis-server to stop")
