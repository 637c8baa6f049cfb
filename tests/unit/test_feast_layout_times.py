"""The primary's fast encoding path gives Feast's bytes (replicator/feast_layout.py).

Event times are converted by arithmetic and once per distinct value, and records are packed
without ``Row`` objects; Feast's own conversion (``Timestamp.FromDatetime(make_tzaware(t))``,
what ``RedisOnlineStore`` stores in ``_ts:<view>``) stays the definition.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pandas as pd
import pytest
from feast.infra.online_stores.helpers import _redis_key
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value
from feast.utils import make_tzaware
from google.protobuf.timestamp_pb2 import Timestamp

from replicator import feast_layout
from replicator.core import wire


def feast_timestamp(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(make_tzaware(value))
    return ts


EDGES: list[Any] = [
    datetime(2026, 11, 1, 12, 30, 15, 123456, tzinfo=UTC),
    datetime(2026, 11, 1, 12, 30, 15, 123456),  # naive: UTC, as Feast assumes
    datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC),  # before 1970, half a second
    datetime(1900, 1, 1),
    datetime(1, 1, 1, tzinfo=UTC),  # Timestamp's first second
    datetime(9999, 12, 31, 23, 59, 59, 999999),
    datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=9))),
    datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
    datetime(2026, 3, 29, 1, 30, 0, 7, tzinfo=timezone(timedelta(seconds=1, microseconds=9))),
    pd.Timestamp("2026-11-01 12:30:15.123456789", tz="UTC"),  # nanoseconds: Feast drops them
    pd.Timestamp("1950-06-01 00:00:00.000000001"),
]


def random_times(count: int, seed: int = 7) -> list[datetime]:
    rnd = random.Random(seed)
    out = []
    for _ in range(count):
        moment = datetime(1, 1, 2) + timedelta(
            seconds=rnd.randrange(315_537_000_000), microseconds=rnd.randrange(1_000_000)
        )
        offset = timedelta(minutes=rnd.randrange(-1439, 1440))
        out.append(rnd.choice([moment, moment.replace(tzinfo=timezone(offset))]))
    return out


@pytest.mark.parametrize("value", EDGES + random_times(300), ids=str)
def test_event_time_is_feast_timestamp_bytes(value: datetime) -> None:
    seconds, nanos, ts = feast_layout._Times().event(value)
    expected = feast_timestamp(value)
    assert (seconds, nanos, ts) == (expected.seconds, expected.nanos, expected.SerializeToString())


def test_equal_instants_with_different_microsecond_fields_keep_their_own_nanos() -> None:
    """Two datetimes equal as instants (one with a sub-second UTC offset) hash alike; each
    still gets Feast's own (seconds, nanos)."""
    plain = datetime(2026, 1, 1, 0, 0, 0, 0, tzinfo=UTC)
    odd = datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=timezone(timedelta(microseconds=1)))
    assert plain == odd
    times = feast_layout._Times()
    assert times.event(plain)[:2] == (feast_timestamp(plain).seconds, 0)
    assert times.event(odd)[:2] == (feast_timestamp(odd).seconds, feast_timestamp(odd).nanos)


def test_the_repeated_hour_when_clocks_go_back_keeps_both_instants() -> None:
    """01:30 on 2024-11-03 in New York happens twice (``fold`` 0 and 1, an hour apart); the
    two compare and hash equal as datetimes, yet each row gets its own instant, as Feast's."""
    from zoneinfo import ZoneInfo

    first = datetime(2024, 11, 3, 1, 30, tzinfo=ZoneInfo("America/New_York"))
    second = first.replace(fold=1)
    assert first == second and hash(first) == hash(second)
    times = feast_layout._Times()
    for value in (first, second, first):
        expected = feast_timestamp(value)
        assert times.event(value)[:2] == (expected.seconds, expected.nanos)
        assert times.created(value) == (expected.seconds, expected.nanos)
    assert feast_timestamp(second).seconds - feast_timestamp(first).seconds == 3600


def rows(count: int) -> list[feast_layout.FeastRow]:
    times = EDGES[:8] + random_times(count)
    out: list[feast_layout.FeastRow] = []
    for i in range(count):
        key = EntityKey(
            join_keys=["card", "shop"], entity_values=[Value(int64_val=i), Value(string_val="é")]
        )
        values = {"n": Value(int64_val=i), "s": Value(string_val="x" * (i % 5))}
        out.append((key, values, times[i], [None, pd.NaT, times[-i]][i % 3]))
    return out


def test_records_are_the_wire_encoding_of_the_batches() -> None:
    settings: dict[str, Any] = {
        "project": "p",
        "view_name": "v",
        "fingerprint": "fp",
        "registry_version": "r",
        "partitions": 3,
        "serialization_version": 3,
        "published_ns": 1_800_000_000_000_000_000,
        "max_rows": 7,
        "max_bytes": 400 + wire.RECORD_OVERHEAD_BYTES,
        "key_ttl_seconds": 60,
    }
    data = rows(200)
    batches = feast_layout.encode_rows(data, **settings)
    assert len(batches) > 40  # cut by bytes: 200 rows in 3 partitions take 30 cut by count
    expected = [(partition, *wire.encode_rows(batch)) for partition, batch in batches]
    assert feast_layout.encode_records(data, **settings) == expected
    stamps = {row.key: (row.ts, row.event_s, row.event_nanos) for _, b in batches for row in b.rows}
    for key, _, event, _ in data:
        ts = feast_timestamp(event)
        redis_key = _redis_key("p", key, entity_key_serialization_version=3)
        assert stamps[redis_key] == (ts.SerializeToString(), ts.seconds, ts.nanos)
