"""The regional read plan carries each region's Redis TLS into the generated Feast config.

Reading over TLS through that config, on the secure stack's Redis, is tested in
``tests/integration/test_security.py``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

import replicator.read_plan as read_plan_module
from replicator.config import Topology, load_topology, read_topology_document
from replicator.core.feast_settings import FeastSettings
from replicator.errors import ConfigError
from replicator.read_health import reader_client
from replicator.read_plan import ReadPlan
from replicator.regional_config import feature_store_yaml

ROOT = Path(__file__).resolve().parents[2]
SECURE = ROOT / "infra" / "topology.yaml"
INSECURE = ROOT / "infra" / "insecure" / "topology.yaml"


@pytest.fixture(autouse=True)
def no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("REPLICATOR_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(ROOT)


def _plan(topology: Topology, region: str) -> tuple[ReadPlan, dict[str, Any]]:
    """The plan as the inference host reads it back from the generated feature_store.yaml."""
    document = yaml.safe_load(feature_store_yaml(topology, region, FeastSettings()))
    plan = document["online_store"]["plan"]
    return ReadPlan.model_validate(plan), plan


def _with_redis_tls(tmp_path: Path, **tls: Any) -> Topology:
    data = read_topology_document(SECURE)
    data["regions"]["eu-west-1"]["redis"]["tls"] = {"enabled": True, **tls}
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_topology(path)


def test_every_region_of_the_generated_plan_reads_over_tls_with_the_ca_by_absolute_path() -> None:
    plan, document = _plan(load_topology(SECURE), "ap-southeast-1")
    ca = str(ROOT / ".stack" / "tls" / "ca.pem")  # relative to the topology file's directory
    for region in [*document["regions"], document["primary"]]:
        assert region["tls"]["enabled"] is True, region["name"]
        assert region["tls"]["ca_file"] == ca
        assert region["tls"]["check_hostname"] is True
    local = reader_client(plan.regions[0], plan.reads)
    assert local.connection_pool.connection_class.__name__ == "SSLConnection"
    kwargs = local.connection_pool.connection_kwargs
    assert (kwargs["ssl_ca_certs"], kwargs["ssl_cert_reqs"], kwargs["ssl_check_hostname"]) == (
        ca,
        "required",
        True,
    )
    assert (kwargs["host"], kwargs["port"], kwargs["username"]) == ("127.0.0.1", 16381, "reader")


def test_client_certificate_key_and_hostname_check_reach_the_reader(tmp_path: Path) -> None:
    topology = _with_redis_tls(
        tmp_path,
        ca_file="tls/ca.pem",
        cert_file="tls/client.pem",
        key_file="tls/client-key.pem",
        check_hostname=False,
    )
    plan, _ = _plan(topology, "eu-west-1")
    kwargs = reader_client(plan.regions[0], plan.reads).connection_pool.connection_kwargs
    assert kwargs["ssl_certfile"] == str(tmp_path / "tls" / "client.pem")
    assert kwargs["ssl_keyfile"] == str(tmp_path / "tls" / "client-key.pem")
    assert kwargs["ssl_check_hostname"] is False


def test_a_plaintext_region_stays_plaintext() -> None:
    plan, _ = _plan(load_topology(INSECURE), "eu-west-1")
    assert not any(r.tls.enabled for r in [*plan.regions, plan.primary])
    client = reader_client(plan.regions[0], plan.reads)
    assert client.connection_pool.connection_class.__name__ == "Connection"


def test_a_tls_setting_the_plan_cannot_carry_is_refused_not_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if readers could not check host names: a plan without the check would be weaker
    # than the topology, so generating it must fail, naming the setting.
    carried = read_plan_module.CARRIED_TLS_FIELDS - {"check_hostname"}
    monkeypatch.setattr(read_plan_module, "CARRIED_TLS_FIELDS", carried)
    topology = _with_redis_tls(tmp_path, ca_file="ca.pem", check_hostname=False)
    with pytest.raises(ConfigError, match=r"regions\.eu-west-1\.redis\.tls: check_hostname"):
        feature_store_yaml(topology, "eu-west-1", FeastSettings())
    feature_store_yaml(_with_redis_tls(tmp_path, ca_file="ca.pem"), "eu-west-1", FeastSettings())


def test_feasts_own_connection_string_carries_the_same_tls() -> None:
    from replicator.feast_reader import RegionalOnlineStoreConfig

    document = yaml.safe_load(
        feature_store_yaml(load_topology(SECURE), "eu-west-1", FeastSettings())
    )
    config = RegionalOnlineStoreConfig(**document["online_store"])
    options = dict(part.split("=", 1) for part in config.connection_string.split(",")[1:])
    assert options["ssl"] == "true"
    assert options["ssl_ca_certs"] == str(ROOT / ".stack" / "tls" / "ca.pem")
    assert options["username"] == "reader"
