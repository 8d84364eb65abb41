-- Replace KEYS[1] with ARGV[3] when it currently holds ARGV[2] (ARGV[1] = '1') or is absent
-- (ARGV[1] = '0'). ARGV[4] = TTL ms, '0' for none. A key of another type counts as absent,
-- as in the in-memory store. Returns 1 when replaced, 0 otherwise.
local current = redis.pcall('GET', KEYS[1])
if type(current) == 'table' then
  current = false
end
if ARGV[1] == '1' then
  if current ~= ARGV[2] then
    return 0
  end
elseif current then
  return 0
end
if ARGV[4] ~= '0' then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
else
  redis.call('SET', KEYS[1], ARGV[3])
end
return 1
