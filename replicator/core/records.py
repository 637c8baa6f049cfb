"""What travels from the primary to the regions, as plain immutable values.

Everything is already in Feast's Redis encoding (keys, field names, values, timestamps are
bytes made by Feast's own functions at the primary), so a region needs no Feast to apply it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from replicator.core.version import Version


class Kind(StrEnum):
    ROWS = "rows"
    DELETE_VIEW = "delete_view"
    HEARTBEAT = "heartbeat"


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
        """This row's version when it sits at ``index`` of the record at ``offset``."""
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
    accepted_lead_s: int = 0
    """Seconds of event time ahead of ``published_ns`` the primary accepted for these rows
    (its ``future_event_time`` setting): no region refuses rows the primary acknowledged."""
    key_ttl_seconds: int | None = None
    """The primary's Feast ``online_store.key_ttl_seconds`` (0: keys never expire); None: the
    record does not say (written before the header existed)."""

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
    row_indexes: tuple[int, ...] | None = None
    """Each row's index in its version (``core.version``), one per row; None: the row's
    position in the batch, from ``version.FIRST_ROW_INDEX`` (repair re-applies rows with the
    indexes they had in their original record)."""
    key_ttl_seconds: int | None = None
    """The record's ``ttl`` header: EXPIRE after an accepted write, 0 none; None: the store's
    default (the record has no header)."""


@dataclass(frozen=True, slots=True)
class ApplyOutcome:
    applied: int
    skipped_older: int
