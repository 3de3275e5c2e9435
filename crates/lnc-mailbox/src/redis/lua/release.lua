-- KEYS: m, q, own lease, other lease. ARGV: value, idle_ms, id, prefix.
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[3])
local idle = tonumber(ARGV[2])
if idle > 0 and redis.call('EXISTS', KEYS[1]) == 1 and redis.call('EXISTS', KEYS[4]) == 0 then
  extend(KEYS[1], KEYS[2], ARGV[3], ARGV[4], idle, now_ms())
end
return 1
