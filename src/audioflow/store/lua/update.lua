-- ARGV[4] lease token or ""; ARGV[5..] field/value pairs.
local status = redis.call('HGET', job, 'status')
if not status then return { 'NOTFOUND' } end
if TERMINAL[status] then return { 'TERMINAL', status } end
if ARGV[4] ~= '' then
  local problem = lease_problem(ARGV[4])
  if problem then return { 'LEASE', problem } end
end
local pairs = collect(5)
redis.call('HSET', job, unpack(pairs))
local version = redis.call('HINCRBY', job, 'version', 1)
emit('updated', version, status, pairs)
refresh()
return { 'OK', version }
