-- chordCleanup: after the body was published, drop the chord's keys and leave a 'done' marker
-- (so late copies of header tasks are ignored), only if this worker still holds the claim.
-- KEYS: 1 claim (.c), 2 results (.j), 3 extra (.t), 4 size (.s), 5 seen (.d);
-- ARGV: 1 token, 2 marker lifetime s. Reply: 1 cleaned, 0 claim lost.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5])
local ttl = tonumber(ARGV[2])
if ttl and ttl > 0 then redis.call('SET', KEYS[1], 'done', 'EX', ttl) end
return 1
