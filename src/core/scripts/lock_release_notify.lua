-- Releases a lock when ARGV[1] (the caller's token) holds it, then hands it over to waiters of
-- other processes (handover_lib.lua: KEYS[2], KEYS[3], ARGV[2], ARGV[3]). KEYS[1] the lock key.
-- Returns 1 when the token held it, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  hand_over()
  return 1
end
return 0
