-- Removes one feature view from the given Feast keys, as Feast's RedisOnlineStore.delete_table
-- does (a key whose only view is this one is deleted, otherwise the view's fields are), but
-- only where the stored write is older than the deletion in the log: rows applied from records
-- after the deletion (a re-created view) survive a deletion delivered again, by a rebuild say.
--
-- KEYS     Feast keys to clean (the caller scans and passes one partition's keys)
-- ARGV[1]  view name
-- ARGV[2]  the version hash of this (view, partition) (see apply_rows.lua)
-- ARGV[3]  Kafka offset of the deletion record
-- ARGV[4..] the view's field keys
-- Returns  the number of keys that lost the view
--
-- version_offset() comes from replicator/core/version.py, prepended when the script loads.
-- Fields leave in chunks: Lua's unpack() takes about 8,000 values at most (wide views).

local view, vkey, offset = ARGV[1], ARGV[2], tonumber(ARGV[3])
local ts_field = '_ts:' .. view
local FIELD_CHUNK = 1000
local fields = {ts_field}
for i = 4, #ARGV do fields[#fields + 1] = ARGV[i] end
local nfields = #fields
local touched = 0
for _, key in ipairs(KEYS) do
  local version = redis.call('HGET', vkey, key)
  local written_after = false
  if version then
    written_after = version_offset(version) > offset
  end
  if not written_after then
    local views, has_view = 0, false
    for _, name in ipairs(redis.call('HKEYS', key)) do
      if string.sub(name, 1, 4) == '_ts:' then
        views = views + 1
        if name == ts_field then has_view = true end
      end
    end
    if has_view then
      if views == 1 then
        redis.call('DEL', key)
      else
        for first = 1, nfields, FIELD_CHUNK do
          redis.call('HDEL', key, unpack(fields, first, math.min(first + FIELD_CHUNK - 1, nfields)))
        end
      end
      touched = touched + 1
    end
    if version then redis.call('HDEL', vkey, key) end
  end
end
return touched
