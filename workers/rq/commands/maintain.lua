-- rq's periodic maintenance (Worker.clean_registries) for each queue, under rq's own
-- rq:clean_registries:<queue> lock so a Python worker cleaning the same queue is not doubled:
-- expired finished/failed entries dropped; abandoned rq:wip entries (a worker died: no heartbeat
-- pushed the score on) retried when the job has retries left, else failed with
-- AbandonedJobError's text (StartedJobRegistry.cleanup); dead workers out of rq:workers; ids left
-- in the intermediate list for over a minute failed (IntermediateQueue.cleanup).
-- (lib.lua is prepended.)
-- ARGV: now (int secs), now (utcformat), now (float secs), worker name,
--       abandoned exception text (base64 zlib), stuck exception text (base64 zlib), queue names...
local now_int, now_iso, now_ts, wname, abandoned, stuck = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5], ARGV[6]
local cleaned = {}

local function fail_or_retry(id, queue, exc, worker_name)
  local retries_left = tonumber(hget('rq:job:' .. id, 'retries_left'))
  if retries_left and retries_left > 0 then return retry_job(id, queue, retries_left, now_int, now_iso) end
  return fail_job(id, queue, 'failed', exc, worker_name, now_int, now_iso, nil)
end

for i = 7, #ARGV do
  local queue = ARGV[i]
  local lock = 'rq:clean_registries:' .. queue
  if redis.call('SET', lock, 1, 'NX', 'EX', 899) then
    redis.call('ZREMRANGEBYSCORE', 'rq:finished:' .. queue, 0, now_int)
    local wip = 'rq:wip:' .. queue
    for _, entry in ipairs(redis.call('ZRANGEBYSCORE', wip, 0, now_int)) do
      local id = string.match(entry, '^(.*):[^:]*$') or entry
      if redis.call('EXISTS', 'rq:job:' .. id) == 1 then
        cleaned[#cleaned + 1] = id
        fail_or_retry(id, queue, abandoned, '')
      end
    end
    redis.call('ZREMRANGEBYSCORE', wip, 0, now_int)
    redis.call('ZREMRANGEBYSCORE', 'rq:failed:' .. queue, 0, now_int)

    local by_queue = 'rq:workers:' .. queue
    for _, wkey in ipairs(redis.call('SMEMBERS', by_queue)) do
      if redis.call('EXISTS', wkey) == 0 then
        redis.call('SREM', by_queue, wkey)
        redis.call('SREM', 'rq:workers', wkey)
      end
    end

    local inter = 'rq:queue:' .. queue .. ':intermediate'
    local running = {}
    for _, entry in ipairs(redis.call('ZRANGE', wip, 0, -1)) do running[string.match(entry, '^(.*):[^:]*$') or entry] = true end
    for _, id in ipairs(redis.call('LRANGE', inter, 0, -1)) do
      if not running[id] then
        if redis.call('EXISTS', 'rq:job:' .. id) == 0 then
          redis.call('LREM', inter, 1, id)
        else
          local seen = inter .. ':first_seen:' .. id
          if not redis.call('SET', seen, now_ts, 'NX', 'EX', 86400) and now_ts - tonumber(redis.call('GET', seen)) > 60 then
            cleaned[#cleaned + 1] = id
            fail_or_retry(id, queue, stuck, wname)
            redis.call('LREM', inter, 1, id)
          end
        end
      end
    end
    redis.call('DEL', lock)
  end
end
return cleaned
