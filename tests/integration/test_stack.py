"""The local stack and the services behind ``topology``, as a user of them would notice."""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from redis.backoff import NoBackoff
from redis.retry import Retry
from waiting import wait_until

from replicator import cli
from replicator.adapters.kafka_config import client_config
from replicator.adapters.redis_store import tls_options
from replicator.adapters.s3 import s3_client as make_s3_client
from replicator.config import Topology, load_topology
from replicator.stack import LocalStack
from replicator.stack.prereqs import port_in_use
from replicator.stack.processes import is_running
from replicator.stack.redis_server import admin_client

READER_WRITE_ATTEMPTS: list[tuple[Any, ...]] = [
    ("SET", "k", "v"),
    ("HSET", "h", "f", "v"),
    ("HDEL", "h", "f"),
    ("DEL", "k"),
    ("UNLINK", "k"),
    ("EXPIRE", "k", "60"),
    ("PERSIST", "k"),
    ("RENAME", "k", "k2"),
    ("HINCRBY", "h", "n", "1"),
    ("EVAL", "return 1", "0"),
    ("EVAL_RO", "return 1", "0"),
    ("FUNCTION", "FLUSH"),
    ("FCALL", "f", "0"),
    ("FLUSHALL",),
    ("FLUSHDB",),
    ("CONFIG", "SET", "maxmemory", "1"),
]


# Kafka ------------------------------------------------------------------------------------
@pytest.fixture
def new_topic(kafka_admin: AdminClient) -> Iterator[str]:
    """A topic created with the admin API (and deleted afterwards)."""
    name = f"test.stack.{uuid.uuid4().hex[:8]}"
    futures = kafka_admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])
    futures[name].result(timeout=30)
    yield name
    kafka_admin.delete_topics([name])[name].result(timeout=30)


def test_topic_created_with_the_admin_api_is_listed(kafka_admin: AdminClient, new_topic: str):
    # A broker answers metadata from its own cache, which follows the controller's log: a
    # topic the controller created a moment ago is listed once that broker has caught up.
    def listed() -> Any:
        return kafka_admin.list_topics(timeout=10).topics.get(new_topic)

    topic = wait_until(listed, 30, f"{new_topic} in the brokers' metadata")
    assert len(topic.partitions) == 3


