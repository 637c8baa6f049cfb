"""What the checker needs from the outside. Adapters implement these; unit tests use fakes.

    RegionData   one region's Redis as the checker reads it (heartbeats, keys, digests)
    LogAdmin     Kafka: committed offsets of the workers' groups, end offsets, record times
    Manifest     the feature views' Redis layout, from a region's schema manifest (S3)
    LiveVersionSource  the registry and model versions live in each region's bucket (S3)
    AlertSink    where alerts go (webhook), without blocking the caller

Every method may raise ``SourceUnavailable``; the checker records it in the report (the
region is then unmeasured, which fails ``check --once``) and carries on with the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from consistency.core.classify import Entry
from consistency.core.digest import BucketDigests, entry_hash
from consistency.core.feast_bytes import decode_timestamp
from consistency.core.versions import LiveVersions
from replicator.core.egress import EgressCounts
from replicator.core.staleness import AppliedHeartbeat, Emission
from replicator.core.version import Version

TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class ViewLayout:
    """How one feature view sits in Redis (from the manifest)."""

    name: str
    key_prefix: bytes
    fields: tuple[bytes, ...]
    """Feature field keys, sorted, so every region hashes them in the same order."""

    @property
    def ts_field(self) -> bytes:
        return b"_ts:" + self.name.encode()

    @property
    def read_fields(self) -> tuple[bytes, ...]:
        """What an entry is made of: ``_ts:<view>`` then the feature fields."""
        return (self.ts_field, *self.fields)


@dataclass(frozen=True, slots=True)
class RawRow:
    """A view's raw bytes at one key: ``values`` = (``_ts`` field, feature fields...) in
    ``ViewLayout.read_fields`` order, None where absent; ``version`` from the version hash."""

    key: bytes
    values: tuple[bytes | None, ...]
    version: Version | None

    @property
    def present(self) -> bool:
        return any(v is not None for v in self.values)

    def entry(self) -> Entry:
        if not self.present:
            return Entry(None)
        return Entry(
            entry_hash(self.key, self.values), self.version, decode_timestamp(self.values[0])
        )


@dataclass(frozen=True, slots=True)
class ScanResult:
    digests: BucketDigests
    keys: int
    """Keys holding the view (at least one of its fields)."""
    newest_event_s: int | None


class RegionData(Protocol):
    name: str

    def emission(self, project: str) -> Emission | None:
        """The emitter's newest durable round (read at the primary region); None if absent."""

    def applied_heartbeats(
        self, positions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, AppliedHeartbeat]:
        """Newest applied heartbeat per (topic, partition); absent ones are left out."""

    def egress(self, group: str) -> EgressCounts | None:
        """Bytes the consumer group's workers fetched, per topic (None: nothing counted)."""

    def sample_keys(
        self, view: ViewLayout, project: str, partitions: int, size: int, seed: int | None
    ) -> list[bytes]:
        """Up to ``size`` distinct keys of the view drawn uniformly at random."""

    def read_rows(self, view: ViewLayout, keys: Sequence[bytes], partitions: int) -> list[RawRow]:
        """The view's raw fields and version at each key: one round trip per chunk."""

    def read_entries(self, view: ViewLayout, keys: Sequence[bytes], partitions: int) -> list[Entry]:
        """``read_rows`` reduced to entry hashes (what comparisons need)."""

    def scan_digests(self, view: ViewLayout, project: str, hex_digits: int) -> ScanResult:
        """Bucket digests of every key of the view (computed inside Redis)."""

    def scan_buckets(
        self, view: ViewLayout, project: str, hex_digits: int, buckets: Sequence[str]
    ) -> dict[bytes, str]:
        """Key -> entry hash for every key of the view in the given buckets."""

    def close(self) -> None: ...


class LogAdmin(Protocol):
    def committed(
        self, group: str, positions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int | None]:
        """Next offset the group will consume per partition (None: never committed)."""

    def end_offsets(self, positions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """High watermarks."""

    def record_times_ms(self, positions: Mapping[TopicPartition, int]) -> dict[TopicPartition, int]:
        """Producer timestamps (CreateTime, the primary's clock) of the records at offsets."""

    def retention_ms(self, topics: Sequence[str]) -> dict[str, int | None]:
        """``retention.ms`` per topic; None for unlimited."""

    def close(self) -> None: ...


class Manifest(Protocol):
    def views(self) -> dict[str, ViewLayout]: ...


class LiveVersionSource(Protocol):
    def live(self, region: str) -> LiveVersions:
        """The registry version live in the region's bucket and every model released there
        (an absent one is left out, not an error)."""

    def close(self) -> None: ...


class AlertSink(Protocol):
    def send(self, alert: Mapping[str, Any]) -> None:
        """Queue an alert; never blocks, never raises."""

    def close(self) -> None: ...
