-- ARGV[7] lease token or ""; ARGV[8] the checkpoint field (its key, no windows);
-- ARGV[9] the event's value (the key and the added windows); ARGV[10..] window
-- field/value pairs ("checkpoint:<index>", window JSON).
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
local pairs = collect(10)
local dels = {}
if redis.call('HGET', job, 'checkpoint') ~= ARGV[8] then
  -- another key: the stored windows are of no use to this checkpoint
  dels = window_fields()
  pairs[#pairs + 1] = 'checkpoint'
  pairs[#pairs + 1] = ARGV[8]
end
local too = write(pairs, dels)
if too then return { 'TOOLARGE', too } end
local version = redis.call('HINCRBY', job, 'version', 1)
record(version)
emit('checkpointed', version, status, { 'checkpoint', ARGV[9] })
refresh()
return { 'OK', version }
