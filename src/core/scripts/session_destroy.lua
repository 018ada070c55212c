-- Deletes a session and its index entry. KEYS[1] session hash; ARGV[1] id, ARGV[2] the index key
-- prefix. Returns 1, or 0 when it did not exist.
local user = redis.call('HGET', KEYS[1], '\0user')
local n = redis.call('DEL', KEYS[1])
if user then
  local idx = ARGV[2] .. '{' .. string.sub(redis.sha1hex(user), 1, 8) .. '}:' .. user
  redis.call('ZREM', idx, ARGV[1])
end
return n
