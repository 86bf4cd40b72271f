-- rq's register_death: out of rq:workers and rq:workers:<queue>, `death` stamped, gone in 60 s;
-- the scheduler locks it held (schedule.lua) are released, as rq's scheduler does on stop.
-- KEYS[1] worker key
-- ARGV: now (utcformat), queue names...
local wkey = KEYS[1]
redis.call('SREM', 'rq:workers', wkey)
local name = string.sub(wkey, 11)
for i = 2, #ARGV do
  redis.call('SREM', 'rq:workers:' .. ARGV[i], wkey)
  local lock = 'rq:scheduler-lock:' .. ARGV[i]
  if redis.call('GET', lock) == name then redis.call('DEL', lock) end
end
redis.call('HSET', wkey, 'death', ARGV[1])
redis.call('EXPIRE', wkey, 60)
return 1
