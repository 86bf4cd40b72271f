-- claim: pop up to ARGV[1] messages from the queue lists KEYS[3..] (given in consume order:
-- priority-major, like kombu's BRPOP key list) and record each one in kombu's `unacked` hash and
-- `unacked_index` zset in the same atomic step, so a worker that dies holding them loses nothing:
-- any worker restores them once visibility_timeout has passed.
--   KEYS[1] unacked hash, KEYS[2] unacked_index zset, KEYS[3..] queue lists
--   ARGV[1] how many at most, ARGV[2] now (unix seconds, float)
--   ARGV[3], ARGV[4] (optional) index into KEYS and payload of a message BRPOP already popped:
--   recorded first, and left out of the reply
-- Returns 1 if a message is still waiting in any of the queues (0 if they are empty), then a flat
-- list of (key index, payload) pairs; a negative index marks a payload that is not a kombu
-- envelope (no delivery_tag): it is popped and reported, never tracked. The flag lets an idle
-- worker go back to BRPOP without one more claim that would find nothing.
local limit = tonumber(ARGV[1])
local now = ARGV[2]
local out = {0}

local function field(t, k)
  local v = t[k]
  if v == nil or v == cjson.null then return '' end
  return v
end

-- `reply`: add the message to the reply. BRPOP's message is not: the worker already has it, and
-- sending its ~1 KB back would only cost a copy each way.
local function track(index, payload, reply)
  local ok, msg = pcall(cjson.decode, payload)
  local props = ok and type(msg) == 'table' and msg.properties
  local tag = type(props) == 'table' and props.delivery_tag
  if type(tag) ~= 'string' then
    if reply then
      out[#out + 1] = -index
      out[#out + 1] = payload
    end
    return
  end
  local info = props.delivery_info
  local exchange, routing_key = '', ''
  if type(info) == 'table' then
    exchange, routing_key = field(info, 'exchange'), field(info, 'routing_key')
  end
  -- kombu stores json.dumps([message, exchange, routing_key]); the payload is already JSON.
  redis.call('HSET', KEYS[1], tag,
    '[' .. payload .. ', ' .. cjson.encode(exchange) .. ', ' .. cjson.encode(routing_key) .. ']')
  redis.call('ZADD', KEYS[2], now, tag)
  if reply then
    out[#out + 1] = index
    out[#out + 1] = payload
  end
end

if ARGV[3] then
  track(tonumber(ARGV[3]), ARGV[4], false)
  limit = limit - 1
end

for i = 3, #KEYS do
  if limit <= 0 then break end
  local items = redis.call('RPOP', KEYS[i], limit)
  if items then
    for _, payload in ipairs(items) do
      track(i, payload, true)
    end
    limit = limit - #items
  end
end

-- Queues not all emptied above only when the limit ran out first: look whether any has more.
if limit <= 0 then
  for i = 3, #KEYS do
    if redis.call('LLEN', KEYS[i]) > 0 then
      out[1] = 1
      break
    end
  end
end

return out
