-- Claim rq jobs and record their start in one atomic step: what rq's dequeue_any +
-- prepare_execution + prepare_job_execution write (Execution hash, rq:executions:<id>,
-- rq:wip:<queue> "<id>:<execution>", worker state/current_job, job status/started_at/worker_name),
-- so a job is never in neither the queue nor the started registry.
-- KEYS[1] worker key
-- ARGV: mode ('pop' | 'given'), worker name, now (rq utcformat), now (float secs), now (int secs),
--       job monitoring interval, then
--   pop:   n, queue count, queue names..., execution ids (n)
--   given: job id, queue name, '1' to LREM it from the queue's intermediate list, execution id
-- Returns { {queue, job id, execution id, {job hash flat}} ... }
local wkey = KEYS[1]
local mode, wname, now_iso, now_ts, now_int, monitor = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])

local function start(queue, id, exec)
  local jk = 'rq:job:' .. id
  if redis.call('EXISTS', jk) == 0 then return nil end -- rq skips a NoSuchJob id too
  -- rq's Worker.get_heartbeat_ttl
  local timeout = tonumber(redis.call('HGET', jk, 'timeout'))
  local ttl = monitor + 60
  if timeout and timeout > 0 then ttl = math.floor(math.min(timeout, monitor)) + 60 end
  local ek = 'rq:execution:' .. id .. ':' .. exec
  redis.call('HSET', ek, 'id', exec, 'created_at', now_ts, 'last_heartbeat', now_ts, 'worker_name', wname)
  redis.call('EXPIRE', ek, ttl)
  redis.call('ZADD', 'rq:executions:' .. id, now_int + ttl + 60, exec)
  redis.call('EXPIRE', 'rq:executions:' .. id, ttl + 60)
  redis.call('ZADD', 'rq:wip:' .. queue, now_int + ttl, id .. ':' .. exec)
  redis.call('HSET', wkey, 'state', 'busy', 'current_job', id, 'current_job_working_time', 0, 'last_heartbeat', now_iso)
  redis.call('EXPIRE', wkey, ttl)
  redis.call('HSET', jk, 'last_heartbeat', now_iso, 'status', 'started', 'started_at', now_iso, 'worker_name', wname)
  redis.call('PERSIST', jk)
  return { queue, id, exec, redis.call('HGETALL', jk) }
end

local out = {}
if mode == 'given' then
  local id, queue = ARGV[7], ARGV[8]
  if ARGV[9] == '1' then redis.call('LREM', 'rq:queue:' .. queue .. ':intermediate', 1, id) end
  local r = start(queue, id, ARGV[10])
  if r then out[1] = r end
  return out
end

local n, nq = tonumber(ARGV[7]), tonumber(ARGV[8])
local e = 9 + nq
for i = 1, nq do
  local queue = ARGV[8 + i]
  while #out < n do
    local id = redis.call('LPOP', 'rq:queue:' .. queue)
    if not id then break end
    local r = start(queue, id, ARGV[e])
    if r then
      out[#out + 1] = r
      e = e + 1
    end
  end
end
return out
