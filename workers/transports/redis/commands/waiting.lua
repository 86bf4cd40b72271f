-- waiting: 1 if any of the queue lists KEYS[1..] holds a message, else 0.
-- Sent right behind BRPOP on the blocking connection: Redis runs it as soon as BRPOP returns, and
-- both replies come back together. It tells the worker whether to claim next or BRPOP again when
-- BRPOP's message needed no claim to record it (it was acked as it started).
for i = 1, #KEYS do
  if redis.call('LLEN', KEYS[i]) > 0 then
    return 1
  end
end
return 0
