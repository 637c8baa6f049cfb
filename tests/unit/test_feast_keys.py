"""Redis keys by per-shape templates equal Feast's own ``_redis_key`` (replicator/feast_keys.py)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from feast.infra.online_stores.helpers import _redis_key
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value
from hypothesis import given, settings
from hypothesis import strategies as st

from replicator import feast_keys

INT32 = st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)
VALUES = {
    "string_val": st.text(max_size=40),
    "bytes_val": st.binary(max_size=40),
    "int32_val": INT32,
    "int64_val": INT64,
    "unix_timestamp_val": INT64,
}
NAMES = st.text(min_size=1, max_size=12)
VERSIONS = st.sampled_from([2, 3])


@pytest.fixture(autouse=True)
def quiet_v2() -> Iterator[None]:
    with warnings.catch_warnings():  # Feast warns on every version-2 key it serializes
        warnings.simplefilter("ignore")
        yield


def value(kind: str, raw: Any) -> Value:
    return Value(**{kind: raw})


@st.composite
def entity_keys(draw: st.DrawFn, min_keys: int = 1, max_keys: int = 4) -> list[EntityKey]:
    """Rows of one shape: distinct join-key names, each with a covered value kind."""
    names = draw(st.lists(NAMES, min_size=min_keys, max_size=max_keys, unique=True))
    kinds = [draw(st.sampled_from(sorted(VALUES))) for _ in names]
    rows = draw(st.integers(1, 40))
    return [
        EntityKey(
            join_keys=names,
            entity_values=[value(kind, draw(VALUES[kind])) for kind in kinds],
        )
        for _ in range(rows)
    ]


def feast(project: str, keys: list[EntityKey], version: int) -> list[bytes]:
    return [_redis_key(project, key, entity_key_serialization_version=version) for key in keys]


def shape_of(key: EntityKey) -> feast_keys.Shape:
    return tuple(key.join_keys), tuple(v.WhichOneof("val") for v in key.entity_values)


@settings(max_examples=max(100, settings().max_examples))  # many rows per example, too
@given(keys=entity_keys(), version=VERSIONS, project=st.text(max_size=10))
def test_template_equals_feast_for_every_covered_type_and_composite_key(
    keys: list[EntityKey], version: int, project: str
) -> None:
    build = feast_keys.template(shape_of(keys[0]), version, project)
    assert build is not None
    assert [build(key.entity_values) for key in keys] == feast(project, keys, version)


@given(shapes=st.lists(entity_keys(), min_size=1, max_size=4), version=VERSIONS)
def test_a_call_of_mixed_shapes_gets_feast_keys_in_order(
    shapes: list[list[EntityKey]], version: int
) -> None:
    keys = [key for rows in zip(*shapes, strict=False) for key in rows] + shapes[0] * 5
    assert feast_keys.redis_keys("proj", keys, version) == feast("proj", keys, version)


def test_uncovered_shapes_and_versions_use_feast_function() -> None:
    covered = EntityKey(join_keys=["a"], entity_values=[Value(int64_val=1)])
    float_key = EntityKey(join_keys=["a"], entity_values=[Value(double_val=1.5)])
    no_keys = EntityKey()
    assert feast_keys.template(shape_of(float_key), 3, "p") is None
    assert feast_keys.template(shape_of(no_keys), 3, "p") is None
    assert feast_keys.template(shape_of(covered), 1, "p") is None
    assert feast_keys.template(((), ()), 3, "p") is None
    assert feast_keys.template((("a", "a"), ("int64_val", "int64_val")), 3, "p") is None
    assert feast_keys.template((("a", "b"), ("int64_val",)), 3, "p") is None
    keys = [covered] * 20 + [no_keys] + [covered] * 5
    assert feast_keys.redis_keys("p", keys, 3) == feast("p", keys, 3)
    for version in (1, 2, 3):
        assert feast_keys.redis_keys("p", [covered] * 20, version) == feast(
            "p", [covered] * 20, version
        )


def test_keys_feast_cannot_serialize_raise_feast_error() -> None:
    keys = [EntityKey(join_keys=["a"], entity_values=[Value(int64_val=i)]) for i in range(20)]
    keys[7] = EntityKey(join_keys=["a"], entity_values=[Value(double_val=1.5)])
    with pytest.raises(ValueError, match="Value type not supported"):
        feast_keys.redis_keys("p", keys, 3)


@pytest.mark.parametrize(
    "wrong",
    [set(range(1, 100)), {99}, {100 // feast_keys.SAMPLE_ROWS}],
    ids=["all-but-first", "last", "sampled"],
)
def test_guard_falls_back_to_feast_for_the_whole_call_and_warns_once(
    wrong: set[int], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A template that stops matching Feast (as after a Feast format change) is caught by the
    per-call check on a checked row: every key of the call is then Feast's."""
    keys = [EntityKey(join_keys=["a"], entity_values=[Value(int64_val=i)]) for i in range(100)]
    right = feast_keys.template

    def wrong_on_samples(*args: Any) -> feast_keys.Template | None:
        build = right(*args)
        assert build is not None
        return lambda values: build(values) + (b"!" if values[0].int64_val in wrong else b"")

    monkeypatch.setattr(feast_keys, "template", wrong_on_samples)
    monkeypatch.setattr(feast_keys._Warned, "fallback", False)
    with caplog.at_level(logging.WARNING, logger=feast_keys.__name__):
        assert feast_keys.redis_keys("p", keys, 3) == feast("p", keys, 3)
        assert feast_keys.redis_keys("p", keys, 3) == feast("p", keys, 3)
    warnings_logged = [r for r in caplog.records if "differs from Feast" in r.getMessage()]
    assert len(warnings_logged) == 1
