-- Rolling window in a sorted set: score = time ms, member = "<unique member>:<amount>".
-- ARGV[1] now ms, ARGV[2] member, ARGV[3] cutoff ms (entries at or before it leave the window),
-- ARGV[4] window ms (the key's TTL). Returns the sum of the amounts still in the window.
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local total = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  total = total + (tonumber(string.match(member, ':(-?%d+)$')) or 0)
end
if tonumber(ARGV[4]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
return total
