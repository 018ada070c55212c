-- Takes one of ARGV[1] semaphore slots for token ARGV[2] for ARGV[3] ms.
-- KEYS[1] is a sorted set of holders scored by their expiry (server time, ms): expired holders
-- are pruned first, so a crashed holder's slot frees itself. KEYS[2] is the hand-over
-- reservation (same hash tag): client ARGV[4], which freed a slot while another client waited,
-- may not take a new one during it (see the release). Returns the token when acquired, else nil.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZSCORE', KEYS[1], ARGV[2])
if not held and redis.call('GET', KEYS[2]) == ARGV[4] then
  return false
end
if held or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[2])
  if redis.call('PTTL', KEYS[1]) < ttl then
    redis.call('PEXPIRE', KEYS[1], ttl)
  end
  return ARGV[2]
end
return false
