"""The version of a write and the last-writer-wins order: the one definition.

Every write to one (Feast key, feature view) carries a version, six integers compared in
this order, first difference decides:

    event s, event ns, created s, created ns, Kafka offset of the record, row index

Event time first, created time next, then the write's place in the log, so that a
correction with the same event and created time (published later) still wins. The row
index is the row's 1-based position in its record's batch (``FIRST_ROW_INDEX``), unless the
batch names each row's index explicitly (``EncodedBatch.row_indexes``, used by repair).
A write applies when its version is at least the stored one: an equal version is the same
record delivered again, which writes the same bytes (and repairs a damaged copy).

Stored in Redis (the region's version hash ``_replicator:v:<view>:<partition>``, field = the
Feast key) as 36 bytes, big-endian signed: ``>i8i4i8i4i8i4`` in the Lua ``struct`` library,
``>qiqiqi`` in Python's. Seconds are signed: Feast writes pre-1970 event times.

Who uses it: ``Version`` and ``encode``/``decode`` here (the checker, repair and the test
fake); the apply and delete scripts in Redis, which cannot import Python, get the same
definition as Lua source rendered from ``FIELDS`` (``LUA_PRELUDE``), prepended to each script
when it is loaded (``replicator.adapters.redis_store``). A contract test runs both orders on
the same generated versions in a real Redis (``tests/integration/test_version_contract.py``).
"""

from __future__ import annotations

import struct
from dataclasses import astuple, dataclass

FIELDS: tuple[tuple[str, str], ...] = (
    ("event_s", "i8"),
    ("event_nanos", "i4"),
    ("created_s", "i8"),
    ("created_nanos", "i4"),
    ("offset", "i8"),
    ("index", "i4"),
)
"""(name, Lua struct code) of each part of a version, in comparison and storage order."""

LUA_FORMAT = ">" + "".join(code for _, code in FIELDS)
"""The storage layout in the Lua ``struct`` library's notation (``>i8i4i8i4i8i4``)."""

_PY_CODES = {"i8": "q", "i4": "i"}
_STRUCT = struct.Struct(">" + "".join(_PY_CODES[code] for _, code in FIELDS))
SIZE = _STRUCT.size
"""Bytes of a stored version (36)."""

FIRST_ROW_INDEX = 1
"""Index of the first row of a batch (the apply script numbers rows as Lua does)."""


@dataclass(frozen=True, slots=True, order=True)
class Version:
    """One write's place in the last-writer-wins order (fields compared in ``FIELDS`` order).

    Seconds may be negative (before 1970); nanos are 0..999,999,999; ``offset`` is the Kafka
    offset of the record (-1: a write that never went through the log, see ``unlogged``);
    ``index`` the row's position in its batch, from ``FIRST_ROW_INDEX``.
    """

    event_s: int
    event_nanos: int
    created_s: int = 0
    created_nanos: int = 0
    offset: int = 0
    index: int = 0

    def as_tuple(self) -> tuple[int, int, int, int, int, int]:
        return astuple(self)

    def supersedes(self, current: Version | None) -> bool:
        """True when a write with this version must replace ``current`` (equal: re-apply)."""
        return current is None or self >= current


def unlogged(event_s: int, event_nanos: int) -> Version:
    """The order of a write known only by its ``_ts`` event time (Feast wrote it directly,
    no version stored): before every replicated write with the same event time."""
    return Version(event_s, event_nanos, 0, 0, -1, 0)


def encode(version: Version) -> bytes:
    """The 36 stored bytes. Raises struct.error when a part is out of its signed range."""
    return _STRUCT.pack(*version.as_tuple())


def decode(raw: bytes | None) -> Version | None:
    """The version stored in ``raw``; None when absent or not ``SIZE`` bytes long."""
    if raw is None or len(raw) != SIZE:
        return None
    return Version(*_STRUCT.unpack(raw))


def _lua_prelude() -> str:
    names = [name for name, _ in FIELDS]
    mine = ", ".join(names)
    theirs = ", ".join(f"{n}_2" for n in names)
    compare = (
        "\n".join(f"  if {n} ~= {n}_2 then return {n} > {n}_2 end" for n in names[:-1])
        + f"\n  return {names[-1]} >= {names[-1]}_2"
    )
    offset_at = names.index("offset") + 1
    return f"""-- Rendered from replicator/core/version.py (layout and order). Do not edit.
local VERSION_FORMAT = '{LUA_FORMAT}'
local VERSION_FIRST_ROW = {FIRST_ROW_INDEX}
-- Whether a write with this version replaces the stored (packed) one; equal re-applies.
local function version_supersedes({mine}, stored)
  local {theirs} = struct.unpack(VERSION_FORMAT, stored)
{compare}
end
local function version_pack({mine})
  return struct.pack(VERSION_FORMAT, {mine})
end
-- The Kafka offset of the write a stored version describes.
local function version_offset(stored)
  return (select({offset_at}, struct.unpack(VERSION_FORMAT, stored)))
end
"""


LUA_PRELUDE = _lua_prelude()
"""Lua source defining ``VERSION_FORMAT``, ``VERSION_FIRST_ROW``, ``version_supersedes``,
``version_pack`` and ``version_offset``; scripts are loaded as ``LUA_PRELUDE + body``."""
