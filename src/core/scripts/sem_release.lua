-- Frees token ARGV[1]'s slot and tells the other processes waiting for one. KEYS[1] the holders,
-- KEYS[2] the waiting clients (a sorted set scored by when each one's wait ends), KEYS[3] the
-- hand-over reservation (same hash tag); ARGV[2] the releasing client, the notice's payload on
-- channel KEYS[1] .. ':free' (sent only when another client waits, which also reserves the freed
-- slot's turn for the others for ARGV[3] ms). Returns 1 when it still held one (not expired),
-- else 0.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local exp = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not exp then
  return 0
end
redis.call('ZREM', KEYS[1], ARGV[1])
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  local n = redis.call('ZCARD', KEYS[2])
  if n > 1 or (n == 1 and not redis.call('ZSCORE', KEYS[2], ARGV[2])) then
    redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[3])
    redis.call('PUBLISH', KEYS[1] .. ':free', ARGV[2])
  end
end
if tonumber(exp) > now then
  return 1
end
return 0
