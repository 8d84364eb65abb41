-- Refreshes a session's slot in one session counter after an answer (the slot a request went
-- through on without asking: see app/limits/held_slots.rs). Only a session still holding the
-- slot is refreshed; one that was ended or idled out gets nothing, and its next request is
-- checked in full. Cheaper than the check: three commands, every number already in digits.
-- KEYS[1] the counter (ZSET member = session id, score = last seen ms).
-- ARGV[1] now ms, ARGV[2] session id, ARGV[3] session TTL ms, ARGV[4] cutoff ms (a member last
-- seen at or before it is idle, as in `current`). Returns 1 when refreshed, else 0.
local seen = redis.call('ZSCORE', KEYS[1], ARGV[2])
if not seen or tonumber(seen) <= tonumber(ARGV[4]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
