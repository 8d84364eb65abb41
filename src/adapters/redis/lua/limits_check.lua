-- Admission: checks every counter, and only when all pass counts the request and takes or
-- refreshes the session's slots. KEYS[i] = counter i.
-- ARGV[1] now ms, ARGV[2] session id, then per counter: kind, limit, p1, p2 (see common).
-- Returns {0, 0, -1} when admitted, else {index (1-based), current, oldest instant ms or -1}.
local now = tonumber(ARGV[1])
local plain = plain_values(function(i) return ARGV[3 + (i - 1) * 4] end)
for i = 1, #KEYS do
  local base = 3 + (i - 1) * 4
  local kind, limit = ARGV[base], tonumber(ARGV[base + 1])
  local p1, p2 = tonumber(ARGV[base + 2]), tonumber(ARGV[base + 3])
  local cur = current(KEYS[i], kind, p1, p2, now, ARGV[2], plain[i])
  if cur >= limit then
    return {i, cur, oldest_of(KEYS[i], kind, p1, p2, now)}
  end
end
for i = 1, #KEYS do
  local base = 3 + (i - 1) * 4
  local kind = ARGV[base]
  local p1, p2 = tonumber(ARGV[base + 2]), tonumber(ARGV[base + 3])
  if kind == 'r' then
    ring_add(KEYS[i], now, now, 1, p1, p2)
  elseif kind == 'c' then
    redis.call('ZADD', KEYS[i], ARGV[1], ARGV[2])
    local extra = redis.call('ZCARD', KEYS[i]) - p2
    if extra > 0 then
      redis.call('ZPOPMIN', KEYS[i], extra)
    end
    redis.call('PEXPIRE', KEYS[i], int(p1))
  end
end
return {0, 0, -1}
