"""The checker through the faults of the chaos suite's broker-kill and redis-kill runs
(docs/chaos.md), on real services: it must keep running, report what it cannot read and
measure again by itself once the source is back (issue 10: a checker that never goes blind).

- A Kafka broker that restarts (a broker of the test's own, ``private_kafka.py``): its group
  coordinators unload and load again. Read through librdkafka's admin API, the
  NOT_COORDINATOR answers of that moment killed the checker with SIGSEGV
  (consistency/adapters/kafka_log.py says why). The checker's Kafka adapter reads in a child
  process, so that a crash fails the test instead of ending the test run.
- A region's Redis killed with ``kill -9`` (a redis-server of the test's own,
  ``private_redis.py``) while the heartbeat emitter and the region's worker run.

Each test has its own project, hence its own topics, groups and Redis keys.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from consistency_serve import ConsistencyServe
from harness import ReplicatedProject, wait_for
from private_kafka import PrivateKafka
from private_redis import PrivateRedis
from region_log import RegionLog

from consistency.adapters.kafka_log import KafkaLog
from consistency.errors import SourceUnavailable
from replicator.adapters.kafka_config import client_config

pytestmark = pytest.mark.slow

REGION = "eu-west-1"
VIEW = "card_spending_stats"
PARTITIONS = 3
RECORDS = 5
"""Records written to every partition of the view's topic."""
COMMITTED = {"us-east-1": 5, "eu-west-1": 3, "ap-southeast-1": 1}
"""Offset each region's consumer group committed on every partition."""
RESTARTS = 2
COORDINATOR_NOT_READY = {
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.NOT_COORDINATOR,
}


# A broker restart --------------------------------------------------------------------------
@pytest.fixture
def broker_world(
    local_stack_only: None, config_file: Path, tmp_path: Path
) -> Iterator[tuple[ReplicatedProject, PrivateKafka]]:
    """A project on a broker of its own: one view's topic with ``RECORDS`` records per
    partition and every region's group committed at ``COMMITTED``."""
    project = ReplicatedProject(config_file, tmp_path, partitions=PARTITIONS)
    kafka = PrivateKafka(project, tmp_path / "kafka")
    _write_and_commit(project)
    try:
        yield project, kafka
    finally:
        kafka.stop()


def _write_and_commit(project: ReplicatedProject) -> None:
    """The view's topic, ``RECORDS`` records per partition, each region's group at ``COMMITTED``."""
    topology = project.topology
    topic = topology.topic_for(VIEW)
    admin = AdminClient(client_config(topology, "admin"))
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(30)
    producer = Producer(client_config(topology, "primary"))
    for partition in range(PARTITIONS):
        for n in range(RECORDS):
            producer.produce(topic, b"record %d" % n, partition=partition)
    assert producer.flush(30) == 0
    for region, offset in COMMITTED.items():
        offsets = [TopicPartition(topic, p, offset) for p in range(PARTITIONS)]
        worker = client_config(topology, "worker", region=region)
        group = Consumer({**worker, "group.id": topology.consumer_group(region)})
        try:  # a new broker creates and loads its offsets topic on the first request
            wait_for(partial(_commit, group, offsets), 60, f"{region}'s group to commit")
        finally:
            group.close()


def _commit(group: Consumer, offsets: list[TopicPartition]) -> bool:
    try:
        group.commit(offsets=offsets, asynchronous=False)
    except KafkaException as exc:
        if exc.args[0].code() not in COORDINATOR_NOT_READY:
            raise
        return False
    return True


def read_committed_in_a_loop(
    connection: dict[str, Any],
    groups: dict[str, str],
    topic: str,
    stop: Any,
    ok: Any,
    failed: Any,
    out: Any,
) -> None:
    """Child process: the checker's Kafka adapter read by one thread per region, each reading
    its group's committed offsets over and over (as the region threads of back-to-back
    staleness rounds do) until ``stop``; counts answers and ``SourceUnavailable``s, and puts
    the last offsets read per region on ``out``."""
    log = KafkaLog(connection, timeout_seconds=2.0)
    positions = [(topic, p) for p in range(PARTITIONS)]
    last: dict[str, dict[int, int | None]] = {}

    def loop(region: str) -> None:
        while not stop.is_set():
            try:
                found = log.committed(groups[region], positions)
            except SourceUnavailable:
                with failed.get_lock():
                    failed.value += 1
                continue
            last[region] = {p: o for (_, p), o in found.items()}
            with ok.get_lock():
                ok.value += 1

    threads = [threading.Thread(target=loop, args=(r,)) for r in groups]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.close()
    out.put(last)


