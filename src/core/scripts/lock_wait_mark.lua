-- Marks a lock (or semaphore) as waited for by client ARGV[2] for ARGV[1] ms (server time):
-- KEYS[1] is a sorted set of waiting clients scored by when their wait ends. A later end already
-- recorded for the client is kept; the set lives as long as its last waiter.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ms = tonumber(ARGV[1])
redis.call('ZADD', KEYS[1], 'GT', now + ms, ARGV[2])
if redis.call('PTTL', KEYS[1]) < ms then
  redis.call('PEXPIRE', KEYS[1], ms)
end
return 1
