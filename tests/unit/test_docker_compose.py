"""docker-compose.yml serves infra/insecure/topology.yaml: the local stack's topology
(infra/topology.yaml) in plaintext, for debugging only.

Nobody runs Docker in CI, so this is the only thing keeping the two files in step: every
region has one Redis service on its host port with the region's ACL users and passwords (and
the local stack's ACL rules), Kafka and S3 listen where the topology says, and S3 takes the
topology's credentials and gets every region's bucket.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from replicator.config import RedisEndpoint, Topology, load_topology
from replicator.stack.redis_server import PERSISTENCE

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
TOPOLOGY_FILE = ROOT / "infra" / "insecure" / "topology.yaml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def topology() -> Topology:
    """The file as committed (no environment overrides); shadows the stack-starting fixture
    of the same name in tests/conftest.py, so these tests start nothing."""
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith("REPLICATOR_"):
                mp.delenv(key)
        return load_topology(TOPOLOGY_FILE)


# Compose file helpers ------------------------------------------------------------------------
def _published(service: dict[str, Any]) -> dict[int, tuple[str, int]]:
    """Container port -> (host ip, host port), from short or long port syntax."""
    out: dict[int, tuple[str, int]] = {}
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            host_ip = str(entry.get("host_ip", "0.0.0.0"))
            out[int(entry["target"])] = (host_ip, int(entry["published"]))
            continue
        spec = str(entry).split("/", 1)[0]
        parts = spec.rsplit(":", 2)
        if len(parts) == 3:
            host_ip, host, container = parts
        elif len(parts) == 2:
            host_ip, (host, container) = "0.0.0.0", parts
        else:
            host_ip, host, container = "0.0.0.0", parts[0], parts[0]
        out[int(container)] = (host_ip, int(host))
    return out


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _directives(command: list[str]) -> list[tuple[str, list[str]]]:
    """``redis-server --a x y --b z`` -> [("a", ["x", "y"]), ("b", ["z"])]."""
    assert command[0] == "redis-server", command
    directives: list[tuple[str, list[str]]] = []
    for token in command[1:]:
        if token.startswith("--"):
            directives.append((token[2:], []))
        else:
            directives[-1][1].append(token)
    return directives


def _redis_port(command: list[str]) -> int:
    ports = [args for name, args in _directives(command) if name == "port"]
    return int(ports[-1][0]) if ports else 6379


def _acl_users(command: list[str]) -> dict[str, list[str]]:
    return {args[0]: args[1:] for name, args in _directives(command) if name == "user"}


def _password_matches(rules: list[str], password: str) -> bool:
    digest = hashlib.sha256(password.encode()).hexdigest()
    return f">{password}" in rules or f"#{digest}" in rules


def _without_passwords(rules: list[str]) -> list[str]:
    return [r for r in rules if not r.startswith((">", "#", "<", "!"))]


def _services_with_image(compose: dict[str, Any], prefix: str) -> dict[str, dict[str, Any]]:
    return {
        name: svc
        for name, svc in compose["services"].items()
        if str(svc.get("image", "")).startswith(prefix)
    }


def _host_port(hostport: str) -> tuple[str, int]:
    host, _, port = hostport.rpartition(":")
    return host, int(port)


# Redis ---------------------------------------------------------------------------------------
def test_one_redis_service_per_region(compose: dict[str, Any], topology: Topology) -> None:
    redis_services = _services_with_image(compose, "redis")
    assert sorted(redis_services) == sorted(f"redis-{region}" for region in topology.regions)


def _redis(compose: dict[str, Any], region: str) -> dict[str, Any]:
    return compose["services"][f"redis-{region}"]


def test_redis_host_ports_match(compose: dict[str, Any], topology: Topology) -> None:
    for region, cfg in topology.regions.items():
        service = _redis(compose, region)
        container_port = _redis_port(service["command"])
        published = _published(service)
        assert container_port in published, (region, "redis port is not published")
        host_ip, host_port = published[container_port]
        assert host_port == cfg.redis.port, region
        assert host_ip == cfg.redis.host, region


def test_redis_acl_users_and_passwords_match(compose: dict[str, Any], topology: Topology) -> None:
    for region, cfg in topology.regions.items():
        users = _acl_users(_redis(compose, region)["command"])
        endpoint: RedisEndpoint = cfg.redis
        expected = set(endpoint.users().values())
        assert set(users) == {u.username for u in expected} | {"default"}, region
        assert users["default"][0] == "off", (region, "the default user must be disabled")
        for user in expected:
            rules = users[user.username]
            assert rules[0] == "on", (region, user.username)
            assert _password_matches(rules, user.password.get_secret_value()), (
                region,
                user.username,
                "password differs from infra/topology.yaml",
            )


def test_redis_acl_rules_match_the_local_stack(compose: dict[str, Any], topology: Topology) -> None:
    """The same permissions as `replicator stack` (the writer cannot FLUSHALL, the reader
    cannot write), so tests of read-only replicas mean the same thing under Docker."""
    from replicator.stack.redis_server import acl_rules

    for region, cfg in topology.regions.items():
        users = _acl_users(_redis(compose, region)["command"])
        for name, rules in acl_rules(cfg.redis).items():
            actual = [r for r in _without_passwords(users[name]) if r not in ("on", "off")]
            expected = [r for r in rules.split() if r not in ("on", "off")]
            assert actual == expected, (region, name)


def test_redis_persistence_matches_the_local_stack(
    compose: dict[str, Any], topology: Topology
) -> None:
    """AOF with fsync every second, like the local stack: a restart loses about a second."""
    for region in topology.regions:
        directives = dict(_directives(_redis(compose, region)["command"]))
        got = {name: " ".join(directives.get(name, [])) for name in PERSISTENCE}
        assert got == PERSISTENCE, region


def test_redis_healthchecks_use_the_admin_user(compose: dict[str, Any], topology: Topology) -> None:
    for region, cfg in topology.regions.items():
        test = " ".join(_redis(compose, region)["healthcheck"]["test"])
        admin = cfg.redis.admin
        assert f"--user {admin.username} --pass {admin.password.get_secret_value()} " in test


# Kafka ---------------------------------------------------------------------------------------
def _kafka(compose: dict[str, Any]) -> dict[str, Any]:
    services = _services_with_image(compose, "apache/kafka")
    assert len(services) == 1, "expected exactly one Kafka service"
    return next(iter(services.values()))


def test_kafka_listens_where_the_topology_says(compose: dict[str, Any], topology: Topology) -> None:
    service = _kafka(compose)
    env = _environment(service)
    (bootstrap,) = topology.kafka.bootstrap_servers.split(",")
    host, port = _host_port(bootstrap)

    listeners = dict(item.split("://", 1) for item in env["KAFKA_LISTENERS"].split(","))
    advertised = dict(item.split("://", 1) for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    # The listener advertised to host clients is exactly the topology's bootstrap server...
    host_listener = [name for name, addr in advertised.items() if addr == bootstrap]
    assert host_listener, f"no advertised listener is {bootstrap}"
    # ...the broker listens on that port inside the container, and Docker publishes it.
    container_port = _host_port(listeners[host_listener[0]])[1]
    assert _published(service)[container_port] == (host, port)


def test_kafka_is_kraft_combined_on_the_controller_port(
    compose: dict[str, Any], topology: Topology
) -> None:
    env = _environment(_kafka(compose))
    controller_port = topology.stack.kafka_controller_port
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].endswith(f":{controller_port}")
    listeners = dict(item.split("://", 1) for item in env["KAFKA_LISTENERS"].split(","))
    assert _host_port(listeners[env["KAFKA_CONTROLLER_LISTENER_NAMES"]])[1] == controller_port
    assert f"-Xmx{topology.stack.kafka_heap_mb}m" in env["KAFKA_HEAP_OPTS"].split()
    assert env["CLUSTER_ID"], "a fixed cluster id keeps the volume valid across restarts"


SINGLE_BROKER_SETTINGS = (
    "auto.create.topics.enable",
    "offsets.topic.replication.factor",
    "transaction.state.log.replication.factor",
    "transaction.state.log.min.isr",
    "share.coordinator.state.topic.replication.factor",
    "share.coordinator.state.topic.min.isr",
    "group.min.session.timeout.ms",
)


def test_kafka_single_broker_settings_match_the_local_stack(
    compose: dict[str, Any], topology: Topology, tmp_path: Path
) -> None:
    """Transactions (a Feast call is one) need the transaction state log at one replica;
    fast takeover needs the broker to accept the worker's short session timeout."""
    from replicator.stack.kafka_broker import KafkaBroker

    local = KafkaBroker(topology, tmp_path).server_properties()
    env = _environment(_kafka(compose))
    for name in SINGLE_BROKER_SETTINGS:
        variable = "KAFKA_" + name.replace(".", "_").upper()
        assert str(env[variable]) == str(local[name]), name


