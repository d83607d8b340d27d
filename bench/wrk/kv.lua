-- wrk script for bench/run.py: KV v2 reads (one secret) or writes (a new path per request),
-- and transit encrypt/decrypt under one key.
--
-- Settings come from the environment, so that no token appears on a command line:
--   BENCH_MODE       "read", "write", "encrypt" or "decrypt"
--   BENCH_TOKEN      the X-Vault-Token
--   BENCH_NAMESPACE  the X-Vault-Namespace (the tenant)
--   BENCH_PATH       read: the secret to GET; write: the prefix of the new paths
-- done() prints one line "BENCH_RESULT {json}" for the runner to parse.

local mode = os.getenv("BENCH_MODE")
local path = os.getenv("BENCH_PATH")

wrk.headers["X-Vault-Token"] = os.getenv("BENCH_TOKEN")
wrk.headers["X-Vault-Namespace"] = os.getenv("BENCH_NAMESPACE")

if mode == "read" then
   -- Static: wrk formats this request once and resends the same bytes.
   wrk.method = "GET"
   wrk.path = "/v1/secret/data/" .. path
elseif mode == "write" then
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   local counter = 0
   -- Unique paths: every write creates a secret (version 1), so no request waits for another
   -- on a per-key lock and no secret accumulates versions; `id` comes from setup().
   function request()
      counter = counter + 1
      local body = string.format(
         '{"data":{"username":"svc-%d-%d","password":"p4ssw0rd-0123456789abcdef0123456789"}}',
         id, counter)
      return wrk.format(nil, string.format("/v1/secret/data/%s/%d-%d", path, id, counter), nil, body)
   end
elseif mode == "encrypt" or mode == "decrypt" then
   -- Transit: one key "bench"; a fixed 64-byte plaintext, or the ciphertext made from it.
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   wrk.path = "/v1/transit/" .. mode .. "/bench"
   if mode == "encrypt" then
      wrk.body = '{"plaintext":"' .. os.getenv("BENCH_PLAINTEXT") .. '"}'
   else
      wrk.body = '{"ciphertext":"' .. os.getenv("BENCH_CIPHERTEXT") .. '"}'
   end
else
   error("BENCH_MODE must be read, write, encrypt or decrypt")
end

local threads = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests":%d,"duration_us":%d,"status_errors":%d,"connect_errors":%d,' ..
      '"read_errors":%d,"write_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
      '"max_us":%d,"mean_us":%.1f}\n',
      summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      latency.mean))
end
