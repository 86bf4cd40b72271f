-- rq's register_birth: refuse a live worker of the same name, write the worker hash, add it to
-- rq:workers and rq:workers:<queue>, TTL worker_ttl + 60.
-- KEYS[1] worker key
-- ARGV: ttl, queue count, queue names..., then field/value pairs of the hash
local wkey = KEYS[1]
if redis.call('EXISTS', wkey) == 1 and redis.call('HEXISTS', wkey, 'death') == 0 then
  return redis.error_reply('There exists an active worker named ' .. string.sub(wkey, 11) .. ' already')
end
local nq = tonumber(ARGV[2])
redis.call('DEL', wkey)
local fields = {}
for i = 3 + nq, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', wkey, unpack(fields))
redis.call('SADD', 'rq:workers', wkey)
for i = 3, 2 + nq do redis.call('SADD', 'rq:workers:' .. ARGV[i], wkey) end
redis.call('EXPIRE', wkey, ARGV[1])
return 1
