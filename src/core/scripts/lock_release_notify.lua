-- Releases a lock when ARGV[1] (the caller's token) holds it, and tells the other processes
-- waiting for it. KEYS[1] lock key, KEYS[2] its waiting clients (a sorted set scored by when
-- each one's wait ends), KEYS[3] its hand-over reservation (same hash tag); ARGV[2] the releasing
-- client, the notice's payload on channel KEYS[1] .. ':free' (sent only when another client
-- waits: a release already woke a waiter of its own process). When another client waits, the
-- releasing client may not take the lock back for ARGV[3] ms, so the waiters the notice woke get
-- their turn (no process keeps a lock others wait for). Returns 1 when the token held it, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  if redis.call('EXISTS', KEYS[2]) == 1 then
    local t = redis.call('TIME')
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
    local n = redis.call('ZCARD', KEYS[2])
    if n > 1 or (n == 1 and not redis.call('ZSCORE', KEYS[2], ARGV[2])) then
      redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[3])
      redis.call('PUBLISH', KEYS[1] .. ':free', ARGV[2])
    end
  end
  return 1
end
return 0
