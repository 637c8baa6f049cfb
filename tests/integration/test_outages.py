"""Outages end in one clear line and a documented exit code, never a traceback or a success.

S3 is "down" by pointing the topology's S3 endpoint (an environment override, as an operator
would) at a port nobody listens on: every connection is refused.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer
from harness import ReplicatedProject, free_port, wait_for

from replicator import cli
from replicator.adapters.kafka_config import client_config
from replicator.adapters.kafka_publisher import KafkaPublisher
from replicator.adapters.redis_store import RegionStore
from replicator.config import Topology
from replicator.core import wire
from replicator.core.keys import applied_heartbeat_key
from replicator.core.records import Heartbeat, Row, RowBatch


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
    primary = client_config(topology, "primary")
    with KafkaPublisher(primary, client_id="test-errors") as publisher:
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


# Forged heartbeats -----------------------------------------------------------------------
FORGED = 2**63 - 1


def staleness(checker: Any, region: str) -> float | None:
    return checker.measure_staleness().regions[region].staleness_seconds


def dead_lettered(topology: Topology, source_topic: str, reason: str) -> bool:
    consumer = Consumer(
        {
            **client_config(topology, "admin"),
            "group.id": f"dlq-reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topology.kafka.dead_letter_topic])
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            headers = {k: (v or b"").decode() for k, v in message.headers() or []}
            if headers.get(wire.H_SOURCE, "").startswith(source_topic + ":"):
                return headers[wire.H_REASON] == reason
    finally:
        consumer.close()
    return False


def test_a_forged_heartbeat_cannot_hide_a_stopped_worker(project: ReplicatedProject) -> None:
    from consistency.config import ConsistencySettings
    from consistency.wiring import build_checker, close_checker

    topology = project.topology
    region = topology.replica_regions[0]
    topic = topology.topic_for("forged_view")
    # The forger holds the primary's credentials: the broker refuses anyone else's heartbeat
    # (test_security.py); this test is about what reaches the regions.
    primary = client_config(topology, "primary")
    with KafkaPublisher(primary, client_id="test-forger") as forger:
        forger.ensure_topics([topic], topology.kafka.partitions, 1)
        project.start_heartbeats(0.2, "--relist", "1")
        worker = project.start_worker_process(region)
        checker = build_checker(topology, ConsistencySettings())
        try:
            wait_for(
                lambda: (s := staleness(checker, region)) is not None and s < 1,
                60,
                "heartbeats to reach the region",
            )
            headers, payload = wire.encode_heartbeat(Heartbeat(FORGED, FORGED))
            forger.send(topic, 0, payload, headers)
            forger.flush()
            assert dead_lettered(topology, topic, "implausible_heartbeat")
            stored = project.admin(region).hget(applied_heartbeat_key(topic, 0), "emitted_ns")
            assert stored is not None and int(stored) < FORGED

            worker.send_signal(signal.SIGKILL)
            worker.wait(20)
            wait_for(
                lambda: (s := staleness(checker, region)) is not None and s >= 2,
                30,
                "staleness of the stopped worker's region to grow",
            )
        finally:
            close_checker(checker)


def test_a_forged_stamp_already_stored_gives_way_to_the_next_real_heartbeat(
    topology: Topology,
) -> None:
    region = topology.replica_regions[0]
    config = topology.region(region).redis
    topic, now = f"feast.t{uuid.uuid4().hex[:10]}.v", time.time_ns()
    with RegionStore(config, config.writer) as store:
        store.record_heartbeat(topic, 0, Heartbeat(FORGED, FORGED), now)
        store.record_heartbeat(topic, 0, Heartbeat(1, now - 10**9), now)  # a late old one
        store.record_heartbeat(
            topic, 0, Heartbeat(2, now), now, plausible_until_ns=now + 60 * 10**9
        )
        store.record_heartbeat(  # an older one replayed late never moves it back
            topic, 0, Heartbeat(1, now - 10**9), now, plausible_until_ns=now + 60 * 10**9
        )
        client = store.client
        try:
            assert int(client.hget(applied_heartbeat_key(topic, 0), "emitted_ns")) == now
        finally:
            client.delete(applied_heartbeat_key(topic, 0))
