-- ARGV[7] lease token; ARGV[8] new expiry (epoch s); ARGV[9] new expiry (JSON datetime)
if redis.call('EXISTS', job) == 0 then return { 'NOTFOUND' } end
local again = replayed()
if again == UNKNOWN then return UNKNOWN end
if again then return { 'OK', redis.call('HGET', job, 'lease') } end
local problem = lease_problem(ARGV[7])
if problem then return { 'LEASE', problem } end
local lease = cjson.decode(redis.call('HGET', job, 'lease'))
lease['expires_at'] = cjson.decode(ARGV[9])
local encoded = cjson.encode(lease)
local too = write({ 'lease', encoded })
if too then return { 'TOOLARGE', too } end
redis.call('HSET', job, '_lease_expires', ARGV[8])
local version = redis.call('HINCRBY', job, 'version', 1)
record('')
emit('updated', version, '"running"', { 'lease', encoded })
refresh()
return { 'OK', encoded }
