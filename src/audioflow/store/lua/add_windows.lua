-- ARGV[7] lease token or ""; ARGV[8] the checkpoint field (its key, no windows);
-- ARGV[9] the event's value (the key and the added windows); ARGV[10..] window
-- field/value pairs ("checkpoint:<index>", window JSON).
local st = state()
local refused = writable(st, ARGV[7])
if refused then return refused end
local pairs = collect(10)
local dels = {}
if redis.call('HGET', job, 'checkpoint') ~= ARGV[8] then
  -- another key: the stored windows are of no use to this checkpoint
  dels = window_fields()
  pairs[#pairs + 1] = 'checkpoint'
  pairs[#pairs + 1] = ARGV[8]
end
local version = st.version + 1
local too = commit(st, pairs, dels, { 'version', version }, version)
if too then return { 'TOOLARGE', too } end
emit('checkpointed', version, st.status, { 'checkpoint', ARGV[9] })
refresh()
return { 'OK', version }
