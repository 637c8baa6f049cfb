"""Security on real services: the local stack, secure by default (infra/topology.yaml).

Kafka speaks SASL_SSL only with SCRAM users and the ACLs of ``replicator kafka acls``; Redis
has a TLS port only; S3Proxy serves HTTPS only. The tests see the stack through a project of
their own in which one region subscribes to one view only, its ACLs applied as a deployment
applies them. Skipped on a plaintext stack (``--insecure``, testcontainers).
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
import trustme
import yaml
from botocore.exceptions import BotoCoreError, ClientError
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from pydantic import SecretStr
from waiting import wait_until

from replicator.adapters.kafka_admin import KafkaAdmin
from replicator.adapters.kafka_config import client_config
from replicator.adapters.kafka_publisher import KafkaPublisher
from replicator.adapters.redis_store import connect
from replicator.adapters.s3 import s3_client
from replicator.config import RedisUser, Topology, load_topology, read_topology_document
from replicator.config_security import TlsSettings
from replicator.core import wire
from replicator.core.feast_settings import FeastSettings
from replicator.core.records import Heartbeat
from replicator.read_plan import ReadPlan
from replicator.regional_config import feature_store_yaml
from replicator.regional_reads import RegionalReader, RegionUnavailable
from replicator.stack.kafka_security import grant_project

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SUBSCRIBER = "ap-southeast-1"  # subscribes to driver_hourly_stats only (in this module)


@pytest.fixture(scope="module")
def secure(
    topology: Topology, config_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Topology:
    """The running stack's topology for a project of this module's own, where SUBSCRIBER
    takes driver_hourly_stats only; its ACLs applied (``replicator kafka acls``)."""
    if not topology.kafka.security.uses_sasl:
        pytest.skip("the stack runs in plaintext (--insecure or testcontainers)")
    data = read_topology_document(config_file)
    data["project"] = f"sec_{uuid.uuid4().hex[:8]}"
    data["regions"][SUBSCRIBER]["feature_views"] = ["driver_hourly_stats"]
    path = tmp_path_factory.mktemp("security") / "topology.yaml"
    path.write_text(yaml.safe_dump(data))
    secure = load_topology(path)
    grant_project(secure)
    return secure


@pytest.fixture(scope="module")
def wrong_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("wrong-ca") / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


@pytest.fixture(scope="module")
def topics(secure: Topology) -> dict[str, str]:
    """Two feature-view topics made by the primary: one the subscriber takes, one not."""
    names = {"subscribed": "driver_hourly_stats", "other": f"other_{uuid.uuid4().hex[:6]}"}
    out = {role: secure.topic_for(view) for role, view in names.items()}
    with KafkaPublisher(client_config(secure, "primary"), client_id="test-primary") as pub:
        pub.ensure_topics(out.values(), 1, 1)
        for topic in out.values():
            pub.send(topic, 0, b"row", [])
        pub.flush()
    return out


def _lists_topics(config: dict[str, Any]) -> bool:
    admin = AdminClient({**config, "socket.timeout.ms": 3000, "error_cb": lambda _e: None})
    try:
        admin.list_topics(timeout=4)
    except KafkaException:
        return False
    return True


def _produce(config: dict[str, Any], topic: str, value: bytes, headers: Any = None) -> Any:
    """Produce one record (no idempotence: the Produce request itself meets the ACLs) and
    return the delivery error, or None once the broker acknowledged it."""
    producer = Producer(
        {**config, "enable.idempotence": False, "acks": "all", "message.timeout.ms": 10000}
    )
    outcome: list[Any] = []
    producer.produce(
        topic,
        value=value,
        headers=headers,
        partition=0,
        on_delivery=lambda e, _m: outcome.append(e),
    )
    producer.flush(20)
    assert outcome, "no delivery report"
    return outcome[0]


# Transport: plaintext and unknown CAs are refused ------------------------------------------
def test_kafka_refuses_plaintext_a_wrong_ca_and_a_wrong_password(
    secure: Topology, wrong_ca: Path
) -> None:
    good = client_config(secure, "checker")
    assert _lists_topics(good)
    assert not _lists_topics({"bootstrap.servers": good["bootstrap.servers"]})
    assert not _lists_topics({**good, "ssl.ca.location": str(wrong_ca)})
    assert not _lists_topics({**good, "sasl.password": "not-the-password"})


def test_redis_refuses_plaintext_and_a_wrong_ca(secure: Topology, wrong_ca: Path) -> None:
    endpoint = secure.region("eu-west-1").redis
    assert connect(endpoint, endpoint.reader).ping()
    plain = endpoint.model_copy(update={"tls": TlsSettings()})
    with pytest.raises(redis.ConnectionError):
        connect(plain, plain.reader, timeout=3).ping()
    other = endpoint.model_copy(update={"tls": TlsSettings(enabled=True, ca_file=wrong_ca)})
    with pytest.raises(redis.ConnectionError):
        connect(other, other.reader, timeout=3).ping()


def test_s3_refuses_plaintext_and_a_wrong_ca(secure: Topology, wrong_ca: Path) -> None:
    location = secure.region("eu-west-1").s3
    assert s3_client(location).head_bucket(Bucket=location.bucket)
    plain = location.model_copy(
        update={"endpoint_url": location.endpoint_url.replace("https:", "http:")}
    )
    with pytest.raises((BotoCoreError, ClientError)):
        s3_client(plain, timeout=3, attempts=1).head_bucket(Bucket=location.bucket)
    other = location.model_copy(update={"ca_file": wrong_ca})
    with pytest.raises(BotoCoreError):  # SSLError: certificate verify failed
        s3_client(other, timeout=3, attempts=1).head_bucket(Bucket=location.bucket)


# Kafka authorization ----------------------------------------------------------------------
def test_only_the_primary_may_write_feature_topics(
    secure: Topology, topics: dict[str, str]
) -> None:
    assert _produce(client_config(secure, "primary"), topics["subscribed"], b"primary") is None
    for principal, region in [("worker", SUBSCRIBER), ("worker", "eu-west-1"), ("checker", None)]:
        config = client_config(secure, principal, region=region)  # type: ignore[arg-type]
        refused = _produce(config, topics["subscribed"], b"forged row batch")
        assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_a_forged_heartbeat_from_a_region_is_refused(
    secure: Topology, topics: dict[str, str]
) -> None:
    headers, payload = wire.encode_heartbeat(Heartbeat(sequence=1, emitted_ns=2**62))
    forger = client_config(secure, "worker", region="eu-west-1")
    refused = _produce(forger, topics["other"], payload, headers)
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_a_region_reads_only_the_views_it_subscribes_to(
    secure: Topology, topics: dict[str, str]
) -> None:
    consumer = Consumer(
        {
            **client_config(secure, "worker", region=SUBSCRIBER),
            "group.id": secure.consumer_group(SUBSCRIBER),
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        visible = set(consumer.list_topics(timeout=10).topics)
        assert topics["subscribed"] in visible
        assert topics["other"] not in visible
        consumer.assign([TopicPartition(topics["subscribed"], 0, 0)])
        first = consumer.poll(15)
        assert first is not None and first.error() is None
        consumer.assign([TopicPartition(topics["other"], 0, 0)])
        # The broker hides the topic and refuses its fetches: librdkafka reports nothing and
        # delivers nothing (the primary wrote a record there; a granted read returns it).
        refused = consumer.poll(10)
        assert refused is None or refused.error() is not None
    finally:
        consumer.close()


def test_the_checker_cannot_commit_a_workers_group(
    secure: Topology, topics: dict[str, str]
) -> None:
    consumer = Consumer(
        {**client_config(secure, "checker"), "group.id": secure.consumer_group("eu-west-1")}
    )
    try:
        with pytest.raises(KafkaException) as info:
            consumer.commit(
                offsets=[TopicPartition(topics["subscribed"], 0, 0)], asynchronous=False
            )
        assert info.value.args[0].code() == KafkaError.GROUP_AUTHORIZATION_FAILED
    finally:
        consumer.close()


# Redis least privilege --------------------------------------------------------------------
def test_redis_reader_cannot_write_or_script_and_writer_cannot_eval(secure: Topology) -> None:
    endpoint = secure.region("eu-west-1").redis
    reader, writer = connect(endpoint, endpoint.reader), connect(endpoint, endpoint.writer)
    key = f"test:security:{uuid.uuid4().hex}"
    try:
        for command in [
            ("HSET", key, "f", "v"),
            ("HSET", "_replicator:worker:eu-west-1", "rows_applied", "0"),
            ("EVAL", "return 1", "0"),
            ("SCRIPT", "LOAD", "return 1"),
            ("KEYS", "*"),
        ]:
            with pytest.raises(redis.exceptions.NoPermissionError):
                reader.execute_command(*command)
        with pytest.raises(redis.exceptions.NoPermissionError):
            writer.eval("return redis.call('HSET', KEYS[1], 'f', 'v')", 1, key)
        script = writer.register_script("return redis.call('HSET', KEYS[1], 'f', 'v')")
        assert script(keys=[key]) == 1
        assert reader.hget(key, "f") == b"v"
        # The checker's digest script runs read-only (EVALSHA_RO) as the writer too, for a
        # topology without a checker user (test_checker_privileges.py: the checker's own).
        read = writer.register_script("return redis.call('HGET', KEYS[1], 'f')")
        writer.script_load(read.script)
        assert writer.evalsha_ro(read.sha, 1, key) == b"v"
    finally:
        writer.delete(key)
        reader.close()
        writer.close()


# Regional reads over TLS -------------------------------------------------------------------
def test_regional_reads_go_over_tls_through_the_generated_feast_config(secure: Topology) -> None:
    """`replicator region feast-config R`'s plan reads R's Redis as its reader, over TLS."""
    region = "eu-west-1"
    endpoint = secure.region(region).redis
    writer = connect(endpoint, endpoint.writer)
    key = f"test:security:{uuid.uuid4().hex}".encode()
    writer.hset(key, "f", "v")
    document = yaml.safe_load(feature_store_yaml(secure, region, FeastSettings()))
    plan = ReadPlan.model_validate(document["online_store"]["plan"])
    assert plan.regions[0].tls.enabled and plan.regions[0].username == "reader"
    reader = RegionalReader(plan)
    try:
        assert reader.redis.hmget_on(region, [(key, [b"f"])]) == [[b"v"]]
        assert reader.monitor.measure(region).reachable
        assert reader.monitor.measure(plan.primary.name).reachable
    finally:
        reader.close()
    # The same plan without its TLS reaches nothing: the TLS above is what made it work.
    plain = plan.model_copy(
        update={"regions": [r.model_copy(update={"tls": TlsSettings()}) for r in plan.regions]}
    )
    reader = RegionalReader(plain)
    try:
        assert not reader.monitor.measure(region).reachable
        with pytest.raises(RegionUnavailable):
            reader.redis.hmget_on(region, [(key, [b"f"])])
    finally:
        reader.close()
        writer.delete(key)
        writer.close()


# Rotation while writes flow ---------------------------------------------------------------
def test_rotating_the_workers_redis_password_loses_no_acknowledged_write(
    secure: Topology,
) -> None:
    """Add the new password beside the old, move the writer over, drop the old one."""
    endpoint = secure.region("eu-west-1").redis
    admin = connect(endpoint, endpoint.admin)
    name, old = endpoint.writer.username, endpoint.writer.password.get_secret_value()
    new = f"rotated-{uuid.uuid4().hex}"
    key = f"test:rotation:{uuid.uuid4().hex}"
    acked: list[int] = []
    stop = threading.Event()

    def write(current: list[str]) -> None:
        """HSETs in a loop; a new client (a worker restart) when the password changes."""
        password, client, i = "", None, 0
        while not stop.is_set():
            if password != current[0]:
                password = current[0]
                user = RedisUser(username=name, password=SecretStr(password))
                if client is not None:
                    client.close()
                client = connect(endpoint, user)
            assert client is not None
            client.hset(key, str(i), "1")
            acked.append(i)
            i += 1
        if client is not None:
            client.close()

    current = [old]
    writer = threading.Thread(target=write, args=(current,))
    writer.start()
    try:
        wait_until(lambda: len(acked) > 50, 10, "writes with the old password")
        admin.execute_command("ACL", "SETUSER", name, f">{new}")  # both passwords valid
        current[0] = new
        seen = len(acked)
        wait_until(lambda: len(acked) > seen + 50, 10, "writes with the new password")
        admin.execute_command("ACL", "SETUSER", name, f"<{old}")  # the old one stops working
        seen = len(acked)
        wait_until(lambda: len(acked) > seen + 50, 10, "writes after the old one is gone")
    finally:
        stop.set()
        writer.join(10)
    try:
        with pytest.raises(redis.AuthenticationError):
            connect(endpoint, endpoint.writer).ping()  # the old password
        stored = {int(f) for f in admin.hkeys(key)}
        assert set(acked) <= stored
    finally:
        admin.execute_command("ACL", "SETUSER", name, f">{old}", f"<{new}")
        admin.delete(key)
        admin.close()


def test_rotating_a_workers_scram_secret_loses_no_acknowledged_record(
    secure: Topology, topics: dict[str, str]
) -> None:
    """The primary keeps producing while the worker's secret changes and the worker
    reconnects with it: the worker reads every acknowledged record."""
    region = "eu-west-1"
    user = secure.region(region).kafka_user
    assert user is not None
    admin = KafkaAdmin(client_config(secure, "admin"))
    topic = topics["subscribed"]
    marker = uuid.uuid4().hex.encode()
    acked: list[bytes] = []
    stop = threading.Event()

    def produce() -> None:
        producer = Producer(client_config(secure, "primary"))
        i = 0
        while not stop.is_set():
            value = marker + b":%d" % i

            def on_delivery(err: Any, _msg: Any, value: bytes = value) -> None:
                if err is None:
                    acked.append(value)

            producer.produce(topic, value=value, partition=0, on_delivery=on_delivery)
            producer.poll(0.005)
            i += 1
        producer.flush(15)

    group = f"{secure.consumer_group(region)}-rotation-{uuid.uuid4().hex[:6]}"
    new = f"rotated-{uuid.uuid4().hex}"

    def consumer(password: str) -> Consumer:
        config = {**client_config(secure, "worker", region=region), "sasl.password": password}
        c = Consumer({**config, "group.id": group, "auto.offset.reset": "earliest"})
        c.subscribe([topic])
        return c

    seen: set[bytes] = set()

    def read(c: Consumer, until: int) -> None:
        def enough() -> bool:
            for msg in c.consume(500, 0.5):
                if msg.error() is None and (msg.value() or b"").startswith(marker):
                    seen.add(msg.value())
            return len(seen) >= until

        wait_until(enough, 60, f"{until} records read", observe=lambda: len(seen))

    thread = threading.Thread(target=produce)
    thread.start()
    try:
        before = consumer(user.password.get_secret_value())
        read(before, 100)
        admin.set_scram_password(user.username, new)
        read(before, len(seen) + 100)  # an authenticated session keeps working
        before.close()  # commits what it read (auto commit)
        assert not _lists_topics(client_config(secure, "worker", region=region))  # old secret
        after = consumer(new)
        read(after, len(seen) + 100)
        stop.set()
        thread.join(30)
        read(after, len(set(acked)))
        assert set(acked) <= seen
        after.close()
    finally:
        stop.set()
        thread.join(30)
        admin.set_scram_password(user.username, user.password.get_secret_value())
