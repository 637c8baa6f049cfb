"""Security settings: TLS and SASL reach every client; secrets never show."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from replicator.adapters.kafka_config import client_config, describe
from replicator.adapters.redis_store import connect, feast_connection_string
from replicator.adapters.s3 import s3_client
from replicator.config import load_topology, read_topology_document
from replicator.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("REPLICATOR_"):
            monkeypatch.delenv(name)


def secure_data(tmp_path: Path) -> dict:
    data = yaml.safe_load((ROOT / "infra" / "topology.yaml").read_text())
    data["kafka"]["security"] = {
        "protocol": "SASL_SSL",
        "tls": {"ca_file": str(tmp_path / "ca.pem")},
    }
    data["kafka"]["users"] = {
        "primary": {"username": "primary", "password": "p-secret"},
        "checker": {"username": "checker", "password": "c-secret"},
    }
    for name, region in data["regions"].items():
        region["kafka_user"] = {"username": f"worker-{name}", "password": f"w-{name}"}
        region["redis"]["tls"] = {"enabled": True, "ca_file": str(tmp_path / "ca.pem")}
    return data


def load(tmp_path: Path, data: dict):
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_topology(path)


def test_each_principal_gets_its_own_sasl_user_and_the_ca(tmp_path: Path) -> None:
    topology = load(tmp_path, secure_data(tmp_path))
    worker = client_config(topology, "worker", region="eu-west-1")
    assert worker["security.protocol"] == "SASL_SSL"
    assert worker["sasl.mechanism"] == "SCRAM-SHA-512"
    assert (worker["sasl.username"], worker["sasl.password"]) == ("worker-eu-west-1", "w-eu-west-1")
    assert worker["ssl.ca.location"] == str(tmp_path / "ca.pem")
    assert worker["ssl.endpoint.identification.algorithm"] == "https"
    assert client_config(topology, "checker")["sasl.username"] == "checker"
    assert "p-secret" not in describe(client_config(topology, "primary"))


def test_sasl_without_the_principals_credentials_names_the_field(tmp_path: Path) -> None:
    data = secure_data(tmp_path)
    del data["regions"]["eu-west-1"]["kafka_user"]
    topology = load(tmp_path, data)
    with pytest.raises(ConfigError, match=r"regions\.eu-west-1\.kafka_user is required"):
        client_config(topology, "worker", region="eu-west-1")


def test_pass_through_options_reach_librdkafka(tmp_path: Path) -> None:
    data = secure_data(tmp_path)
    data["kafka"]["security"] = {
        "protocol": "SASL_SSL",
        "sasl_mechanism": "OAUTHBEARER",
        "options": {"sasl.oauthbearer.method": "oidc"},
    }
    config = client_config(load(tmp_path, data), "primary")
    assert config["sasl.oauthbearer.method"] == "oidc"
    assert config["sasl.mechanism"] == "OAUTHBEARER"


def test_the_default_topology_is_secure_and_its_insecure_twin_plaintext() -> None:
    secure = load_topology(ROOT / "infra" / "topology.yaml")
    ca = str(ROOT / ".stack" / "tls" / "ca.pem")  # relative to the file, wherever we run
    config = client_config(secure, "worker", region="eu-west-1")
    assert (config["security.protocol"], config["ssl.ca.location"]) == ("SASL_SSL", ca)
    assert config["sasl.username"] == "worker-eu-west-1"
    for region in secure.regions.values():
        assert region.redis.tls.enabled and str(region.redis.tls.ca_file) == ca
        assert region.s3.endpoint_url.startswith("https://") and str(region.s3.ca_file) == ca
    plain = load_topology(ROOT / "infra" / "insecure" / "topology.yaml")
    assert plain.stack.state_dir != secure.stack.state_dir
    for region in plain.regions.values():
        assert not region.redis.tls.enabled and region.s3.endpoint_url.startswith("http://")
    # Everything else is the secure file's: one home for each setting.
    same = {"kafka": {"security", "users"}, "stack": {"state_dir"}}
    assert plain.kafka.model_dump(exclude=same["kafka"]) == secure.kafka.model_dump(
        exclude=same["kafka"]
    )
    assert plain.stack.model_dump(exclude=same["stack"]) == secure.stack.model_dump(
        exclude=same["stack"]
    )
    assert plain.reads == secure.reads and plain.worker == secure.worker


def test_plaintext_topology_gives_plaintext_clients() -> None:
    topology = load_topology(ROOT / "infra" / "insecure" / "topology.yaml")
    config = client_config(topology, "primary")
    assert config["security.protocol"] == "PLAINTEXT"
    assert not any(key.startswith(("sasl.", "ssl.")) for key in config)


def test_passwords_come_from_private_files_only(tmp_path: Path) -> None:
    secret = tmp_path / "writer.pw"
    secret.write_text("from-a-file\n")
    secret.chmod(0o600)
    data = secure_data(tmp_path)
    data["regions"]["eu-west-1"]["redis"]["writer"] = {
        "username": "replicator",
        "password_file": str(secret),
    }
    topology = load(tmp_path, data)
    writer = topology.region("eu-west-1").redis.writer
    assert writer.password.get_secret_value() == "from-a-file"
    assert "from-a-file" not in repr(topology)

    secret.chmod(0o644)
    with pytest.raises(ConfigError) as info:
        load(tmp_path, data)
    assert "chmod 600" in str(info.value)
    assert "from-a-file" not in str(info.value)


def test_redis_and_s3_clients_verify_the_private_ca(tmp_path: Path) -> None:
    data = secure_data(tmp_path)
    data["regions"]["eu-west-1"]["s3"]["ca_file"] = str(tmp_path / "ca.pem")
    data["regions"]["eu-west-1"]["s3"]["endpoint_url"] = "https://127.0.0.1:19000"
    region = load(tmp_path, data).region("eu-west-1")
    kwargs = connect(region.redis, region.redis.reader).connection_pool.connection_kwargs
    assert kwargs["ssl_ca_certs"] == str(tmp_path / "ca.pem")
    assert kwargs["ssl_cert_reqs"] == "required"
    assert "ssl=true" in feast_connection_string(region.redis, region.redis.reader)
    assert s3_client(region.s3)._endpoint.http_session._verify == str(tmp_path / "ca.pem")


def test_acls_give_each_principal_only_what_it_needs(tmp_path: Path) -> None:
    from replicator.kafka_acls import required_acls

    data = read_topology_document(ROOT / "infra" / "topology.yaml")
    data["project"] = "secure_demo"
    data["regions"]["ap-southeast-1"]["feature_views"] = ["driver_hourly_stats"]
    topology = load(tmp_path, data)
    acls = required_acls(topology)
    writers = {
        a.principal
        for a in acls
        if a.operation == "WRITE" and a.resource_name.startswith("feast.secure_demo.")
    }
    assert writers == {"User:primary"}
    assert not [a for a in acls if a.principal == "User:checker" and a.operation == "WRITE"]
    # The Feast publisher reads each topic's record limit and writes in transactions.
    primary = {
        (a.resource_type, a.resource_name, a.operation) for a in acls if "primary" in a.principal
    }
    assert ("TOPIC", "feast.secure_demo.", "DESCRIBE_CONFIGS") in primary
    assert ("TRANSACTIONAL_ID", "feast-primary-secure_demo-", "WRITE") in primary

    reads = {
        (a.pattern_type, a.resource_name)
        for a in acls
        if a.principal == "User:worker-ap-southeast-1"
        and a.resource_type == "TOPIC"
        and a.operation == "READ"
    }
    # Its one view, and the dead letters it redrives.
    assert reads == {
        ("LITERAL", "feast.secure_demo.driver_hourly_stats"),
        ("LITERAL", topology.kafka.dead_letter_topic),
    }

    groups = {
        a.resource_name
        for a in acls
        if a.principal == "User:worker-eu-west-1" and a.resource_type == "GROUP"
    }
    assert groups == {topology.consumer_group("eu-west-1")}


def test_a_throwaway_projects_acls_leave_the_shared_ones_to_the_others(tmp_path: Path) -> None:
    from replicator.kafka_acls import project_acls, required_acls

    data = read_topology_document(ROOT / "infra" / "topology.yaml")
    data["project"] = "bench_e2e_1234"
    topology = load(tmp_path, data)
    own = project_acls(topology)
    assert ("TOPIC", "feast.bench_e2e_1234.") in {(a.resource_type, a.resource_name) for a in own}
    assert {"GROUP", "TRANSACTIONAL_ID"} <= {a.resource_type for a in own}
    shared = {a.resource_name for a in required_acls(topology)} - {a.resource_name for a in own}
    assert topology.kafka.dead_letter_topic in shared  # other projects' workers write it too