def _counted(counter: Any, child: Any) -> Callable[[], bool]:
    """A condition: ``counter`` went past its value now (or ``child`` ended: the caller's
    assertion then says how)."""
    start = counter.value
    return lambda: counter.value > start or not child.is_alive()


def test_committed_offsets_are_read_through_a_broker_restart_without_crashing(
    broker_world: tuple[ReplicatedProject, PrivateKafka],
) -> None:
    """While the restarted broker's coordinators unload and load, reads fail as
    ``SourceUnavailable`` and then answer again; before the fix the reading process died
    of SIGSEGV in librdkafka (exit status -11) at the first restart."""
    project, kafka = broker_world
    context = multiprocessing.get_context("spawn")  # no librdkafka threads of ours inherited
    stop, ok, failed = context.Event(), context.Value("i", 0), context.Value("i", 0)
    out = context.Queue()
    groups = {r: project.topology.consumer_group(r) for r in COMMITTED}
    topic = project.topology.topic_for(VIEW)
    child = context.Process(
        target=read_committed_in_a_loop,
        args=(client_config(project.topology, "checker"), groups, topic, stop, ok, failed, out),
    )
    child.start()
    try:
        wait_for(_counted(ok, child), 30, "the first committed offsets")
        for restart in range(1, RESTARTS + 1):
            kafka.stop()
            wait_for(_counted(failed, child), 30, "a read failing while the broker is down")
            kafka.start()
            wait_for(_counted(ok, child), 60, f"offsets read again after restart {restart}")
            assert child.is_alive(), f"the reading process died (exit status {child.exitcode})"
    finally:
        stop.set()
        child.join(60)
    assert child.exitcode == 0
    last = out.get(timeout=10)
    assert last == {r: dict.fromkeys(range(PARTITIONS), o) for r, o in COMMITTED.items()}


# A region's Redis killed --------------------------------------------------------------------
@pytest.fixture
def redis_world(
    local_stack_only: None, config_file: Path, tmp_path: Path
) -> Iterator[tuple[ReplicatedProject, PrivateRedis]]:
    """A project whose ``REGION`` has a redis-server of its own and a worker, and whose
    primary runs the heartbeat emitter."""
    project = ReplicatedProject(config_file, tmp_path, partitions=PARTITIONS)
    server = PrivateRedis(project, REGION, tmp_path / "redis")
    RegionLog(project, REGION)  # the project's topic, and its schema in every bucket
    project.start_worker_process(REGION)
    project.start_heartbeats(0.2)
    try:
        yield project, server
    finally:
        project.stop()
        server.stop()


def _region(serve: ConsistencyServe) -> dict[str, Any]:
    return dict(serve.regions().get(REGION) or {})


def test_serve_reports_a_killed_region_redis_as_unreachable_and_measures_it_again(
    redis_world: tuple[ReplicatedProject, PrivateRedis], tmp_path: Path
) -> None:
    project, server = redis_world
    schedule = {"staleness_seconds": 0.5, "read_timeout_seconds": 2.0}
    serve = ConsistencyServe(
        project.topology_path,
        tmp_path,
        {
            "schedule": {"sampled_seconds": 3600, "full_cron": None, **schedule},
            "bounds": {"max_version_skew_seconds": None},
            "webhook": {"url": None},
        },
    )
    try:
        wait_for(lambda: _region(serve).get("status") == "ok", 60, f"{REGION} measured ok")
        server.kill()
        down = wait_for(
            lambda: (r := _region(serve)).get("status") == "violated" and r,
            30,
            f"{REGION} reported violated while its Redis is down",
        )
        assert down["staleness_seconds"] == "unmeasurable"  # never a reassuring figure
        assert any(REGION in e for e in down["errors"]), down["errors"]
        assert serve.serving()
        server.start()
        wait_for(lambda: _region(serve).get("status") == "ok", 60, f"{REGION} measured ok again")
        assert serve.serving(), f"consistency serve died (exit status {serve.proc.poll()})"
    finally:
        status = serve.stop()
    assert status == 0, serve.log.read_text()[-3000:]
