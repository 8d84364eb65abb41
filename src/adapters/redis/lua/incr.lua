-- Fixed-period counter: add ARGV[1] to KEYS[1]; give it a TTL of ARGV[2] ms when it has none
-- (just created, or left without one by an older writer). Returns the new value.
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return value
