-- One SCAN step of a full divergence check, computed inside Redis (run with EVAL_RO).
--
-- ARGV[1]  SCAN cursor            ARGV[2]  SCAN COUNT         ARGV[3]  MATCH pattern
-- ARGV[4]  bucket hex digits      ARGV[5]  'digest' or 'list'
-- ARGV[6]  'list' only: wanted buckets, comma separated (hex, ARGV[4] digits each)
-- ARGV[7]  the view's _ts field   ARGV[8..] the view's feature fields (sorted)
-- Returns  {next cursor, keys holding the view, newest event seconds, payload...}
--          (in 'list' mode the counts cover the wanted buckets only)
--          digest: payload = bucket, count, lane1, lane2, ... (per touched bucket)
--          list:   payload = key, entry hash, ... (keys in the wanted buckets)
--
-- Entry hash = sha1(cmsgpack.pack(key, {values, false where missing})), bucket = first
-- digits of sha1(key); lanes are the sums of the hash's first two 24-bit slices. The Python
-- twin is consistency/core/digest.py; both must stay byte for byte the same.
-- Read-only: nothing here writes, so the script runs as EVAL_RO.

local call, pcall, sha1, pack, sub, tonumber, byte = redis.call, redis.pcall, redis.sha1hex,
  cmsgpack.pack, string.sub, tonumber, string.byte
local nb = tonumber(ARGV[4])
local mode = ARGV[5]
local wanted = {}
if mode == 'list' then
  for code in string.gmatch(ARGV[6], '[^,]+') do wanted[code] = true end
end
local fields = {}
for i = 7, #ARGV do fields[#fields + 1] = ARGV[i] end
local nf = #fields

local scan = call('SCAN', ARGV[1], 'MATCH', ARGV[3], 'COUNT', ARGV[2])
local keys = scan[2]
local acc, order, out = {}, {}, {}
local in_view, newest = 0, 0

local listing = mode == 'list'
for _, key in ipairs(keys) do
  local b = sub(sha1(key), 1, nb)
  -- Listing wants a few buckets only: every other key costs one sha1 and nothing else.
  local vals = (not listing or wanted[b]) and pcall('HMGET', key, unpack(fields))
  if type(vals) == 'table' and not vals.err then
    local present = false
    for i = 1, nf do
      if vals[i] then
        present = true
        break
      end
    end
    if present then
      in_view = in_view + 1
      if not listing then
        local h = sha1(pack(key, vals))
        local a = acc[b]
        if not a then
          a = {0, 0, 0}
          acc[b] = a
          order[#order + 1] = b
        end
        a[1] = a[1] + 1
        a[2] = a[2] + tonumber(sub(h, 1, 6), 16)
        a[3] = a[3] + tonumber(sub(h, 7, 12), 16)
      else
        out[#out + 1] = key
        out[#out + 1] = sha1(pack(key, vals))
      end
      -- Newest event: _ts is a protobuf Timestamp whose field 1 (tag 0x08) is the seconds,
      -- a 5-byte varint for any date between 1970 + 8.5 years and 2514.
      local ts = vals[1]
      if ts then
        local t, b1, b2, b3, b4, b5 = byte(ts, 1, 6)
        local value = 0
        if t == 8 and b5 and b5 < 128 and b1 > 127 and b2 > 127 and b3 > 127 and b4 > 127 then
          value = (b1 - 128) + (b2 - 128) * 128 + (b3 - 128) * 16384
            + (b4 - 128) * 2097152 + b5 * 268435456
        elseif t == 8 then  -- any other length: the general varint loop
          local mult, i = 1, 2
          while i <= #ts and i < 12 do
            local c = byte(ts, i)
            value = value + (c % 128) * mult
            if c < 128 then break end
            mult = mult * 128
            i = i + 1
          end
        end
        if value > newest and value < 1e12 then newest = value end
      end
    end
  end
end

local reply = {scan[1], in_view, newest}
if not listing then
  for _, b in ipairs(order) do
    local a = acc[b]
    reply[#reply + 1] = b
    for j = 1, 3 do reply[#reply + 1] = a[j] end
  end
else
  for i = 1, #out do reply[#reply + 1] = out[i] end
end
return reply
