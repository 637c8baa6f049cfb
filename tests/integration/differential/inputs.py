"""What Feast is given for a scenario: its objects, and each write's DataFrame or rows."""

from __future__ import annotations

import inspect
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from feast import (
    Entity,
    FeatureView,
    Field,
    FileSource,
    OnDemandFeatureView,
    PushSource,
    StreamFeatureView,
)
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.type_map import python_values_to_proto_values
from feast.types import Int64

from differential.scenario import (
    FRAME_TYPES,
    KEY_TYPES,
    SAME_AS_EVENT,
    Row,
    Scenario,
    Write,
    count_nulls,
)

FeastRow = tuple[EntityKey, dict[str, Any], datetime, datetime | None]
"""A row as Feast hands it to ``online_write_batch``."""


def feast_objects(scenario: Scenario, repo: Path, step: int) -> list[Any]:
    """Entities, sources and views of ``scenario`` as they are before ``steps[step]``."""
    entities = [
        Entity(name=f"e{i}", join_keys=[key], value_type=KEY_TYPES[kind].to_value_type())
        for i, (key, kind) in enumerate(scenario.entities)
    ]
    objects: list[Any] = list(entities)
    for i, view in enumerate(scenario.views):
        batch = FileSource(
            name=f"source{i}",
            path=str(repo / "data" / f"view{i}.parquet"),
            timestamp_field="event_timestamp",
            created_timestamp_column="created",
        )
        push = PushSource(name=f"push{i}", batch_source=batch)
        keys = [scenario.entities[e] for e in view.entities]
        schema = [Field(name=k, dtype=KEY_TYPES[kind]) for k, kind in keys] + [
            Field(name=n, dtype=FRAME_TYPES[d]) for n, d in scenario.features_at(i, step)
        ]
        common = {
            "name": view.name,
            "entities": [entities[e] for e in view.entities],
            "schema": schema,
            "source": push,
            "ttl": timedelta(0),
        }
        table = (
            StreamFeatureView(**common, timestamp_field="event_timestamp")
            if view.stream
            else FeatureView(**common)
        )
        objects += [batch, push, table]
        if view.on_demand:
            objects.append(
                OnDemandFeatureView(
                    name=f"{view.name}_od",
                    entities=common["entities"],
                    sources=[table],
                    schema=[Field(name="nulls", dtype=Int64)],
                    udf=count_nulls,
                    udf_string=inspect.getsource(count_nulls),
                    mode="pandas",
                    write_to_online_store=True,
                )
            )
    return objects


def _stamps(write: Write, now: datetime) -> tuple[list[datetime], list[datetime | None]]:
    """Event and created times of ``write``'s rows made at ``now``."""

    def plain(moment: datetime) -> datetime:
        return moment.replace(tzinfo=None) if write.naive else moment

    def created(row: Row, event: datetime) -> datetime | None:
        if row.created is None or row.created == SAME_AS_EVENT:
            return None if row.created is None else event
        return plain(row.created.resolve(now))  # type: ignore[union-attr]

    events = [plain(r.event.resolve(now)) for r in write.rows]
    return events, [created(r, e) for r, e in zip(write.rows, events, strict=True)]


def frame(scenario: Scenario, step: int, now: datetime) -> pd.DataFrame:
    """The DataFrame of ``steps[step]`` (a Write on a DataFrame path)."""
    write = scenario.steps[step]
    assert isinstance(write, Write)
    view = scenario.views[write.view]
    columns: dict[str, Any] = {}
    for j, e in enumerate(view.entities):
        columns[scenario.entities[e][0]] = [r.entity[j] for r in write.rows]
    for j, (name, _) in enumerate(scenario.features_at(write.view, step)):
        columns[name] = [r.values[j] for r in write.rows]
    events, created = _stamps(write, now)
    columns["event_timestamp"] = pd.to_datetime(events, utc=not write.naive)
    columns["created"] = pd.to_datetime(created, utc=not write.naive)
    return pd.DataFrame(columns)


def feast_rows(scenario: Scenario, step: int, now: datetime) -> list[FeastRow]:
    """The rows of ``steps[step]`` as Feast hands them to ``online_write_batch``."""
    write = scenario.steps[step]
    assert isinstance(write, Write)
    view = scenario.views[write.view]
    keys = [scenario.entities[e] for e in view.entities]
    names = [name for name, _ in scenario.features_at(write.view, step)]
    events, created = _stamps(write, now)
    rows = []
    for row, event_time, created_time in zip(write.rows, events, created, strict=True):
        values = [
            python_values_to_proto_values([v], KEY_TYPES[kind].to_value_type())[0]
            for v, (_, kind) in zip(row.entity, keys, strict=True)
        ]
        entity = EntityKey(join_keys=[k for k, _ in keys], entity_values=values)
        rows.append((entity, dict(zip(names, row.values, strict=True)), event_time, created_time))
    return rows
