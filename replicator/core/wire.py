"""Wire format v1: how rows, view deletions and heartbeats are laid out in Kafka records.

Payloads are msgpack with every string and byte string in msgpack's raw (str) family: the
msgpack library built into Redis 7.0's Lua reads raw strings binary-safe but rejects the
newer bin types, and the region's Redis unpacks row batches itself.

See docs/wire-format.md for the full description. In short, every record carries headers a
worker can route on without decoding the payload, and a msgpack payload that the region's
Redis decodes itself (the apply script unpacks it), so the worker's per-row cost is nil.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack

from replicator.core.records import DeleteView, Heartbeat, Kind, Row, RowBatch
from replicator.errors import MalformedRecord

WIRE_VERSION = 1

# Header names (Kafka header keys).
H_WIRE = "wire"
H_KIND = "kind"
H_VIEW = "fv"
H_FINGERPRINT = "fp"
H_REGISTRY = "reg"
H_ROWS = "n"
H_MAX_EVENT_S = "max_ev"
H_PUBLISHED_NS = "pub_ns"
H_ACCEPTED_LEAD = "lead_s"
H_KEY_TTL = "ttl"
H_REASON = "dlq_reason"
H_DETAIL = "dlq_detail"
H_SOURCE = "dlq_source"
H_REGION = "dlq_region"

ROW_FIXED_FIELDS = 6  # key, ts, event_s, event_nanos, created_s, created_nanos

Headers = list[tuple[str, str | bytes | None]]


def partition_for(key: bytes, partitions: int) -> int:
    """Partition of a Feast Redis key: every write to one entity lands in one partition."""
    return zlib.crc32(key) % partitions


@dataclass(frozen=True, slots=True)
class RecordHeader:
    """The routing part of a record, read without touching the payload."""

    kind: Kind
    feature_view: str
    schema_fingerprint: str
    registry_version: str
    rows: int
    max_event_s: int
    published_ns: int
    accepted_lead_s: int = 0
    """Event-time lead over ``published_ns`` (s) the primary accepted; 0 when absent."""
    key_ttl_seconds: int | None = None
    """The primary's Feast ``key_ttl_seconds`` (0: none); None when the header is absent."""


# Sizing ---------------------------------------------------------------------------------
# Upper bounds of msgpack's encoding (a raw string header is at most 5 bytes, an integer at
# most 9, an array header at most 5), so a batch packed from rows that fit always fits.
_STR_HEAD, _INT, _ARRAY_HEAD = 5, 9, 5
_ROW_FIXED_BYTES = _ARRAY_HEAD + 4 * _INT + 2 * _STR_HEAD  # array, 4 integers, key and ts
RECORD_OVERHEAD_BYTES = 4096
"""Room kept in each record for the Kafka headers and record framing."""


def row_bytes(row: Row) -> int:
    """Upper bound of the bytes one row adds to a ``rows`` payload."""
    return row_bytes_of(row.key, row.ts, row.values)


def row_bytes_of(key: bytes, ts: bytes, values: Sequence[bytes]) -> int:
    """``row_bytes`` of the row these bytes make, before it is built."""
    strings = len(key) + len(ts) + sum(map(len, values))
    return _ROW_FIXED_BYTES + _STR_HEAD * len(values) + strings


def batch_overhead_bytes(view: str, fields: Sequence[bytes]) -> int:
    """Upper bound of a ``rows`` record's bytes other than its rows (headers included)."""
    names = 2 * len(view.encode()) + sum(len(f) for f in fields)  # view: payload and header
    return 3 * _ARRAY_HEAD + _INT + _STR_HEAD * (1 + len(fields)) + names + RECORD_OVERHEAD_BYTES


# Encoding -------------------------------------------------------------------------------


def encode_rows(batch: RowBatch) -> tuple[Headers, bytes]:
    flat_rows = [
        [r.key, r.ts, r.event_s, r.event_nanos, r.created_s, r.created_nanos, *r.values]
        for r in batch.rows
    ]
    return encode_flat_rows(batch, flat_rows)


