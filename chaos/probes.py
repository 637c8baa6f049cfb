"""Reads the state a run is judged on: Feast keys per region, counters, dead letters."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Consumer, TopicPartition

from replicator.adapters.redis_store import feast_hashes
from replicator.core import wire

FeastKeys = dict[bytes, dict[bytes, bytes]]


def region_keys(project: Any) -> dict[str, FeastKeys]:
    """Every Feast key of the project with all its fields (HGETALL), per region."""
    return {r: feast_hashes(project.admin(r), project.name) for r in project.topology.regions}


def diff_against(primary: FeastKeys, region: FeastKeys) -> tuple[int, int, int]:
    """(missing, extra, different) keys of ``region`` against ``primary``."""
    missing = len(primary.keys() - region.keys())
    extra = len(region.keys() - primary.keys())
    differ = sum(1 for k in primary.keys() & region.keys() if primary[k] != region[k])
    return missing, extra, differ


def counters(project: Any, keys: FeastKeys, entities: list[int]) -> dict[int, int | None]:
    """The workload's counter feature of each entity as stored (None: missing)."""
    from feast.protos.feast.types.Value_pb2 import Value

    from benchmarks.dataset import FastRows
    from chaos.workload import COUNTER_FEATURE
    from replicator.feast_layout import field_key

    fast = FastRows(project.name, project.view_name)
    field = field_key(project.view_name, COUNTER_FEATURE)
    out: dict[int, int | None] = {}
    for entity in entities:
        raw = keys.get(fast.key(entity), {}).get(field)
        out[entity] = None if raw is None else int(Value.FromString(raw).int64_val)
    return out


def dead_letters(
    connection: dict[str, Any], dlq_topic: str, source_topic: str, timeout: float = 30
) -> int:
    """Dead-letter records whose source is ``source_topic`` (all regions together);
    ``connection``: librdkafka settings (``kafka_config.client_config``, admin principal)."""
    consumer = Consumer(
        {
            **connection,
            "group.id": "chaos-dlq-reader",
            "enable.auto.commit": False,
            "log_level": 0,
        }
    )
    try:
        meta = consumer.list_topics(dlq_topic, timeout=timeout).topics.get(dlq_topic)
        if meta is None or not meta.partitions:
            return 0
        count = 0
        for partition in meta.partitions:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(dlq_topic, partition), timeout=timeout
            )
            if high <= low:
                continue
            consumer.assign([TopicPartition(dlq_topic, partition, low)])
            position = low
            while position < high:
                msg = consumer.poll(timeout)
                if msg is None:
                    break
                position = (msg.offset() or position) + 1
                headers = dict(msg.headers() or [])
                raw = headers.get(wire.H_SOURCE) or b""
                source = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
                if source.startswith(source_topic + ":"):
                    count += 1
        return count
    finally:
        consumer.close()
