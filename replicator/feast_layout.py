"""Feast's Redis encoding, taken from Feast itself. The only module that knows it.

Keys, field names, values and timestamps are produced with the same functions Feast's
``RedisOnlineStore`` uses, so a region's Redis is byte-identical to what Feast would write.
Imported only at the primary (it imports Feast); regional workers handle opaque bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from feast import FeatureView
from feast.infra.online_stores.helpers import (
    _mmh3,
    _redis_key,
    _redis_key_prefix,
    compute_versioned_name,
)
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.utils import make_tzaware
from google.protobuf.timestamp_pb2 import Timestamp

from replicator.core import wire
from replicator.core.records import DeleteView, Row, RowBatch
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


def _created(value: datetime | None) -> tuple[int, int]:
    """A row's created time as (seconds, nanos); ``NULL_CREATED`` for None or pandas' NaT
    (a null created column in a push frame or batch source, which Feast accepts)."""
    if value is None or value != value:  # NaT is the one datetime unequal to itself
        return NULL_CREATED
    ts = _timestamp(value)
    return ts.seconds, ts.nanos


def encode_rows(
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
) -> list[tuple[int, RowBatch]]:
    """Turn the rows Feast hands to ``online_write_batch`` into per-partition batches.

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
    groups: dict[tuple[int, tuple[str, ...]], list[tuple[Row, int]]] = defaultdict(list)
    field_cache: dict[tuple[str, ...], tuple[bytes, ...]] = {}
    overhead: dict[tuple[str, ...], int] = {}  # record bytes besides the rows
    for entity_key, values, event_time, created_time in data:
        key = _redis_key(
            project, entity_key, entity_key_serialization_version=serialization_version
        )
        names = tuple(values)
        if names not in field_cache:
            field_cache[names] = tuple(field_key(view_name, n) for n in names)
            overhead[names] = wire.batch_overhead_bytes(view_name, field_cache[names])
        event = _timestamp(event_time)
        if max_lead_s is not None and event.seconds > published_s + max_lead_s:
            raise _future_row(view_name, entity_key, event, max_lead_s)
        created_s, created_nanos = _created(created_time)
        row = Row(
            key=key,
            ts=event.SerializeToString(),
            event_s=event.seconds,
            event_nanos=event.nanos,
            created_s=created_s,
            created_nanos=created_nanos,
            values=tuple(values[n].SerializeToString() for n in names),
        )
        size = wire.row_bytes(row)
        if size + overhead[names] > max_bytes:
            raise RefusedWrite(
                f"a row of feature view {view_name!r} for entity {entity_text(entity_key)} "
                f"needs {size + overhead[names]} bytes, over the Kafka record limit of "
                f"{max_bytes} bytes; nothing of this write was published",
                feature_view=view_name,
                entity=entity_text(entity_key),
            )
        groups[(wire.partition_for(key, partitions), names)].append((row, size))

    batches: list[tuple[int, RowBatch]] = []
    for (partition, names), rows in groups.items():
        for chunk in _chunks(rows, max_rows, max_bytes - overhead[names]):
            lead = max(r.event_s for r in chunk) - published_s
            batch = RowBatch(
                feature_view=view_name,
                fields=field_cache[names],
                rows=chunk,
                schema_fingerprint=fingerprint,
                registry_version=registry_version,
                published_ns=published_ns,
                accepted_lead_s=max(0, lead) if max_lead_s is None else max_lead_s,
                key_ttl_seconds=key_ttl_seconds,
            )
            batches.append((partition, batch))
    return batches


def _future_row(
    view_name: str, entity_key: EntityKeyProto, event: Timestamp, max_lead_s: int
) -> RefusedWrite:
    entity = entity_text(entity_key)
    return RefusedWrite(
        f"a row of feature view {view_name!r} for entity {entity} has event time "
        f"{event.ToJsonString()}, more than {max_lead_s}s ahead of this host's clock "
        "(a naive local time?); nothing of this write was published. Send UTC event times, "
        "or set online_store.future_event_time: apply to store them as Feast does",
        feature_view=view_name,
        entity=entity,
    )


def _chunks(rows: list[tuple[Row, int]], max_rows: int, max_bytes: int) -> list[tuple[Row, ...]]:
    """Consecutive runs of ``(row, size)``, each of at most ``max_rows`` rows and ``max_bytes``."""
    out: list[tuple[Row, ...]] = []
    chunk: list[Row] = []
    total = 0
    for row, size in rows:
        if chunk and (len(chunk) == max_rows or total + size > max_bytes):
            out.append(tuple(chunk))
            chunk, total = [], 0
        chunk.append(row)
        total += size
    if chunk:
        out.append(tuple(chunk))
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
