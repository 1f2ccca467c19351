-- wrk script of bench/soak.sh: paced page loads over the pages a real app serves (identity, gzip,
-- br, zstd and chunked HTML that gets injected, a streamed SSR page, a large streamed document,
-- fragments, an error page, an API call, a binary download). Usage:
--   wrk -t1 -cC -dD -s bench/soak.lua URL -- PAUSE_MS
-- Each connection waits PAUSE_MS before each request, so the offered rate is about
-- C * 1000 / (PAUSE_MS + latency). done() prints one line
--   RESULT requests=N p50_us=N p99_us=N max_us=N s2xx=N s3xx=N s4xx=N s5xx=N errors=N
-- (4xx and 5xx include the deliberate /status/404 and status=500 page).

local paths = {
  "/html", "/html/gzip", "/html/br", "/html/zstd", "/html?chunked=1",
  "/html?enc=gzip&chunked=1", "/html?enc=br&chunked=1&size=40000",
  "/stream?delay=0.02&chunks=3", "/stream?delay=0.01&chunks=4&enc=gzip",
  "/bigpage?n=200000&enc=br", "/fragment", "/csp", "/status/404",
  "/api/items?delay=3", "/bytes?n=65536", "/bytes?n=20000&chunked=1", "/early-hints",
  "/html?size=3000", "/html?status=500&enc=gzip",
}

local pause = 50
local counter = 0
s2xx, s3xx, s4xx, s5xx = 0, 0, 0, 0

function init(args)
  pause = tonumber(args[1] or "50")
  counter = math.random(0, #paths - 1)
end

function request()
  counter = counter + 1
  local p = paths[1 + counter % #paths]
  return wrk.format("GET", p, {
    ["Accept-Encoding"] = "gzip, deflate, br, zstd",
    ["Accept"] = "text/html,application/xhtml+xml,*/*;q=0.8",
    ["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    ["Referer"] = "http://localhost/html",
  })
end

function delay()
  return pause
end

function response(status, headers, body)
  if status < 300 then s2xx = s2xx + 1
  elseif status < 400 then s3xx = s3xx + 1
  elseif status < 500 then s4xx = s4xx + 1
  else s5xx = s5xx + 1 end
end

local threads = {}
function setup(thread) table.insert(threads, thread) end

function done(summary, latency, requests)
  local a, b, c, d = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("s2xx"); b = b + t:get("s3xx"); c = c + t:get("s4xx"); d = d + t:get("s5xx")
  end
  local e = summary.errors
  io.write(string.format("RESULT requests=%d p50_us=%d p99_us=%d max_us=%d s2xx=%d s3xx=%d " ..
    "s4xx=%d s5xx=%d errors=%d\n", summary.requests, latency:percentile(50),
    latency:percentile(99), latency.max, a, b, c, d,
    e.connect + e.read + e.write + e.timeout))
end
