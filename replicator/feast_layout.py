"""Feast's Redis encoding, taken from Feast itself. The only module that knows it (with
``feast_keys``, which makes Feast's Redis keys by per-shape templates checked against Feast).

Keys, field names, values and timestamps are produced with the same functions Feast's
``RedisOnlineStore`` uses, so a region's Redis is byte-identical to what Feast would write.
Imported only at the primary (it imports Feast); regional workers handle opaque bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from feast import FeatureView
from feast.infra.online_stores.helpers import (
    _mmh3,
    _redis_key_prefix,
    compute_versioned_name,
)
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.utils import make_tzaware
from google.protobuf.timestamp_pb2 import Timestamp

from replicator import feast_keys
from replicator.core import wire
from replicator.core.records import DeleteView, Row, RowBatch
from replicator.core.wire import Headers
from replicator.errors import RefusedWrite

FeastRow = tuple[EntityKeyProto, dict[str, ValueProto], datetime, datetime | None]

NULL_CREATED = (-62_135_596_801, 0)
"""(seconds, nanos) a row without a created time carries: one second before the earliest
``google.protobuf.Timestamp`` (0001-01-01T00:00:00Z), so a null created time ranks below every
real one. Feast's ``RedisOnlineStore`` stores no created time at all (docs/wire-format.md)."""


def redis_view_name(table: FeatureView, versioning: bool) -> str:
    """The view name as Feast writes it into Redis (``_v<N>`` when versioning is on)."""
    return compute_versioned_name(table, versioning)


def field_key(view_name: str, feature: str) -> bytes:
    return bytes(_mmh3(f"{view_name}:{feature}"))


def schema_fingerprint(table: FeatureView, view_name: str) -> str:
    """Identifies the shape of a view's rows: name, join keys, feature names and types. Order
    plays no part: Feast stores a stream feature view's features in set order, which changes
    whenever another process (``feast materialize``...) rewrites the view."""
    shape = {
        "view": view_name,
        "join_keys": sorted(table.join_keys),
        "features": sorted([f.name, str(f.dtype)] for f in table.features),
    }
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]


