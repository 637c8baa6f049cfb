"""What travels from the primary to the regions, as plain immutable values.

Everything is already in Feast's Redis encoding (keys, field names, values, timestamps are
bytes made by Feast's own functions at the primary), so a region needs no Feast to apply it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    ROWS = "rows"
    DELETE_VIEW = "delete_view"
    HEARTBEAT = "heartbeat"


@dataclass(frozen=True, slots=True)
class Version:
    """Total order of writes to one (entity key, feature view): last writer wins.

    Event time first, created time next, then the position in the log (Kafka offset of the
    batch, index of the row inside it) so that a same-time correction still propagates.
    The Lua script in ``adapters/apply_rows.lua`` implements exactly this comparison.
    """

    event_s: int
    event_nanos: int
    created_s: int = 0
    created_nanos: int = 0
    offset: int = 0
    index: int = 0

    def as_tuple(self) -> tuple[int, int, int, int, int, int]:
        return (
            self.event_s,
            self.event_nanos,
            self.created_s,
            self.created_nanos,
            self.offset,
            self.index,
        )

    def supersedes(self, current: Version | None) -> bool:
        """True when a write with this version must replace ``current``.

        Equal versions mean the same log record delivered again: re-applying it writes the
        same bytes, so it is allowed (and repairs a damaged copy).
        """
        return current is None or self.as_tuple() >= current.as_tuple()


@dataclass(frozen=True, slots=True)
class Row:
    key: bytes
    """Feast's Redis key: serialized entity key followed by the project name."""
    ts: bytes
    """Serialized google.protobuf.Timestamp, stored in field ``_ts:<view>``."""
    event_s: int
    event_nanos: int
    created_s: int
    created_nanos: int
    values: tuple[bytes, ...]
    """Serialized feast.types.Value, aligned with ``RowBatch.fields``."""

    def version(self, offset: int, index: int) -> Version:
        return Version(
            self.event_s, self.event_nanos, self.created_s, self.created_nanos, offset, index
        )


@dataclass(frozen=True, slots=True)
class RowBatch:
    """Rows of one feature view that all belong to one partition."""

    feature_view: str
    """Name as used in Redis (with ``_v<N>`` when Feast's view versioning is on)."""
    fields: tuple[bytes, ...]
    """Feast's 4-byte field keys (mmh3 of ``view:feature``)."""
    rows: tuple[Row, ...]
    schema_fingerprint: str
    registry_version: str = ""
    published_ns: int = 0

    @property
    def ts_field(self) -> bytes:
        return b"_ts:" + self.feature_view.encode()

    @property
    def max_event_s(self) -> int:
        return max((r.event_s for r in self.rows), default=0)


@dataclass(frozen=True, slots=True)
class DeleteView:
    """A feature view removed by ``feast apply``: its fields leave every region."""

    feature_view: str
    fields: tuple[bytes, ...]
    key_prefix: bytes
    """Serialized join-key names: every Redis key of the view starts with it."""
    project: str
    published_ns: int = 0

    @property
    def ts_field(self) -> bytes:
        return b"_ts:" + self.feature_view.encode()

    @property
    def scan_pattern(self) -> bytes:
        # Same pattern as Feast's RedisOnlineStore.delete_table.
        return self.key_prefix + b"*" + self.project.encode()


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Emitted by the primary into every partition; staleness is measured against it."""

    sequence: int
    emitted_ns: int
    """Primary clock at emission. Compared only with other primary-clock readings."""


@dataclass(frozen=True, slots=True)
class EncodedBatch:
    """A row batch as it came off the wire, with where it sits in the log."""

    payload: bytes
    feature_view: str
    partition: int
    offset: int
    max_event_s: int | None = None
    """The record's ``max_ev`` header; the apply script refuses rows beyond it (None: no
    header to hold the rows to, as when re-applying rows read back from a region)."""


@dataclass(frozen=True, slots=True)
class ApplyOutcome:
    applied: int
    skipped_older: int
