-- Replaces a spend counter's content (rebuilt from the request log). KEYS[1] = counter.
-- ARGV[1] now ms, ARGV[2] kind, ARGV[3] param, ARGV[4] sum of the amounts, then pairs of
-- (time ms, amount) for rolling windows.
local key, now, kind, param, total = KEYS[1], tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), ARGV[4]
redis.call('DEL', key, key .. ':sum')
if kind == 's' then
  local sum = 0
  for j = 5, #ARGV, 2 do
    local at, amount = tonumber(ARGV[j]), tonumber(ARGV[j + 1])
    if at > now - param then -- entries still inside the window
      redis.call('ZADD', key, ARGV[j], 'rebuilt-' .. j .. ':' .. ARGV[j + 1])
      sum = sum + amount
    end
  end
  if redis.call('ZCARD', key) > 0 then
    redis.call('SET', key .. ':sum', int(sum))
    redis.call('PEXPIRE', key, int(param))
    redis.call('PEXPIRE', key .. ':sum', int(param))
  end
elseif kind == 'p' then
  redis.call('SET', key, total, 'PX', int(math.max(param - now, 0) + 3600000))
elseif kind == 't' then
  redis.call('SET', key, total)
end
return 1
