"""Shared key names have one home, and a renamed topology field is refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from replicator.config import load_topology
from replicator.core import keys
from replicator.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_key_layouts() -> None:
    assert keys.emission_key("proj") == "_replicator:emitted:proj"
    assert keys.applied_heartbeat_key("feast.proj.v", 2) == "_replicator:hb:feast.proj.v:2"
    assert keys.row_versions_key("v", 3) == b"_replicator:v:v:3"
    assert keys.worker_stats_key("eu-west-1") == "_replicator:worker:eu-west-1"
    assert keys.manifest_key("p") == "feast/p/manifest.json"
    assert keys.registry_version_key("p", "abc") == "feast/p/registry/abc.db"
    assert keys.primary_registry_key("p") == "feast/p/primary/registry.db"


def test_key_formats_are_spelled_only_in_the_keys_module() -> None:
    spellings = ("hb:{", "emitted:{", 'b"v:"', "worker:{", "feast/{")  # code, not docstrings
    offenders = [
        f"{path.relative_to(ROOT)}: {spelling}"
        for path in sorted((ROOT / "replicator").rglob("*.py"))
        if path.name != "keys.py"
        for spelling in spellings
        if spelling in path.read_text(encoding="utf-8")
    ]
    assert offenders == []


def test_the_old_worker_batch_field_is_refused_with_its_new_name(tmp_path: Path) -> None:
    raw = yaml.safe_load((ROOT / "infra" / "topology.yaml").read_text())
    raw["worker"] = {"max_batch_rows": 5000}
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(
        ConfigError,
        match=r"worker\.max_batch_rows was renamed to "
        r"max_records_per_poll",
    ):
        load_topology(path)


def test_the_old_field_is_refused_from_the_environment_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REPLICATOR_WORKER__MAX_BATCH_ROWS", "5000")
    with pytest.raises(ConfigError, match="max_records_per_poll"):
        load_topology(ROOT / "infra" / "topology.yaml")


def test_records_per_poll_reaches_the_worker() -> None:
    from replicator.assembly import worker_options

    topology = load_topology(ROOT / "infra" / "topology.yaml")
    assert worker_options(topology).max_messages == topology.worker.max_records_per_poll == 50
