-- wrk request script for the benchmark's single-use requests (authorization codes, refresh
-- tokens): every request POSTs the next line of the file WRK_LINES as its form body, starting at
-- line WRK_LINES_START (1-based), so that no code or refresh token is sent twice across the runs
-- of a scenario (the runner moves the start past each run's requests). Past the last line the
-- script starts over (those requests then fail, and wrk counts them as non-2xx).
local lines = {}
for l in io.lines(os.getenv("WRK_LINES")) do lines[#lines + 1] = l end
local i = tonumber(os.getenv("WRK_LINES_START") or "1") - 1
local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
local auth = os.getenv("WRK_AUTH")
if auth and auth ~= "" then headers["Authorization"] = auth end

request = function()
  i = i + 1
  return wrk.format("POST", nil, headers, lines[((i - 1) % #lines) + 1])
end
