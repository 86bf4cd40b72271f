-- Shared by finish.lua and maintain.lua (prepended when they are loaded, see scripts.ts): the
-- pieces of rq's Job / Queue / registries that both a job's end and rq's cleanup write.

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

-- queue._enqueue_job: status queued, enqueued_at, the job's own ttl, onto its queue
local function enqueue(jkey, jid, q, front, now_iso)
  redis.call('HSET', jkey, 'status', 'queued', 'enqueued_at', now_iso)
  cleanup(jkey, tonumber(hget(jkey, 'ttl')))
  redis.call(front and 'LPUSH' or 'RPUSH', 'rq:queue:' .. q, jid)
end

-- queue.enqueue_dependents with dependencies_are_met(parent_job = the job that just ended)
local function enqueue_dependents(id, queue, status, now_iso)
  local dk = 'rq:job:' .. id .. ':dependents'
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
        enqueue(djk, did, origin, hget(djk, 'enqueue_at_front') == '1', now_iso)
        done[#done + 1] = did
      end
    end
  end
  if #done == #ids then redis.call('DEL', dk) elseif #done > 0 then redis.call('SREM', dk, unpack(done)) end
end

-- Result.save: one entry of rq:results:<id> (MAXLEN ~ 10); ttl nil keeps it, -1 persists it.
-- fields: the type-specific pairs; exec: {id, started_at, ended_at} or nil
local function add_result(id, type, ttl, worker_name, fields, exec)
  local rk = 'rq:results:' .. id
  local all = { 'type', type, 'worker_name', worker_name }
  for _, f in ipairs(fields) do all[#all + 1] = f end
  if exec then
    for _, f in ipairs({ 'execution_id', exec[1], 'execution_started_at', exec[2], 'execution_ended_at', exec[3] }) do all[#all + 1] = f end
  end
  redis.call('XADD', rk, 'MAXLEN', '~', 10, '*', unpack(all))
  if ttl == -1 then redis.call('PERSIST', rk) elseif ttl ~= nil then redis.call('EXPIRE', rk, ttl) end
end

-- job.retry: the interval for this attempt, then back onto the queue or into rq:scheduled
local function retry_job(id, queue, retries_left, now_int, now_iso)
  local jk = 'rq:job:' .. id
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
  enqueue(jk, id, queue, hget(jk, 'enqueue_at_front_on_retry') == '1', now_iso)
  return 'retried'
end

-- job._handle_failure (FailedJobRegistry.add with failure_ttl or one year, Result.create_failure)
-- and the dependents a failure releases
local function fail_job(id, queue, status, exc_b64, worker_name, now_int, now_iso, exec)
  local jk = 'rq:job:' .. id
  redis.call('HSET', jk, 'status', status)
  local fttl = tonumber(hget(jk, 'failure_ttl'))
  local ttl = fttl or 31536000
  redis.call('ZADD', 'rq:failed:' .. queue, ttl < 0 and ttl or now_int + ttl, id)
  cleanup(jk, ttl)
  add_result(id, 2, fttl, worker_name, { 'exc_string', exc_b64 }, exec)
  enqueue_dependents(id, queue, status, now_iso)
  return status
end
