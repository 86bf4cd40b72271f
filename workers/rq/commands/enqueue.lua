-- Queue.enqueue_call as a Python producer writes it: the queue in rq:queues, the job hash, its
-- ttl, the id pushed (LPUSH with at_front, RPUSH otherwise).
-- KEYS[1] queue key, KEYS[2] job key
-- ARGV: '1' for at_front, ttl ('' = none), then field/value pairs of the job hash
redis.call('SADD', 'rq:queues', KEYS[1])
local fields = {}
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[2], unpack(fields))
if ARGV[2] ~= '' then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
redis.call(ARGV[1] == '1' and 'LPUSH' or 'RPUSH', KEYS[1], string.sub(KEYS[2], 8))
return 1
