-- storeResult: write a task's meta document unless it already holds SUCCESS, then PUBLISH it on
-- the key's channel (what Celery's AsyncResult listens to). Celery does GET, then SET+PUBLISH in
-- a pipeline; here the check and the write are one atomic step.
--   KEYS[1] celery-task-meta-<id>; ARGV[1] encoded meta, ARGV[2] expiry seconds (0 = none)
local current = redis.call('GET', KEYS[1])
if current then
  local ok, meta = pcall(cjson.decode, current)
  if ok and type(meta) == 'table' and meta.status == 'SUCCESS' then
    return 0
  end
end
local ttl = tonumber(ARGV[2])
if ttl and ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ttl)
else
  redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('PUBLISH', KEYS[1], ARGV[1])
return 1
