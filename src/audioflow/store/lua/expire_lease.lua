-- Requeue (or fail) one job whose lease expired.
-- ARGV[7] max attempts; ARGV[8] now (JSON datetime)
local st = state()
if not st.status then return { 'GONE' } end
local again = replayed(st)
if again == UNKNOWN then return UNKNOWN end
if again then return { 'OK', st.status, redis.call('HGETALL', job) } end
if st.status ~= '"running"' or not st.expires then return { 'GONE' } end
if tonumber(st.expires) > now then return { 'LIVE', st.expires } end
local attempts = tonumber(redis.call('HGET', job, 'attempts')) or 0
local to, pairs
if attempts >= tonumber(ARGV[7]) then
  to = '"failed"'
  -- the same message as audioflow.store._rules.lease_expired_error
  local err = cjson.encode({
    type = 'LeaseExpired',
    message = "the job's lease expired on attempt " .. attempts .. ' of ' .. ARGV[7]
      .. ': its worker stopped renewing it (crashed, killed or stalled), '
      .. 'so it is not retried again',
  })
  pairs = { 'error', err, 'finished_at', ARGV[8], 'lease', 'null' }
else
  to = '"queued"'
  pairs = { 'finished_at', 'null', 'lease', 'null' }
end
local written = { 'status', to }
for i = 1, #pairs do written[#written + 1] = pairs[i] end
local version = st.version + 1
-- a few bytes: within any limit a job already met, so the size is not checked
commit(st, written, {}, { 'version', version }, '', { '_lease_token', '_lease_expires' })
emit('transitioned', version, to, pairs)
refresh()
return { 'OK', to, redis.call('HGETALL', job) }
