-- wrk script: each request carries the next signed-in session's cookies from $BENCH_COOKIES,
-- so requests spread evenly over every session.
local cookies = {}
local next_cookie = 1

function init(args)
  for line in io.lines(os.getenv("BENCH_COOKIES")) do
    if #line > 0 then cookies[#cookies + 1] = line end
  end
end

function request()
  local cookie = cookies[next_cookie]
  next_cookie = next_cookie % #cookies + 1
  return wrk.format("GET", os.getenv("BENCH_PATH"), { ["Cookie"] = cookie, ["Accept"] = "application/json" })
end
