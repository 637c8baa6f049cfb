"""Hypothesis strategies for the values a scenario writes: DataFrame cells of every feature
type Feast converts from a frame, and ``feast.types.Value`` messages of every kind it defines
(lists, sets, maps, bytes, unicode, NaN/inf, nulls, empty lists), small or about 1 MB.
"""

from __future__ import annotations

import decimal
import json
import random
from datetime import UTC, datetime
from typing import Any

from feast.protos.feast.types.Value_pb2 import Value
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from hypothesis import strategies as st


def _big(alphabet: st.SearchStrategy[Any], limit: int) -> st.SearchStrategy[Any]:
    """A value of up to ``limit`` units built from two draws (``unit * n``), so a 1 MB row
    costs hypothesis no more than a short one."""
    return st.builds(lambda unit, n: unit * n, alphabet, st.integers(1_000, limit))


TEXT = st.one_of(st.text(max_size=12), _big(st.characters(), 300_000))  # up to 4 bytes each
BINARY = st.one_of(st.binary(max_size=12), _big(st.binary(min_size=1, max_size=1), 1_000_000))
DOUBLES = st.floats(allow_nan=True, allow_infinity=True)
FLOATS = st.floats(width=32, allow_nan=True, allow_infinity=True)
INT32 = st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)
DATETIMES = st.datetimes(datetime(1900, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC))
JSON = st.dictionaries(st.text(max_size=4), st.integers() | st.text(max_size=4), max_size=3)


def _vector(seed: int, dimensions: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(-1, 1) for _ in range(dimensions)]


EMBEDDING = st.builds(_vector, st.integers(0, 2**16), st.integers(1_000, 1_600))
"""A float vector like an embedding's (one seed, so a long one costs no more to generate)."""


def _lists(items: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    return st.lists(items, max_size=4)  # empty lists included


FRAME_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "int32": INT32,
    "int64": INT64,
    "float32": FLOATS,
    "float64": DOUBLES,
    "string": TEXT,
    "bytes": BINARY,
    "bool": st.booleans(),
    "unix_timestamp": DATETIMES,
    "pdf_bytes": BINARY,
    "json": JSON.map(json.dumps),
    "map": st.dictionaries(st.text(max_size=4), INT64 | st.text(max_size=6), max_size=3),
    "uuid": st.uuids().map(str),
    "decimal": st.decimals(allow_nan=False, allow_infinity=False, places=4).map(str),
    "string_set": st.sets(st.text(max_size=6), max_size=3),
    "int64_set": st.sets(INT64, max_size=3),
    "int32_list": _lists(INT32),
    "int64_list": _lists(INT64),
    "float32_list": _lists(FLOATS) | EMBEDDING,
    "float64_list": _lists(DOUBLES),
    "string_list": _lists(st.text(max_size=6)),
    "bytes_list": _lists(st.binary(max_size=6)),
    "bool_list": _lists(st.booleans()),
    "int64_list_list": _lists(_lists(INT64)),
}


def frame_value(dtype: str) -> st.SearchStrategy[Any]:
    """A DataFrame cell of ``dtype``: a value or a null."""
    value = FRAME_VALUES[dtype]
    if dtype == "decimal":
        value = value.map(decimal.Decimal)
    return st.none() | value


def wide_value(rng: random.Random, dtype: str) -> Any:
    """A cell of a wide view (values drawn from one seed: thousands of them per row)."""
    pick = rng.random()
    if pick < 0.05:
        return None
    if dtype == "string":
        return "é" * rng.randint(0, 8)
    if dtype == "int64":
        return rng.randint(-(2**40), 2**40)
    return float("nan") if pick < 0.1 else rng.uniform(-1e6, 1e6)


_SCALARS: dict[int, st.SearchStrategy[Any]] = {
    FieldDescriptor.TYPE_BYTES: BINARY,
    FieldDescriptor.TYPE_STRING: TEXT,
    FieldDescriptor.TYPE_INT32: INT32,
    FieldDescriptor.TYPE_INT64: INT64,
    FieldDescriptor.TYPE_DOUBLE: DOUBLES,
    FieldDescriptor.TYPE_FLOAT: FLOATS,
    FieldDescriptor.TYPE_BOOL: st.booleans(),
    FieldDescriptor.TYPE_ENUM: st.just(0),
}


def _message(descriptor: Descriptor, depth: int) -> st.SearchStrategy[Any]:
    """Any message of ``descriptor`` (feast.types.Value or one of its parts), built from the
    descriptor so every kind Feast defines is covered, whatever its version adds; one member
    of each oneof is set."""
    if descriptor.full_name == Value.DESCRIPTOR.full_name:
        return value_protos(depth)
    cls = message_factory.GetMessageClass(descriptor)
    plain = {f.name: _field(f, depth) for f in descriptor.fields if f.containing_oneof is None}
    chosen = [
        st.one_of([_field(f, depth).map(lambda v, n=f.name: {n: v}) for f in oneof.fields])
        for oneof in descriptor.oneofs
    ]
    return st.tuples(st.fixed_dictionaries(plain), *chosen).map(
        lambda parts: cls(**{k: v for part in parts for k, v in part.items()})
    )


def _field(f: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    entry = f.message_type
    if entry is not None and entry.GetOptions().map_entry:
        key, value = entry.fields_by_name["key"], entry.fields_by_name["value"]
        return st.dictionaries(_field(key, depth), _field(value, depth), max_size=3)
    one = _SCALARS[f.type] if entry is None else _message(entry, depth + 1)
    if f.type in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES) and f.is_repeated:
        one = (
            st.text(max_size=6) if f.type == FieldDescriptor.TYPE_STRING else st.binary(max_size=6)
        )
    return st.lists(one, max_size=4) if f.is_repeated else one


def value_protos(depth: int = 0) -> st.SearchStrategy[Value]:
    """A ``feast.types.Value`` of any kind (its ``val`` oneof), or unset (a null)."""
    kinds: list[st.SearchStrategy[Value]] = [st.just(Value())]
    for f in Value.DESCRIPTOR.oneofs_by_name["val"].fields:
        if depth >= 2 and f.message_type is not None:
            continue  # nested maps and lists: two levels are enough
        kinds.append(_field(f, depth).map(lambda v, name=f.name: Value(**{name: v})))
    return st.one_of(kinds)