def test_produced_message_is_consumed_back(topology: Topology, new_topic: str):
    producer = Producer(
        {**client_config(topology, "admin"), "enable.idempotence": True, "acks": "all"}
    )
    producer.produce(new_topic, key=b"entity-1", value=b"hello from the stack")
    assert producer.flush(30) == 0

    consumer = Consumer(
        {
            **client_config(topology, "admin"),
            "group.id": f"test-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.subscribe([new_topic])
        message = None
        for _ in range(60):
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                break
        assert message is not None and message.error() is None
        assert (message.key(), message.value()) == (b"entity-1", b"hello from the stack")
    finally:
        consumer.close()


def test_topics_are_not_created_by_producing(topology: Topology, kafka_admin: AdminClient):
    name = f"test.stack.unknown.{uuid.uuid4().hex[:8]}"
    producer = Producer({**client_config(topology, "admin"), "message.timeout.ms": 3000})
    errors: list[Any] = []
    producer.produce(name, value=b"x", on_delivery=lambda err, _msg: errors.append(err))
    producer.flush(10)
    assert errors and errors[0] is not None
    assert name not in kafka_admin.list_topics(timeout=10).topics


# Redis ACL --------------------------------------------------------------------------------
def test_reader_cannot_run_any_write_command(
    each_region: str, redis_user: Callable[[str, str], redis.Redis]
):
    reader = redis_user(each_region, "reader")
    for command in READER_WRITE_ATTEMPTS:
        with pytest.raises(redis.exceptions.NoPermissionError):
            reader.execute_command(*command)


def test_reader_reads_what_the_writer_wrote(
    each_region: str, redis_user: Callable[[str, str], redis.Redis]
):
    writer, reader = redis_user(each_region, "writer"), redis_user(each_region, "reader")
    key = f"test:stack:{uuid.uuid4().hex}"
    try:
        assert writer.hset(key, mapping={"a": "1", "b": "2"}) == 2
        script = writer.register_script("return redis.call('HSET', KEYS[1], 'c', ARGV[1])")
        assert script(keys=[key], args=["3"]) == 1  # EVALSHA (after SCRIPT LOAD), not EVAL
        assert reader.hmget(key, ["a", "b", "c"]) == [b"1", b"2", b"3"]
        assert reader.ping()
    finally:
        writer.delete(key)


def test_writer_cannot_run_dangerous_commands(
    each_region: str, redis_user: Callable[[str, str], redis.Redis]
):
    writer = redis_user(each_region, "writer")
    for command in [("FLUSHALL",), ("FLUSHDB",), ("KEYS", "*"), ("CONFIG", "GET", "port")]:
        with pytest.raises(redis.exceptions.NoPermissionError):
            writer.execute_command(*command)
    assert "redis_version" in writer.info("server")


def test_clients_without_credentials_are_refused(each_region: str, topology: Topology):
    endpoint = topology.region(each_region).redis
    client = redis.Redis(
        host=endpoint.host,
        port=endpoint.port,
        socket_timeout=5,
        retry=Retry(NoBackoff(), 0),
        **tls_options(endpoint.tls),
    )
    try:
        with pytest.raises(redis.exceptions.AuthenticationError):
            client.get("anything")
    finally:
        client.close()


def test_admin_can_run_dangerous_commands(
    each_region: str, topology: Topology, redis_admin: Callable[[str], redis.Redis]
):
    admin = redis_admin(each_region)
    endpoint = topology.region(each_region).redis
    assert admin.acl_whoami() == endpoint.admin.username
    port = "tls-port" if endpoint.tls.enabled else "port"  # TLS only: the plain port is 0
    assert admin.config_get(port)[port] == str(endpoint.port)
    expected = {"default", endpoint.admin.username, endpoint.reader.username}
    assert expected | {endpoint.writer.username} <= set(admin.acl_users())


# S3 ---------------------------------------------------------------------------------------
def test_object_round_trips_through_the_region_bucket(
    each_region: str, topology: Topology, s3_client: Callable[[str], Any]
):
    client, bucket = s3_client(each_region), topology.region(each_region).s3.bucket
    key = f"tests/{uuid.uuid4().hex}/registry.db"
    client.put_object(Bucket=bucket, Key=key, Body=b"registry bytes")
    try:
        assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == b"registry bytes"
    finally:
        client.delete_object(Bucket=bucket, Key=key)


# The stack itself -------------------------------------------------------------------------
def test_status_reports_every_service_with_its_pid(local_stack: LocalStack, topology: Topology):
    report = local_stack.status()
    assert report["ok"] is True
    assert report["kafka"]["ok"] and report["kafka"]["pid"]
    assert report["s3"]["ok"] and report["s3"]["pid"]
    assert set(report["regions"]) == set(topology.regions)
    for region, entry in report["regions"].items():
        assert entry["redis"]["ok"] and entry["redis"]["pid"]
        assert entry["redis"]["port"] == topology.region(region).redis.port


def test_second_up_is_a_noop(local_stack: LocalStack):
    before = local_stack.pids()
    result = local_stack.up()
    assert not result.changed
    assert local_stack.pids() == before


def test_cli_status_json(
    local_stack: LocalStack, config_file: Path, capsys: pytest.CaptureFixture[str]
):
    assert cli.main(["--config", str(config_file), "stack", "status", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["kafka"]["ok"] and report["s3"]["ok"]
    assert all(entry["redis"]["ok"] for entry in report["regions"].values())


@pytest.fixture
def isolated_topology(
    local_stack_only: None, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Topology]:
    """The default topology moved to free ports and a private state dir (its own CA: TLS
    clients trust the one made there).

    Not under pytest's ``tmp_path``: a concurrent pytest session may delete old base temp
    dirs, and with them the state of servers still running.
    """
    base = load_topology(config_file)
    ports = _free_ports(3 + len(base.regions))
    state_dir = Path(tempfile.mkdtemp(prefix="replicator-stack-test-"))
    monkeypatch.setenv("REPLICATOR_STACK__STATE_DIR", str(state_dir))
    monkeypatch.setenv("REPLICATOR_KAFKA__BOOTSTRAP_SERVERS", f"127.0.0.1:{ports[0]}")
    monkeypatch.setenv("REPLICATOR_STACK__KAFKA_CONTROLLER_PORT", str(ports[1]))
    monkeypatch.setenv("REPLICATOR_STACK__S3_PORT", str(ports[2]))
    for region, port in zip(base.regions, ports[3:], strict=True):
        prefix = f"REPLICATOR_REGIONS__{region.replace('-', '_').upper()}"
        monkeypatch.setenv(f"{prefix}__REDIS__PORT", str(port))
        scheme = "https" if base.region(region).s3.ca_file else "http"
        monkeypatch.setenv(f"{prefix}__S3__ENDPOINT_URL", f"{scheme}://127.0.0.1:{ports[2]}")
        for field in ("REDIS__TLS__CA_FILE", "S3__CA_FILE"):
            monkeypatch.setenv(f"{prefix}__{field}", str(state_dir / "tls" / "ca.pem"))
    monkeypatch.setenv("REPLICATOR_KAFKA__SECURITY__TLS__CA_FILE", str(state_dir / "tls/ca.pem"))
    yield load_topology(config_file)
    shutil.rmtree(state_dir, ignore_errors=True)


def _free_ports(count: int) -> list[int]:
    """Free ports below Linux's ephemeral range (32768+), so that no outgoing connection of
    any process can take one between our choice and the server's bind, or while stopped."""
    candidates = random.sample(range(20000, 32000), 200)
    ports = [port for port in candidates if not port_in_use(port)][:count]
    assert len(ports) == count
    return ports


@pytest.mark.slow
def test_up_down_up_keeps_data_and_leaves_no_process(
    isolated_topology: Topology, config_file: Path, capsys: pytest.CaptureFixture[str]
):
    """On its own ports and state dir, so the session's stack is not disturbed."""
    messages: list[str] = []
    stack = LocalStack(isolated_topology, progress=messages.append)
    try:
        first = stack.up()
        assert len(first.started) == 2 + len(isolated_topology.regions)
        assert stack.status()["ok"]
        topic, key, bucket = _write_some_data(isolated_topology)

        assert not stack.up().changed, "a second up must be a no-op"
        assert "nothing to do" in messages[-1]

        pids = stack.pids()
        assert len(pids) == 2 + len(isolated_topology.regions)
        stopped = stack.down()
        assert sorted(stopped) == sorted(first.started)
        assert [pid for pid in pids.values() if is_running(pid)] == []
        ports = [p.number for service in stack.services for p in service.ports]
        assert [p for p in ports if port_in_use(p)] == []
        assert stack.down() == [], "a second down must be a no-op"

        capsys.readouterr()
        assert cli.main(["--config", str(config_file), "stack", "status"]) == 1
        assert "DOWN" in capsys.readouterr().out

        again = stack.up()
        assert again.started and stack.status()["ok"]
        _assert_data_survived(isolated_topology, topic, key, bucket)
    finally:
        stack.down()


def _write_some_data(topology: Topology) -> tuple[str, str, str]:
    admin = AdminClient(client_config(topology, "admin"))
    topic = "test.stack.durable"
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
    region = next(iter(topology.regions.values()))
    client = admin_client(region.redis)
    client.set("test:stack:durable", "yes")
    client.close()
    make_s3_client(region.s3).put_object(Bucket=region.s3.bucket, Key="durable", Body=b"yes")
    return topic, "test:stack:durable", region.s3.bucket


def _assert_data_survived(topology: Topology, topic: str, key: str, bucket: str) -> None:
    admin = AdminClient(client_config(topology, "admin"))
    assert topic in admin.list_topics(timeout=10).topics
    region = next(iter(topology.regions.values()))
    client = admin_client(region.redis)
    assert client.get(key) == b"yes"
    client.close()
    assert (
        make_s3_client(region.s3).get_object(Bucket=bucket, Key="durable")["Body"].read() == b"yes"
    )
