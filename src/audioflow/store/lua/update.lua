-- ARGV[7] lease token or ""; ARGV[8..] field/value pairs.
local refused, status = writable(ARGV[7])
if refused then return refused end
local pairs = collect(8)
local too = write(pairs, dels_for(pairs))
if too then return { 'TOOLARGE', too } end
local version = redis.call('HINCRBY', job, 'version', 1)
record(version)
emit('updated', version, status, pairs)
refresh()
return { 'OK', version }
