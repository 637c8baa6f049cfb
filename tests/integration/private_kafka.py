"""A Kafka broker of its own (one KRaft node, started through the local stack's code with the
stack's jars and settings) on free ports, for tests that stop and restart Kafka.

The shared broker is never touched: the test project's topology is pointed at this one.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml
from harness import ROOT, ReplicatedProject, free_port, wait_for

from replicator.config import load_topology
from replicator.stack import processes
from replicator.stack.artifacts import ensure_artifacts, find_maven_dir
from replicator.stack.kafka_broker import KafkaBroker
from replicator.stack.pki import StackPki
from replicator.stack.prereqs import require_tools

GRACE_SECONDS = 30.0
"""How long a stopping broker may take to shut down cleanly before it is killed."""
STARTUP_TIMEOUT = 180.0
"""How long a starting broker may take to answer (a condition waited for, not a sleep)."""


class PrivateKafka:
    """``project``'s Kafka served by a broker in ``state_dir``; ``stop()`` ends it."""

    def __init__(self, project: ReplicatedProject, state_dir: Path) -> None:
        shared = project.topology.stack.state_dir
        raw = yaml.safe_load(project.topology_path.read_text())
        raw["kafka"]["bootstrap_servers"] = f"127.0.0.1:{free_port()}"
        raw["stack"]["kafka_controller_port"] = free_port()
        project.topology_path.write_text(yaml.safe_dump(raw))
        project.topology = load_topology(project.topology_path)
        # A secure broker (the default topology) serves the shared stack's certificates, the
        # ones the topology's CA file trusts; its users and ACLs are set once it answers.
        self.broker = KafkaBroker(project.topology, state_dir, pki=StackPki(ROOT / shared / "tls"))
        self.bootstrap_servers = self.broker.bootstrap_servers
        self._tools = require_tools(["java"])
        self._jars = ensure_artifacts(
            "kafka", ROOT / shared, shutil.which("mvn"), find_maven_dir(ROOT)
        )
        self.pid = 0
        self.start()
        self.broker.after_healthy()

    def start(self) -> None:
        self.pid, _ = self.broker.start(self._tools, self._jars)
        # A secure broker answers only once its TLS and SCRAM are up, which a busy machine
        # (CI's cores under stress) can take well over the stack's own 90 s to reach.
        wait_for(self.broker.probe, STARTUP_TIMEOUT, f"kafka on {self.bootstrap_servers}")

    def stop(self) -> None:
        """A clean shutdown (SIGTERM): the broker hands its group coordinators back."""
        if self.pid:
            processes.terminate([self.pid], grace_seconds=GRACE_SECONDS)
            self.broker.pid_file.unlink(missing_ok=True)
            self.pid = 0

    def restart(self) -> None:
        self.stop()
        self.start()
