"""The primary's encoding of Feast rows into wire batches (replicator/feast_layout.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value

from replicator import feast_layout

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
