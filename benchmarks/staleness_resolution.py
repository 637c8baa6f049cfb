"""``staleness_resolution``: the smallest staleness change the checker reports reliably.

On the local stack, a throwaway project gets two feature-view topics, the primary's
heartbeat emitter (in process) and one region's worker whose source holds every record
back by a fixed delay D (2.37 s): the region's true staleness is D plus the worker's own
apply latency, constant. The checker (``Checker.measure_staleness``, real Redis and Kafka) then
reads the region's staleness many times. The spread of those readings (p99 - p1) is the
smallest change a single reading can tell apart: a step larger than it moves every reading.
Run for several heartbeat intervals; readings are differences of primary-clock stamps, so
the resolution is the interval (plus the emitter's scheduling jitter).

Standalone (the benchmarks runner is still being written):
    python -m benchmarks.staleness_resolution [--quick]
``run(quick)`` returns {"unit", "value", "baselines", "params", "target", "met", ...}.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any

from confluent_kafka import Message as KafkaMessage
from confluent_kafka.admin import AdminClient

from consistency.adapters.memory import MemoryManifest
from consistency.config import ConsistencySettings
from consistency.wiring import build_checker, close_checker
from replicator.adapters.kafka_config import client_config
from replicator.adapters.kafka_publisher import KafkaPublisher
from replicator.adapters.kafka_source import KafkaSource
from replicator.adapters.redis_store import connect
from replicator.assembly import build_worker, region_pattern
from replicator.config import Topology, load_topology
from replicator.heartbeat import (
    HeartbeatEmitter,
    KafkaTopicLister,
    RedisEmissionRecord,
    applied_key,
    emission_key,
)
from replicator.stack.kafka_security import grant_project, revoke_project

NAME = "staleness_resolution"
TARGET_SECONDS = 1.0
DELAY_SECONDS = 2.37
"""Not a multiple of any interval tried: readings then straddle two heartbeat rounds."""
ROOT = Path(__file__).resolve().parents[1]


class DelayedSource:
    """Hands records to the worker only once they are ``delay`` seconds old (CreateTime)."""

    def __init__(self, inner: KafkaSource, delay: float) -> None:
        self.inner = inner
        self.delay = delay
        self.held: deque[KafkaMessage] = deque()

    def poll_batch(self, max_messages: int, timeout: float) -> list[KafkaMessage]:
        self.held.extend(self.inner.poll_batch(max_messages, 0.02))
        cutoff_ms = time.time() * 1000 - self.delay * 1000
        out: list[KafkaMessage] = []
        while self.held and len(out) < max_messages and self.held[0].timestamp()[1] <= cutoff_ms:
            out.append(self.held.popleft())
        if not out:
            time.sleep(min(timeout, 0.01))
        return out

    def pause(self, topic: str, partition: int, offset: int) -> None:
        self.inner.pause(topic, partition, offset)

    def resume(self, topic: str, partition: int) -> None:
        self.inner.resume(topic, partition)

    def is_paused(self, topic: str, partition: int) -> bool:
        return self.inner.is_paused(topic, partition)

    def commit(self, positions: dict[tuple[str, int], int]) -> None:
        self.inner.commit(positions)

    def close(self) -> None:
        self.inner.close()


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def measure(topology: Topology, region: str, interval: float, seconds: float) -> dict[str, float]:
    primary = topology.region(topology.primary_region).redis
    record = RedisEmissionRecord(
        lambda: connect(primary, primary.writer), topology.project, interval
    )
    emitter = HeartbeatEmitter(
        topics=KafkaTopicLister(
            AdminClient(client_config(topology, "primary")),
            topology.kafka.topic_prefix,
            topology.project,
        ),
        producer=KafkaPublisher(
            client_config(topology, "primary"),
            client_id="bench-heartbeats",
            options={"linger.ms": 0},
        ),
        record=record,
        interval_seconds=interval,
    )
    thread = threading.Thread(target=emitter.run, daemon=True)
    thread.start()
    checker = build_checker(topology, ConsistencySettings())
    checker.manifest = MemoryManifest({})
    readings: list[float] = []
    try:
        time.sleep(DELAY_SECONDS + 3 * interval + 1.0)  # the delayed worker reaches steady state
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            value = checker.measure_staleness().regions[region].staleness_seconds
            if value is not None:
                readings.append(value)
            time.sleep(0.05)
    finally:
        emitter.stop()
        thread.join(10)
        record.close()
        close_checker(checker)
    errors = [r - DELAY_SECONDS for r in readings]
    return {
        "interval_s": interval,
        "readings": len(readings),
        "resolution_s": round(_quantile(readings, 0.99) - _quantile(readings, 0.01), 3),
        "min_s": round(min(readings), 3),
        "max_s": round(max(readings), 3),
        "median_error_s": round(statistics.median(errors), 3),
        "error_p1_s": round(_quantile(errors, 0.01), 3),
        "error_p99_s": round(_quantile(errors, 0.99), 3),
    }


def run(quick: bool = False) -> dict[str, Any]:
    base = load_topology(os.environ.get("REPLICATOR_CONFIG") or ROOT / "infra" / "topology.yaml")
    project = f"bench_stale_{uuid.uuid4().hex[:8]}"
    topology = base.model_copy(update={"project": project})
    grant_project(topology)  # this project's Kafka ACLs on a secure stack
    region = topology.replica_regions[0]
    topics = [topology.topic_for(v) for v in ("view_a", "view_b")]
    admin = AdminClient(client_config(topology, "admin"))
    publisher = KafkaPublisher(client_config(topology, "primary"), client_id="bench-setup")
    publisher.ensure_topics(topics, topology.kafka.partitions, topology.kafka.replication_factor)
    source = KafkaSource(
        client_config(topology, "worker", region=region),
        group_id=topology.consumer_group(region),
        pattern=region_pattern(topology, region),
    )
    worker = build_worker(topology, region, source=DelayedSource(source, DELAY_SECONDS))
    worker_thread = threading.Thread(target=worker.run, daemon=True)
    worker_thread.start()
    intervals = [1.0, 0.2] if quick else [1.0, 0.5, 0.2, 0.1]
    seconds = 10.0 if quick else 20.0
    rows = []
    try:
        for interval in intervals:
            rows.append(measure(topology, region, interval, max(seconds, 15 * interval)))
    finally:
        worker.stop()
        worker_thread.join(30)
        _cleanup(topology, region, topics, admin)
    best = min(r["resolution_s"] for r in rows)
    default = next(r for r in rows if r["interval_s"] == 1.0)
    return {
        "unit": "s",
        "value": best,
        "baselines": {
            "default_interval_1s_resolution_s": default["resolution_s"],
            "elasticache_replication_lag_metric_resolution_s": 60.0,
        },
        "params": {"delay_s": DELAY_SECONDS, "region": region, "per_interval": rows},
        "target": f"<= {TARGET_SECONDS:.0f} s (and say how low it goes)",
        "met": best <= TARGET_SECONDS,
    }


def _cleanup(topology: Topology, region: str, topics: list[str], admin: AdminClient) -> None:
    for future in admin.delete_topics(topics, operation_timeout=30).values():
        with contextlib.suppress(Exception):  # already gone: nothing to clean
            future.result(30)
    group = topology.consumer_group(region)
    with contextlib.suppress(Exception):
        admin.delete_consumer_groups([group])[group].result(30)
    primary = topology.region(topology.primary_region).redis
    client = connect(primary, primary.admin)
    client.delete(emission_key(topology.project))
    with contextlib.suppress(Exception):  # the ACLs grant_project added for this run
        revoke_project(topology)
    client.close()
    config = topology.region(region).redis
    client = connect(config, config.admin)
    client.delete(*[applied_key(t, p) for t in topics for p in range(topology.kafka.partitions)])
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.staleness_resolution")
    parser.add_argument("--quick", action="store_true", help="two intervals, shorter runs")
    print(json.dumps({NAME: run(parser.parse_args().quick)}, indent=2))


if __name__ == "__main__":
    main()
