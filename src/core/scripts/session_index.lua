-- Cluster mode: the index entry of a session that lives in another slot than its user's index
-- (an id the caller chose). KEYS[1] the user's index; ARGV[1] 'add' or 'rem', ARGV[2] the id,
-- ARGV[3] the session's TTL in seconds ('add'). Scores are expiry times (server time, ms).
if ARGV[1] == 'rem' then
  return redis.call('ZREM', KEYS[1], ARGV[2])
end
index_add(KEYS[1], ARGV[2], tonumber(ARGV[3]))
return 1
