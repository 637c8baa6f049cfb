"""The security_cost benchmark compares two stacks that differ in their connections only."""

from __future__ import annotations

from pathlib import Path

import yaml

from benchmarks.security_cost import (
    PLAINTEXT_PORT_OFFSET,
    PLAINTEXT_TOPOLOGY,
    SECURE_TOPOLOGY,
    beside,
)
from replicator.config import load_topology, read_topology_document


def test_the_plaintext_run_is_the_insecure_twin_on_ports_of_its_own(tmp_path: Path) -> None:
    path = tmp_path / "plaintext.yaml"
    moved = beside(read_topology_document(PLAINTEXT_TOPOLOGY), PLAINTEXT_PORT_OFFSET)
    path.write_text(yaml.safe_dump(moved), encoding="utf-8")
    plaintext, secure = load_topology(path), load_topology(SECURE_TOPOLOGY)

    assert plaintext.kafka.security.protocol == "PLAINTEXT"
    assert secure.kafka.security.protocol == "SASL_SSL"
    assert plaintext.kafka.partitions == secure.kafka.partitions
    assert plaintext.worker == secure.worker
    ports = {secure.kafka.bootstrap_servers, secure.stack.kafka_controller_port}
    assert plaintext.kafka.bootstrap_servers not in ports
    assert plaintext.stack.kafka_controller_port not in ports
    assert plaintext.stack.s3_port != secure.stack.s3_port
    assert plaintext.stack.state_dir != secure.stack.state_dir
    for name, region in plaintext.regions.items():
        other = secure.region(name)
        assert region.feature_views == other.feature_views
        assert not region.redis.tls.enabled and other.redis.tls.enabled
        assert region.redis.port == other.redis.port + PLAINTEXT_PORT_OFFSET
        assert region.s3.endpoint_url == f"http://127.0.0.1:{plaintext.stack.s3_port}"