def _timestamp(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(make_tzaware(value))
    return ts


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FIRST_S, _LAST_S = -62_135_596_800, 253_402_300_799  # google.protobuf.Timestamp's range


def _seconds_nanos(value: datetime) -> tuple[int, int]:
    """``(seconds, nanos)`` of ``Timestamp.FromDatetime(make_tzaware(value))``, Feast's
    conversion, by arithmetic: a plain ``datetime`` (naive counts as UTC) whose UTC offset
    has no microseconds, inside Timestamp's range. Anything else (pandas' Timestamp, NaT, an
    odd offset, the edges of the calendar) goes through Feast's own conversion, which is the
    definition: tests/unit/test_feast_layout_times.py checks the two agree."""
    if type(value) is datetime:
        offset = value.utcoffset()
        if offset is None:
            delta = value.replace(tzinfo=UTC) - _EPOCH
        elif not offset.microseconds:
            delta = value - _EPOCH
        else:
            delta = None
        if delta is not None:
            seconds = delta.days * 86_400 + delta.seconds
            if _FIRST_S <= seconds <= _LAST_S:
                return seconds, value.microsecond * 1000
    ts = _timestamp(value)
    return ts.seconds, ts.nanos


class _Times:
    """Event and created times of one write call, converted once per distinct value.

    Rows of one call often share their times (a ``write_to_online_store`` frame computed at one
    moment, a push of one event); ``_seconds_nanos`` costs a few hundred ns when they do not.
    The serialized ``_ts`` value is ``Timestamp(seconds, nanos)``'s protobuf encoding, made once
    per distinct time: the same message Feast serializes for the row.
    """

    def __init__(self) -> None:
        self._events: dict[tuple[datetime, int, int], tuple[int, int, bytes]] = {}
        self._created: dict[tuple[datetime, int, int], tuple[int, int]] = {}

    def event(self, value: datetime) -> tuple[int, int, bytes]:
        """``(seconds, nanos, serialized Timestamp)`` of an event time."""
        # Keys equal as datetimes can be different instants: the microsecond field, and
        # ``fold`` (the repeated hour when clocks go back) that equality ignores.
        key = (value, value.microsecond, value.fold)
        found = self._events.get(key)
        if found is None:
            seconds, nanos = _seconds_nanos(value)
            ts = Timestamp(seconds=seconds, nanos=nanos).SerializeToString()
            found = self._events[key] = (seconds, nanos, ts)
        return found

    def created(self, value: datetime | None) -> tuple[int, int]:
        """A row's created time as (seconds, nanos); ``NULL_CREATED`` for None or pandas'
        NaT (a null created column in a push frame or batch source, which Feast accepts)."""
        if value is None or value != value:  # NaT is the one datetime unequal to itself
            return NULL_CREATED
        key = (value, value.microsecond, value.fold)
        found = self._created.get(key)
        if found is None:
            found = self._created[key] = _seconds_nanos(value)
        return found


def encode_rows(data: Sequence[FeastRow], **settings: Any) -> list[tuple[int, RowBatch]]:
    """``(partition, batch)`` pairs: ``_encode``'s batches with their rows as ``Row``s (the
    same keyword arguments, checks and errors)."""
    return [
        (partition, dataclasses.replace(batch, rows=tuple(_row(flat) for flat in rows)))
        for partition, batch, rows in _encode(data, **settings)
    ]


def encode_records(data: Sequence[FeastRow], **settings: Any) -> list[tuple[int, Headers, bytes]]:
    """``_encode``'s batches packed as Kafka records, ``(partition, headers, payload)``: the
    same keyword arguments, checks and errors, and for each batch the bytes of
    ``wire.encode_rows(batch)``. The publisher's path: each row goes from Feast's values to
    the packed array once, without a ``Row`` built and flattened again."""
    return [
        (partition, *wire.encode_flat_rows(batch, rows))
        for partition, batch, rows in _encode(data, **settings)
    ]


FlatRow = list[Any]
"""A row as the wire packs it: ``[key, ts, event_s, event_nanos, created_s, created_nanos,
*values]``."""


def _row(flat: FlatRow) -> Row:
    return Row(flat[0], flat[1], flat[2], flat[3], flat[4], flat[5], tuple(flat[6:]))


def _encode(
    data: Sequence[FeastRow],
    *,
    project: str,
    view_name: str,
    fingerprint: str,
    registry_version: str,
    partitions: int,
    serialization_version: int,
    published_ns: int,
    max_rows: int,
    max_bytes: int,
    max_lead_s: int | None = None,
    key_ttl_seconds: int = 0,
) -> list[tuple[int, RowBatch, list[FlatRow]]]:
    """Turn the rows Feast hands to ``online_write_batch`` into per-partition batches, each
    ``(partition, batch without rows, its rows as FlatRow)``.

    Rows keep their input order inside each partition, so log order reflects call order. A
    batch holds at most ``max_rows`` rows and its record at most ``max_bytes`` bytes (the
    Kafka record limit). Raises ``RefusedWrite`` naming the view, the entity and the limit
    when one row alone cannot fit in a record; nothing is returned then, so nothing of the
    call is published.

    ``max_lead_s``: a row whose event time is more than this many seconds ahead of
    ``published_ns`` raises ``RefusedWrite`` naming the view, the entity and the event time
    (the same all-or-nothing way); None accepts any event time, as Feast does. Each batch
    records the lead it was accepted with (``RowBatch.accepted_lead_s``) so that no region
    dead-letters a row the primary acknowledged. ``key_ttl_seconds`` (Feast's, 0: none)
    travels with every batch: regions expire keys as Feast does.
    """
    published_s = published_ns // 1_000_000_000
    latest_s = None if max_lead_s is None else published_s + max_lead_s
    groups: dict[tuple[int, tuple[str, ...]], list[tuple[FlatRow, int]]] = defaultdict(list)
    shapes: dict[tuple[str, ...], tuple[tuple[bytes, ...], int]] = {}
    times = _Times()
    serialize = ValueProto.SerializeToString
    # Once per row: Feast's key (by template, checked against Feast: feast_keys), each value
    # serialized once, the times by arithmetic (once per distinct time) and a size bound; the
    # wire packs these bytes as they are.
    keys = feast_keys.redis_keys(project, [row[0] for row in data], serialization_version)
    for key, (entity_key, values, event_time, created_time) in zip(keys, data, strict=True):
        names = tuple(values)
        shape = shapes.get(names)
        if shape is None:
            shape = shapes[names] = _shape(view_name, names)
        event_s, event_nanos, ts = times.event(event_time)
        if latest_s is not None and event_s > latest_s:
            raise _future_row(view_name, entity_key, event_s, event_nanos, max_lead_s or 0)
        encoded = tuple(map(serialize, values.values()))
        size = wire.row_bytes_of(key, ts, encoded)
        if size + shape[1] > max_bytes:
            raise _too_large(view_name, entity_key, size + shape[1], max_bytes)
        flat = [key, ts, event_s, event_nanos, *times.created(created_time), *encoded]
        groups[(wire.partition_for(key, partitions), names)].append((flat, size))

    batches: list[tuple[int, RowBatch, list[FlatRow]]] = []
    for (partition, names), rows in groups.items():
        fields, overhead = shapes[names]
        for chunk in _chunks(rows, max_rows, max_bytes - overhead):
            lead = max(flat[2] for flat in chunk) - published_s
            batch = RowBatch(
                feature_view=view_name,
                fields=fields,
                rows=(),
                schema_fingerprint=fingerprint,
                registry_version=registry_version,
                published_ns=published_ns,
                accepted_lead_s=max(0, lead) if max_lead_s is None else max_lead_s,
                key_ttl_seconds=key_ttl_seconds,
            )
            batches.append((partition, batch, chunk))
    return batches


def _shape(view_name: str, names: tuple[str, ...]) -> tuple[tuple[bytes, ...], int]:
    """Feast's field keys of ``names`` and the record bytes besides the rows."""
    fields = tuple(field_key(view_name, n) for n in names)
    return fields, wire.batch_overhead_bytes(view_name, fields)


def _future_row(
    view_name: str, entity_key: EntityKeyProto, seconds: int, nanos: int, max_lead_s: int
) -> RefusedWrite:
    entity = entity_text(entity_key)
    event = Timestamp(seconds=seconds, nanos=nanos)
    return RefusedWrite(
        f"a row of feature view {view_name!r} for entity {entity} has event time "
        f"{event.ToJsonString()}, more than {max_lead_s}s ahead of this host's clock "
        "(a naive local time?); nothing of this write was published. Send UTC event times, "
        "or set online_store.future_event_time: apply to store them as Feast does",
        feature_view=view_name,
        entity=entity,
    )


def _too_large(view_name: str, entity_key: EntityKeyProto, needed: int, limit: int) -> RefusedWrite:
    entity = entity_text(entity_key)
    return RefusedWrite(
        f"a row of feature view {view_name!r} for entity {entity} needs {needed} bytes, over "
        f"the Kafka record limit of {limit} bytes; nothing of this write was published",
        feature_view=view_name,
        entity=entity,
    )


def _chunks(rows: list[tuple[FlatRow, int]], max_rows: int, max_bytes: int) -> list[list[FlatRow]]:
    """Consecutive runs of ``(row, size)``, each of at most ``max_rows`` rows and ``max_bytes``."""
    out: list[list[FlatRow]] = []
    chunk: list[FlatRow] = []
    total = 0
    for row, size in rows:
        if chunk and (len(chunk) == max_rows or total + size > max_bytes):
            out.append(chunk)
            chunk, total = [], 0
        chunk.append(row)
        total += size
    if chunk:
        out.append(chunk)
    return out


def entity_text(entity_key: EntityKeyProto) -> str:
    """``join_key=value, ...`` of an entity key, for error messages."""
    parts = []
    for name, value in zip(entity_key.join_keys, entity_key.entity_values, strict=False):
        kind = value.WhichOneof("val")
        parts.append(f"{name}={getattr(value, kind) if kind else None!r}")
    return ", ".join(parts)


def delete_view(table: FeatureView, view_name: str, project: str, published_ns: int) -> DeleteView:
    return DeleteView(
        feature_view=view_name,
        fields=tuple(field_key(view_name, f.name) for f in table.features),
        key_prefix=bytes(_redis_key_prefix(table.join_keys)),
        project=project,
        published_ns=published_ns,
    )


def view_schemas(tables: Sequence[Any], versioning: bool) -> dict[str, dict[str, Any]]:
    """What a region needs to know of each view, by its Redis name (see registry_sync)."""
    out = {}
    for table in tables:
        name = redis_view_name(table, versioning)
        out[name] = {
            "fingerprint": schema_fingerprint(table, name),
            "join_keys": sorted(table.join_keys),
            "key_prefix": bytes(_redis_key_prefix(table.join_keys)).hex(),
            "features": {f.name: field_key(name, f.name).hex() for f in table.features},
        }
    return out
