-- KEYS: m, q, w (own), r. ARGV: value, msg, max_n, max_b, id, prefix.
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return -2 end
local n = redis.call('LLEN', KEYS[2])
local b = tonumber(redis.call('HGET', KEYS[1], 'b') or '0')
local len = string.len(ARGV[2])
if n >= tonumber(ARGV[3]) or (n > 0 and b + len > tonumber(ARGV[4])) then
  redis.call('HSET', KEYS[1], 'wf', 1)
  return 0
end
redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('HINCRBY', KEYS[1], 'b', len)
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
if n == 0 then wake(redis.call('GET', KEYS[4]), ARGV[6], 'r' .. ARGV[5]) end
return 1