# S3 ------------------------------------------------------------------------------------------
def _s3(compose: dict[str, Any]) -> dict[str, Any]:
    services = [s for s in compose["services"].values() if "S3PROXY_IDENTITY" in _environment(s)]
    assert len(services) == 1, "expected exactly one S3Proxy service"
    return services[0]


def _bucket_job(compose: dict[str, Any]) -> dict[str, Any]:
    services = [s for s in compose["services"].values() if "BUCKETS" in _environment(s)]
    assert len(services) == 1, "expected exactly one bucket-creating service"
    return services[0]


def test_s3_port_matches_every_region(compose: dict[str, Any], topology: Topology) -> None:
    service = _s3(compose)
    container_port = urlsplit(_environment(service)["S3PROXY_ENDPOINT"]).port
    assert container_port is not None
    host_ip, host_port = _published(service)[container_port]
    assert host_port == topology.stack.s3_port
    for region, cfg in topology.regions.items():
        url = urlsplit(cfg.s3.endpoint_url)
        assert (url.hostname, url.port) == (host_ip, host_port), region


def test_s3_credentials_match_every_region(compose: dict[str, Any], topology: Topology) -> None:
    server = _environment(_s3(compose))
    job = _environment(_bucket_job(compose))
    for region, cfg in topology.regions.items():
        key, secret = cfg.s3.access_key_id, cfg.s3.secret_access_key.get_secret_value()
        assert (server["S3PROXY_IDENTITY"], server["S3PROXY_CREDENTIAL"]) == (key, secret), region
        assert (job["AWS_ACCESS_KEY_ID"], job["AWS_SECRET_ACCESS_KEY"]) == (key, secret), region


