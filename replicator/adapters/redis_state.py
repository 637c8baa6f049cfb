"""The replication state of Feast keys in a region's Redis, read and restored atomically.

The one place that knows what "the state of a key" is: its Feast hash (every field, bytes as
Feast wrote them), its remaining TTL, and for each feature view stored in it (one ``_ts:<view>``
field per view) that view's last-writer-wins version (``_replicator:v:<view>:<partition>``,
field = the key; ``replicator.core.version``). Snapshots (``replicator/snapshots.py``) read it
with ``read_states`` and bootstrap writes it back with ``restore_states``; should versions move
(into the Feast hash, say), only the two scripts here change.

Both run as Lua scripts, so a key's hash and its versions are read together (a write applied
between the two reads would otherwise pair old bytes with a newer version, which a replay
could then never correct) and restored under the same rule as the apply script: a view is
written only if the snapshot's version is at least the stored one.

Wire form of the states (msgpack, also a snapshot chunk's bytes): an array of
``[key, partition, pttl_ms, [field, value, ...], [view, version, ...]]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgpack
import redis

from replicator.core.keys import NAMESPACE, VERSIONS_PREFIX
from replicator.core.version import LUA_PRELUDE
from replicator.core.wire import partition_for
from replicator.errors import TransientError

_READ_LUA = """
local prefix, out = ARGV[1], {}
for i = 1, #KEYS do
  local key = KEYS[i]
  local flat = redis.pcall('HGETALL', key)
  if type(flat) == 'table' and not flat.err and #flat > 0 then
    local part, versions = ARGV[i + 1], {}
    for j = 1, #flat, 2 do
      if string.sub(flat[j], 1, 4) == '_ts:' then
        local view = string.sub(flat[j], 5)
        local v = redis.call('HGET', prefix .. view .. ':' .. part, key)
        if v then
          versions[#versions + 1] = view
          versions[#versions + 1] = v
        end
      end
    end
    out[#out + 1] = {key, tonumber(part), redis.call('PTTL', key), flat, versions}
  end
end
return cmsgpack.pack(out)
"""

_RESTORE_LUA = (
    LUA_PRELUDE
    + """
local call, unpack = redis.call, unpack
local entries = cmsgpack.unpack(ARGV[1])
local prefix = ARGV[2]
local owners = {}
if ARGV[3] ~= '' then owners = cmsgpack.unpack(ARGV[3]) end
local PAIRS = 1000  -- field/value pairs per HSET: Lua's unpack takes about 8,000 values
local function hset(key, flat)
  for s = 1, #flat, 2 * PAIRS do
    call('HSET', key, unpack(flat, s, math.min(s + 2 * PAIRS - 1, #flat)))
  end
end
local function at_least(packed, stored)
  local a, b, c, d, e, f = struct.unpack(VERSION_FORMAT, packed)
  return version_supersedes(a, b, c, d, e, f, stored)
end
-- Stored versions, one HMGET per version hash (a chunk spans a few (view, partition)s).
local wanted, order = {}, {}
for i = 1, #entries do
  local key, part, versions = entries[i][1], entries[i][2], entries[i][5]
  for j = 1, #versions, 2 do
    local vkey = prefix .. versions[j] .. ':' .. part
    if not wanted[vkey] then wanted[vkey] = {}; order[#order + 1] = vkey end
    local list = wanted[vkey]
    list[#list + 1] = key
  end
end
local stored = {}
for _, vkey in ipairs(order) do
  local keys, got = wanted[vkey], {}
  for s = 1, #keys, PAIRS do
    local part = call('HMGET', vkey, unpack(keys, s, math.min(s + PAIRS - 1, #keys)))
    for k = 1, #part do got[keys[s + k - 1]] = part[k] end
  end
  stored[vkey] = got
end
local pending = {}  -- vkey -> {key, version, ...}: written after the hashes
local written, skipped, mixed, unowned = 0, 0, 0, 0
for i = 1, #entries do
  local key, part, pttl, flat, versions = unpack(entries[i])
  local wins, nwins, loses = {}, 0, 0
  for j = 1, #versions, 2 do
    local vkey = prefix .. versions[j] .. ':' .. part
    local current = stored[vkey][key]
    if not current or at_least(versions[j + 1], current) then
      wins[versions[j]] = {vkey, versions[j + 1]}
      nwins = nwins + 1
    else
      loses = loses + 1
    end
  end
  if loses > 0 and nwins == 0 then
    skipped = skipped + 1
  else
    local existed = pttl > 0 and call('EXISTS', key) == 1
    if loses == 0 then  -- the snapshot is at least as new for every view it holds
      hset(key, flat)
      written = written + 1
    else  -- newer here for some views: write only the fields of the others
      local chosen = {}
      for j = 1, #flat, 2 do
        local f, view = flat[j], nil
        if string.sub(f, 1, 4) == '_ts:' then view = string.sub(f, 5) else view = owners[f] end
        if view == nil then
          unowned = unowned + 1
        elseif wins[view] then
          chosen[#chosen + 1] = f
          chosen[#chosen + 1] = flat[j + 1]
        end
      end
      if #chosen > 0 then hset(key, chosen) end
      mixed = mixed + 1
    end
    for _, win in pairs(wins) do
      local list = pending[win[1]]
      if not list then list = {}; pending[win[1]] = list end
      list[#list + 1] = key
      list[#list + 1] = win[2]
    end
    if pttl > 0 and not existed then call('PEXPIRE', key, pttl) end
  end
end
for vkey, list in pairs(pending) do hset(vkey, list) end
return {written, skipped, mixed, unowned}
"""
)


@dataclass
class RestoreCounts:
    written: int = 0
    """Keys restored whole (the snapshot at least as new as the region for all their views)."""
    skipped: int = 0
    """Keys the region holds in a newer version for every view: left alone."""
    mixed: int = 0
    """Keys newer here for some views: only the other views' fields were restored."""
    unowned_fields: int = 0
    """Fields of mixed keys no view in the region's manifest owns (left alone)."""

    def add(self, other: RestoreCounts) -> None:
        self.written += other.written
        self.skipped += other.skipped
        self.mixed += other.mixed
        self.unowned_fields += other.unowned_fields


def feast_key_batches(client: redis.Redis, project: str, size: int = 1000) -> Iterator[list[bytes]]:
    """Every Feast key of ``project`` (SCAN: each key present throughout is listed once)."""
    batch: list[bytes] = []
    try:
        for key in client.scan_iter(match=b"*" + project.encode(), count=size):
            if not key.startswith(NAMESPACE):
                batch.append(key)
                if len(batch) == size:
                    yield batch
                    batch = []
    except redis.RedisError as exc:
        raise TransientError(f"redis: cannot list the Feast keys: {exc}") from exc
    if batch:
        yield batch


def read_states(client: redis.Redis, keys: list[bytes], partitions: int) -> bytes:
    """The replication state of ``keys`` (absent ones left out), msgpack as described above.
    Raises TransientError when Redis cannot answer."""
    args: list[bytes | int] = [VERSIONS_PREFIX, *(partition_for(k, partitions) for k in keys)]
    try:
        return bytes(client.register_script(_READ_LUA)(keys=keys, args=args))
    except redis.RedisError as exc:
        raise TransientError(f"redis: cannot read the replication state: {exc}") from exc


def restore_states(client: redis.Redis, states: bytes, owners: bytes = b"") -> RestoreCounts:
    """Write states back, view by view, only where the stored version is not newer
    (``owners``: ``field_owners``, for keys newer here for some views). Raises
    TransientError when Redis cannot answer."""
    try:
        reply = client.register_script(_RESTORE_LUA)(
            keys=[], args=[states, VERSIONS_PREFIX, owners]
        )
    except redis.RedisError as exc:
        raise TransientError(f"redis: cannot restore the replication state: {exc}") from exc
    return RestoreCounts(*(int(n) for n in reply))


def count_states(states: bytes) -> int:
    """How many keys a states blob holds."""
    return len(msgpack.unpackb(states, raw=True))


def field_owners(manifest: dict[str, Any] | None) -> bytes:
    """``{field: view}`` (msgpack) of every feature field in a region's schema manifest
    (``views.<view>.features``: feature -> field key in hex), for ``restore_states``."""
    owners: dict[bytes, bytes] = {}
    for view, schema in ((manifest or {}).get("views") or {}).items():
        for hex_field in (schema.get("features") or {}).values():
            owners[bytes.fromhex(hex_field)] = view.encode()
    return msgpack.packb(owners, use_bin_type=False) if owners else b""  # Lua reads no bin
