local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function extend(m, q, id, prefix, ttl, now)
  redis.call('PEXPIRE', m, ttl)
  redis.call('PEXPIRE', q, ttl)
  local score = now + ttl
  redis.call('ZADD', prefix .. 'streams', 'XX', score, id)
  local o = redis.call('HGET', m, 'o')
  if o then
    local ipk = prefix .. 'ip:' .. o
    redis.call('ZADD', ipk, 'XX', score, id)
    if redis.call('PTTL', ipk) < ttl then redis.call('PEXPIRE', ipk, ttl) end
  end
end
local function wake(lease, prefix, msg)
  if lease then
    local inst = string.match(lease, '^([^:]+):')
    if inst then redis.call('PUBLISH', prefix .. 'wake:' .. inst, msg) end
  end
end
