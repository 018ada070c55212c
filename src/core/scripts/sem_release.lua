-- Frees token ARGV[1]'s slot, then hands the slot over to waiters of other processes
-- (handover_lib.lua: KEYS[2], KEYS[3], ARGV[2], ARGV[3]). KEYS[1] the holders. Returns 1 when it
-- still held one (not expired), else 0.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local exp = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not exp then
  return 0
end
redis.call('ZREM', KEYS[1], ARGV[1])
hand_over()
if tonumber(exp) > now then
  return 1
end
return 0
