-- Delete the job; its stream keeps a "deleted" event for a minute so watchers end.
local f = redis.call('HMGET', job, 'status', 'version')
if not f[1] then
  -- Gone already. If this very operation removed it (a retry after a lost reply), its
  -- "deleted" event says so.
  local last = redis.call('XREVRANGE', events, '+', '-', 'COUNT', 1)
  if #last > 0 then
    local fields = last[1][2]
    for i = 1, #fields - 1, 2 do
      if fields[i] == '_op' and fields[i + 1] == ARGV[4] then return 1 end
    end
  end
  return 0
end
redis.call('DEL', job)
emit('deleted', f[2], f[1], {}, { '_op', ARGV[4] })
redis.call('PEXPIRE', events, 60000)
return 1
