-- KEYS: m, streams, ipset. ARGV: id, owner, creator, max_streams, max_per_ip, idle_ms.
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then return 2 end
if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[5]) then return 3 end
redis.call('HSET', KEYS[1], 'o', ARGV[2], 'c', ARGV[3], 'b', 0, 'wf', 0)
local idle = tonumber(ARGV[6])
local score = '+inf'
if idle > 0 then
  redis.call('PEXPIRE', KEYS[1], idle)
  score = now + idle
end
redis.call('ZADD', KEYS[2], score, ARGV[1])
redis.call('ZADD', KEYS[3], score, ARGV[1])
if idle > 0 and redis.call('PTTL', KEYS[3]) < idle then redis.call('PEXPIRE', KEYS[3], idle) end
return 0
