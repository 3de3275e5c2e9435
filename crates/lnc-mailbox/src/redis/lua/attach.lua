-- KEYS: m, q, lease. ARGV: value, lease_ms, idle_ms, id, prefix.
if redis.call('EXISTS', KEYS[1]) == 0 then return 1 end
if not redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', ARGV[2]) then return 2 end
local idle = tonumber(ARGV[3])
if idle > 0 then extend(KEYS[1], KEYS[2], ARGV[4], ARGV[5], tonumber(ARGV[2]) + idle, now_ms()) end
return 0
