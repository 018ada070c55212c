-- Sliding expiration: resets a session's TTL (ARGV[1] seconds; empty = its own TTL) and its
-- index entry. KEYS[1] session hash; ARGV[2] id, ARGV[3] the index key prefix, ARGV[4] '1' in
-- cluster mode: an index in another slot is left alone and `{1, user, ttl}` returned instead, for
-- the caller to update it. Returns 1, or 0 when the session does not exist.
local ttl = tonumber(ARGV[1])
if not ttl then
  ttl = tonumber(redis.call('HGET', KEYS[1], '\0ttl') or '')
end
if not ttl or redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('HSET', KEYS[1], '\0ttl', ttl)
local user = redis.call('HGET', KEYS[1], '\0user')
if user then
  local tag = '{' .. string.sub(redis.sha1hex(user), 1, 8) .. '}'
  if ARGV[4] == '1' and not string.find(KEYS[1], tag, 1, true) then
    return {1, user, ttl}
  end
  index_add(ARGV[3] .. tag .. ':' .. user, ARGV[2], ttl)
end
return 1
