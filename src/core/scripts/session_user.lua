-- A user's live sessions: prunes the index (expired, destroyed, or reassigned sessions), then
-- lists the ids (ARGV[3] == 'list'), counts them ('count'), or deletes them ('destroy', returning
-- how many existed). KEYS[1] the user's index; ARGV[1] the session key prefix, ARGV[2] user id.
-- ARGV[4] '1' in cluster mode: sessions in another slot than the index are not touched; the reply
-- is then `{local live ids, other ids}` and the caller checks the others.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms())
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local live = {}
local remote = {}
local tag = string.sub(redis.sha1hex(ARGV[2]), 1, 8)
for _, id in ipairs(ids) do
  local key
  local generated = string.len(id) == 40 and not string.find(id, '[^0-9a-f]')
  if generated then
    key = ARGV[1] .. '{' .. string.sub(id, 33) .. '}:' .. id
  else
    key = ARGV[1] .. '{' .. id .. '}'
  end
  if ARGV[4] == '1' and not (generated and string.sub(id, 33) == tag) then
    remote[#remote + 1] = id
  elseif redis.call('HGET', key, '\0user') == ARGV[2] then
    live[#live + 1] = id
    if ARGV[3] == 'destroy' then
      redis.call('DEL', key)
    end
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
if ARGV[4] == '1' then
  return {live, remote}
end
if ARGV[3] == 'destroy' then
  redis.call('DEL', KEYS[1])
  return #live
elseif ARGV[3] == 'count' then
  return #live
end
return live
