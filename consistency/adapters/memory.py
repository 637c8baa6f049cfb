"""In-memory twins of the ports, for unit tests and dry runs.

``MemoryRegion`` holds Feast-layout hashes and version hashes in dicts and answers like
``RedisRegion`` (its digests use ``core.digest``, the Python twin of ``digest.lua``; an
integration test checks the two agree). ``MemoryLog`` holds committed and end offsets.
``MemoryVersions`` holds the registry and model versions live per region.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from consistency.core.classify import Entry
from consistency.core.digest import BucketDigests, bucket_of, entry_hash
from consistency.core.feast_bytes import decode_timestamp
from consistency.core.versions import LiveVersion, LiveVersions
from consistency.errors import SourceUnavailable
from consistency.ports import RawRow, ScanResult, TopicPartition, ViewLayout
from replicator.core import version as version_layout
from replicator.core.egress import EgressCounts
from replicator.core.staleness import AppliedHeartbeat, Emission
from replicator.core.version import Version


@dataclass
class MemoryRegion:
    name: str
    hashes: dict[bytes, dict[bytes, bytes]] = field(default_factory=dict)
    versions: dict[tuple[str, int], dict[bytes, bytes]] = field(default_factory=dict)
    heartbeats: dict[TopicPartition, AppliedHeartbeat] = field(default_factory=dict)
    emitted: dict[str, Emission] = field(default_factory=dict)
    fetched: dict[str, EgressCounts] = field(default_factory=dict)
    """Consumer group -> bytes its workers fetched."""
    down: bool = False

    # Test helpers -------------------------------------------------------------------------
    def put(
        self,
        view: ViewLayout,
        key: bytes,
        values: Sequence[bytes | None],
        version: Version | None,
        partition: int,
    ) -> None:
        fields = self.hashes.setdefault(key, {})
        for name, value in zip(view.read_fields, values, strict=True):
            if value is None:
                fields.pop(name, None)
            else:
                fields[name] = value
        if version is not None:
            self.versions.setdefault((view.name, partition), {})[key] = version_layout.encode(
                version
            )

    def _check(self) -> None:
        if self.down:
            raise SourceUnavailable(f"redis {self.name}: connection refused", source=self.name)

    # Port -----------------------------------------------------------------------------------
    def emission(self, project: str) -> Emission | None:
        self._check()
        return self.emitted.get(project)

    def applied_heartbeats(
        self, positions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, AppliedHeartbeat]:
        self._check()
        return {p: self.heartbeats[p] for p in positions if p in self.heartbeats}

    def egress(self, group: str) -> EgressCounts | None:
        self._check()
        return self.fetched.get(group)

    def sample_keys(
        self, view: ViewLayout, project: str, partitions: int, size: int, seed: int | None
    ) -> list[bytes]:
        self._check()
        keys = sorted(
            k
            for p in range(partitions)
            for k in self.versions.get((view.name, p), {})
            if k.endswith(project.encode())
        )
        return random.Random(seed).sample(keys, min(size, len(keys)))

    def read_rows(self, view: ViewLayout, keys: Sequence[bytes], partitions: int) -> list[RawRow]:
        self._check()
        out = []
        for key in keys:
            fields = self.hashes.get(key, {})
            version = None
            for (name, _), table in self.versions.items():
                if name == view.name and key in table:
                    version = version_layout.decode(table[key])
            out.append(RawRow(key, tuple(fields.get(f) for f in view.read_fields), version))
        return out

    def read_entries(self, view: ViewLayout, keys: Sequence[bytes], partitions: int) -> list[Entry]:
        return [row.entry() for row in self.read_rows(view, keys, partitions)]

    def _view_entries(
        self, view: ViewLayout, project: str
    ) -> dict[bytes, tuple[bytes | None, ...]]:
        out = {}
        for key, fields in self.hashes.items():
            if key.startswith(view.key_prefix) and key.endswith(project.encode()):
                values = tuple(fields.get(f) for f in view.read_fields)
                if any(v is not None for v in values):
                    out[key] = values
        return out

    def scan_digests(self, view: ViewLayout, project: str, hex_digits: int) -> ScanResult:
        self._check()
        digests = BucketDigests.empty(hex_digits)
        newest = 0
        entries = self._view_entries(view, project)
        for key, values in entries.items():
            digests.add_entry(key, entry_hash(key, values))
            event = decode_timestamp(values[0])
            if event is not None:
                newest = max(newest, event[0])
        return ScanResult(digests, len(entries), newest or None)

    def scan_buckets(
        self, view: ViewLayout, project: str, hex_digits: int, buckets: Sequence[str]
    ) -> dict[bytes, str]:
        self._check()
        wanted = set(buckets)
        return {
            key: entry_hash(key, values)
            for key, values in self._view_entries(view, project).items()
            if bucket_of(key, hex_digits) in wanted
        }

    def close(self) -> None:
        pass


@dataclass
class MemoryLog:
    committed_offsets: dict[str, dict[TopicPartition, int]] = field(default_factory=dict)
    ends: dict[TopicPartition, int] = field(default_factory=dict)
    times_ms: dict[TopicPartition, dict[int, int]] = field(default_factory=dict)
    retention: dict[str, int | None] = field(default_factory=dict)
    down: bool = False

    def _check(self) -> None:
        if self.down:
            raise SourceUnavailable("kafka: all brokers down")

    def committed(
        self, group: str, positions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int | None]:
        self._check()
        mine = self.committed_offsets.get(group, {})
        return {p: mine.get(p) for p in positions}

    def end_offsets(self, positions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        self._check()
        return {p: self.ends.get(p, 0) for p in positions}

    def record_times_ms(self, positions: Mapping[TopicPartition, int]) -> dict[TopicPartition, int]:
        self._check()
        return {
            p: self.times_ms[p][o]
            for p, o in positions.items()
            if p in self.times_ms and o in self.times_ms[p]
        }

    def retention_ms(self, topics: Sequence[str]) -> dict[str, int | None]:
        self._check()
        return {t: self.retention.get(t) for t in topics}

    def close(self) -> None:
        pass


@dataclass
class MemoryManifest:
    layouts: dict[str, ViewLayout]

    def views(self) -> dict[str, ViewLayout]:
        return dict(self.layouts)


@dataclass
class MemoryVersions:
    registry: dict[str, LiveVersion] = field(default_factory=dict)
    """Region -> live registry version."""
    models: dict[str, dict[str, LiveVersion]] = field(default_factory=dict)
    """Region -> model name -> live version."""
    down: set[str] = field(default_factory=set)
    reads: int = 0
    """Regions read so far (to see the checker's cache)."""

    # Test helpers -------------------------------------------------------------------------
    def release_registry(self, region: str, version: str, at: datetime) -> None:
        self.registry[region] = LiveVersion(version, at)

    def release_model(self, region: str, name: str, version: str, at: datetime) -> None:
        self.models.setdefault(region, {})[name] = LiveVersion(version, at)

    # Port -----------------------------------------------------------------------------------
    def live(self, region: str) -> LiveVersions:
        if region in self.down:
            raise SourceUnavailable(f"s3 {region}: connection refused", source=region)
        self.reads += 1
        return LiveVersions(self.registry.get(region), dict(self.models.get(region, {})))

    def close(self) -> None:
        pass
