"""Records: rows carry their version; the fake store applies last writer wins in any order."""

from __future__ import annotations

import random

from fakes import (
    FakeStore,
    make_batch,
    make_row,
    newest_hashes,
    random_writes,
    shuffled_deliveries,
)

from replicator.core.records import DeleteView
from replicator.core.version import Version


def test_row_version_carries_its_log_position() -> None:
    row = make_row(b"k", 10, 20, 30, 40)
    assert row.version(offset=5, index=6) == Version(10, 20, 30, 40, 5, 6)


def test_batch_and_delete_name_feast_fields() -> None:
    batch = make_batch([make_row(b"a", 5), make_row(b"b", 9), make_row(b"c", 2)], view="fv_v2")
    assert batch.ts_field == b"_ts:fv_v2"
    assert batch.max_event_s == 9
    assert make_batch([]).max_event_s == 0
    delete = DeleteView("fv_v2", (), b"\x02driver_id", "proj")
    assert delete.ts_field == b"_ts:fv_v2"
    assert delete.scan_pattern == b"\x02driver_id*proj"


def test_any_delivery_order_ends_with_the_newest_write_per_key() -> None:
    """Property: shuffled, duplicated, regrouped deliveries converge to max(version)'s bytes.
    The same property runs on the real script in Redis (test_store_contract.py)."""
    rng = random.Random(20240611)
    for trial in range(300):
        records = random_writes(rng, lambda i: b"key-%d" % i)
        store = FakeStore()
        for group in shuffled_deliveries(rng, records):
            store.apply(group)
        assert store.hashes == newest_hashes(records), f"trial {trial}: {records}"
