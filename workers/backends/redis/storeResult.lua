-- storeResult: write task meta documents, each unless its key already holds SUCCESS, and PUBLISH
-- each on its key's channel (what Celery's AsyncResult listens to). Celery does GET, then
-- SET+PUBLISH in a pipeline; here check and write are one atomic step, for a batch of results.
--   KEYS[i] celery-task-meta-<id>; ARGV[1] expiry seconds (0 = none), ARGV[i + 1] encoded meta
-- Returns how many were written.
local ttl = tonumber(ARGV[1])
local written = 0
for i, key in ipairs(KEYS) do
  local value = ARGV[i + 1]
  local current = redis.call('GET', key)
  local keep = false
  if current then
    local ok, meta = pcall(cjson.decode, current)
    keep = ok and type(meta) == 'table' and meta.status == 'SUCCESS'
  end
  if not keep then
    if ttl and ttl > 0 then
      redis.call('SET', key, value, 'EX', ttl)
    else
      redis.call('SET', key, value)
    end
    redis.call('PUBLISH', key, value)
    written = written + 1
  end
end
return written
