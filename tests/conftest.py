"""The test seam: which Kafka, Redis and S3 the integration tests talk to.

``topology`` (session) returns a ``Topology`` whose services are running. Where they come from
is chosen with ``REPLICATOR_TEST_SERVICES``:

- ``local`` (default): the project's own stack (``replicator stack``, see docs/local-stack.md).
  If it is already up it is used and left running; otherwise it is started for the session
  and stopped at the end.
- ``testcontainers``: Kafka, one Redis per region and MinIO in Docker, in plaintext, with the
  same Redis ACL users; the topology points at them through ``REPLICATOR_*`` environment
  overrides, which subprocesses inherit. Needs a Docker engine; the tests are skipped (with
  the reason) when there is none.

Tests under ``tests/integration`` are marked ``integration`` automatically.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import redis
from confluent_kafka.admin import AdminClient
from hypothesis import HealthCheck, Phase, settings

from replicator.adapters.kafka_config import client_config
from replicator.adapters.redis_store import connect as connect_redis
from replicator.adapters.s3 import s3_client as make_s3_client
from replicator.config import Topology, load_topology
from replicator.stack.redis_server import acl_rules

ROOT = Path(__file__).resolve().parents[1]
SERVICES_ENV = "REPLICATOR_TEST_SERVICES"
KAFKA_IMAGE = "confluentinc/cp-kafka:7.9.0"
REDIS_IMAGE = "redis:7.0"
MINIO_IMAGE = "minio/minio:RELEASE.2025-04-22T22-12-26Z"


# Property-based tests (hypothesis): ``ci`` by default, bounded and the same examples every
# run; ``make fuzz`` passes ``--hypothesis-profile=fuzz``: many more, new ones each run (a
# failure prints how to reproduce it). No deadline: CI machines are slow and busy. No explain
# phase: it traces every line run, which makes a failing example many times slower.
settings.register_profile(
    "ci",
    max_examples=20,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "fuzz", settings.get_profile("ci"), max_examples=2000, derandomize=False, print_blob=True
)
settings.load_profile("ci")


def pytest_configure(config: pytest.Config) -> None:
    services_mode()  # a typo in REPLICATOR_TEST_SERVICES stops the run at once


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    integration_dir = ROOT / "tests" / "integration"
    for item in items:
        if integration_dir in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.integration)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test taking ``each_region`` runs once per region of the configured topology."""
    if "each_region" in metafunc.fixturenames:
        metafunc.parametrize("each_region", list(load_topology(config_path()).regions))


def services_mode() -> str:
    mode = os.environ.get(SERVICES_ENV, "local").strip().lower() or "local"
    if mode not in ("local", "testcontainers"):
        raise pytest.UsageError(f"{SERVICES_ENV} must be 'local' or 'testcontainers', not {mode!r}")
    return mode


def config_path() -> Path:
    """``$REPLICATOR_CONFIG`` if set, else the repository's default topology."""
    return Path(os.environ.get("REPLICATOR_CONFIG") or ROOT / "infra" / "topology.yaml")


@pytest.fixture(scope="session")
def config_file() -> Path:
    """The topology file the tests use (environment overrides still apply on load)."""
    return config_path()


@pytest.fixture(scope="session")
def topology() -> Iterator[Topology]:
    """A topology whose Kafka, Redis and S3 are running."""
    if services_mode() == "testcontainers":
        with ExitStack() as resources:
            yield _start_containers(resources)
        return
    yield from _local_stack_session()


def _local_stack_session() -> Iterator[Topology]:
    from replicator.stack import LocalStack

    base = load_topology(config_path())
    stack = LocalStack(base, cwd=ROOT)
    if stack.status()["ok"]:
        yield base  # somebody else's stack: use it, leave it running
        return
    try:
        stack.up()
    except Exception:
        stack.down()
        raise
    try:
        yield base
    finally:
        stack.down()


@pytest.fixture
def local_stack_only() -> None:
    """Skips a test of the local stack itself when the services come from Docker."""
    if services_mode() != "local":
        pytest.skip(f"tests the local stack itself; {SERVICES_ENV}={services_mode()}")


@pytest.fixture
def local_stack(local_stack_only: None, topology: Topology) -> Any:
    """The ``LocalStack`` behind ``topology``."""
    from replicator.stack import LocalStack

    return LocalStack(topology, cwd=ROOT)


