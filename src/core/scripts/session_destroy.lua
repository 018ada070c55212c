-- Deletes a session and its index entry. KEYS[1] session hash; ARGV[1] id, ARGV[2] the index key
-- prefix, ARGV[3] '1' in cluster mode: an index in another slot is left alone and `{n, user}`
-- returned instead, for the caller to update it. Returns 1, or 0 when it did not exist.
local user = redis.call('HGET', KEYS[1], '\0user')
local n = redis.call('DEL', KEYS[1])
if user then
  local tag = '{' .. string.sub(redis.sha1hex(user), 1, 8) .. '}'
  if ARGV[3] == '1' and not string.find(KEYS[1], tag, 1, true) then
    return {n, user}
  end
  local idx = ARGV[2] .. tag .. ':' .. user
  redis.call('ZREM', idx, ARGV[1])
end
return n
