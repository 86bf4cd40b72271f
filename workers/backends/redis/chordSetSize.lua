-- chordSetSize: start (or restart) a chord: forget any earlier claim or 'done' marker for this
-- group id, then record how many header results it waits for.
-- KEYS: 1 claim (.c), 2 size (.s); ARGV: 1 size, 2 expiry s (0 = none).
redis.call('DEL', KEYS[1])
local ttl = tonumber(ARGV[2])
if ttl and ttl > 0 then
  redis.call('SET', KEYS[2], ARGV[1], 'EX', ttl)
else
  redis.call('SET', KEYS[2], ARGV[1])
end
return 1
