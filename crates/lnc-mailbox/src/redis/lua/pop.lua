-- KEYS: m, q, r (own), w. ARGV: value, batch, id, prefix.
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return {-2} end
local items = redis.call('LPOP', KEYS[2], ARGV[2])
if not items then return {0} end
local total = 0
for _, it in ipairs(items) do total = total + string.len(it) end
redis.call('HINCRBY', KEYS[1], 'b', -total)
if redis.call('HGET', KEYS[1], 'wf') == '1' then
  redis.call('HSET', KEYS[1], 'wf', 0)
  wake(redis.call('GET', KEYS[4]), ARGV[4], 'w' .. ARGV[3])
end
table.insert(items, 1, 1)
return items
