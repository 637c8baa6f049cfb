"""The scripts' last-writer-wins order is the Python one: ``replicator.core.version``.

The Lua scripts cannot import Python; they get the version layout and order as Lua rendered
from ``core.version`` (``LUA_PRELUDE``). This runs that Lua in a region's real Redis on many
generated versions (ties on every part, pre-1970 seconds, extremes of each range) and
compares its packing and its decisions with the Python definition.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
import redis

from replicator.adapters.redis_store import connect
from replicator.config import Topology
from replicator.core import version
from replicator.core.version import Version

PROBE = (
    version.LUA_PRELUDE
    + """
local out = {}
for i = 1, #ARGV, 2 do
  local a, b = ARGV[i], ARGV[i + 1]
  local s, ns, cs, cn, off, idx = struct.unpack(VERSION_FORMAT, a)
  local repacked = version_pack(s, ns, cs, cn, off, idx) == a
  local wins = version_supersedes(s, ns, cs, cn, off, idx, b)
  out[#out + 1] = (wins and 1 or 0) + (repacked and 2 or 0)
  out[#out + 1] = version_offset(a)
end
return out
"""
)
LIMIT = 2**52  # Lua numbers are doubles: exact up to 2^53


@pytest.fixture
def admin(topology: Topology) -> Iterator[redis.Redis]:
    endpoint = topology.region(topology.replica_regions[-1]).redis
    client = connect(endpoint, endpoint.admin, timeout=10)
    yield client
    client.close()


def _part(rng: random.Random, low: int, high: int) -> int:
    """Mostly small values (many ties), sometimes anywhere in the range, or at its ends."""
    roll = rng.random()
    if roll < 0.7:
        return rng.randint(max(low, -2), min(high, 2))
    if roll < 0.9:
        return rng.randint(low, high)
    return rng.choice((low, high))


def _version(rng: random.Random) -> Version:
    seconds = (-LIMIT, LIMIT)
    return Version(
        _part(rng, *seconds),  # event s: negative before 1970
        _part(rng, 0, 999_999_999),
        _part(rng, *seconds),
        _part(rng, 0, 999_999_999),
        _part(rng, -1, LIMIT),  # offset (-1: never logged)
        _part(rng, 0, 2**31 - 1),
    )


def test_lua_and_python_agree_on_layout_and_order(admin: redis.Redis) -> None:
    rng = random.Random(1414)
    pairs = [(_version(rng), _version(rng)) for _ in range(5_000)]
    pairs += [(v, v) for v, _ in pairs[:200]]  # equal versions re-apply
    pairs += [(Version(-1, 0), Version(0, 0)), (Version(-86_400 * 365 * 70, 5), Version(-1, 4))]
    for start in range(0, len(pairs), 1_000):
        chunk = pairs[start : start + 1_000]
        args = [version.encode(v) for pair in chunk for v in pair]
        replies = admin.eval(PROBE, 0, *args)
        for i, (a, b) in enumerate(chunk):
            flags, offset = replies[2 * i], replies[2 * i + 1]
            assert flags & 2, f"Lua repacks {a} differently"
            assert bool(flags & 1) == a.supersedes(b), f"{a} vs {b}"
            assert offset == a.offset
