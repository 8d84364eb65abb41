-- One answered request of a session, atomically (one round trip on the hot path, replacing
-- the bare binding write it extends).
-- KEYS[1] binding (STRING: provider id), KEYS[2] listing entry (HASH), KEYS[3] index (ZSET:
-- member = session id, score = last seen ms).
-- ARGV[1] bind mode: 'n' set if absent, 'r' replace, 'e' refresh TTL only; ARGV[2] provider id;
-- ARGV[3] TTL ms; ARGV[4] now ms; ARGV[5] user id ('' = none); ARGV[6] key id ('' = none);
-- ARGV[7] model; ARGV[8] client format; ARGV[9] session id; ARGV[10] cutoff ms (index members
-- last seen at or before it are idle and dropped); ARGV[11] most members the index keeps.
local mode = ARGV[1]
local bound
if mode == 'r' then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  bound = ARGV[2]
else
  if mode == 'n' then
    redis.call('SET', KEYS[1], ARGV[2], 'NX', 'PX', ARGV[3])
  else
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
  end
  bound = redis.call('GET', KEYS[1]) or ARGV[2]
end
-- The entry's request count comes first: a count of 1 means the entry is new, and only then
-- is its first-seen time written.
local fields = {'u', ARGV[5], 'k', ARGV[6], 'p', bound, 'm', ARGV[7], 'f', ARGV[8], 'l', ARGV[4]}
if redis.call('HINCRBY', KEYS[2], 'n', 1) == 1 then
  fields[#fields + 1] = 's'
  fields[#fields + 1] = ARGV[4]
end
redis.call('HSET', KEYS[2], unpack(fields))
redis.call('PEXPIRE', KEYS[2], ARGV[3])
-- Idle members (listings skip them) are dropped, and the cap applied, when a member joins:
-- only a join grows the index.
if redis.call('ZADD', KEYS[3], ARGV[4], ARGV[9]) == 1 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[10])
  local over = redis.call('ZCARD', KEYS[3]) - tonumber(ARGV[11])
  if over > 0 then
    redis.call('ZREMRANGEBYRANK', KEYS[3], 0, over - 1)
  end
end
-- The index outlives its longest-lived member (never shortened by a shorter TTL).
if redis.call('PTTL', KEYS[3]) < tonumber(ARGV[3]) then
  redis.call('PEXPIRE', KEYS[3], ARGV[3])
end
return 1
