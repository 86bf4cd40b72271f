-- chordClaimExtend: before publishing a chord body, make sure this worker still holds the
-- dispatch claim (lengthening it to cover publish retries), or take it back if it lapsed while
-- the chord is still pending. KEYS: 1 claim (.c), 2 size (.s); ARGV: 1 token, 2 seconds.
-- Reply: 1 when the claim is ours, else 0.
local claim, size_key = KEYS[1], KEYS[2]
local holder = redis.call('GET', claim)
if holder == ARGV[1] then
  return redis.call('EXPIRE', claim, tonumber(ARGV[2]))
end
if not holder and redis.call('EXISTS', size_key) == 1 then
  if redis.call('SET', claim, ARGV[1], 'NX', 'EX', tonumber(ARGV[2])) then return 1 end
end
return 0
