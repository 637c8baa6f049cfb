"""``replicator region bootstrap R [--from PEER]``: a region from a snapshot plus the log tail.

Takes the newest usable snapshot (``replicator/snapshots.py``) of R, or of a peer region that
subscribes to the same views, restores its keys and versions into R's Redis, raises R's
applied marks to the snapshot's offsets and replays the log from those offsets through the
worker's apply script (the rebuild's replay, ``replicator/rebuild.py``). Its time follows the
state, not the history: only records newer than the snapshot are read from Kafka.

Correct while R's worker runs and after backfills of older rows: the restore writes a view of
a key only when the snapshot's version is at least the stored one (the apply script's rule),
and the replay goes through that script too, so whichever writes second changes nothing.

A snapshot is skipped, and the next older one tried, when its manifest is missing or invalid,
a chunk is missing or fails its checksum, it was taken for other views, or the log no longer
holds the records after its offsets (retention). With none usable, ``Incomplete`` names the
reason for each (``replicator region bootstrap`` exits 5).
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from replicator.adapters.redis_marks import RedisAppliedMarks
from replicator.adapters.redis_state import RestoreCounts, field_owners, restore_states
from replicator.adapters.redis_store import RegionStore
from replicator.adapters.s3 import S3ObjectStore
from replicator.config import Topology
from replicator.core.keys import manifest_key
from replicator.core.ports import ObjectStore
from replicator.errors import Incomplete
from replicator.rebuild import RebuildReport, describe_missing, replay, replay_source
from replicator.snapshots import (
    Snapshot,
    SnapshotUnreadable,
    read_chunk,
    read_snapshot,
    snapshot_ids,
)

PREFETCH = 4
"""Snapshot chunks read from S3 ahead of the one being restored."""


@dataclass
class BootstrapReport:
    region: str
    snapshot: str
    restored: RestoreCounts
    restore_seconds: float
    replay: RebuildReport
    skipped: list[str] = field(default_factory=list)
    """Newer snapshots that could not be used, with the reason."""

    @property
    def seconds(self) -> float:
        return self.restore_seconds + self.replay.seconds


def bootstrap_region(
    topology: Topology,
    region: str,
    *,
    source_region: str | None = None,
    store: ObjectStore | None = None,
    progress: Callable[[str], None] = print,
    retry_seconds: float = 30.0,
) -> BootstrapReport:
    """Bring ``region`` to the live state from the newest usable snapshot of
    ``source_region`` (default: itself). Raises ``Incomplete`` naming every snapshot tried
    and why it was unusable, or what the replay could not apply (as ``rebuild_region``)."""
    source = source_region or region
    store = store or S3ObjectStore.at(topology.region(source).s3)
    finished, _ = snapshot_ids(store, topology.project, source)
    if not finished:
        raise Incomplete(
            f"no snapshot of {source} in {store.where()}: take one with `replicator region "
            f"snapshot {source}`, or replay the whole log with `replicator region rebuild {region}`"
        )
    skipped: list[str] = []
    for snapshot_id in finished:
        try:
            snapshot = _usable(topology, region, store, source, snapshot_id)
            log_tail = replay_source(topology, region, snapshot.offsets)
            began = time.monotonic()
            try:
                if log_tail.missing:  # retention removed records the snapshot does not hold
                    raise SnapshotUnreadable(
                        describe_missing(region, log_tail.missing, "bootstrap")
                    )
                counts = _restore(topology, region, store, snapshot, progress)
            except BaseException:
                log_tail.close()
                raise
        except SnapshotUnreadable as exc:
            skipped.append(f"{snapshot_id}: {exc}")
            progress(f"snapshot {snapshot_id} of {source} is not usable: {exc}")
            continue
        restore_seconds = time.monotonic() - began
        progress(
            f"restored snapshot {snapshot_id} of {source}: {counts.written:,} keys written, "
            f"{counts.skipped:,} newer here, {counts.mixed:,} partly newer here, "
            f"{restore_seconds:.1f}s; replaying the log from its offsets"
        )
        report = replay(
            topology,
            region,
            log_tail,
            what="bootstrap",
            progress=progress,
            retry_seconds=retry_seconds,
        )
        return BootstrapReport(region, snapshot_id, counts, restore_seconds, report, skipped)
    raise Incomplete(
        f"bootstrap of {region} is INCOMPLETE: no usable snapshot of {source} "
        f"({len(finished)} tried):\n  " + "\n  ".join(skipped) + "\nTake a new snapshot of a "
        "healthy region (`replicator region snapshot R`) and bootstrap from it (`--from R`)"
    )


def _usable(
    topology: Topology, region: str, store: ObjectStore, source: str, snapshot_id: str
) -> Snapshot:
    snapshot = read_snapshot(store, topology.project, source, snapshot_id)
    if snapshot.partitions != topology.kafka.partitions:
        raise SnapshotUnreadable(
            f"taken with {snapshot.partitions} partitions, the topology has "
            f"{topology.kafka.partitions}"
        )
    wanted = sorted(topology.region(region).feature_views)
    if sorted(snapshot.feature_views) != wanted:
        raise SnapshotUnreadable(
            f"taken for views {snapshot.feature_views}, {region} subscribes to {wanted}"
        )
    return snapshot


def _restore(
    topology: Topology,
    region: str,
    store: ObjectStore,
    snapshot: Snapshot,
    progress: Callable[[str], None],
) -> RestoreCounts:
    """Every chunk into the region's Redis, then the marks: every record below the
    snapshot's offsets is now applied there."""
    config = topology.region(region)
    manifest = S3ObjectStore.at(config.s3).get(manifest_key(topology.project))
    try:
        owners = field_owners(json.loads(manifest) if manifest else None)
    except (ValueError, AttributeError):
        owners = b""  # only keys newer here for some views need it
    counts = RestoreCounts()
    with RegionStore(config.redis, config.redis.writer) as redis_store:
        for number, states in enumerate(_prefetched(store, snapshot.chunks)):
            counts.add(restore_states(redis_store.client, states, owners))
            if number and number % 100 == 0:
                progress(f"  {number:,}/{len(snapshot.chunks):,} chunks restored")
        RedisAppliedMarks(redis_store).raise_marks(snapshot.offsets, {})
    return counts


def _prefetched(
    store: ObjectStore, chunks: list[dict[str, Any]], ahead: int = PREFETCH
) -> Iterator[bytes]:
    """The chunks' checked bytes in order, up to ``ahead`` of them read from S3 while Redis
    restores the current one (S3 latency and Redis time overlap; memory stays bounded)."""
    with ThreadPoolExecutor(max_workers=ahead) as pool:
        pending: deque[Future[bytes]] = deque()
        for chunk in chunks:
            pending.append(pool.submit(read_chunk, store, chunk))
            if len(pending) >= ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
