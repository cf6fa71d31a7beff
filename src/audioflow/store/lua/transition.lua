-- ARGV[7] target status (JSON); ARGV[8] allowed current statuses (JSON, space-separated)
-- ARGV[9] caller's lease token or ""
-- ARGV[10] lease mode: "keep", "drop", or "claim" (new lease, one more attempt)
-- ARGV[11] new lease token, ARGV[12] new lease expiry (epoch s), ARGV[13] new lease JSON
-- ARGV[14..] field/value pairs
local st = state()
local status = st.status
if not status then return { 'NOTFOUND' } end
local again = replayed(st)
if again == UNKNOWN then return UNKNOWN end
if again then
  local prev, dropped = string.match(again, '^(%S*) ?(%d*)$')
  if prev == nil or prev == '' then prev = status end
  return { 'OK', prev, redis.call('HGETALL', job), tonumber(dropped) or 0 }
end
local to, mode = ARGV[7], ARGV[10]
if ARGV[9] ~= '' then  -- first: a stale token is the writer's real news
  local problem = lease_problem(st, ARGV[9])
  if problem then return { 'LEASE', problem } end
end
local allowed = false
for s in string.gmatch(ARGV[8], '%S+') do
  if s == status then allowed = true end
end
if not allowed then return { 'CONFLICT', status, '' } end
if ARGV[9] == '' and status == '"running"' and to == '"queued"' then
  if st.expires and tonumber(st.expires) > now then
    return { 'CONFLICT', status, 'another worker holds a live lease' }
  end
end
local pairs = collect(14)
local version = st.version + 1
local private = { 'version', version }
local forget = {}
local dropped = 0
if mode == 'claim' then
  local attempts = tonumber(redis.call('HGET', job, 'attempts')) or 0
  pairs[#pairs + 1] = 'lease'
  pairs[#pairs + 1] = ARGV[13]
  pairs[#pairs + 1] = 'attempts'
  pairs[#pairs + 1] = tostring(attempts + 1)
  private[#private + 1] = '_lease_token'
  private[#private + 1] = ARGV[11]
  private[#private + 1] = '_lease_expires'
  private[#private + 1] = ARGV[12]
elseif mode == 'drop' then
  pairs[#pairs + 1] = 'lease'
  pairs[#pairs + 1] = 'null'
  if st.token then dropped = 1 end
  forget = { '_lease_token', '_lease_expires' }
end
local written = { 'status', to }
for i = 1, #pairs do written[#written + 1] = pairs[i] end
local too = commit(st, written, dels_for(pairs), private, status .. ' ' .. dropped, forget)
if too then return { 'TOOLARGE', too } end
emit('transitioned', version, to, pairs)
refresh()
return { 'OK', status, redis.call('HGETALL', job), dropped }
