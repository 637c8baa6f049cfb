"""Names of the keys the replicator writes and others read: one home for each layout.

Redis (every region; metadata under ``_replicator:``, never colliding with Feast's keys):

    _replicator:emitted:<project>          (primary region) newest durable heartbeat round
    _replicator:hb:<topic>:<partition>     newest heartbeat a region's worker applied
    _replicator:v:<view>:<partition>       last-writer-wins versions of one (view, partition)
    _replicator:worker:<region>            the region's worker counters
    _replicator:egress:<group>             bytes a consumer group's workers fetched, per topic

S3 (every region's bucket):

    feast/<project>/manifest.json          the registry version live in the region
    feast/<project>/registry/<version>.db  an immutable registry version
    feast/<project>/primary/registry.db    (primary bucket) the registry the primary Feast writes
    feast/<project>/snapshots/<region>/<id>/manifest.json   a region snapshot, written last
    feast/<project>/snapshots/<region>/<id>/chunk-<n>.msgpack  its checksummed chunks

The consistency checker, the benchmarks and the tests import these names from here. Pure: no I/O.
"""

from __future__ import annotations

NAMESPACE = b"_replicator:"
"""Prefix of every Redis key the replicator owns (Feast keys never start with it)."""

# Fields of the heartbeat hashes (emission record and applied heartbeats).
F_SEQUENCE = "sequence"
F_EMITTED_NS = "emitted_ns"
F_INTERVAL_NS = "interval_ns"
F_APPLIED_NS = "applied_ns"
TOPIC_FIELD_PREFIX = "t:"
"""Emission record field ``t:<topic>`` = ``"<partitions>:<first emitted_ns>"``."""


def emission_key(project: str) -> str:
    """Hash of the newest durable heartbeat round (primary region's Redis)."""
    return f"{NAMESPACE.decode()}emitted:{project}"


def applied_heartbeat_key(topic: str, partition: int) -> str:
    """Hash of the newest heartbeat a region's worker applied for one partition."""
    return f"{NAMESPACE.decode()}hb:{topic}:{partition}"


VERSIONS_PREFIX = NAMESPACE + b"v:"
"""``row_versions_key`` is this, the view, ``:``, the partition (scripts that build it get
the prefix from here)."""


def row_versions_key(feature_view: str, partition: int) -> bytes:
    """Hash of last-writer-wins versions for one (view, partition): field = Feast key."""
    return VERSIONS_PREFIX + feature_view.encode() + b":" + str(partition).encode()


def worker_stats_key(region: str) -> str:
    """Hash of a region's worker counters (rows applied, skipped, lag quantiles...)."""
    return f"{NAMESPACE.decode()}worker:{region}"


def egress_key(group: str) -> str:
    """Hash of the bytes a consumer group's workers (one project in one region) fetched from
    Kafka (``replicator.core.egress``)."""
    return f"{NAMESPACE.decode()}egress:{group}"


def manifest_key(project: str) -> str:
    """The region's registry manifest (JSON) in its bucket."""
    return f"feast/{project}/manifest.json"


def registry_version_key(project: str, version: str) -> str:
    """An immutable registry version (``version`` = sha256[:16] of its bytes)."""
    return f"feast/{project}/registry/{version}.db"


def primary_registry_key(project: str) -> str:
    """The registry the primary's Feast reads and writes (primary bucket only)."""
    return f"feast/{project}/primary/registry.db"


def snapshots_prefix(project: str, region: str) -> str:
    """Where a region's snapshots live in a bucket (one folder per snapshot id)."""
    return f"feast/{project}/snapshots/{region}/"


def snapshot_manifest_key(project: str, region: str, snapshot_id: str) -> str:
    """A snapshot's manifest, written after every chunk: a snapshot without one is unusable."""
    return f"{snapshots_prefix(project, region)}{snapshot_id}/manifest.json"


def snapshot_chunk_key(project: str, region: str, snapshot_id: str, number: int) -> str:
    """One chunk of a snapshot (msgpack, checksummed in the manifest)."""
    return f"{snapshots_prefix(project, region)}{snapshot_id}/chunk-{number:05d}.msgpack"
