-- ARGV[7] lease token or ""; ARGV[8..] field/value pairs.
local status = redis.call('HGET', job, 'status')
if not status then return { 'NOTFOUND' } end
local again = replayed()
if again == UNKNOWN then return UNKNOWN end
if again then
  return { 'OK', tonumber(again) or tonumber(redis.call('HGET', job, 'version')) }
end
if ARGV[7] ~= '' then  -- first: a stale token is the writer's real news
  local problem = lease_problem(ARGV[7])
  if problem then return { 'LEASE', problem } end
end
if TERMINAL[status] then return { 'TERMINAL', status } end
local pairs = collect(8)
local too = write(pairs, dels_for(pairs))
if too then return { 'TOOLARGE', too } end
local version = redis.call('HINCRBY', job, 'version', 1)
record(version)
emit('updated', version, status, pairs)
refresh()
return { 'OK', version }
