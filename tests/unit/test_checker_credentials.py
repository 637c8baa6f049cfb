"""The consistency checker's Redis user: read-only, in every topology we ship, and used for
every read the checker makes; ``repair`` alone writes, as the writer."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from consistency import cli, wiring
from consistency.config import ConsistencySettings
from replicator.config import Topology, load_topology
from replicator.errors import ConfigError
from replicator.k8s_values import PLACEHOLDER, k8s_values
from replicator.stack.redis_server import CHECKER_RULES, acl_file, acl_rules

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = [
    ROOT / "infra" / "topology.yaml",
    ROOT / "infra" / "insecure" / "topology.yaml",
    ROOT / "infra" / "chaos" / "topology.yaml",
]


@pytest.fixture(autouse=True)
def no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("REPLICATOR_"):
            monkeypatch.delenv(name)


def without_checker(tmp_path: Path) -> Topology:
    """The default topology as a user's older file would be: no checker users."""
    data = yaml.safe_load(SHIPPED[0].read_text())
    for region in data["regions"].values():
        region["redis"].pop("checker")
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_topology(path)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_topology_gives_each_region_a_checker_user(path: Path) -> None:
    for name, region in load_topology(path).regions.items():
        redis = region.redis
        assert redis.checker is not None, name
        assert redis.checker.username not in {redis.writer.username, redis.reader.username}
        assert acl_rules(redis)[redis.checker.username] == CHECKER_RULES


def test_the_checker_acl_grants_reads_and_the_read_only_script_only() -> None:
    rules = CHECKER_RULES.split()
    assert rules[:2] == ["~*", "-@all"]
    granted = {r for r in rules if r.startswith("+")}
    # No +@write, +@scripting, +eval, +evalsha (a script run that way may write), +@all.
    assert granted == {"+@read", "+@connection", "+evalsha_ro", "+script|load"}
    assert rules.index("-@dangerous") > rules.index("+@read")  # KEYS, DEBUG, ... removed


def test_the_local_stack_creates_the_checker_user_only_when_configured(tmp_path: Path) -> None:
    endpoint = load_topology(SHIPPED[0]).region("eu-west-1").redis
    assert endpoint.checker is not None
    digest = hashlib.sha256(endpoint.checker.password.get_secret_value().encode()).hexdigest()
    assert f"user checker on #{digest} {CHECKER_RULES}\n" in acl_file(endpoint)
    assert endpoint.checker.password.get_secret_value() not in acl_file(endpoint)

    older = without_checker(tmp_path).region("eu-west-1").redis
    assert "checker" not in acl_file(older) and "checker" not in older.users()


def test_a_checker_sharing_another_users_name_is_refused(tmp_path: Path) -> None:
    data = yaml.safe_load(SHIPPED[0].read_text())
    data["regions"]["eu-west-1"]["redis"]["checker"] = {"username": "reader", "password": "x"}
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        load_topology(path)
    assert "regions.eu-west-1.redis" in str(info.value)
    assert "'reader' is already the reader" in str(info.value)


def _login(topology: Topology, region: str) -> Any:
    reader = wiring.region_reader(topology, region, ConsistencySettings())
    client = reader._connect()  # a client, not yet connected
    try:
        return client.connection_pool.connection_kwargs["username"]
    finally:
        client.close()


def test_the_checker_reads_every_region_as_its_checker_user(caplog: Any) -> None:
    topology = load_topology(SHIPPED[0])
    with caplog.at_level(logging.WARNING):
        assert {_login(topology, r) for r in topology.regions} == {"checker"}
    assert not caplog.records


def test_without_a_checker_user_the_checker_reads_as_the_writer_and_says_so(
    tmp_path: Path, caplog: Any
) -> None:
    topology = without_checker(tmp_path)
    with caplog.at_level(logging.WARNING):
        assert _login(topology, "eu-west-1") == topology.region("eu-west-1").redis.writer.username
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert "regions.eu-west-1.redis.checker is not set" in message
    assert "can write" in message and "docs/security.md" in message


def test_repair_writes_as_the_regions_writer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The one writing command: its row applier logs in as the writer, not the checker."""
    from consistency.adapters import shared

    logins: list[str] = []

    class Store:
        def __init__(self, endpoint: Any, user: Any) -> None:
            logins.append(user.username)

        def close(self) -> None:
            pass

    monkeypatch.setattr(shared, "RegionStore", Store)
    monkeypatch.setattr(wiring, "build_checker", lambda topology, settings: object())
    monkeypatch.setattr(wiring, "close_checker", lambda checker: None)
    monkeypatch.setattr("consistency.repair.repair_region", lambda *a, **k: [])
    settings = tmp_path / "consistency.yaml"
    settings.write_text("consistency: {}\n")
    args = ["--config", str(settings), "--topology", str(SHIPPED[0])]
    assert cli.main([*args, "repair", "--region", "eu-west-1"]) == cli.EXIT_OK
    assert logins == [load_topology(SHIPPED[0]).region("eu-west-1").redis.writer.username]


def test_helm_values_carry_the_checker_user_without_its_password(tmp_path: Path) -> None:
    topology = load_topology(SHIPPED[0])
    regions = k8s_values(topology, "us-east-1")["topology"]["regions"]
    assert {r["redis"]["checker"]["password"] for r in regions} == {PLACEHOLDER}
    older = k8s_values(without_checker(tmp_path), "us-east-1")["topology"]["regions"]
    assert {r["redis"]["checker"] for r in older} == {None}
