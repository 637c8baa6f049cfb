"""Hostile records, produced straight into a project's feature-view topic.

Each kind is what a buggy or malicious producer (or a wide feature view) could put in the
log; a worker must dead-letter or apply it and keep going, never wedge the partition:
- ``garbage``: valid ``rows`` headers, random payload bytes;
- ``truncated``: a valid row batch cut in half;
- ``forged-heartbeat``: a heartbeat stamped 2^63-1 ns, which the primary never emitted;
- ``oversized``: one row with a 4 MiB feature value;
- ``wide``: one row with 5,000 fields (valid headers and fingerprint).
Hostile rows use entity ids far outside the workload's pool.
"""

from __future__ import annotations

import random
import time

from benchmarks.dataset import FastRows
from replicator.adapters.kafka_publisher import KafkaPublisher
from replicator.core import wire
from replicator.core.records import Heartbeat, Row, RowBatch

KINDS = ("garbage", "truncated", "forged-heartbeat", "oversized", "wide")
HOSTILE_ID = 10_000_000


def produce(
    publisher: KafkaPublisher,
    topic: str,
    project: str,
    view: str,
    fingerprint: str,
    partitions: int,
    seed: int,
) -> dict[str, int]:
    """Send one record of every kind; returns records sent per kind."""
    rnd = random.Random(seed)
    fast = FastRows(project, view)
    now = time.time_ns()
    sent: dict[str, int] = {}

    def batch(entity: int, fields: tuple[bytes, ...], values: tuple[bytes, ...]) -> RowBatch:
        es = now // 1_000_000_000
        from google.protobuf.timestamp_pb2 import Timestamp

        ts = Timestamp(seconds=es, nanos=0).SerializeToString()
        row = Row(fast.key(entity), ts, es, 0, es, 0, values)
        return RowBatch(view, fields, (row,), fingerprint, "", now)

    def send(kind: str, partition: int, headers: wire.Headers, payload: bytes) -> None:
        publisher.send(topic, partition, payload, headers)
        sent[kind] = sent.get(kind, 0) + 1

    valid = batch(HOSTILE_ID, fast.fields, fast.values(1))
    headers, payload = wire.encode_rows(valid)
    part = wire.partition_for(valid.rows[0].key, partitions)
    send("garbage", part, headers, rnd.randbytes(300))
    send("truncated", part, headers, payload[: len(payload) // 2])
    hb_headers, hb_payload = wire.encode_heartbeat(Heartbeat(2**62, 2**63 - 1))
    for partition in range(partitions):
        send("forged-heartbeat", partition, hb_headers, hb_payload)
    big = list(fast.values(2))
    big[0] = b"\x20" + rnd.randbytes(4 * 1024 * 1024)  # a Value proto field tag, then bytes
    oversized = batch(HOSTILE_ID + 1, fast.fields, tuple(big))
    headers, payload = wire.encode_rows(oversized)
    send("oversized", wire.partition_for(oversized.rows[0].key, partitions), headers, payload)
    width = 5000
    fields = tuple(i.to_bytes(4, "little") for i in range(width))
    wide = batch(HOSTILE_ID + 2, fields, tuple(b"\x20\x01" for _ in range(width)))
    headers, payload = wire.encode_rows(wide)
    send("wide", wire.partition_for(wide.rows[0].key, partitions), headers, payload)
    publisher.flush(60)
    return sent
