"""The security_cost benchmark compares two stacks that differ in their connections only."""

from __future__ import annotations

from pathlib import Path

import yaml

from benchmarks.security_cost import PLAINTEXT_TOPOLOGY, SECURE_TOPOLOGY, secure_like
from replicator.config import load_topology


def test_the_secure_run_has_the_plaintext_workload_and_absolute_tls_files(tmp_path: Path) -> None:
    plain = yaml.safe_load(PLAINTEXT_TOPOLOGY.read_text(encoding="utf-8"))
    secure = yaml.safe_load(SECURE_TOPOLOGY.read_text(encoding="utf-8"))
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(secure_like(secure, plain)), encoding="utf-8")

    topology, plaintext = load_topology(path), load_topology(PLAINTEXT_TOPOLOGY)

    assert topology.kafka.security.protocol == "SASL_SSL"
    assert topology.kafka.partitions == plaintext.kafka.partitions
    assert topology.worker == plaintext.worker
    for region, config in topology.regions.items():
        assert config.feature_views == plaintext.region(region).feature_views
        assert config.redis.tls.enabled
        assert config.redis.tls.ca_file is not None and config.redis.tls.ca_file.is_absolute()
    assert topology.kafka.security.tls.ca_file is not None
    assert topology.kafka.security.tls.ca_file.is_absolute()
