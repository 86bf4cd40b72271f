-- A job's run ended: everything rq's handle_job_success / handle_job_failure (with retry) write,
-- in one atomic step: job status and ended_at, rq:results:<id> stream entry, finished/failed
-- registry with result_ttl/failure_ttl, retry (queue or scheduled registry), the execution's
-- removal, worker counters and state, and the deferred dependents that may now run.
-- KEYS[1] worker key
-- ARGV: job id, queue, execution id, worker name, now (utcformat), now (int secs), now (float),
--       outcome ('ok' | 'fail' | 'stop' | 'refuse'), return value (base64 JSON, '' = None),
--       exception text (base64 of zlib, as rq's Result; rq 2.x keeps it only there, not in the
--       job hash: FailedJobRegistry.add saves the job with include_result=False),
--       execution started at (float secs), working seconds, default result_ttl, '1' if the worker
--       is still busy with other jobs
-- Returns 'finished' | 'failed' | 'stopped' | 'retried' | 'scheduled' | 'gone'
local wkey = KEYS[1]
local id, queue, exec, wname, now_iso, now_int, now_ts = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), ARGV[7]
local outcome, value, exc_b64, exec_started, worked, default_rttl, busy =
  ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12], tonumber(ARGV[13]), ARGV[14] == '1'
local jk = 'rq:job:' .. id

-- cleanup_execution
redis.call('DEL', 'rq:execution:' .. id .. ':' .. exec)
redis.call('ZREM', 'rq:wip:' .. queue, id .. ':' .. exec)
redis.call('ZREM', 'rq:executions:' .. id, exec)
if redis.call('HGET', wkey, 'current_job') == id then redis.call('HDEL', wkey, 'current_job') end
redis.call('HSET', wkey, 'state', busy and 'busy' or 'idle', 'current_job_working_time', 0)
redis.call('HINCRBY', wkey, outcome == 'ok' and 'successful_job_count' or 'failed_job_count', 1)
redis.call('HINCRBYFLOAT', wkey, 'total_working_time', worked)
if redis.call('EXISTS', jk) == 0 then return 'gone' end

local function hget(key, field)
  local v = redis.call('HGET', key, field)
  if v == false or v == '' then return nil end
  return v
end

-- job.cleanup(ttl): 0 deletes, > 0 expires the job with its dependency sets, None/< 0 keeps it
local function cleanup(key, ttl)
  if ttl == nil then return end
  if ttl == 0 then
    redis.call('DEL', key, key .. ':dependents', key .. ':dependencies', 'rq:executions:' .. string.sub(key, 8))
  elseif ttl > 0 then
    redis.call('EXPIRE', key, ttl)
    redis.call('EXPIRE', key .. ':dependents', ttl)
    redis.call('EXPIRE', key .. ':dependencies', ttl)
  end
end

local function push(q, jid, front)
  redis.call(front and 'LPUSH' or 'RPUSH', 'rq:queue:' .. q, jid)
end

-- queue._enqueue_job: status queued, enqueued_at, the job's own ttl, onto its queue
local function enqueue(jkey, jid, q, front)
  redis.call('HSET', jkey, 'status', 'queued', 'enqueued_at', now_iso)
  cleanup(jkey, tonumber(hget(jkey, 'ttl')))
  push(q, jid, front)
end

-- queue.enqueue_dependents with dependencies_are_met(parent_job=this job)
local function enqueue_dependents(status)
  local dk = jk .. ':dependents'
  local ids = redis.call('SMEMBERS', dk)
  if #ids == 0 then return end
  local done = {}
  for _, did in ipairs(ids) do
    local djk = 'rq:job:' .. did
    if redis.call('EXISTS', djk) == 1 and hget(djk, 'status') ~= 'canceled' then
      local allow = hget(djk, 'allow_dependency_failures') == '1'
      local met = not (status == 'canceled' or status == 'stopped' or (status == 'failed' and not allow))
      if met then
        for _, other in ipairs(redis.call('SMEMBERS', djk .. ':dependencies')) do
          if other ~= id then
            local s = hget('rq:job:' .. other, 'status')
            if s and not (s == 'finished' or (allow and s == 'failed')) then met = false end
          end
        end
      end
      if met then
        local origin = hget(djk, 'origin') or queue
        redis.call('ZREM', 'rq:deferred:' .. origin, did)
        enqueue(djk, did, origin, hget(djk, 'enqueue_at_front') == '1')
        done[#done + 1] = did
      end
    end
  end
  if #done == #ids then redis.call('DEL', dk) elseif #done > 0 then redis.call('SREM', dk, unpack(done)) end
end

local function result(type, ttl, extra)
  local rk = 'rq:results:' .. id
  local fields = { 'type', type, 'worker_name', wname }
  for _, f in ipairs(extra) do fields[#fields + 1] = f end
  for _, f in ipairs({ 'execution_id', exec, 'execution_started_at', exec_started, 'execution_ended_at', now_ts }) do fields[#fields + 1] = f end
  redis.call('XADD', rk, 'MAXLEN', '~', 10, '*', unpack(fields))
  if ttl == -1 then redis.call('PERSIST', rk) elseif ttl ~= nil then redis.call('EXPIRE', rk, ttl) end
end

redis.call('HSET', jk, 'ended_at', now_iso, 'last_heartbeat', now_iso)

if outcome == 'ok' then
  enqueue_dependents('finished')
  local rttl = tonumber(hget(jk, 'result_ttl')) or default_rttl
  if rttl ~= 0 then
    redis.call('HSET', jk, 'status', 'finished')
    result(1, rttl, value ~= '' and { 'return_value', value } or {})
    redis.call('ZADD', 'rq:finished:' .. queue, rttl < 0 and (rttl == -1 and '+inf' or rttl) or now_int + rttl, id)
  end
  cleanup(jk, rttl)
  return 'finished'
end

local retries_left = tonumber(hget(jk, 'retries_left'))
if outcome == 'fail' and retries_left and retries_left > 0 then
  -- job.retry: the interval for this attempt, then the queue or the scheduled registry
  local interval = 0
  local raw = hget(jk, 'retry_intervals')
  if raw then
    local intervals = cjson.decode(raw)
    if #intervals > 0 then interval = intervals[math.max(#intervals - retries_left, 0) + 1] or 0 end
  end
  redis.call('HSET', jk, 'retries_left', retries_left - 1)
  if interval > 0 then
    redis.call('HSET', jk, 'status', 'scheduled')
    cleanup(jk, tonumber(hget(jk, 'ttl')))
    redis.call('SADD', 'rq:queues', 'rq:queue:' .. queue)
    redis.call('ZADD', 'rq:scheduled:' .. queue, now_int + interval, id)
    return 'scheduled'
  end
  enqueue(jk, id, queue, hget(jk, 'enqueue_at_front_on_retry') == '1')
  return 'retried'
end

local status = outcome == 'stop' and 'stopped' or 'failed'
redis.call('HSET', jk, 'status', status)
-- FailedJobRegistry.add: failure_ttl or rq's DEFAULT_FAILURE_TTL (one year)
local fttl = tonumber(hget(jk, 'failure_ttl'))
local ttl = fttl or 31536000
redis.call('ZADD', 'rq:failed:' .. queue, ttl < 0 and ttl or now_int + ttl, id)
cleanup(jk, ttl)
result(2, fttl, { 'exc_string', exc_b64 })
enqueue_dependents(status)
return status
