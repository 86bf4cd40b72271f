-- A job's run ended: everything rq's handle_job_success / handle_job_failure (with retry) write,
-- in one atomic step: job status and ended_at, rq:results:<id> stream entry, finished/failed
-- registry with result_ttl/failure_ttl, retry (queue or scheduled registry), the execution's
-- removal, worker counters and state, and the deferred dependents that may now run.
-- (lib.lua is prepended.)
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
local execution = { exec, exec_started, now_ts }

-- cleanup_execution
redis.call('DEL', 'rq:execution:' .. id .. ':' .. exec)
redis.call('ZREM', 'rq:wip:' .. queue, id .. ':' .. exec)
redis.call('ZREM', 'rq:executions:' .. id, exec)
if redis.call('HGET', wkey, 'current_job') == id then redis.call('HDEL', wkey, 'current_job') end
redis.call('HSET', wkey, 'state', busy and 'busy' or 'idle', 'current_job_working_time', 0)
redis.call('HINCRBY', wkey, outcome == 'ok' and 'successful_job_count' or 'failed_job_count', 1)
redis.call('HINCRBYFLOAT', wkey, 'total_working_time', worked)
if redis.call('EXISTS', jk) == 0 then return 'gone' end

redis.call('HSET', jk, 'ended_at', now_iso, 'last_heartbeat', now_iso)

if outcome == 'ok' then
  enqueue_dependents(id, queue, 'finished', now_iso)
  local rttl = tonumber(hget(jk, 'result_ttl')) or default_rttl
  if rttl ~= 0 then
    redis.call('HSET', jk, 'status', 'finished')
    add_result(id, 1, rttl, wname, value ~= '' and { 'return_value', value } or {}, execution)
    redis.call('ZADD', 'rq:finished:' .. queue, rttl < 0 and (rttl == -1 and '+inf' or rttl) or now_int + rttl, id)
  end
  cleanup(jk, rttl)
  return 'finished'
end

local retries_left = tonumber(hget(jk, 'retries_left'))
if outcome == 'fail' and retries_left and retries_left > 0 then
  return retry_job(id, queue, retries_left, now_int, now_iso)
end
return fail_job(id, queue, outcome == 'stop' and 'stopped' or 'failed', exc_b64, wname, now_int, now_iso, execution)
