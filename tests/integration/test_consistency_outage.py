"""The checker on the real stack when sources do not answer (issue 10, failures 3 and 4):
Kafka at a closed port (the shared broker is never stopped) and one region whose Redis
endpoint accepts connections and never answers (a cut without RST). ``check --once`` must
end with exit 3 and a JSON report that measured the healthy regions."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import free_port

from consistency.adapters.shared import connect
from replicator.core.keys import TOPIC_FIELD_PREFIX, emission_key

ROOT = Path(__file__).resolve().parents[2]
PRIMARY, CUT = "us-east-1", "ap-southeast-1"


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A listener that completes the TCP handshake (the kernel does) and never replies."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


@pytest.fixture
def project(topology: Any) -> Iterator[str]:
    """A project of our own whose emitter 'ran' (its emission record exists at the primary)."""
    name = f"chk_blind_{uuid.uuid4().hex[:8]}"
    endpoint = topology.region(PRIMARY).redis
    client = connect(endpoint, endpoint.writer, timeout=5)
    key = emission_key(name)
    now = 1_800_000_000_000_000_000
    client.hset(
        key,
        mapping={
            "sequence": 7,
            "emitted_ns": now,
            "interval_ns": 1_000_000_000,
            f"{TOPIC_FIELD_PREFIX}feast.{name}.v": f"1:{now}",
        },
    )
    try:
        yield name
    finally:
        client.delete(key)
        client.close()


def test_kafka_down_and_a_silent_region_give_exit_3_with_a_report(
    topology: Any, config_file: Path, project: str, silent_port: int
) -> None:
    env = {
        **os.environ,
        "REPLICATOR_PROJECT": project,
        "REPLICATOR_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "REPLICATOR_REGIONS__AP_SOUTHEAST_1__REDIS__PORT": str(silent_port),
        "CONSISTENCY_SCHEDULE__READ_TIMEOUT_SECONDS": "1",
    }
    command = ["check", "--once", "--json", "--divergence", "none"]
    done = subprocess.run(
        [sys.executable, "-m", "consistency.cli", "--topology", str(config_file), *command],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 3, done.stderr
    report = json.loads(done.stdout)
    regions = report["regions"]
    assert "no answer within 1 s" in " ".join(regions[CUT]["errors"])
    assert regions[CUT]["staleness_seconds"] == "unmeasurable"
    assert regions[CUT]["status"] == "violated"
    for name in (PRIMARY, "eu-west-1"):
        assert isinstance(regions[name]["staleness_seconds"], float)  # measured from Redis
        assert regions[name]["status"] == "unknown"  # Kafka did not answer
        assert any(e.startswith("kafka:") for e in regions[name]["errors"])
