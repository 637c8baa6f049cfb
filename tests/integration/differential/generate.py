"""Hypothesis strategies for whole scenarios (``scenarios()``).

They cover join keys of every type Feast serializes and composite keys, timestamps before
1970, at the epoch, naive, in the future (within the accepted skew and, rarely, beyond it),
equal event and created times, null created times, rows from a few bytes to about 1 MB,
several views sharing entities, stream and on-demand views, wide views (hundreds to thousands
of features), every write path, schema changes, and the Feast settings that shape Redis
(``key_ttl_seconds``, view versioning, entity-key serialization version).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from feast.protos.feast.types.Value_pb2 import Value
from hypothesis import strategies as st

from differential.scenario import (
    EPOCH,
    FRAME_TYPES,
    KEY_TYPES,
    PATHS,
    SAME_AS_EVENT,
    WIDE_TYPES,
    Evolve,
    Moment,
    Row,
    Scenario,
    View,
    Write,
)
from differential.values import DATETIMES, INT32, INT64, frame_value, value_protos, wide_value

NEAR_FUTURE_S = 180
"""Event times up to this far ahead of the call: within ``worker.max_future_skew_seconds``
(300 in infra/topology.yaml), with room for the time the call takes."""
FAR_FUTURE_S = (4_000, 10 * 365 * 86_400)
"""Rarely, one row this far ahead (more than the skew plus an hour): the documented refusal."""

KEY_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "string": st.text(max_size=8),
    "bytes": st.binary(max_size=8),
    "int32": INT32,
    "int64": INT64,
    "unix_timestamp": DATETIMES,
}
ON_DEMAND_SOURCE_TYPES = ("int32", "int64", "float32", "float64", "string", "bool")
VIEW_NAMES = st.sampled_from(["v", "händler risiko/€", "a.b-c"])
"""Names Feast accepts; the last two need the topic-name escape (docs/wire-format.md)."""
FIXED_MOMENTS = st.one_of(
    st.just(EPOCH),
    st.sampled_from([EPOCH - timedelta(microseconds=1), EPOCH + timedelta(microseconds=1)]),
    st.datetimes(datetime(1900, 1, 1), datetime(2025, 1, 1), timezones=st.just(UTC)),
)
MOMENTS = st.one_of(
    FIXED_MOMENTS.map(lambda at: Moment(at=at)),
    st.integers(-30 * 86_400, 0).map(lambda s: Moment(offset_s=s)),
    st.integers(1, NEAR_FUTURE_S).map(lambda s: Moment(offset_s=s)),
)


def rarely(n: int) -> st.SearchStrategy[bool]:
    """True about once in ``n`` draws (shrinks to False)."""
    return st.integers(1, n).map(lambda i: i == n)


def _features(draw: st.DrawFn) -> tuple[tuple[str, str], ...]:
    if draw(rarely(10)):  # a wide view
        width = draw(st.integers(100, 3_000))
        dtype = draw(st.sampled_from(WIDE_TYPES))
        return tuple((f"w{j}", dtype) for j in range(width))
    dtypes = draw(st.lists(st.sampled_from(list(FRAME_TYPES)), min_size=1, max_size=6))
    return tuple((f"f{j}", dtype) for j, dtype in enumerate(dtypes))


def _values(draw: st.DrawFn, features: tuple[tuple[str, str], ...], path: str) -> tuple[Any, ...]:
    if len(features) > 8:
        rng = random.Random(draw(st.integers(0, 2**32)))
        values = tuple(wide_value(rng, dtype) for _, dtype in features)
        if path != "online_write_batch":
            return values
        return tuple(Value() if v is None else Value(string_val=str(v)) for v in values)
    if path == "online_write_batch":
        return tuple(draw(value_protos()) for _ in features)
    return tuple(draw(frame_value(dtype)) for _, dtype in features)


def _view(draw: st.DrawFn, index: int, entities: int) -> View:
    features = _features(draw)
    return View(
        name=f"{draw(VIEW_NAMES)}{index}",
        entities=tuple(sorted(draw(st.sets(st.integers(0, entities - 1), min_size=1)))),
        features=features,
        stream=draw(st.booleans()),
        # Feast's apply runs the transformation on made-up inputs of the source's types, and
        # cannot make up every type (lists of lists, maps...).
        on_demand=draw(rarely(3)) and all(t in ON_DEMAND_SOURCE_TYPES for _, t in features),
    )


@st.composite
def scenarios(draw: st.DrawFn, max_steps: int = 6) -> Scenario:
    """A Feast repo and the writes made to it (see the module docstring)."""
    entities = tuple(
        (f"k{i}{draw(st.sampled_from(['', 'é', ' id']))}", draw(st.sampled_from(list(KEY_TYPES))))
        for i in range(draw(st.integers(1, 3)))
    )
    pools = [draw(st.lists(KEY_VALUES[kind], min_size=1, max_size=3)) for _, kind in entities]
    views = tuple(_view(draw, i, len(entities)) for i in range(draw(st.integers(1, 3))))
    moments = st.sampled_from(draw(st.lists(MOMENTS, min_size=1, max_size=3)))
    instant = st.one_of(moments, moments, MOMENTS)  # shared instants make ties
    settings = {
        "key_ttl_seconds": draw(st.none() | st.integers(3600, 10**7)),  # none expire mid-run
        "versioning": draw(st.booleans()),
        "serialization_version": draw(st.sampled_from([3, 3, 2])),
    }
    features = {v: view.features for v, view in enumerate(views)}
    steps: list[Write | Evolve] = []
    for _ in range(draw(st.integers(1, max_steps))):
        v = draw(st.integers(0, len(views) - 1))
        if draw(rarely(10)):
            kinds = ON_DEMAND_SOURCE_TYPES if views[v].on_demand else tuple(FRAME_TYPES)
            added = (f"added{len(steps)}", draw(st.sampled_from(kinds)))
            features[v] += (added,)
            steps.append(Evolve(v, added))
            continue
        path = draw(st.sampled_from(PATHS))
        rows = []
        for _ in range(draw(st.integers(1, 3 if len(features[v]) > 8 else 6))):
            entity = tuple(draw(st.sampled_from(pools[e])) for e in views[v].entities)
            values = _values(draw, features[v], path)
            created = draw(st.none() | st.just(SAME_AS_EVENT) | instant)
            rows.append(Row(entity, values, draw(instant), created))
        if draw(rarely(12)):  # one row far ahead of every clock
            far = Moment(offset_s=draw(st.integers(*FAR_FUTURE_S)))
            i = draw(st.integers(0, len(rows) - 1))
            rows[i] = Row(rows[i].entity, rows[i].values, far, rows[i].created)
        on_demand = views[v].on_demand and path == "write_to_online_store" and draw(st.booleans())
        steps.append(Write(path, v, tuple(rows), draw(st.booleans()), on_demand))
    return Scenario(entities, views, tuple(steps), **settings)