def test_every_region_bucket_is_created(compose: dict[str, Any], topology: Topology) -> None:
    job = _environment(_bucket_job(compose))
    assert sorted(job["BUCKETS"].split()) == sorted(r.s3.bucket for r in topology.regions.values())
    # The job talks to the S3 service on its container port.
    server_port = urlsplit(_environment(_s3(compose))["S3PROXY_ENDPOINT"]).port
    assert urlsplit(job["S3_ENDPOINT_URL"]).port == server_port


def test_the_default_session_timeout_is_accepted_by_the_local_broker(
    topology: Topology, tmp_path: Path
) -> None:
    """Workers join with worker.session_timeout_seconds; a broker with a higher minimum would
    refuse them (stock Kafka: 6 s), and takeover (<= 5 s) needs it below 5 s."""
    from replicator.config import WorkerSettings
    from replicator.stack.kafka_broker import KafkaBroker

    minimum_ms = int(
        str(KafkaBroker(topology, tmp_path).server_properties()["group.min.session.timeout.ms"])
    )
    default = WorkerSettings().session_timeout_seconds
    assert minimum_ms <= default * 1000 < 5000


def test_compose_serves_the_plaintext_twin_and_says_so(
    compose: dict[str, Any], topology: Topology
) -> None:
    """Compose runs no TLS and no Kafka SASL: it matches the --insecure topology, which is
    the secure default with its security switched off and nothing else changed."""
    assert topology.kafka.security.protocol == "PLAINTEXT"
    assert not any(r.redis.tls.enabled for r in topology.regions.values())
    assert all(r.s3.endpoint_url.startswith("http://") for r in topology.regions.values())
    env = _environment(compose["services"]["kafka"])
    assert "SASL" not in env.get("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "")
    header = COMPOSE_FILE.read_text(encoding="utf-8").split("\nname:", 1)[0]
    assert "IN PLAINTEXT" in header and "infra/insecure/topology.yaml" in header
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith("REPLICATOR_"):
                mp.delenv(key)
        secure = load_topology(ROOT / "infra" / "topology.yaml")
    assert secure.kafka.security.protocol == "SASL_SSL"
    assert secure.kafka.bootstrap_servers == topology.kafka.bootstrap_servers
    for name, region in secure.regions.items():
        assert region.redis.port == topology.region(name).redis.port
