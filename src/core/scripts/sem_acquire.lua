-- Takes one of ARGV[1] semaphore slots for token ARGV[2] for ARGV[3] ms.
-- KEYS[1] is a sorted set of holders scored by their expiry (server time, ms): expired holders
-- are pruned first, so a crashed holder's slot frees itself. Returns the token when acquired, else nil.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[2]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[2])
  if redis.call('PTTL', KEYS[1]) < ttl then
    redis.call('PEXPIRE', KEYS[1], ttl)
  end
  return ARGV[2]
end
return false
