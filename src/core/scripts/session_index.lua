-- Cluster mode: the index entry of a session that lives in another slot than its user's index
-- (an id the caller chose). KEYS[1] the user's index; ARGV[1] 'add' or 'rem', ARGV[2] the id,
-- ARGV[3] the session's TTL in seconds ('add'). Scores are expiry times (server time, ms).
if ARGV[1] == 'rem' then
  return redis.call('ZREM', KEYS[1], ARGV[2])
end
local ttl = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + ttl * 1000, ARGV[2])
if redis.call('PTTL', KEYS[1]) < ttl * 1000 then
  redis.call('PEXPIRE', KEYS[1], ttl * 1000)
end
return 1
