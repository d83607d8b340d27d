-- wrk script for bench/run.py: sends the raw requests of a request file in turn.
--
-- BENCH_REQUESTS names the file (written by bench/_scenarios.py, mode 0600: it holds the
-- tokens, which so never appear on a command line): raw HTTP/1.1 requests separated by NUL
-- bytes, the same file bench/loadgen.py sends. In a request, the marker @@@@@@@@@@ becomes a
-- unique 10-digit number (2 digits of thread, 8 of counter), as in loadgen.
-- done() prints one line "BENCH_RESULT {json}" for the runner to parse.

local file = assert(io.open(os.getenv("BENCH_REQUESTS"), "rb"))
local content = file:read("*a")
file:close()

local requests = {}
local marked = {}
for part in string.gmatch(content, "([^%z]+)") do
   table.insert(requests, part)
   table.insert(marked, string.find(part, "@@@@@@@@@@", 1, true) ~= nil)
end
if #requests == 0 then
   error("no requests in BENCH_REQUESTS")
end

local counter = 0
local threads = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

function request()
   local slot = counter % #requests + 1
   counter = counter + 1
   if marked[slot] then
      local unique = string.format("%02d%08d", id, counter % 100000000)
      return (string.gsub(requests[slot], "@@@@@@@@@@", unique))
   end
   return requests[slot]
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests":%d,"duration_us":%d,"status_errors":%d,"connect_errors":%d,' ..
      '"read_errors":%d,"write_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
      '"p999_us":%d,"max_us":%d,"mean_us":%.1f}\n',
      summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), latency.max, latency.mean))
end
