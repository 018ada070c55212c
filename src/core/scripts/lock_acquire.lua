-- Takes a lock and issues its fencing token in one step.
-- KEYS[1] lock key, KEYS[2] fencing counter (same hash tag); ARGV[1] token, ARGV[2] TTL in ms.
-- Returns {token, new fencing token}, or nil when someone else holds the lock.
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {ARGV[1], redis.call('INCR', KEYS[2])}
end
return false
