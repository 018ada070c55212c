-- Takes a lock and issues its fencing token in one step.
-- KEYS[1] lock key, KEYS[2] fencing counter, KEYS[3] its hand-over reservation (same hash tag);
-- ARGV[1] token, ARGV[2] TTL in ms, ARGV[3] the acquiring client. A client that released it
-- while another client waited may not take it back during the reservation (see the release).
-- Returns {token, new fencing token}, or nil when someone else holds the lock.
if redis.call('GET', KEYS[3]) == ARGV[3] then
  return false
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {ARGV[1], redis.call('INCR', KEYS[2])}
end
return false
