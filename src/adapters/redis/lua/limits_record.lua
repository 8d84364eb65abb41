-- Adds a request's spend to every spend counter. KEYS[i] = counter i.
-- ARGV[1] time ms, ARGV[2] unique member, ARGV[3] amount (micro-USD), then per counter: kind,
-- param (window ms for s, period end ms for p, unused for t).
local at, member, amount = tonumber(ARGV[1]), ARGV[2], ARGV[3]
for i = 1, #KEYS do
  local base = 4 + (i - 1) * 2
  local kind, param = ARGV[base], tonumber(ARGV[base + 1])
  local key = KEYS[i]
  if kind == 's' then
    trim_rolling(key, at - param)
    if redis.call('ZADD', key, 'NX', ARGV[1], member .. ':' .. amount) == 1 then
      redis.call('INCRBY', key .. ':sum', amount)
    end
    redis.call('PEXPIRE', key, int(param))
    redis.call('PEXPIRE', key .. ':sum', int(param))
  elseif kind == 'p' then
    redis.call('INCRBY', key, amount)
    redis.call('PEXPIRE', key, int(math.max(param - at, 0) + 3600000))
  elseif kind == 't' then
    redis.call('INCRBY', key, amount)
  end
end
return 1
