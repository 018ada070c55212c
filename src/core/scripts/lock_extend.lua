-- Resets the lock's TTL to ARGV[2] ms only when ARGV[1] (the caller's token) holds it. Returns 1 or 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
