local counter = 1
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function request()
  counter = counter + 1
  local path = "/?t=" .. tostring(tid) .. "&i=" .. counter
  if counter % 50 == 7 then path = "/big?t=" .. tostring(tid) .. "&i=" .. counter end
  return wrk.format("GET", path)
end