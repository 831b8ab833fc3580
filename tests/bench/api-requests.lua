-- wrk script of run-api-bench.sh: authenticated vCD API requests.
--
-- Environment:
--   BENCH_TOKEN  session token, sent as x-vcloud-authorization
--   BENCH_PATH   request path; every "{id}" in it is replaced by the ids of
--                BENCH_IDS in turn (each wrk thread starts at its own place)
--   BENCH_IDS    file with one id per line (needed only when BENCH_PATH has "{id}")
--   BENCH_ACCEPT the Accept header (default application/*+xml;version=5.6)
--
-- done() prints one line that run-api-bench.sh reads:
--   wrk-result requests=N duration_us=N rps=N p50_us=N p99_us=N status_errors=N socket_errors=N

local requests = {}
local next_request = 1

local function load_ids(path)
   local ids = {}
   local f = assert(io.open(path, "r"), "cannot open " .. tostring(path))
   for line in f:lines() do
      if line ~= "" then
         ids[#ids + 1] = line
      end
   end
   f:close()
   assert(#ids > 0, "no ids in " .. path)
   return ids
end

function init(args)
   local path = assert(os.getenv("BENCH_PATH"), "BENCH_PATH is not set")
   local headers = {
      ["Accept"] = os.getenv("BENCH_ACCEPT") or "application/*+xml;version=5.6",
      ["x-vcloud-authorization"] = assert(os.getenv("BENCH_TOKEN"), "BENCH_TOKEN is not set"),
   }
   if path:find("{id}", 1, true) then
      for _, id in ipairs(load_ids(os.getenv("BENCH_IDS"))) do
         local p = path:gsub("{id}", id)
         requests[#requests + 1] = wrk.format("GET", p, headers)
      end
   else
      requests[1] = wrk.format("GET", path, headers)
   end
   -- threads start apart so that they do not ask for the same id together
   math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16))
   next_request = math.random(#requests)
end

function request()
   local r = requests[next_request]
   next_request = next_request % #requests + 1
   return r
end

function done(summary, latency, _)
   local e = summary.errors
   io.write(string.format(
      "wrk-result requests=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d status_errors=%d socket_errors=%d\n",
      summary.requests, summary.duration,
      summary.requests / (summary.duration / 1e6),
      latency:percentile(50), latency:percentile(99),
      e.status, e.connect + e.read + e.write + e.timeout))
end
