-- Writes a whole session (replacing any previous one) and indexes it under its user.
-- KEYS[1] session hash, KEYS[2] (optional) the user's index: a sorted set of session ids scored
-- by expiry (server time, ms). ARGV: ttlSeconds, id, then field/value pairs.
local ttl = tonumber(ARGV[1])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('EXPIRE', KEYS[1], ttl)
if KEYS[2] then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  redis.call('ZADD', KEYS[2], now + ttl * 1000, ARGV[2])
  if redis.call('PTTL', KEYS[2]) < ttl * 1000 then
    redis.call('PEXPIRE', KEYS[2], ttl * 1000)
  end
end
return 1
