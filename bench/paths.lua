-- wrk script: cycles through the request paths of a file (one per line, made by bench/queries.py),
-- each wrk thread through its own share, so that no two threads ask the same thing.
--
--   wrk -t2 -c32 -d5s -s bench/paths.lua http://127.0.0.1:8080 -- paths.txt 2
--
-- The second argument is wrk's thread count (-t): wrk runs a thread's init before it creates
-- the next thread, so the script cannot count them itself.

local created = 0

function setup(thread)
  thread:set("id", created)
  created = created + 1
end

-- A line is a path, or a path, a tab and a Cookie header's value (each request its own session).
function format(line)
  local path, cookie = line:match("^([^\t]*)\t(.*)$")
  if path then return wrk.format("GET", path, { Cookie = cookie }) end
  return wrk.format("GET", line)
end

function init(args)
  local file = args[1] or error("bench/paths.lua: give the paths file after --")
  local n = tonumber(args[2] or "1")
  local all = {}
  for line in io.lines(file) do
    if line ~= "" then all[#all + 1] = line end
  end
  if #all == 0 then error("bench/paths.lua: no path in " .. file) end
  -- This thread's share: every n-th path from its own offset, each request formatted here
  -- once: building it in request() costs wrk a few microseconds of CPU per request (wrk's
  -- SCRIPTING: "pre-generate all requests in init() and do a quick lookup in request()"),
  -- which the fixed-URL baseline it is compared with does not pay.
  requests = {}
  for i = (id or 0) + 1, #all, n do requests[#requests + 1] = format(all[i]) end
  if #requests == 0 then
    for i = 1, #all do requests[i] = format(all[i]) end
  end
  at = 0
end

function request()
  at = at % #requests + 1
  return requests[at]
end
