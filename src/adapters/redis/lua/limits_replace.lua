-- Replaces a spend counter's content (rebuilt from the request log). KEYS[1] = counter.
-- ARGV[1] now ms, ARGV[2] kind, ARGV[3] p1, ARGV[4] p2 (see common), ARGV[5] sum of the
-- amounts, ARGV[6] the counter's value read before the log was summed, then pairs of
-- (time ms, amount) for rolling windows, placed in their buckets. What was recorded since that
-- read (the value now minus ARGV[6], when positive) is kept on top, in the bucket of now.
local key, now, kind = KEYS[1], tonumber(ARGV[1]), ARGV[2]
local p1, p2, total, seen = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local before = 0
if kind == 's' then
  before = ring_sum(key, now, p1, p2)
else
  before = tonumber(redis.call('GET', key) or '0') or 0
end
local since = math.max(before - seen, 0)
redis.call('DEL', key)
if kind == 's' then
  for j = 7, #ARGV, 2 do
    ring_add(key, tonumber(ARGV[j]), now, tonumber(ARGV[j + 1]), p1, p2)
  end
  if since > 0 then
    ring_add(key, now, now, since, p1, p2)
  end
elseif kind == 'p' then
  redis.call('SET', key, int(total + since), 'PX', int(math.max(p1 - now, 0) + 3600000))
elseif kind == 't' then
  redis.call('SET', key, int(total + since))
end
return 1
