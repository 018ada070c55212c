-- @nestjs/throttler storage: one hit for a tracker, with the in-memory storage's semantics.
-- KEYS[1] hit counter (window starts at the first hit), KEYS[2] block flag.
-- ARGV: ttlMs, limit, blockDurationMs. Returns {totalHits, timeToExpireMs, isBlocked, timeToBlockExpireMs}.
local ttl = math.max(1, tonumber(ARGV[1]))
local limit = tonumber(ARGV[2])
local blockMs = tonumber(ARGV[3])
local function expire_in()
  local p = redis.call('PTTL', KEYS[1])
  if p < 0 then return ttl end
  return p
end
if blockMs > 0 then
  local b = redis.call('PTTL', KEYS[2])
  if b > 0 then
    return { limit + 1, expire_in(), 1, b }
  end
  local hits = redis.call('INCR', KEYS[1])
  if redis.call('PTTL', KEYS[1]) < 0 then
    redis.call('PEXPIRE', KEYS[1], ttl)
  end
  if hits > limit then
    local left = expire_in()
    redis.call('DEL', KEYS[1])
    redis.call('SET', KEYS[2], '1', 'PX', blockMs)
    return { hits, left, 1, blockMs }
  end
  return { hits, expire_in(), 0, 0 }
end
local hits = tonumber(redis.call('GET', KEYS[1]) or '0')
if hits >= limit then
  local left = expire_in()
  return { hits + 1, left, 1, left }
end
hits = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return { hits, expire_in(), 0, 0 }
