"""Last writer wins: event time, then created time, then log position; equal re-applies."""

from __future__ import annotations

import random

import pytest
from fakes import FakeStore, encoded, feast_hash, make_batch, make_row

from replicator.core.records import DeleteView, Row, Version

OLD = Version(100, 500, 90, 0, offset=7, index=3)


@pytest.mark.parametrize(
    ("newer", "why"),
    [
        (Version(101, 0, 0, 0, offset=0, index=0), "later event second beats everything after it"),
        (Version(100, 501, 0, 0, offset=0, index=0), "later event nanos beat created and log"),
        (Version(100, 500, 91, 0, offset=0, index=0), "same event, later created second"),
        (Version(100, 500, 90, 1, offset=0, index=0), "same event, later created nanos"),
        (Version(100, 500, 90, 0, offset=8, index=0), "exact tie: later offset (a correction)"),
        (Version(100, 500, 90, 0, offset=7, index=4), "exact tie, same record: later row"),
    ],
)
def test_newer_version_supersedes_and_older_does_not(newer: Version, why: str) -> None:
    assert newer.supersedes(OLD), why
    assert not OLD.supersedes(newer), why


def test_equal_version_reapplies() -> None:
    # The same log record delivered again writes the same bytes: allowed, and repairs a copy.
    assert OLD.supersedes(Version(*OLD.as_tuple()))


def test_anything_supersedes_nothing() -> None:
    assert Version(0, 0).supersedes(None)


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


def _random_writes(rng: random.Random) -> list[tuple[int, list[Row]]]:
    """Records (offset, rows) for a few keys, with many ties on every part of the version."""
    keys = [b"key-%d" % i for i in range(rng.randint(1, 4))]
    records = []
    for offset in range(rng.randint(1, 25)):
        rows = []
        for index in range(rng.randint(1, 4)):
            key = rng.choice(keys)
            stamps = [rng.randint(0, 2) for _ in range(4)]
            tag = b"o%d/i%d" % (offset, index)  # bytes unique to this write
            rows.append(make_row(key, *stamps, values=(b"a" + tag, b"b" + tag), ts=b"t" + tag))
        records.append((offset, rows))
    return records


def test_any_delivery_order_ends_with_the_newest_write_per_key() -> None:
    """Property: shuffled, duplicated, regrouped deliveries converge to max(version)'s bytes."""
    rng = random.Random(20240611)
    for trial in range(300):
        records = _random_writes(rng)
        newest: dict[bytes, tuple[Version, Row]] = {}
        for offset, rows in records:
            for index, row in enumerate(rows):
                version = row.version(offset, index)
                if row.key not in newest or version.as_tuple() > newest[row.key][0].as_tuple():
                    newest[row.key] = (version, row)

        deliveries = [encoded(make_batch(rows), offset=offset) for offset, rows in records]
        deliveries += rng.sample(deliveries, k=len(deliveries) // 3)  # redelivered duplicates
        rng.shuffle(deliveries)
        store = FakeStore()
        while deliveries:  # several records per apply call, like one poll
            take = rng.randint(1, 5)
            store.apply(deliveries[:take])
            deliveries = deliveries[take:]

        expected = {key: feast_hash(make_batch([row]), row) for key, (_, row) in newest.items()}
        assert store.hashes == expected, f"trial {trial}: {records}"


def test_fold_of_supersedes_picks_the_maximum_in_any_order() -> None:
    rng = random.Random(99)
    for _ in range(500):
        versions = [Version(*(rng.randint(0, 2) for _ in range(6))) for _ in range(8)]
        current: Version | None = None
        for version in rng.sample(versions, k=len(versions)):
            if version.supersedes(current):
                current = version
        assert current is not None
        assert current.as_tuple() == max(v.as_tuple() for v in versions)
