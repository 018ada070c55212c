-- Writes a session. ARGV[1] 'replace': the whole session (replacing any previous one), indexed
-- under its user; 'merge': fields merged into an existing session, keeping its TTL (returns 0,
-- writing nothing, when it does not exist).
-- KEYS[1] session hash, KEYS[2] (optional) the user's index: a sorted set of session ids scored
-- by expiry (server time, ms). ARGV: mode, ttlSeconds, id, then field/value pairs.
-- The whole session as one JSON object in the hidden field `\0json`, so reading it is one HGET
-- and one JSON.parse. Field values are JSON text already; names are escaped here.
local function rebuild(key)
  local all = redis.call('HGETALL', key)
  local parts = {}
  for i = 1, #all, 2 do
    local f = all[i]
    if string.byte(f, 1) ~= 0 then
      local name = string.gsub(f, '[%c"\\]', function(c)
        return string.format('\\u%04x', string.byte(c))
      end)
      parts[#parts + 1] = '"' .. name .. '":' .. all[i + 1]
    end
  end
  redis.call('HSET', key, '\0json', '{' .. table.concat(parts, ',') .. '}')
end
if ARGV[1] == 'merge' then
  if redis.call('EXISTS', KEYS[1]) == 0 then
    return 0
  end
  -- An empty patch changes nothing (HSET needs at least one field).
  if #ARGV >= 5 then
    redis.call('HSET', KEYS[1], unpack(ARGV, 4))
    rebuild(KEYS[1])
  end
  return 1
end
local ttl = tonumber(ARGV[2])
redis.call('DEL', KEYS[1])
if #ARGV >= 5 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 4))
end
rebuild(KEYS[1])
redis.call('EXPIRE', KEYS[1], ttl)
if KEYS[2] then
  index_add(KEYS[2], ARGV[3], ttl)
end
return 1
