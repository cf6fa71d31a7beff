-- ARGV[7] lease token or ""; ARGV[8..] field/value pairs.
local st = state()
local refused = writable(st, ARGV[7])
if refused then return refused end
local pairs = collect(8)
local version = st.version + 1
local too = commit(st, pairs, dels_for(pairs), { 'version', version }, version)
if too then return { 'TOOLARGE', too } end
emit('updated', version, st.status, pairs)
refresh()
return { 'OK', version }
