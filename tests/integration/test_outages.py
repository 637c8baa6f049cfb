"""Outages end in one clear line and a documented exit code, never a traceback or a success.

S3 is "down" by pointing the topology's S3 endpoint (an environment override, as an operator
would) at a port nobody listens on: every connection is refused.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import ReplicatedProject, free_port

from replicator import cli
from replicator.adapters.kafka_publisher import KafkaPublisher
from replicator.config import Topology
from replicator.core import wire
from replicator.core.records import Row, RowBatch


@pytest.fixture
def project(topology: Topology, config_file: Path, tmp_path: Path) -> Iterator[ReplicatedProject]:
    replicated = ReplicatedProject(config_file, tmp_path)
    yield replicated
    replicated.stop()


def s3_down(topology: Topology) -> dict[str, str]:
    """Environment in which every region's S3 endpoint refuses connections."""
    closed = f"http://127.0.0.1:{free_port()}"
    env = dict(os.environ)
    for region in topology.regions:
        name = region.replace("-", "_").upper()
        env[f"REPLICATOR_REGIONS__{name}__S3__ENDPOINT_URL"] = closed
    return env


def replicator(project: ReplicatedProject, env: dict[str, str], *args: str) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "replicator.cli", "--config", str(project.topology_path), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done.returncode, done.stderr


def test_s3_down_is_one_line_and_exit_code_unavailable(project: ReplicatedProject) -> None:
    code, err = replicator(project, s3_down(project.topology), "models", "status", "--name", "m")
    assert code == cli.EXIT_UNAVAILABLE, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("replicator: error: cannot read s3://"), err
    assert "Traceback" not in err


def publish_rows(project: ReplicatedProject, view: str, records: int) -> str:
    topology = project.topology
    topic = topology.topic_for(view)
    with KafkaPublisher(topology.kafka.bootstrap_servers, client_id="test-errors") as publisher:
        publisher.ensure_topics([topic], topology.kafka.partitions, 1)
        for n in range(records):
            row = Row(b"key-%d" % n, b"ts", 1_700_000_000 + n, 0, 0, 0, (b"value",))
            batch = RowBatch(view, (b"\x01\x00\x00\x00",), (row,), "fp-unknown-to-s3")
            headers, payload = wire.encode_rows(batch)
            publisher.send(topic, n % topology.kafka.partitions, payload, headers)
        publisher.flush()
    return topic


def test_rebuild_over_an_s3_outage_fails_naming_what_is_missing(project: ReplicatedProject) -> None:
    topic = publish_rows(project, "card_velocity", records=6)
    region = project.topology.replica_regions[0]

    code, err = replicator(
        project, s3_down(project.topology), "region", "rebuild", region, "--retry-for", "0"
    )

    assert code == cli.EXIT_INCOMPLETE, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"replicator: error: rebuild of {region} is INCOMPLETE"), err
    assert "cannot read s3://" in last
    partitions = project.topology.kafka.partitions
    assert f"{partitions} of {partitions} partitions not replayed" in last
    assert all(f"{topic}[{p}]" in last for p in range(partitions))
    assert "Traceback" not in err

    # The same rebuild with S3 answering completes: the rows are of a schema the region does
    # not know (no registry was synced), which it reports as bad input, not as an S3 error.
    code, err = replicator(project, dict(os.environ), "region", "rebuild", region)
    assert code == cli.EXIT_OK, err
