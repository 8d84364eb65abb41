-- Concurrency slots in a sorted set: score = last seen ms, member = holder.
-- ARGV[1] member, ARGV[2] now ms, ARGV[3] cutoff ms (holders last seen at or before it are
-- idle and dropped), ARGV[4] TTL ms of the key, ARGV[5] limit ('' = none).
-- A holder always keeps (and refreshes) its slot. Returns {acquired 0/1, active holders}.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local acquired = 0
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  acquired = 1
elseif ARGV[5] == '' or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[5]) then
  acquired = 1
end
if acquired == 1 then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {acquired, redis.call('ZCARD', KEYS[1])}
