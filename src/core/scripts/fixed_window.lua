-- The common case of rate_limit.lua on its own: one fixed window, consuming, no blockMs.
-- Counts first and undoes the count when over the limit. Needs no clock (the window is the key's
-- TTL), so it returns 0 for `now` and the caller dates `resetTime` itself.
-- KEYS[1] counter; ARGV: cost, limit, windowMs. Returns rate_limit.lua's shape for one limit.
local cost = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local w = tonumber(ARGV[3])
local used = redis.call('INCRBY', KEYS[1], cost)
local reset = w
if used == cost then
  redis.call('PEXPIRE', KEYS[1], w)
else
  reset = redis.call('PTTL', KEYS[1])
  if reset < 0 then
    redis.call('PEXPIRE', KEYS[1], w)
    reset = w
  end
end
if used > limit then
  redis.call('DECRBY', KEYS[1], cost)
  return { 0, 0, 0, math.max(0, limit - used + cost), reset, reset }
end
return { 0, 0, 1, limit - used, reset, 0 }
