-- Admission: checks every counter, and only when all pass counts the request and takes or
-- refreshes the session's slots. KEYS[i] = counter i.
-- ARGV[1] packs: now ms, session id, then per counter: kind, limit, p1, p2 (see common).
-- Returns {0, 0, -1} when admitted, else {index (1-based), current, oldest instant ms or -1}.
local a = cmsgpack.unpack(ARGV[1])
local now, member = a[1], a[2]
local plain = plain_values(function(i) return a[3 + (i - 1) * 4] end)
-- Each counter's current value, kept for the second pass (a session counter's count).
local counts = {}
for i = 1, #KEYS do
  local base = 3 + (i - 1) * 4
  local kind, limit, p1, p2 = a[base], a[base + 1], a[base + 2], a[base + 3]
  local cur = current(KEYS[i], kind, p1, p2, now, member, plain[i])
  if cur >= limit then
    return {i, cur, oldest_of(KEYS[i], kind, p1, p2, now)}
  end
  counts[i] = cur
end
-- `now` in digits, formatted once for every session counter.
local now_s
for i = 1, #KEYS do
  local base = 3 + (i - 1) * 4
  local kind, p1, p2 = a[base], a[base + 2], a[base + 3]
  if kind == 'r' then
    ring_add(KEYS[i], now, now, 1, p1, p2, '1')
  elseif kind == 'c' then
    now_s = now_s or int(now)
    redis.call('ZADD', KEYS[i], now_s, member)
    -- The set now holds the other live sessions counted above and this one (an empty id
    -- was not left out of the count: it is counted again).
    local held = counts[i] + 1
    if member == '' then
      held = redis.call('ZCARD', KEYS[i])
    end
    local extra = held - p2
    if extra > 0 then
      redis.call('ZPOPMIN', KEYS[i], extra)
    end
    redis.call('PEXPIRE', KEYS[i], int(p1))
  end
end
return {0, 0, -1}
