-- Sum of the amounts of a rolling window (see rolling_add.lua) with a time after ARGV[1] ms.
local total = 0
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')) do
  total = total + (tonumber(string.match(member, ':(-?%d+)$')) or 0)
end
return total
