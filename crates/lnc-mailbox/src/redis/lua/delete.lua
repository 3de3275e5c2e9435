-- KEYS: m, q, r, w, streams. ARGV: id, token, prefix.
if redis.call('EXISTS', KEYS[1]) == 0 then return 1 end
local c = redis.call('HGET', KEYS[1], 'c')
if c and c ~= '-1' and c ~= ARGV[2] then return 2 end
local o = redis.call('HGET', KEYS[1], 'o')
local r = redis.call('GET', KEYS[3])
local w = redis.call('GET', KEYS[4])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
redis.call('ZREM', KEYS[5], ARGV[1])
if o then redis.call('ZREM', ARGV[3] .. 'ip:' .. o, ARGV[1]) end
wake(r, ARGV[3], 'c' .. ARGV[1])
wake(w, ARGV[3], 'c' .. ARGV[1])
return 0
