-- Shared by the session scripts: prepended to each of them (see `core::session`).

-- Server time in milliseconds (allowed before writes: scripts replicate their effects).
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Lists session `id` in the user's index `idx` until `ttl` seconds from now (scores are expiry
-- times), dropping expired entries; the index lives at least as long as its newest session.
local function index_add(idx, id, ttl)
  local now = now_ms()
  redis.call('ZREMRANGEBYSCORE', idx, '-inf', now)
  redis.call('ZADD', idx, now + ttl * 1000, id)
  if redis.call('PTTL', idx) < ttl * 1000 then
    redis.call('PEXPIRE', idx, ttl * 1000)
  end
end

