-- restore: put one unacked message back on its queue(s) and forget it as unacked, atomically.
-- Does nothing when the tag is no longer in the unacked hash (it was acked, or another worker
-- restored it first), so two restorers never duplicate a message.
--   KEYS[1] unacked hash, KEYS[2] unacked_index zset, KEYS[3..] destination lists
--   ARGV[1] delivery tag, ARGV[2] payload to push (marked redelivered),
--   ARGV[3] 'RPUSH' (next to be consumed, kombu's restore) or 'LPUSH' (back of the queue)
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
for i = 3, #KEYS do
  redis.call(ARGV[3], KEYS[i], ARGV[2])
end
return 1
