-- ARGV[4] "1" to replace an existing job; ARGV[5..] field/value pairs (all fields).
local existed = redis.call('EXISTS', job) == 1
if existed then
  if ARGV[4] ~= '1' then return { 'EXISTS' } end
  redis.call('DEL', job)
end
local pairs = collect(5)
redis.call('HSET', job, 'version', 1, unpack(pairs))
emit('created', 1, redis.call('HGET', job, 'status'), pairs)
refresh()
return { 'OK' }
