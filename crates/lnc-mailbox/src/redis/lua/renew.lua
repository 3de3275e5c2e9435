-- KEYS: (m, q, lease)*. ARGV: lease_ms, idle_ms, prefix, (value, id)*.
local lease = tonumber(ARGV[1])
local idle = tonumber(ARGV[2])
local now = now_ms()
local out = {}
for i = 0, #KEYS / 3 - 1 do
  local m, q, l = KEYS[3 * i + 1], KEYS[3 * i + 2], KEYS[3 * i + 3]
  if redis.call('EXISTS', m) == 0 then
    out[i + 1] = 1
  elseif redis.call('GET', l) ~= ARGV[4 + 2 * i] then
    out[i + 1] = 2
  else
    redis.call('PEXPIRE', l, lease)
    if idle > 0 then extend(m, q, ARGV[5 + 2 * i], ARGV[3], lease + idle, now) end
    out[i + 1] = 0
  end
end
return out
