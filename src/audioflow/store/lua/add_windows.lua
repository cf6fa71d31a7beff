-- ARGV[7] lease token or ""; ARGV[8] the checkpoint field (its key, no windows);
-- ARGV[9] the event's value (the key and the added windows); ARGV[10..] window
-- field/value pairs ("checkpoint:<index>", window JSON).
local refused, status = writable(ARGV[7])
if refused then return refused end
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
