-- Adds a request's spend to every spend counter. KEYS[i] = counter i.
-- ARGV[1] time ms, ARGV[2] amount (micro-USD), then per counter: kind, p1, p2 (see common).
local at, amount = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 1, #KEYS do
  local base = 3 + (i - 1) * 3
  local kind, p1, p2 = ARGV[base], tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2])
  local key = KEYS[i]
  if kind == 's' then
    ring_add(key, at, at, amount, p1, p2)
  elseif kind == 'p' then
    -- The key names its period and expires an hour after the period ends: set once, when
    -- this add created it.
    if redis.call('INCRBY', key, ARGV[2]) == amount then
      redis.call('PEXPIRE', key, int(math.max(p1 - at, 0) + 3600000))
    end
  elseif kind == 't' then
    redis.call('INCRBY', key, ARGV[2])
  end
end
return 1
