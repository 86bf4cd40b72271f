-- ack: forget delivered messages as unacked (kombu's QoS.ack: ZREM unacked_index + HDEL unacked).
--   KEYS[1] unacked hash, KEYS[2] unacked_index zset; ARGV delivery tags
redis.call('HDEL', KEYS[1], unpack(ARGV))
redis.call('ZREM', KEYS[2], unpack(ARGV))
return #ARGV
