-- Applies one wire-v1 row batch to a region's Redis, last writer wins per (entity key, view).
--
-- ARGV[1]  msgpack payload: {1, view, {field, ...}, {{key, ts, event_s, event_nanos,
--          created_s, created_nanos, value, ...}, ...}}
-- ARGV[2]  Kafka offset of the record (log order breaks exact ties)
-- ARGV[3]  key TTL in seconds, 0 for none (Feast's key_ttl_seconds: EXPIRE after a write)
-- ARGV[4]  the version hash of this (view, partition): field = Feast key, value = the
--          write's version, packed as replicator/core/version.py defines (VERSION_FORMAT)
-- ARGV[5]  the view named in the record's headers (routing and schema checks used it)
-- ARGV[6]  the record's max_ev header: no row may have a later event time (the worker's
--          far-future check reads only the header, so a header that understates is refused);
--          empty when there is no header to hold the rows to
-- ARGV[7]  msgpack array of each row's index in its version (repair re-applies rows with the
--          index they had in their original record); empty: the row's position in the batch
-- Returns  {rows applied, rows skipped because an equal-or-newer version is stored}
--
-- The whole batch is checked before the first write, so a malformed record changes nothing.
-- Feast's layout is written exactly: HSET key _ts:<view> <Timestamp> <mmh3 field> <Value> ...
-- Versions live in their own hash, so HGETALL on a Feast key is byte-identical to what Feast
-- itself writes; reading and writing them once per chunk of rows keeps the per-row cost low.
-- The version layout and order (VERSION_FORMAT, version_supersedes, version_pack) come from
-- replicator/core/version.py, prepended to this file when it is loaded: not defined here.
-- Lua's unpack() takes about 8,000 values at most, so every variable-size argument list
-- (version reads and writes, the fields of a wide row) goes to Redis in chunks.

local call, unpack, type = redis.call, unpack, type

local ok, batch = pcall(cmsgpack.unpack, ARGV[1])
if not ok or type(batch) ~= 'table' or batch[1] ~= 1 or #batch ~= 4 then
  return redis.error_reply('MALFORMED payload is not a wire v1 row batch')
end
local view, fields, rows = batch[2], batch[3], batch[4]
if type(view) ~= 'string' or type(fields) ~= 'table' or type(rows) ~= 'table' then
  return redis.error_reply('MALFORMED batch must be {1, view, fields, rows}')
end
if view ~= ARGV[5] then
  return redis.error_reply('MALFORMED payload view differs from the header view')
end
local nf = #fields
local width = 6 + nf
local n = #rows
local max_ev = tonumber(ARGV[6])
local floor = math.floor
for j = 1, nf do
  if type(fields[j]) ~= 'string' then
    return redis.error_reply('MALFORMED field ' .. j .. ' is not a string')
  end
end
for i = 1, n do
  local r = rows[i]
  if type(r) ~= 'table' or #r ~= width or type(r[1]) ~= 'string' or type(r[2]) ~= 'string'
      or type(r[3]) ~= 'number' or type(r[4]) ~= 'number' or type(r[5]) ~= 'number'
      or type(r[6]) ~= 'number' then
    return redis.error_reply('MALFORMED row ' .. i .. ' must be {key, ts, 4 numbers, '
      .. nf .. ' values}')
  end
  if floor(r[3]) ~= r[3] or floor(r[4]) ~= r[4] or floor(r[5]) ~= r[5] or floor(r[6]) ~= r[6] then
    return redis.error_reply('MALFORMED row ' .. i .. ' timestamps must be integers')
  end
  if max_ev and r[3] > max_ev then
    return redis.error_reply('MALFORMED row ' .. i .. ' event time is after the max_ev header')
  end
  for j = 7, width do
    if type(r[j]) ~= 'string' then
      return redis.error_reply('MALFORMED row ' .. i .. ' value ' .. (j - 6) .. ' is not bytes')
    end
  end
end

local indexes = nil
if ARGV[7] and ARGV[7] ~= '' then
  local okx, given = pcall(cmsgpack.unpack, ARGV[7])
  if not okx or type(given) ~= 'table' or #given ~= n then
    return redis.error_reply('MALFORMED row indexes must be one integer per row')
  end
  for i = 1, n do
    if type(given[i]) ~= 'number' or floor(given[i]) ~= given[i] then
      return redis.error_reply('MALFORMED row index ' .. i .. ' is not an integer')
    end
  end
  indexes = given
end

local offset = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local vkey = ARGV[4]
local ts_field = '_ts:' .. view
local CHUNK = 1000        -- versions read and written per call
local FIELD_CHUNK = 1000  -- field/value pairs per HSET of a wide row

local stored = {}
for first = 1, n, CHUNK do
  local last = math.min(first + CHUNK - 1, n)
  local keys = {}
  for i = first, last do keys[i - first + 1] = rows[i][1] end
  local got = call('HMGET', vkey, unpack(keys))
  for i = first, last do stored[i] = got[i - first + 1] end
end

local latest = {}   -- versions written earlier in this batch, by key
local pending, np = {}, 0
local applied, skipped = 0, 0
local args = {}
for i = 1, n do
  local r = rows[i]
  local key = r[1]
  local cur = latest[key] or stored[i]
  if cur and ttl > 0 and not latest[key] and call('EXISTS', key) == 0 then
    cur = nil  -- the Feast key expired: forget its version, as Feast would
  end
  local idx = indexes and indexes[i] or (i - 1 + VERSION_FIRST_ROW)
  local newer = not cur or version_supersedes(r[3], r[4], r[5], r[6], offset, idx, cur)
  if newer then
    if nf <= FIELD_CHUNK then
      args[1] = key
      args[2] = ts_field
      args[3] = r[2]
      for j = 1, nf do
        args[2 * j + 2] = fields[j]
        args[2 * j + 3] = r[6 + j]
      end
      call('HSET', unpack(args, 1, 3 + 2 * nf))
    else  -- a wide row: one HSET per chunk of fields, all inside this atomic script
      call('HSET', key, ts_field, r[2])
      for first = 1, nf, FIELD_CHUNK do
        local m = 0
        for j = first, math.min(first + FIELD_CHUNK - 1, nf) do
          args[m + 1] = fields[j]
          args[m + 2] = r[6 + j]
          m = m + 2
        end
        call('HSET', key, unpack(args, 1, m))
      end
    end
    if ttl > 0 then call('EXPIRE', key, ttl) end
    local v = version_pack(r[3], r[4], r[5], r[6], offset, idx)
    latest[key] = v
    pending[np + 1] = key
    pending[np + 2] = v
    np = np + 2
    if np == 2 * CHUNK then
      call('HSET', vkey, unpack(pending, 1, np))
      np = 0
    end
    applied = applied + 1
  else
    skipped = skipped + 1
  end
end
if np > 0 then call('HSET', vkey, unpack(pending, 1, np)) end
return {applied, skipped}
