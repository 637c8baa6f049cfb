"""What each store was asked to write, and Redis as Feast's rule and the replicator's make it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from feast.infra.online_stores.helpers import _mmh3, _redis_key, compute_versioned_name
from feast.utils import make_tzaware
from google.protobuf.timestamp_pb2 import Timestamp
from harness import FeastKeys

from differential.inputs import FeastRow
from replicator.errors import RefusedWrite


@dataclass
class Invocation:
    """One ``online_write_batch`` call as the store received it."""

    view: str
    """The view's name in Redis (``_v<N>`` with versioning)."""
    rows: list[FeastRow]
    called_ns: int
    refused: RefusedWrite | None = None
    failed: Exception | None = None
    """Any other error: Feast's own store raises it too, and neither writes anything."""

    @property
    def published(self) -> bool:
        return self.refused is None and self.failed is None


def record(store: Any, versioning: bool) -> list[Invocation]:
    """Every ``online_write_batch`` of ``store``'s online store, from now on."""
    online = store._get_provider().online_store
    write = online.online_write_batch
    calls: list[Invocation] = []

    def recording(config: Any, table: Any, data: Any, progress: Any) -> None:
        call = Invocation(compute_versioned_name(table, versioning), list(data), time.time_ns())
        calls.append(call)
        try:
            write(config, table, call.rows, progress)
        except RefusedWrite as exc:
            call.refused = exc
            raise
        except Exception as exc:
            call.failed = exc
            raise

    online.online_write_batch = recording
    return calls


@dataclass(frozen=True)
class KeyBytes:
    """What Feast's Redis keys are made of besides the entity: the project, the entity-key
    serialization version."""

    project: str
    serialization_version: int


@dataclass(frozen=True)
class Written:
    """A row as the bytes it puts in Redis, and what orders it."""

    key: bytes
    event_ns: int
    created: tuple[float, int]
    fields: dict[bytes, bytes]


NULL_CREATED = (float("-inf"), 0)
"""A null created time ranks below every real one (docs/replication.md)."""


def _timestamp(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(make_tzaware(value))
    return ts


def written(call: Invocation, keys: KeyBytes) -> Iterator[Written]:
    """Each row of ``call`` as the bytes Feast's functions make of it."""
    ts_field = f"_ts:{call.view}".encode()
    version = keys.serialization_version
    for entity, values, event_time, created_time in call.rows:
        key = _redis_key(keys.project, entity, entity_key_serialization_version=version)
        ts = _timestamp(event_time)
        created: tuple[float, int] = NULL_CREATED
        if created_time is not None and not pd.isna(created_time):
            stamp = _timestamp(created_time)
            created = (stamp.seconds, stamp.nanos)
        fields = {ts_field: ts.SerializeToString()}
        fields |= {
            bytes(_mmh3(f"{call.view}:{n}")): v.SerializeToString() for n, v in values.items()
        }
        yield Written(bytes(key), ts.seconds * 10**9 + ts.nanos, created, fields)


def feast_model(calls: list[Invocation], keys: KeyBytes) -> FeastKeys:
    """Redis after Feast's RedisOnlineStore.online_write_batch received ``calls``: a row is
    skipped unless its event time is after the stored one and after earlier rows of its call
    (both read as 0, i.e. none, when at or before 1970)."""
    state: FeastKeys = {}
    stored: dict[tuple[bytes, str], int] = {}
    for call in (c for c in calls if c.failed is None):
        rows = list(written(call, keys))
        before = {r.key: stored.get((r.key, call.view), 0) for r in rows}
        latest: dict[bytes, int] = {}
        for r in rows:
            seen = max(before[r.key], latest.get(r.key, 0))
            if seen and r.event_ns <= seen:
                continue
            latest[r.key] = stored[(r.key, call.view)] = r.event_ns
            state.setdefault(r.key, {}).update(r.fields)
    return state


def replicated_model(calls: list[Invocation], keys: KeyBytes) -> FeastKeys:
    """Redis after every region applied the calls the primary published: per key and view,
    the greatest (event time, created time, log position) wins."""
    state: FeastKeys = {}
    newest: dict[tuple[bytes, str], tuple[Any, ...]] = {}
    published = [c for c in calls if c.published]
    for position, call in enumerate(published):
        for index, r in enumerate(written(call, keys)):
            rank = (r.event_ns, r.created, position, index)
            if (r.key, call.view) in newest and rank <= newest[(r.key, call.view)]:
                continue
            newest[(r.key, call.view)] = rank
            state.setdefault(r.key, {}).update(r.fields)
    return state


def describe_difference(expected: FeastKeys, actual: FeastKeys, shown: int = 3) -> str:
    """The first keys that differ, with the expected and actual bytes of each field."""
    lines = []
    for key in sorted(expected.keys() | actual.keys()):
        want, got = expected.get(key), actual.get(key)
        if want == got:
            continue
        lines.append(f"key {key[:120]!r}:")
        if want is None or got is None:
            lines.append("  missing" if got is None else "  not expected")
        else:
            for name in sorted(want.keys() | got.keys()):
                if want.get(name) != got.get(name):
                    lines.append(
                        f"  field {name!r}: expected {_short(want.get(name))}, "
                        f"got {_short(got.get(name))}"
                    )
        if len(lines) > 12 * shown:
            break
    differ = sum(1 for k in expected.keys() | actual.keys() if expected.get(k) != actual.get(k))
    return f"{differ} of {len(expected)} keys differ\n" + "\n".join(lines)


def _short(value: bytes | None) -> str:
    if value is None:
        return "(absent)"
    return repr(value[:80]) + (f"... ({len(value)} bytes)" if len(value) > 80 else "")
