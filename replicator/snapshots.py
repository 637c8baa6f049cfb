"""Region snapshots in object storage: a region's Feast keys and versions, with the offsets
they include, so that a region can be brought back without the log's whole history.

Consistency: the region's applied marks (``_replicator:applied``: per partition, every
record below is applied in this Redis) are read *before* the keys are scanned. Every row of
a record below a mark is therefore in Redis when the scan starts, and SCAN returns every key
present throughout, so the snapshot holds each of those rows or a newer version of it. Rows
applied during the scan may be in it too. Replaying the log from the marks over the snapshot
converges because the apply is last-writer-wins and idempotent: a row already in the snapshot
is skipped or rewritten with the same bytes (``replicator/bootstrap.py``).

Layout (``replicator.core.keys``), written to the region's own bucket:

    feast/<project>/snapshots/<region>/<id>/chunk-<n>.msgpack   states of up to 1,000 keys
    feast/<project>/snapshots/<region>/<id>/manifest.json       written last

``<id>`` is the UTC time of the snapshot (``20261130T120000.123456Z-ab12``), so ids sort by age. A
snapshot without a manifest is unfinished and never used. The manifest names every chunk with
its sha256, size and key count, the offsets, the partition count and the views; like a
registry version, a snapshot is immutable once its manifest exists.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from replicator.adapters.redis_marks import RedisAppliedMarks
from replicator.adapters.redis_state import count_states, feast_key_batches, read_states
from replicator.adapters.redis_store import RegionStore
from replicator.adapters.s3 import S3ObjectStore
from replicator.assembly import region_pattern
from replicator.config import Topology
from replicator.core.keys import snapshot_chunk_key, snapshot_manifest_key, snapshots_prefix
from replicator.core.ports import ObjectStore
from replicator.errors import Incomplete

log = logging.getLogger(__name__)

FORMAT = 1
CHUNK_KEYS = 1000
Partition = tuple[str, int]


class SnapshotUnreadable(Incomplete):
    """A snapshot cannot be used: no or an invalid manifest, a chunk missing or corrupt."""


@dataclass(frozen=True)
class Snapshot:
    """A finished snapshot, as its manifest describes it."""

    id: str
    region: str
    offsets: dict[Partition, int]
    """Per partition, the offset from which the log must be replayed over the snapshot."""
    chunks: list[dict[str, Any]]
    """``{"key", "sha256", "bytes", "keys"}`` per chunk, in order."""
    keys: int
    partitions: int
    feature_views: list[str]
    created_at: str

    def to_json(self, project: str) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "project": project,
            "region": self.region,
            "id": self.id,
            "created_at": self.created_at,
            "partitions": self.partitions,
            "feature_views": self.feature_views,
            "offsets": {f"{t}:{p}": o for (t, p), o in sorted(self.offsets.items())},
            "keys": self.keys,
            "chunks": self.chunks,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Snapshot:
        """Raises ``SnapshotUnreadable`` for a document this version cannot use."""
        try:
            if doc["format"] != FORMAT:
                raise SnapshotUnreadable(f"snapshot format {doc['format']} (expected {FORMAT})")
            offsets = {}
            for field, offset in doc["offsets"].items():
                topic, _, partition = field.rpartition(":")
                offsets[(topic, int(partition))] = int(offset)
            return cls(
                str(doc["id"]),
                str(doc["region"]),
                offsets,
                list(doc["chunks"]),
                int(doc["keys"]),
                int(doc["partitions"]),
                list(doc["feature_views"]),
                str(doc["created_at"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SnapshotUnreadable(f"invalid snapshot manifest: {exc!r}") from exc


def new_id(now: float) -> str:
    """``20261130T120000.123456Z-ab12``: sorts by time (to the microsecond)."""
    micros = int(now * 1_000_000) % 1_000_000
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(int(now)))
    return f"{stamp}.{micros:06d}Z-{secrets.token_hex(2)}"


def take_snapshot(
    topology: Topology,
    region: str,
    *,
    store: ObjectStore | None = None,
    keep: int | None = None,
    progress: Callable[[str], None] = print,
    now: Callable[[], float] = time.time,
) -> Snapshot:
    """Snapshot ``region`` into its own bucket; returns what the manifest says.

    Raises ``Incomplete`` when the region has no applied marks (nothing replicated yet, or
    its Redis lost its data: bootstrap or rebuild it first), ``TransientError`` when Redis
    cannot answer, ``ObjectStoreUnavailable``/``ObjectStoreRefused`` from S3. Keeps the
    ``keep`` newest snapshots (default ``snapshots.keep``) and deletes older ones.
    """
    config = topology.region(region)
    store = store or S3ObjectStore.at(config.s3)
    project = topology.project
    started = now()
    snapshot_id = new_id(started)
    with RegionStore(config.redis, config.redis.writer) as redis_store:
        topics = re.compile(region_pattern(topology, region))
        offsets = {  # BEFORE the scan
            tp: offset
            for tp, offset in RedisAppliedMarks(redis_store).all_marks().items()
            if topics.match(tp[0])
        }
        if not offsets:
            raise Incomplete(
                f"{region} has no applied marks: nothing was replicated there yet, or its "
                f"Redis lost its data (`replicator region bootstrap {region}` first)"
            )
        chunks: list[dict[str, Any]] = []
        keys = 0
        for batch in feast_key_batches(redis_store.client, project, CHUNK_KEYS):
            states = read_states(redis_store.client, batch, topology.kafka.partitions)
            key = snapshot_chunk_key(project, region, snapshot_id, len(chunks))
            store.put(key, states, content_type="application/msgpack")
            count = count_states(states)
            chunks.append(
                {
                    "key": key,
                    "sha256": hashlib.sha256(states).hexdigest(),
                    "bytes": len(states),
                    "keys": count,
                }
            )
            keys += count
    snapshot = Snapshot(
        snapshot_id,
        region,
        offsets,
        chunks,
        keys,
        topology.kafka.partitions,
        list(config.feature_views),
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
    )
    body = json.dumps(snapshot.to_json(project), indent=1).encode()
    store.put(
        snapshot_manifest_key(project, region, snapshot_id), body, content_type="application/json"
    )
    where = store.where(snapshots_prefix(project, region) + snapshot_id)
    progress(
        f"snapshot {snapshot_id} of {region}: {keys:,} keys in {len(chunks)} chunks, "
        f"{len(offsets)} partitions, {now() - started:.1f}s -> {where}"
    )
    prune(store, project, region, topology.snapshots.keep if keep is None else keep)
    return snapshot


def snapshot_ids(store: ObjectStore, project: str, region: str) -> tuple[list[str], list[str]]:
    """(finished ids, unfinished ids), newest first."""
    prefix = snapshots_prefix(project, region)
    objects: dict[str, set[str]] = {}
    for key in store.keys(prefix):
        snapshot_id, _, name = key[len(prefix) :].partition("/")
        objects.setdefault(snapshot_id, set()).add(name)
    finished = sorted((i for i, n in objects.items() if "manifest.json" in n), reverse=True)
    unfinished = sorted((i for i in objects if i not in finished), reverse=True)
    return finished, unfinished


def read_snapshot(store: ObjectStore, project: str, region: str, snapshot_id: str) -> Snapshot:
    """The manifest of a finished snapshot. Raises ``SnapshotUnreadable``."""
    key = snapshot_manifest_key(project, region, snapshot_id)
    body = store.get(key)
    if body is None:
        raise SnapshotUnreadable(f"{store.where(key)} does not exist")
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise SnapshotUnreadable(f"{store.where(key)} is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise SnapshotUnreadable(f"{store.where(key)} is not a JSON object")
    return Snapshot.from_json(doc)


def read_chunk(store: ObjectStore, chunk: dict[str, Any]) -> bytes:
    """A chunk's bytes, checked against the manifest. Raises ``SnapshotUnreadable``."""
    body = store.get(chunk["key"])
    if body is None:
        raise SnapshotUnreadable(f"{store.where(chunk['key'])} is missing")
    if hashlib.sha256(body).hexdigest() != chunk["sha256"]:
        raise SnapshotUnreadable(f"{store.where(chunk['key'])} does not match its checksum")
    return body


def prune(store: ObjectStore, project: str, region: str, keep: int) -> list[str]:
    """Delete all but the ``keep`` newest finished snapshots, and unfinished ones older than
    the newest finished one; returns the deleted ids."""
    finished, unfinished = snapshot_ids(store, project, region)
    newest = finished[0] if finished else ""
    doomed = finished[keep:] + [i for i in unfinished if i < newest]
    prefix = snapshots_prefix(project, region)
    for snapshot_id in doomed:
        keys = store.keys(f"{prefix}{snapshot_id}/")
        for key in sorted(keys, key=lambda k: not k.endswith("/manifest.json")):
            store.delete(key)  # the manifest first: never a manifest without its chunks
    return doomed
