-- rq's heartbeat + maintain_heartbeats: the worker hash's last_heartbeat and TTL, and for each
-- running job its execution hash, rq:executions:<id>, the rq:wip score (only if still there) and
-- the job's last_heartbeat.
-- KEYS[1] worker key
-- ARGV: now (utcformat), now (float secs), now (int secs), worker key ttl, then per running job:
--       job id, queue, execution id, ttl
local wkey = KEYS[1]
local now_iso, now_ts, now_int = ARGV[1], ARGV[2], tonumber(ARGV[3])
redis.call('HSET', wkey, 'last_heartbeat', now_iso)
redis.call('EXPIRE', wkey, ARGV[4])
for i = 5, #ARGV, 4 do
  local id, queue, exec, ttl = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local ek = 'rq:execution:' .. id .. ':' .. exec
  redis.call('HSET', ek, 'last_heartbeat', now_ts)
  redis.call('EXPIRE', ek, ttl)
  redis.call('ZADD', 'rq:wip:' .. queue, 'XX', now_int + ttl, id .. ':' .. exec)
  redis.call('ZADD', 'rq:executions:' .. id, now_int + ttl + 60, exec)
  redis.call('EXPIRE', 'rq:executions:' .. id, ttl + 60)
  if redis.call('EXISTS', 'rq:job:' .. id) == 1 then redis.call('HSET', 'rq:job:' .. id, 'last_heartbeat', now_iso) end
end
return 1
