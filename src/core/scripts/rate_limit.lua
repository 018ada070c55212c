-- Checks (and with ARGV[1] == '1' consumes) several limits of one limited key at once,
-- all-or-nothing: nothing is consumed unless every limit allows `cost`. Time is the server's.
-- KEYS[1..n]: one key per limit; KEYS[n+1]: the block key.
-- ARGV: mode (1 consume, 0 peek), cost, blockMs, n, then per limit: algorithm (1 fixed window,
-- 2 sliding window, 3 token bucket), limit, windowMs.
-- Returns {now, blockedMs, then per limit: ok, remaining, resetMs, retryAfterMs}.
-- The block key is only consulted by calls that pass blockMs.
local consume = ARGV[1] == '1'
local cost = tonumber(ARGV[2])
local blockMs = tonumber(ARGV[3])
local n = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local blockKey = KEYS[n + 1]
local blocked = 0
if blockMs > 0 then
  blocked = redis.call('PTTL', blockKey)
  if blocked < 0 then blocked = 0 end
end
local all = blocked == 0
local s = {}
for i = 1, n do
  local algo = tonumber(ARGV[2 + 3 * i])
  local limit = tonumber(ARGV[3 + 3 * i])
  local w = tonumber(ARGV[4 + 3 * i])
  local key = KEYS[i]
  local st = { algo = algo, limit = limit, w = w, key = key, retry = 0 }
  if algo == 1 then
    st.used = tonumber(redis.call('GET', key) or '0')
    st.ok = st.used + cost <= limit
    if not st.ok then
      local p = redis.call('PTTL', key)
      if p < 0 then p = w end
      st.retry = p
    end
  elseif algo == 2 then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - w)
    st.used = redis.call('ZCARD', key)
    st.ok = st.used + cost <= limit
    if not st.ok then
      local idx = st.used + cost - limit - 1
      local e = redis.call('ZRANGE', key, idx, idx, 'WITHSCORES')
      st.retry = math.max(1, tonumber(e[2]) + w - now)
    end
  else
    local h = redis.call('HMGET', key, 'tokens', 'ts')
    local tokens = tonumber(h[1])
    local ts = tonumber(h[2])
    if tokens == nil or ts == nil then
      tokens = limit
      ts = now
    end
    st.rate = limit / w
    st.tokens = math.min(limit, tokens + math.max(0, now - ts) * st.rate)
    st.ok = st.tokens >= cost
    if not st.ok then
      st.retry = math.ceil((cost - st.tokens) / st.rate)
    end
  end
  if not st.ok then all = false end
  s[i] = st
end
if consume and all then
  for i = 1, n do
    local st = s[i]
    if st.algo == 1 then
      redis.call('INCRBY', st.key, cost)
      if redis.call('PTTL', st.key) < 0 then
        redis.call('PEXPIRE', st.key, st.w)
      end
      st.used = st.used + cost
    elseif st.algo == 2 then
      for j = 1, cost do
        redis.call('ZADD', st.key, now, now .. ':' .. (st.used + j))
      end
      redis.call('PEXPIRE', st.key, st.w)
      st.used = st.used + cost
    else
      st.tokens = st.tokens - cost
      redis.call('HSET', st.key, 'tokens', tostring(st.tokens), 'ts', now)
      redis.call('PEXPIRE', st.key, math.ceil((st.limit - st.tokens) / st.rate) + 1)
    end
  end
end
if consume and not all and blockMs > 0 and blocked == 0 then
  redis.call('SET', blockKey, '1', 'PX', blockMs)
  blocked = blockMs
end
local out = { now, blocked }
for i = 1, n do
  local st = s[i]
  local remaining, reset
  if st.algo == 1 then
    remaining = st.limit - st.used
    reset = 0
    if st.used > 0 then
      reset = redis.call('PTTL', st.key)
      if reset < 0 then reset = 0 end
    end
  elseif st.algo == 2 then
    remaining = st.limit - st.used
    reset = 0
    if st.used > 0 then
      local e = redis.call('ZRANGE', st.key, -1, -1, 'WITHSCORES')
      if e[2] then reset = math.max(0, tonumber(e[2]) + st.w - now) end
    end
  else
    remaining = math.floor(st.tokens)
    reset = math.ceil((st.limit - st.tokens) / st.rate)
  end
  local ok = 0
  if st.ok and all then ok = 1 end
  out[#out + 1] = ok
  out[#out + 1] = math.max(0, remaining)
  out[#out + 1] = reset
  out[#out + 1] = st.retry
end
return out
