-- Current values of counters. KEYS[i] = counter i.
-- ARGV[1] packs: now ms, session id to leave out of session counts ('' = none), then per
-- counter: kind, p1, p2 (see common). Returns the values in order.
local a = cmsgpack.unpack(ARGV[1])
local now, member = a[1], a[2]
local plain = plain_values(function(i) return a[3 + (i - 1) * 3] end)
local out = {}
for i = 1, #KEYS do
  local base = 3 + (i - 1) * 3
  out[i] = current(KEYS[i], a[base], a[base + 1], a[base + 2], now, member, plain[i])
end
return out
