-- ARGV[4] "1" to replace an existing job; ARGV[5..] field/value pairs (all fields).
if redis.call('EXISTS', job) == 1 then
  if ARGV[4] ~= '1' then return { 'EXISTS' } end
  redis.call('DEL', job)  -- replace: the history stays, so watchers see the new job
else
  redis.call('DEL', events)  -- a new job (maybe a deleted one's id) starts a new history
end
local pairs = collect(5)
redis.call('HSET', job, 'version', 1, unpack(pairs))
emit('created', 1, redis.call('HGET', job, 'status'), pairs)
refresh()
return { 'OK' }
