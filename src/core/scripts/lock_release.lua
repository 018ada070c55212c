-- Deletes the lock only when ARGV[1] (the caller's token) holds it. Returns 1 or 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
