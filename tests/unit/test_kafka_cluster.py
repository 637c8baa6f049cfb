"""The local stack's Kafka: one node by default, a 3-node cluster that survives a broker loss."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from replicator.config import load_topology
from replicator.errors import ConfigError
from replicator.stack.kafka_broker import KafkaBroker, parse_local_bootstrap

ROOT = Path(__file__).resolve().parents[2]


def test_default_topology_runs_one_broker_with_factor_one(tmp_path: Path) -> None:
    broker = KafkaBroker(load_topology(ROOT / "infra" / "topology.yaml"), tmp_path)
    props = broker.server_properties()
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["offsets.topic.replication.factor"] == 1
    assert props["min.insync.replicas"] == 1


def test_chaos_topology_runs_three_brokers_that_lose_no_acknowledged_write(
    tmp_path: Path,
) -> None:
    topology = load_topology(ROOT / "infra" / "chaos" / "topology.yaml")
    brokers = [KafkaBroker(topology, tmp_path, node) for node in (1, 2, 3)]
    props = brokers[1].server_properties()
    assert props["node.id"] == 2
    assert props["controller.quorum.voters"].count("@") == 3
    assert props["default.replication.factor"] == 3
    assert props["min.insync.replicas"] == 2
    assert props["unclean.leader.election.enable"] == "false"
    # A region's clients follow the advertised address: its WAN proxy, not the broker.
    assert "EU_WEST_1://127.0.0.1:29132" in str(props["advertised.listeners"])
    assert "EU_WEST_1://127.0.0.1:29122" in str(props["listeners"])
    assert len({b.workdir for b in brokers}) == 3
    assert len({b.cluster_id_file for b in brokers}) == 1


def test_bootstrap_must_list_one_loopback_port_per_broker() -> None:
    assert parse_local_bootstrap("127.0.0.1:1,127.0.0.1:2", 2) == [1, 2]
    with pytest.raises(ConfigError, match="2 broker"):
        parse_local_bootstrap("127.0.0.1:1", 2)


def test_a_secure_broker_that_listens_but_never_answers_says_how_to_start_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("REPLICATOR_KAFKA__BOOTSTRAP_SERVERS", f"127.0.0.1:{port}")
    broker = KafkaBroker(load_topology(ROOT / "infra" / "topology.yaml"), tmp_path)
    assert "make clean" not in broker.failure_report()  # nothing listens: it never started
    with socket.create_server(("127.0.0.1", port)):  # listens, answers no SASL handshake
        report = broker.failure_report()
    assert "refuses the admin's SASL login" in report and "`make clean`" in report
