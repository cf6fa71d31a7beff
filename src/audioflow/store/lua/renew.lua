-- ARGV[4] lease token; ARGV[5] new expiry (epoch s); ARGV[6] new expiry (JSON datetime)
local problem = lease_problem(ARGV[4])
if problem then
  if redis.call('EXISTS', job) == 0 then return { 'NOTFOUND' } end
  return { 'LEASE', problem }
end
local lease = cjson.decode(redis.call('HGET', job, 'lease'))
lease['expires_at'] = cjson.decode(ARGV[6])
local encoded = cjson.encode(lease)
redis.call('HSET', job, 'lease', encoded, '_lease_expires', ARGV[5])
local version = redis.call('HINCRBY', job, 'version', 1)
emit('updated', version, '"running"', { 'lease', encoded })
refresh()
return { 'OK', encoded }
