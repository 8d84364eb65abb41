-- Replaces a spend counter's content (rebuilt from the request log). KEYS[1] = counter.
-- ARGV[1] now ms, ARGV[2] kind, ARGV[3] p1, ARGV[4] p2 (see common), ARGV[5] sum of the
-- amounts, then pairs of (time ms, amount) for rolling windows, placed in their buckets.
local key, now, kind = KEYS[1], tonumber(ARGV[1]), ARGV[2]
local p1, p2, total = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
redis.call('DEL', key)
if kind == 's' then
  for j = 6, #ARGV, 2 do
    ring_add(key, tonumber(ARGV[j]), now, tonumber(ARGV[j + 1]), p1, p2)
  end
elseif kind == 'p' then
  redis.call('SET', key, total, 'PX', int(math.max(p1 - now, 0) + 3600000))
elseif kind == 't' then
  redis.call('SET', key, total)
end
return 1
