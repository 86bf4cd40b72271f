-- chordPartReturn: record one header task's result for a chord, once, and say whether the chord
-- is complete; the worker that completes it also takes the dispatch claim, in the same step, so
-- two workers can never both send the body. Same keys and replies as Celery's RedisBackend.
--   KEYS: 1 results (.j: zset by group_index, or list), 2 extra count (.t), 3 size (.s),
--         4 recorded "<task id>:<index>" set (.d), 5 saved GroupResult, 6 claim (.c)
--   ARGV: 1 task id, 2 encoded [1, id, state, result], 3 '1' = ordered zset, 4 index (score),
--         5 chord expiry s, 6 saved-group expiry s, 7 claim expiry s, 8 claim token
-- Reply: {count recorded, extra count, size, 1 if claimed} or {-1, 0, 0, 0} when already done.
local results, extra, size_key, seen, saved, claim = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local ordered = ARGV[3] == '1'
local chord_ttl = tonumber(ARGV[5])
local saved_ttl = tonumber(ARGV[6])

-- A copy arriving after the body was sent must not bring the chord's keys back.
if redis.call('GET', claim) == 'done' then
  return {-1, 0, 0, 0}
end

-- A redelivered header task counts once (keyed by id and index: a reused frozen id may repeat).
local entry = ARGV[1] .. ':' .. ARGV[4]
if redis.call('SADD', seen, entry) == 1 then
  if ordered then
    redis.call('ZADD', results, ARGV[4], ARGV[2])
  else
    redis.call('RPUSH', results, ARGV[2])
  end
end

local count
if ordered then
  count = redis.call('ZCARD', results)
else
  count = redis.call('LLEN', results)
end

if chord_ttl > 0 then
  redis.call('EXPIRE', results, chord_ttl)
  redis.call('EXPIRE', extra, chord_ttl)
  redis.call('EXPIRE', size_key, chord_ttl)
  redis.call('EXPIRE', seen, chord_ttl)
  if saved_ttl > 0 then redis.call('EXPIRE', saved, saved_ttl) end
end

local added = redis.call('GET', extra)
local size = redis.call('GET', size_key)
local claimed = 0
if size and count == tonumber(size) + tonumber(added or 0) then
  if redis.call('SET', claim, ARGV[8], 'NX', 'EX', tonumber(ARGV[7])) then claimed = 1 end
end
return {count, added, size, claimed}
