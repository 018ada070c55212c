-- A user's live sessions: prunes the index (expired, destroyed, or reassigned sessions), then
-- lists the ids (ARGV[3] == 'list'), counts them ('count'), or deletes them ('destroy', returning
-- how many existed). KEYS[1] the user's index; ARGV[1] the session key prefix, ARGV[2] user id.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local live = {}
for _, id in ipairs(ids) do
  local key
  if string.len(id) == 40 and not string.find(id, '[^0-9a-f]') then
    key = ARGV[1] .. '{' .. string.sub(id, 33) .. '}:' .. id
  else
    key = ARGV[1] .. '{' .. id .. '}'
  end
  if redis.call('HGET', key, '\0user') == ARGV[2] then
    live[#live + 1] = id
    if ARGV[3] == 'destroy' then
      redis.call('DEL', key)
    end
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
if ARGV[3] == 'destroy' then
  redis.call('DEL', KEYS[1])
  return #live
elseif ARGV[3] == 'count' then
  return #live
end
return live
