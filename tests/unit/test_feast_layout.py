"""The primary's encoding of Feast rows into wire batches (replicator/feast_layout.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value

from replicator import feast_layout
from replicator.core import wire
from replicator.errors import RefusedWrite

EVENT = datetime(2026, 11, 1, tzinfo=UTC)


def feast_row(entity: int, created: Any, **values: Value) -> feast_layout.FeastRow:
    key = EntityKey(join_keys=["card_id"], entity_values=[Value(int64_val=entity)])
    return key, values or {"f": Value(int32_val=entity)}, EVENT, created


def encode(rows: list[feast_layout.FeastRow], **options: Any) -> list[Any]:
    settings: dict[str, Any] = {
        "project": "p",
        "view_name": "v",
        "fingerprint": "fp",
        "registry_version": "",
        "partitions": 1,
        "serialization_version": 3,
        "published_ns": 1,
        "max_rows": 2000,
        "max_bytes": 8 * 1024 * 1024,
        **options,
    }
    return feast_layout.encode_rows(rows, **settings)


@pytest.mark.parametrize("null", [None, pd.NaT], ids=["none", "NaT"])
def test_null_created_time_ranks_below_every_real_created_time(null: Any) -> None:
    before_1970 = datetime(1900, 1, 1, tzinfo=UTC)
    [(_, batch)] = encode([feast_row(1, null), feast_row(2, before_1970)])
    without, with_created = batch.rows
    assert (without.created_s, without.created_nanos) == feast_layout.NULL_CREATED
    # Same event time: the row with a created time wins whatever the log order.
    assert not without.version(offset=9, index=0).supersedes(with_created.version(0, 0))
    assert with_created.version(offset=0, index=0).supersedes(without.version(9, 0))


def record_bytes(batch: Any) -> int:
    headers, payload = wire.encode_rows(batch)
    return len(payload) + sum(len(k) + len(v or b"") for k, v in headers)


def wide(entity: int, size: int) -> feast_layout.FeastRow:
    return feast_row(entity, EVENT, blob=Value(bytes_val=bytes([entity % 256]) * size))


def test_records_are_cut_by_bytes_under_the_limit_keeping_call_order() -> None:
    rows = [wide(i, 300_000) for i in range(20)]
    batches = encode(rows, max_bytes=1_000_000)
    assert len(batches) > 6
    assert all(record_bytes(batch) <= 1_000_000 for _, batch in batches)
    assert [r.values for _, b in batches for r in b.rows] == [
        (Value(bytes_val=bytes([i]) * 300_000).SerializeToString(),) for i in range(20)
    ]


def test_a_row_is_refused_one_byte_over_the_limit_and_accepted_at_it() -> None:
    [(_, batch)] = encode([wide(7, 100_000)])
    needed = wire.row_bytes(batch.rows[0]) + wire.batch_overhead_bytes("v", batch.fields)
    [(_, at_limit)] = encode([wide(7, 100_000)], max_bytes=needed)
    assert record_bytes(at_limit) <= needed
    with pytest.raises(RefusedWrite) as refused:
        encode([feast_row(1, EVENT), wide(7, 100_000)], max_bytes=needed - 1)
    assert (refused.value.feature_view, refused.value.entity) == ("v", "card_id=7")
    assert str(needed - 1) in str(refused.value)


def test_the_schema_fingerprint_does_not_depend_on_feature_order() -> None:
    """Feast stores a stream feature view's features in set order, different in every process
    that rewrites the registry (``feast materialize`` does): the rows' fingerprint must still
    match the one ``registry sync`` put in the manifest."""
    from feast import Entity, FeatureView, Field, FileSource, ValueType
    from feast.types import Int64, String

    card = Entity(name="card", join_keys=["card_id"], value_type=ValueType.INT64)
    source = FileSource(path="s.parquet", timestamp_field="event_timestamp")
    fields = [Field(name="a", dtype=Int64), Field(name="b", dtype=String)]

    def view(features: list[Field]) -> FeatureView:
        return FeatureView(name="v", entities=[card], schema=features, source=source)

    one, other = view(fields), view(fields[::-1])
    assert [f.name for f in one.features] != [f.name for f in other.features]
    assert feast_layout.schema_fingerprint(one, "v") == feast_layout.schema_fingerprint(other, "v")
    renamed = view([fields[0], Field(name="c", dtype=String)])
    assert feast_layout.schema_fingerprint(renamed, "v") != feast_layout.schema_fingerprint(
        one, "v"
    )
