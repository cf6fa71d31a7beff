-- ARGV[7] lease token; ARGV[8] new expiry (epoch s); ARGV[9] new expiry (JSON datetime)
local st = state()
if not st.status then return { 'NOTFOUND' } end
local again = replayed(st)
if again == UNKNOWN then return UNKNOWN end
if again then return { 'OK', redis.call('HGET', job, 'lease') } end
local problem = lease_problem(st, ARGV[7])
if problem then return { 'LEASE', problem } end
local lease = cjson.decode(redis.call('HGET', job, 'lease'))
lease['expires_at'] = cjson.decode(ARGV[9])
local encoded = cjson.encode(lease)
local version = st.version + 1
local too = commit(
  st, { 'lease', encoded }, {}, { 'version', version, '_lease_expires', ARGV[8] }, ''
)
if too then return { 'TOOLARGE', too } end
emit('updated', version, '"running"', { 'lease', encoded })
refresh()
return { 'OK', encoded }
