-- rq's scheduler for this worker's queues (retries with an interval land in rq:scheduled:<queue>):
-- under rq's own rq:scheduler-lock:<queue> (so a Python `rq worker --with-scheduler` and this
-- worker never both move a job), due jobs go onto their queue, as enqueue_scheduled_jobs does.
-- ARGV: owner name, lock ttl, now (int secs), now (utcformat), queue names...
local owner, lock_ttl, now_int, now_iso = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local moved = 0
for i = 5, #ARGV do
  local queue = ARGV[i]
  local lock = 'rq:scheduler-lock:' .. queue
  local holder = redis.call('GET', lock)
  if not holder then redis.call('SET', lock, owner, 'EX', lock_ttl) elseif holder == owner then redis.call('EXPIRE', lock, lock_ttl) end
  if not holder or holder == owner then
    local sk = 'rq:scheduled:' .. queue
    for _, id in ipairs(redis.call('ZRANGEBYSCORE', sk, 0, now_int, 'LIMIT', 0, 1000)) do
      redis.call('ZREM', sk, id)
      local jk = 'rq:job:' .. id
      if redis.call('EXISTS', jk) == 1 then
        redis.call('HSET', jk, 'status', 'queued', 'enqueued_at', now_iso)
        local front = redis.call('HGET', jk, 'enqueue_at_front_on_retry') == '1' or redis.call('HGET', jk, 'enqueue_at_front') == '1'
        redis.call(front and 'LPUSH' or 'RPUSH', 'rq:queue:' .. queue, id)
        moved = moved + 1
      end
    end
  end
end
return moved
