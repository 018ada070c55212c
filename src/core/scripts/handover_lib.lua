-- Shared by the release scripts (lock and semaphore), prepended to each. KEYS[1] what is
-- released, KEYS[2] its waiting clients (a sorted set scored by when each one's wait ends),
-- KEYS[3] its hand-over reservation (same hash tag); ARGV[2] the releasing client, ARGV[3] the
-- reservation in ms. When a client other than the releaser waits, the release reserves the turn
-- for the others (the releaser may not take it back for ARGV[3] ms) and publishes a notice on
-- channel KEYS[1] .. ':free' with the releaser as payload (a release already woke a waiter of
-- its own process).
local function hand_over()
  if redis.call('EXISTS', KEYS[2]) == 1 then
    local t = redis.call('TIME')
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
    local n = redis.call('ZCARD', KEYS[2])
    if n > 1 or (n == 1 and not redis.call('ZSCORE', KEYS[2], ARGV[2])) then
      redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[3])
      redis.call('PUBLISH', KEYS[1] .. ':free', ARGV[2])
    end
  end
end
