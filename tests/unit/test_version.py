"""The version of a write: one order and one layout for the script, the checker and repair."""

from __future__ import annotations

import random

import pytest

from replicator.core import version
from replicator.core.version import FIELDS, LUA_FORMAT, LUA_PRELUDE, Version, unlogged

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


def test_fold_of_supersedes_picks_the_maximum_in_any_order() -> None:
    rng = random.Random(99)
    for _ in range(500):
        versions = [Version(*(rng.randint(-2, 2) for _ in range(6))) for _ in range(8)]
        current: Version | None = None
        for candidate in rng.sample(versions, k=len(versions)):
            if candidate.supersedes(current):
                current = candidate
        assert current == max(versions)


def test_a_write_feast_made_directly_orders_before_replicated_writes_of_its_time() -> None:
    assert unlogged(100, 5) < Version(100, 5, 0, 0, 0, 1)
    assert unlogged(100, 5) > Version(100, 4, 9, 9, 99, 9)


@pytest.mark.parametrize(
    "v",
    [
        Version(1_790_000_000, 5, 1_790_000_001, 6, 123_456, 42),
        Version(-2_208_988_800, 999_999_999, -1, 0, 0, 1),  # 1900: Feast writes pre-1970 rows
        Version(2**63 - 1, 2**31 - 1, -(2**63), 0, 2**63 - 1, 2**31 - 1),
    ],
)
def test_versions_round_trip_in_the_stored_layout(v: Version) -> None:
    raw = version.encode(v)
    assert len(raw) == version.SIZE == 36
    assert version.decode(raw) == v


def test_anything_but_a_stored_version_decodes_to_none() -> None:
    assert version.decode(b"short") is None
    assert version.decode(None) is None


def test_the_lua_rendering_names_the_same_layout_and_order() -> None:
    assert LUA_FORMAT == ">i8i4i8i4i8i4"
    assert f"local VERSION_FORMAT = '{LUA_FORMAT}'" in LUA_PRELUDE
    names = [name for name, _ in FIELDS]
    compared = [line.split()[1] for line in LUA_PRELUDE.splitlines() if line.startswith("  if ")]
    assert compared == names[:-1]  # compared in FIELDS order, the last one with >=
    assert f"return {names[-1]} >= {names[-1]}_2" in LUA_PRELUDE
