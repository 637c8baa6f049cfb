"""The synthetic feature view every benchmark writes, and its fixed rows.

One entity (``account_id``, Int64) and ten features (four Int64, three Float64/Float32, three
String), the shape of a typical fraud or recommendation view. Rows are a pure function of the
entity id: no random generator, so every run writes the same bytes.

Two ways to make rows:
- ``feast_rows``: what Feast hands to ``online_write_batch`` (protobuf objects), for the
  benchmarks that go through Feast or compare with it;
- ``wire_batches``: wire-v1 batches built directly (``replicator.core.wire``), for the fast
  fill of the rebuild benchmark. Keys and timestamps are byte-identical to what Feast makes
  for the same ids (``check_fast_path`` proves it on a sample each run); values are Feast
  protobufs serialized once and reused with a period of a few thousand ids.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from replicator.core.records import Row, RowBatch
from replicator.core.wire import partition_for

ENTITY = "account_id"
FEATURES: tuple[tuple[str, str], ...] = (
    ("txn_count_1h", "int64"),
    ("txn_count_24h", "int64"),
    ("distinct_merchants_7d", "int64"),
    ("declines_30d", "int64"),
    ("amount_mean_24h", "double"),
    ("amount_max_24h", "double"),
    ("risk_score", "float"),
    ("home_country", "string"),
    ("last_mcc", "string"),
    ("device_family", "string"),
)
EVENT_TIME = datetime(2026, 11, 1, tzinfo=UTC)
"""Event time of the fixed data sets (benchmarks that need fresh times pass their own)."""

_COUNTRIES = ["US", "GB", "DE", "FR", "SG", "JP", "BR", "IN", "AU", "CA", "NL", "ES"]
_DEVICES = ["ios-17", "ios-18", "android-14", "android-15", "web-chrome", "web-safari"]


def feature_value(entity_id: int, index: int) -> int | float | str:
    """Feature ``index`` of entity ``entity_id``: arithmetic only, so fixed across runs."""
    h = (entity_id * 2654435761 + index * 40503) & 0xFFFFFFFF
    kind = FEATURES[index][1]
    if kind == "int64":
        return h % (10 ** (index + 2))
    if kind in ("double", "float"):
        return round((h % 1_000_000) / 97.0, 4)
    if index == 7:
        return _COUNTRIES[h % len(_COUNTRIES)]
    if index == 8:
        return f"{5000 + h % 900:04d}"
    return _DEVICES[h % len(_DEVICES)]


# Feast objects (imported lazily: `import feast` takes seconds) -------------------------
def feast_definitions(view_name: str, source_path: str) -> tuple[Any, Any]:
    """The entity and the 10-feature view, named ``view_name``."""
    from feast import Entity, FeatureView, Field, FileSource, ValueType
    from feast.types import Float32, Float64, Int64, String

    types = {"int64": Int64, "double": Float64, "float": Float32, "string": String}
    entity = Entity(name="account", join_keys=[ENTITY], value_type=ValueType.INT64)
    source = FileSource(name=f"{view_name}_source", path=source_path, timestamp_field="ts")
    view = FeatureView(
        name=view_name,
        entities=[entity],
        schema=[Field(name=name, dtype=types[kind]) for name, kind in FEATURES],
        source=source,
        ttl=timedelta(days=30),
        online=True,
    )
    return entity, view


def _value_proto(entity_id: int, index: int) -> Any:
    from feast.protos.feast.types.Value_pb2 import Value

    value = feature_value(entity_id, index)
    kind = FEATURES[index][1]
    if kind == "int64":
        return Value(int64_val=int(value))
    if kind == "double":
        return Value(double_val=float(value))
    if kind == "float":
        return Value(float_val=float(value))
    return Value(string_val=str(value))


def entity_key(entity_id: int) -> Any:
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    return EntityKey(join_keys=[ENTITY], entity_values=[Value(int64_val=entity_id)])


def feature_values(entity_id: int) -> dict[str, Any]:
    return {name: _value_proto(entity_id, i) for i, (name, _) in enumerate(FEATURES)}


def feast_rows(
    count: int, *, first_id: int = 0, event_time: datetime = EVENT_TIME
) -> list[tuple[Any, dict[str, Any], datetime, datetime]]:
    """``count`` rows for entities ``first_id..``, as Feast passes them to online stores."""
    return [
        (entity_key(i), feature_values(i), event_time, event_time)
        for i in range(first_id, first_id + count)
    ]


# The fast path: wire batches without Feast's per-row encoding ----------------------------
@cache
def _serialized_value(entity_id: int, index: int) -> bytes:
    return bytes(_value_proto(entity_id, index).SerializeToString())


class FastRows:
    """Builds the same keys, values and timestamps as the Feast path, ~20x faster.

    Entity keys follow Feast's serialization v3 for one Int64 join key: a fixed head, the
    8-byte little-endian id, then the project name. Values repeat with a period of
    ``value_period`` ids, so serialized protobufs are cached rather than rebuilt per row.
    """

    def __init__(self, project: str, view_name: str, *, value_period: int = 4096) -> None:
        from feast.infra.online_stores.helpers import _mmh3, _redis_key
        from google.protobuf.timestamp_pb2 import Timestamp

        self.project = project
        self.view_name = view_name
        self.value_period = value_period
        sample = bytes(_redis_key(project, entity_key(0), entity_key_serialization_version=3))
        tail = 8 + len(project.encode())
        self._head = sample[:-tail]
        self._suffix = project.encode()
        self.fields = tuple(bytes(_mmh3(f"{view_name}:{name}")) for name, _ in FEATURES)
        ts = Timestamp()
        ts.FromDatetime(EVENT_TIME)
        self._ts = ts.SerializeToString()
        self._event = (ts.seconds, ts.nanos)
        self._redis_key = _redis_key

    def key(self, entity_id: int) -> bytes:
        return self._head + struct.pack("<q", entity_id) + self._suffix

    def values(self, entity_id: int) -> tuple[bytes, ...]:
        base = entity_id % self.value_period
        return tuple(_serialized_value(base, j) for j in range(len(FEATURES)))

    def check_fast_path(self, ids: range = range(0, 50_000, 997)) -> None:
        """Raise if a fast-path key differs from Feast's own ``_redis_key``."""
        for i in ids:
            feast_key = bytes(
                self._redis_key(self.project, entity_key(i), entity_key_serialization_version=3)
            )
            if feast_key != self.key(i):
                raise AssertionError(f"fast-path key of entity {i} differs from Feast's")

    def batches(
        self,
        count: int,
        *,
        partitions: int,
        max_rows: int,
        fingerprint: str,
        published_ns: int = 0,
        first: int = 0,
    ) -> Iterator[tuple[int, RowBatch]]:
        """Rows for entities ``first..first+count-1``, one per entity, grouped per partition."""
        pending: dict[int, list[Row]] = {}
        es, en = self._event
        for i in range(first, first + count):
            key = self.key(i)
            row = Row(key, self._ts, es, en, es, en, self.values(i))
            partition = partition_for(key, partitions)
            rows = pending.setdefault(partition, [])
            rows.append(row)
            if len(rows) == max_rows:
                yield partition, self._batch(rows, fingerprint, published_ns)
                pending[partition] = []
        for partition, rows in sorted(pending.items()):
            if rows:
                yield partition, self._batch(rows, fingerprint, published_ns)

    def _batch(self, rows: list[Row], fingerprint: str, published_ns: int) -> RowBatch:
        return RowBatch(self.view_name, self.fields, tuple(rows), fingerprint, "", published_ns)