def encode_flat_rows(batch: RowBatch, flat_rows: Sequence[list[Any]]) -> tuple[Headers, bytes]:
    """``encode_rows`` of ``batch`` (its attributes; its ``rows`` are not read) with rows
    given as they are packed: ``[key, ts, event_s, event_nanos, created_s, created_nanos,
    *values]`` each, aligned with ``batch.fields``. For a producer that builds rows in this
    shape directly (the primary's publisher), so no ``Row`` is made and flattened again."""
    payload = msgpack.packb(
        [WIRE_VERSION, batch.feature_view, list(batch.fields), flat_rows], use_bin_type=False
    )
    headers = _headers(
        Kind.ROWS,
        batch.feature_view,
        batch.published_ns,
        fingerprint=batch.schema_fingerprint,
        registry=batch.registry_version,
        rows=len(flat_rows),
        max_event_s=max((r[2] for r in flat_rows), default=0),
    )
    if batch.accepted_lead_s:
        headers.append((H_ACCEPTED_LEAD, str(batch.accepted_lead_s).encode()))
    if batch.key_ttl_seconds is not None:
        headers.append((H_KEY_TTL, str(batch.key_ttl_seconds).encode()))
    return headers, payload


def encode_delete_view(delete: DeleteView) -> tuple[Headers, bytes]:
    payload = msgpack.packb(
        [WIRE_VERSION, delete.feature_view, list(delete.fields), delete.key_prefix, delete.project],
        use_bin_type=False,
    )
    return _headers(Kind.DELETE_VIEW, delete.feature_view, delete.published_ns), payload


def encode_heartbeat(heartbeat: Heartbeat) -> tuple[Headers, bytes]:
    payload = msgpack.packb([WIRE_VERSION, heartbeat.sequence, heartbeat.emitted_ns])
    return _headers(Kind.HEARTBEAT, "", heartbeat.emitted_ns), payload


def _headers(
    kind: Kind,
    view: str,
    published_ns: int,
    *,
    fingerprint: str = "",
    registry: str = "",
    rows: int = 0,
    max_event_s: int = 0,
) -> Headers:
    return [
        (H_WIRE, str(WIRE_VERSION).encode()),
        (H_KIND, kind.value.encode()),
        (H_VIEW, view.encode()),
        (H_FINGERPRINT, fingerprint.encode()),
        (H_REGISTRY, registry.encode()),
        (H_ROWS, str(rows).encode()),
        (H_MAX_EVENT_S, str(max_event_s).encode()),
        (H_PUBLISHED_NS, str(published_ns).encode()),
    ]


# Decoding -------------------------------------------------------------------------------


def read_header(headers: Sequence[tuple[str, bytes | None]] | None) -> RecordHeader:
    """Parse and check a record's headers; raises MalformedRecord on anything unexpected."""
    found = {k: (v or b"").decode("utf-8", "replace") for k, v in (headers or ())}
    version = found.get(H_WIRE)
    if version != str(WIRE_VERSION):
        raise MalformedRecord(f"unsupported wire version {version!r} (expected {WIRE_VERSION})")
    try:
        kind = Kind(found.get(H_KIND, ""))
    except ValueError:
        raise MalformedRecord(f"unknown record kind {found.get(H_KIND)!r}") from None
    try:
        return RecordHeader(
            kind=kind,
            feature_view=found.get(H_VIEW, ""),
            schema_fingerprint=found.get(H_FINGERPRINT, ""),
            registry_version=found.get(H_REGISTRY, ""),
            rows=int(found.get(H_ROWS, "0")),
            max_event_s=int(found.get(H_MAX_EVENT_S, "0")),
            published_ns=int(found.get(H_PUBLISHED_NS, "0")),
            accepted_lead_s=int(found.get(H_ACCEPTED_LEAD, "0")),
            key_ttl_seconds=int(found[H_KEY_TTL]) if H_KEY_TTL in found else None,
        )
    except ValueError as exc:
        raise MalformedRecord(f"bad numeric header: {exc}") from None


