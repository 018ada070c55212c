-- Merges fields into an existing session, keeping its TTL. KEYS[1] session hash; ARGV field/value
-- pairs. Returns 1, or 0 when the session does not exist (nothing is written).
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
