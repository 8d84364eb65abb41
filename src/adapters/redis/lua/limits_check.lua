-- Admission: checks every counter, and only when all pass counts the request and takes or
-- refreshes the session's slots. KEYS[i] = counter i.
-- ARGV[1] now ms, ARGV[2] request id, ARGV[3] session id, then per counter: kind, limit, param
-- (window ms for r/s, session TTL ms for c, unused for p/t).
-- Returns {0, 0, -1} when admitted, else {index (1-based), current, oldest entry ms or -1}.
local now = tonumber(ARGV[1])
for i = 1, #KEYS do
  local base = 4 + (i - 1) * 3
  local kind, limit, param = ARGV[base], tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2])
  local cur = current(KEYS[i], kind, param, now, ARGV[3])
  if cur >= limit then
    return {i, cur, oldest(KEYS[i], kind)}
  end
end
for i = 1, #KEYS do
  local base = 4 + (i - 1) * 3
  local kind, param = ARGV[base], ARGV[base + 2]
  if kind == 'r' then
    redis.call('ZADD', KEYS[i], ARGV[1], ARGV[2])
    redis.call('PEXPIRE', KEYS[i], param)
  elseif kind == 'c' then
    redis.call('ZADD', KEYS[i], ARGV[1], ARGV[3])
    redis.call('PEXPIRE', KEYS[i], param)
  end
end
return {0, 0, -1}
