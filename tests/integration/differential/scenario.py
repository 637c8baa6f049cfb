"""A generated Feast repo and the writes made to it, as plain data (no I/O).

A ``Scenario`` is the primary's Feast settings, entities and views, then steps: each a write
through one of the primary's write paths (``PATHS``) or a schema change (``Evolve``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from feast import types as ft

PATHS = ("write_to_online_store", "push", "materialize", "online_write_batch")
"""The primary's write paths. The first three are Feast's API calls on a DataFrame; the last is
the call all of them end in, made directly with values of every kind ``feast.types.Value`` has
(some have no DataFrame form Feast converts)."""

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

KEY_TYPES: dict[str, Any] = {
    "string": ft.String,
    "bytes": ft.Bytes,
    "int32": ft.Int32,
    "int64": ft.Int64,
    "unix_timestamp": ft.UnixTimestamp,
}
"""Join-key types: every value type Feast's ``serialize_entity_key`` accepts."""

FRAME_TYPES: dict[str, Any] = {
    "int32": ft.Int32,
    "int64": ft.Int64,
    "float32": ft.Float32,
    "float64": ft.Float64,
    "string": ft.String,
    "bytes": ft.Bytes,
    "bool": ft.Bool,
    "unix_timestamp": ft.UnixTimestamp,
    "pdf_bytes": ft.PdfBytes,
    "json": ft.Json,
    "map": ft.Map,
    "uuid": ft.Uuid,
    "decimal": ft.Decimal,
    "string_set": ft.Set(ft.String),
    "int64_set": ft.Set(ft.Int64),
    "int32_list": ft.Array(ft.Int32),
    "int64_list": ft.Array(ft.Int64),
    "float32_list": ft.Array(ft.Float32),
    "float64_list": ft.Array(ft.Float64),
    "string_list": ft.Array(ft.String),
    "bytes_list": ft.Array(ft.Bytes),
    "bool_list": ft.Array(ft.Bool),
    "int64_list_list": ft.Array(ft.Array(ft.Int64)),
}
"""Feature types whose values Feast converts from a DataFrame (write_to_online_store, push,
materialize). Kinds Feast 0.67 cannot convert from a frame (e.g. ZonedTimestamp, lists of
maps) reach Redis through ``online_write_batch`` with ``value_protos``."""
WIDE_TYPES = ("float32", "float64", "int64", "string")


# The scenario ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Moment:
    """An instant: ``at`` (aware UTC), or, when None, ``offset_s`` from the moment the write
    call is made (future event times must be judged against the primary's clock)."""

    at: datetime | None = None
    offset_s: float = 0.0

    def resolve(self, now: datetime) -> datetime:
        return self.at if self.at is not None else now + timedelta(seconds=self.offset_s)


SAME_AS_EVENT = "event"


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:40]}...<{len(text)} chars>"


@dataclass(frozen=True, repr=False)
class Row:
    entity: tuple[Any, ...]
    """One value per join key of the view, in the view's entity order."""
    values: tuple[Any, ...]
    """One per feature: a Python value (DataFrame paths) or a ``Value`` (online_write_batch)."""
    event: Moment
    created: Moment | str | None
    """None: a null created time (NaT); ``SAME_AS_EVENT``: equal to the event time."""

    def __repr__(self) -> str:  # wide and large rows print short in a failure report
        values = self.values if len(self.values) <= 8 else (*self.values[:3], "...")
        shown = ", ".join(_brief(v) for v in values)
        return f"Row({self.entity!r}, ({shown}), {self.event!r}, {self.created!r})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis' reports
        printer.text(repr(self))


@dataclass(frozen=True)
class Write:
    path: str
    view: int
    rows: tuple[Row, ...]
    naive: bool = False
    """Timestamps without a time zone (Feast reads them as UTC)."""
    on_demand: bool = False
    """To the view's on-demand feature view (``write_to_online_store`` only)."""


@dataclass(frozen=True)
class Evolve:
    """``feast apply`` of ``view`` with one more feature (with versioning on: ``<view>_v1``)."""

    view: int
    added: tuple[str, str]


@dataclass(frozen=True, repr=False)
class View:
    name: str
    entities: tuple[int, ...]
    features: tuple[tuple[str, str], ...]
    """(name, FRAME_TYPES key)."""
    stream: bool = False
    """A StreamFeatureView (push source) instead of a FeatureView."""
    on_demand: bool = False
    """With an on-demand feature view ``<name>_od`` on it that Feast writes online
    (``write_to_online_store=True``, transformation ``count_nulls``)."""

    def __repr__(self) -> str:
        features = self.features
        if len(features) > 8:
            features = (*features[:3], (f"... {len(features)} features", ""))
        kinds = f"stream={self.stream}, on_demand={self.on_demand}"
        return f"View({self.name!r}, {self.entities!r}, {features!r}, {kinds})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis' reports
        printer.text(repr(self))


def count_nulls(inputs: pd.DataFrame) -> pd.DataFrame:
    """The on-demand views' transformation: how many cells of each row are null."""
    return pd.DataFrame({"nulls": inputs.isna().sum(axis=1).astype("int64")})


@dataclass(frozen=True)
class Scenario:
    entities: tuple[tuple[str, str], ...]
    """(join key, KEY_TYPES key) of each entity."""
    views: tuple[View, ...]
    steps: tuple[Write | Evolve, ...]
    key_ttl_seconds: int | None = None
    versioning: bool = False
    serialization_version: int = 3

    def feast_settings(self) -> dict[str, Any]:
        """The primary's feature_store.yaml settings this scenario varies."""
        return {
            "entity_key_serialization_version": self.serialization_version,
            "online_store": {"key_ttl_seconds": self.key_ttl_seconds},
            "registry": {"enable_online_feature_view_versioning": self.versioning},
        }

    def features_at(self, view: int, step: int) -> tuple[tuple[str, str], ...]:
        """The features of ``view`` when ``steps[step]`` runs (earlier Evolve steps added)."""
        added = tuple(
            s.added for s in self.steps[:step] if isinstance(s, Evolve) and s.view == view
        )
        return self.views[view].features + added