def decode_rows(header: RecordHeader, payload: bytes) -> RowBatch:
    body = _unpack(payload)
    if len(body) != 4 or not isinstance(body[2], list) or not isinstance(body[3], list):
        raise MalformedRecord("row batch payload must be [version, view, fields, rows]")
    _, raw_view, fields, raw_rows = body
    if not all(isinstance(f, bytes) for f in fields):
        raise MalformedRecord("field keys must be byte strings")
    view = _text(raw_view)
    if view != header.feature_view:
        raise MalformedRecord(f"payload view {view!r} != header view {header.feature_view!r}")
    width = ROW_FIXED_FIELDS + len(fields)
    rows = tuple(_row(raw, width, i) for i, raw in enumerate(raw_rows))
    return RowBatch(
        feature_view=view,
        fields=tuple(fields),
        rows=rows,
        schema_fingerprint=header.schema_fingerprint,
        registry_version=header.registry_version,
        published_ns=header.published_ns,
        accepted_lead_s=header.accepted_lead_s,
        key_ttl_seconds=header.key_ttl_seconds,
    )


def decode_delete_view(header: RecordHeader, payload: bytes) -> DeleteView:
    body = _unpack(payload)
    if len(body) != 5 or not isinstance(body[2], list):
        raise MalformedRecord(
            "delete_view payload must be [version, view, fields, prefix, project]"
        )
    _, view, fields, prefix, project = body
    if not isinstance(prefix, bytes):
        raise MalformedRecord("delete_view key prefix must be bytes")
    return DeleteView(_text(view), tuple(fields), prefix, _text(project), header.published_ns)


def decode_heartbeat(payload: bytes) -> Heartbeat:
    body = _unpack(payload)
    if len(body) != 3 or not all(_is_int(x) for x in body[1:]):
        raise MalformedRecord("heartbeat payload must be [version, sequence, emitted_ns]")
    return Heartbeat(sequence=body[1], emitted_ns=body[2])


def _unpack(payload: bytes | None) -> list[Any]:
    try:
        # raw strings come back as str (bytes that are not UTF-8 kept by surrogateescape),
        # bin types as bytes: told apart here so the bin types the apply script rejects are
        # rejected here too.
        body = msgpack.unpackb(
            payload or b"", raw=False, unicode_errors="surrogateescape", strict_map_key=False
        )
    except Exception as exc:  # msgpack raises several unrelated types
        raise MalformedRecord(f"payload is not msgpack: {exc}") from None
    body = _raw_to_bytes(body)
    if not isinstance(body, list) or not body or body[0] != WIRE_VERSION:
        raise MalformedRecord("payload is not a wire v1 array")
    return body


def _raw_to_bytes(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    if isinstance(value, bytes):
        raise MalformedRecord("msgpack bin type: wire v1 sends byte strings as raw strings")
    if isinstance(value, list):
        return [_raw_to_bytes(item) for item in value]
    return value


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(value: object) -> str:
    if not isinstance(value, bytes):
        raise MalformedRecord(f"expected a string, got {type(value).__name__}")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedRecord("string is not UTF-8") from None


def _row(raw: object, width: int, index: int) -> Row:
    if not isinstance(raw, list) or len(raw) != width:
        raise MalformedRecord(f"row {index} must be an array of {width} items")
    key, ts, es, en, cs, cn, *values = raw
    if not all(isinstance(x, bytes) for x in (key, ts, *values)):
        raise MalformedRecord(f"row {index}: key, ts and values must be bytes")
    if not all(_is_int(x) for x in (es, en, cs, cn)):
        raise MalformedRecord(f"row {index}: timestamps must be integers")
    return Row(key, ts, es, en, cs, cn, tuple(values))


def split_rows(batch: RowBatch, keep: Iterable[bool]) -> tuple[RowBatch, RowBatch]:
    """Split a batch in two (kept, rejected), keeping order and every other attribute."""
    kept: list[Row] = []
    rejected: list[Row] = []
    for row, ok in zip(batch.rows, keep, strict=True):
        (kept if ok else rejected).append(row)
    return _with_rows(batch, kept), _with_rows(batch, rejected)


def _with_rows(batch: RowBatch, rows: list[Row]) -> RowBatch:
    return RowBatch(
        batch.feature_view,
        batch.fields,
        tuple(rows),
        batch.schema_fingerprint,
        batch.registry_version,
        batch.published_ns,
        batch.accepted_lead_s,
        batch.key_ttl_seconds,
    )