@pytest.fixture
def redis_user(topology: Topology) -> Iterator[Callable[[str, str], redis.Redis]]:
    """``redis_user(region, role)`` with role ``writer``, ``reader``, ``admin`` or
    ``checker``."""
    clients: list[redis.Redis] = []

    def connect(region: str, role: str) -> redis.Redis:
        endpoint = topology.region(region).redis
        client = connect_redis(endpoint, getattr(endpoint, role), timeout=5)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()


@pytest.fixture
def redis_admin(
    redis_user: Callable[[str, str], redis.Redis],
) -> Callable[[str], redis.Redis]:
    """``redis_admin(region)``: a client logged in as that region's admin user."""
    return lambda region: redis_user(region, "admin")


@pytest.fixture
def kafka_admin(topology: Topology) -> AdminClient:
    return AdminClient(client_config(topology, "admin"))


@pytest.fixture
def s3_client(topology: Topology) -> Callable[[str], Any]:
    """``s3_client(region)``: a boto3 S3 client for that region's location (path-style)."""
    return lambda region: make_s3_client(topology.region(region).s3)


# Docker (testcontainers) -----------------------------------------------------------------
def _start_containers(resources: ExitStack) -> Topology:
    """Start Kafka, one Redis per region and MinIO; return the topology pointing at them."""
    try:
        import docker

        docker.from_env().ping()
    except Exception as exc:
        reason = str(exc).splitlines()[0][:160]
        pytest.skip(f"{SERVICES_ENV}=testcontainers needs a running Docker engine ({reason})")
    from testcontainers.community.kafka import KafkaContainer
    from testcontainers.community.redis import RedisContainer
    from testcontainers.core.container import DockerContainer

    base = load_topology(config_path())
    kafka = resources.enter_context(
        KafkaContainer(KAFKA_IMAGE)
        .with_kraft()
        .with_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false")
    )
    # The containers run in plaintext (no TLS, no Kafka SASL): the topology is told so.
    env = {
        "REPLICATOR_KAFKA__BOOTSTRAP_SERVERS": kafka.get_bootstrap_server(),
        "REPLICATOR_KAFKA__SECURITY__PROTOCOL": "PLAINTEXT",
    }

    location = next(iter(base.regions.values())).s3
    minio = resources.enter_context(
        DockerContainer(MINIO_IMAGE)
        .with_command("server /data")
        .with_env("MINIO_ROOT_USER", location.access_key_id)
        .with_env("MINIO_ROOT_PASSWORD", location.secret_access_key.get_secret_value())
        .with_exposed_ports(9000)
    )
    s3_url = f"http://{minio.get_container_host_ip()}:{minio.get_exposed_port(9000)}"

    for name, region in base.regions.items():
        container = resources.enter_context(RedisContainer(REDIS_IMAGE))
        host, port = container.get_container_host_ip(), int(container.get_exposed_port(6379))
        _create_acl_users(redis.Redis(host=host, port=port), region.redis)
        prefix = f"REPLICATOR_REGIONS__{name.replace('-', '_').upper()}"
        env[f"{prefix}__REDIS__HOST"] = host
        env[f"{prefix}__REDIS__PORT"] = str(port)
        env[f"{prefix}__S3__ENDPOINT_URL"] = s3_url
        env[f"{prefix}__REDIS__TLS__ENABLED"] = "false"

    patch = resources.enter_context(pytest.MonkeyPatch.context())
    for key, value in env.items():
        patch.setenv(key, value)
    topology = load_topology(config_path())
    _create_buckets(topology)
    return topology


def _create_acl_users(client: redis.Redis, endpoint: Any) -> None:
    """The local stack's ACL users, created on a container's Redis; ``default`` goes last."""
    passwords = {
        user.username: user.password.get_secret_value() for user in endpoint.users().values()
    }
    rules = acl_rules(endpoint)
    for name in [n for n in rules if n != "default"] + ["default"]:
        extra = ["on", f">{passwords[name]}"] if name in passwords else []
        client.execute_command("ACL", "SETUSER", name, "reset", *extra, *rules[name].split())
    client.close()


def _create_buckets(topology: Topology, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    for region in topology.regions.values():
        client = make_s3_client(region.s3)
        while True:
            try:
                client.create_bucket(Bucket=region.s3.bucket)
                break
            except client.exceptions.BucketAlreadyOwnedByYou:
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
