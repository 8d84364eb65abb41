-- Adds a request's spend to every spend counter. KEYS[i] = counter i.
-- ARGV[1] packs: time ms, amount (micro-USD), the amount in decimal digits, then per counter:
-- kind, p1, p2 (see common).
local a = cmsgpack.unpack(ARGV[1])
local at, amount, amount_s = a[1], a[2], a[3]
for i = 1, #KEYS do
  local base = 4 + (i - 1) * 3
  local kind, p1, p2 = a[base], a[base + 1], a[base + 2]
  local key = KEYS[i]
  if kind == 's' then
    ring_add(key, at, at, amount, p1, p2, amount_s)
  elseif kind == 'p' then
    -- The key names its period and expires an hour after the period ends: set once, when
    -- this add created it.
    if redis.call('INCRBY', key, amount_s) == amount then
      redis.call('PEXPIRE', key, int(math.max(p1 - at, 0) + 3600000))
    end
  elseif kind == 't' then
    redis.call('INCRBY', key, amount_s)
  end
end
return 1
