-- Removes one feature view from the given Feast keys, as Feast's RedisOnlineStore.delete_table
-- does: a key whose only view is this one is deleted, otherwise the view's fields are.
--
-- KEYS     Feast keys to clean (the caller scans and passes one partition's keys)
-- ARGV[1]  view name;  ARGV[2..]  the view's field keys
-- Returns  the number of keys that held the view

local view = ARGV[1]
local ts_field = '_ts:' .. view
local fields = {ts_field}
for i = 2, #ARGV do fields[#fields + 1] = ARGV[i] end
local touched = 0
for _, key in ipairs(KEYS) do
  local names = redis.call('HKEYS', key)
  local views, has_view = 0, false
  for _, name in ipairs(names) do
    if string.sub(name, 1, 4) == '_ts:' then
      views = views + 1
      if name == ts_field then has_view = true end
    end
  end
  if has_view then
    if views == 1 then
      redis.call('DEL', key)
    else
      redis.call('HDEL', key, unpack(fields))
    end
    touched = touched + 1
  end
end
return touched
