-- Requeue (or fail) one job whose lease expired.
-- ARGV[4] max attempts; ARGV[5] now (JSON datetime)
local f = redis.call('HMGET', job, 'status', '_lease_expires', 'attempts')
if not f[1] then return { 'GONE' } end
if f[1] ~= '"running"' or not f[2] then return { 'GONE' } end
if tonumber(f[2]) > now then return { 'LIVE', f[2] } end
local attempts = tonumber(f[3]) or 0
local to, pairs
if attempts >= tonumber(ARGV[4]) then
  to = '"failed"'
  local err = cjson.encode({
    type = 'LeaseExpired',
    message = 'lease expired after ' .. attempts .. ' attempt(s)',
  })
  pairs = { 'error', err, 'finished_at', ARGV[5], 'lease', 'null' }
else
  to = '"queued"'
  pairs = { 'finished_at', 'null', 'lease', 'null' }
end
redis.call('HDEL', job, '_lease_token', '_lease_expires')
redis.call('HSET', job, 'status', to, unpack(pairs))
local version = redis.call('HINCRBY', job, 'version', 1)
emit('transitioned', version, to, pairs)
refresh()
return { 'OK', to, redis.call('HGETALL', job) }
