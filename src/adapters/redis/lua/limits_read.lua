-- Current values of counters. KEYS[i] = counter i.
-- ARGV[1] now ms, ARGV[2] session id to leave out of session counts ('' = none), then per
-- counter: kind, p1, p2 (see common). Returns the values in order.
local now = tonumber(ARGV[1])
local plain = plain_values(function(i) return ARGV[3 + (i - 1) * 3] end)
local out = {}
for i = 1, #KEYS do
  local base = 3 + (i - 1) * 3
  out[i] = current(KEYS[i], ARGV[base], tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2]), now, ARGV[2], plain[i])
end
return out
