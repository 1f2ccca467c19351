-- wrk script of bench/ingest.sh: POST /__vitals/beacon with bodies in beacon.js's wire format
-- (web/beacon-protocol.md, version 1). Every request carries a view id of its own, so every
-- acknowledged beacon becomes distinct rows (1 view, 5 metrics with ids "<vid>-<name>", and for
-- "realistic" 60 resources). Usage:
--   wrk -t1 -c16 -d10s -s bench/ingest.lua http://HOST:PORT/__vitals/beacon -- KIND TAG [OPTION...]
-- KIND is "metrics" (5 metrics) or "realistic" (5 metrics + 60 resources); TAG (letters and
-- digits) keeps view ids of separate runs apart. Options (each NAME=VALUE):
--   pause=MS    each request waits MS after the previous answer (closed loop, paced)
--   rate=N      fixed offered rate: this wrk thread starts request k at start + k/N s (open-loop
--               schedule kept by the clock; a request whose slot has passed goes at once, so the
--               rate holds while fewer than -c requests are outstanding, i.e. below saturation)
--   backoff=MS  after a 503 or 429 the next request waits MS (a client that backs off instead of
--               re-firing at once; without it a saturating run spends the CPU the writer needs
--               on refusals)
-- Bodies come from 64 templates per thread with varied values; only the view id is spliced in
-- per request. done() prints one line
--   RESULT requests=N duration_us=N p50_us=N p90_us=N p99_us=N max_us=N s204=N s429=N s503=N
--          s4xx=N other=N connect_err=N read_err=N write_err=N timeout=N
-- where the status counts add up over all threads. wrk times a request from when it is written
-- (not from its scheduled slot), so under a fixed rate p99 is the server's, not the queue's.

local threads = {}
local next_tid = 0

function setup(thread)
  next_tid = next_tid + 1
  thread:set("tid", next_tid)
  table.insert(threads, thread)
end

local kind, tag = "metrics", "r"
local templates = {}
local counter = 0
-- globals: done() reads them from each thread with thread:get
s204, s429, s503, s4xx, other = 0, 0, 0, 0, 0
local VID = "\1" -- marker where the view id goes

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } vp_timespec;
int clock_gettime(int clk, vp_timespec *ts);
]]
local ts = ffi.new("vp_timespec")
local function now_ms(clock)
  ffi.C.clock_gettime(clock or 1, ts) -- CLOCK_MONOTONIC, or 0: CLOCK_REALTIME
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end
-- Views start a few seconds before the run (as a page's beacons do), so they land in the current,
-- unsealed hour: a t0 in a sealed hour would make every beacon mark that hour's rollups dirty and
-- the writer rebuild them, which real traffic does not do.
local start_ms = 0

local names = { "LCP", "CLS", "INP", "FCP", "TTFB" }

local function attribution(name, k)
  if name == "LCP" then
    return string.format('{"target":"main>div.hero>img","url":"/_next/image?url=%%2Fhero-%d.jpg&w=1920&q=75",' ..
      '"ttfb":%.1f,"loadDelay":%.1f,"loadDuration":%.1f,"renderDelay":%.1f}',
      k, 80 + k, 120.5 + k, 310.2 + k, 45.3)
  elseif name == "CLS" then
    return string.format('{"target":"section.reviews>div.card:nth-child(%d)","time":%.1f,"value":%.4f,' ..
      '"loadState":"dom-content-loaded"}', 1 + k % 7, 900.4 + k, 0.01 + k / 10000)
  elseif name == "INP" then
    return string.format('{"target":"button#add-to-cart","type":"pointer","time":%.1f,"inputDelay":%.1f,' ..
      '"processing":%.1f,"presentation":%.1f,"loadState":"complete",' ..
      '"scriptUrl":"/_next/static/chunks/app/products/page-%08x.js","scriptDuration":%.1f}',
      4200.7 + k, 3.2 + k % 5, 60.1 + k, 18.4, k * 2654435761 % 4294967296, 55.0)
  elseif name == "FCP" then
    return string.format('{"ttfb":%.1f,"firstByteToFCP":%.1f,"loadState":"dom-interactive"}',
      80 + k, 600.3 + k)
  end
  return string.format('{"waiting":%.1f,"cache":0.2,"dns":%.1f,"connection":%.1f,"request":%.1f}',
    3.1, 10.2 + k % 9, 22.5, 40 + k)
end

local values = { LCP = 1850.5, CLS = 0.042, INP = 136, FCP = 780.4, TTFB = 120.3 }

local function resource(r, k)
  local kinds = { "script", "link", "img", "fetch", "css" }
  local i = kinds[1 + r % #kinds]
  local s = 120.1 + r * 7.3
  local d = 20.4 + (r * 13 + k) % 150
  local p = {}
  p[#p + 1] = string.format('{"u":"/_next/static/chunks/%d-%08x.js","i":"%s","s":%.1f,"d":%.1f,"fs":%.1f',
    r, (k * 7919 + r * 104729) % 4294967296, i, s, d, s)
  if r % 10 == 0 then
    -- a cross-origin resource with its own connection
    p[#p + 1] = string.format(',"dls":%.1f,"dle":%.1f,"cs":%.1f,"ce":%.1f,"scs":%.1f', s + 0.1, s + 8.2,
      s + 8.2, s + 30.5, s + 14.1)
  end
  p[#p + 1] = string.format(',"rqs":%.1f,"rps":%.1f,"rpe":%.1f,"ts":%d,"eb":%d,"db":%d,"p":"h2","rb":"%s","st":200',
    s + 31, s + 31 + d * 0.6, s + d, 11000 + r * 37, 10700 + r * 37, 40000 + r * 101,
    r < 6 and "blocking" or "non-blocking")
  if r % 15 == 0 then
    p[#p + 1] = string.format(',"sv":[{"n":"cache","d":%.1f,"de":"hit"}]', 0.4 + r % 3)
  else
    p[#p + 1] = ',"sv":[]'
  end
  p[#p + 1] = "}"
  return table.concat(p)
end

local function template(k)
  local p = {}
  p[#p + 1] = '{"v":1,"vid":"' .. VID .. '","url":"/products/' .. (k * 37 % 1000) ..
      '","nav":"navigate","t0":' .. string.format("%.1f", start_ms - 5000.5 + k) ..
      ',"dev":"desktop","ect":"4g","mem":8,"m":['
  for j, n in ipairs(names) do
    if j > 1 then p[#p + 1] = "," end
    local v = values[n] * (1 + (k % 16) / 20)
    local fmt = n == "CLS" and "%.4f" or "%.1f"
    p[#p + 1] = string.format('{"n":"%s","id":"%s-%s","v":' .. fmt .. ',"d":' .. fmt .. ',"a":%s}',
      n, VID, n, v, v, attribution(n, k))
  end
  p[#p + 1] = "]"
  if kind == "realistic" then
    p[#p + 1] = ',"ri":0,"res":['
    for r = 0, 59 do
      if r > 0 then p[#p + 1] = "," end
      p[#p + 1] = resource(r, k)
    end
    p[#p + 1] = "]"
  end
  p[#p + 1] = "}"
  -- split at the marker: parts[1] VID parts[2] VID ... parts[n]
  local s = table.concat(p)
  local parts = {}
  for piece in (s .. VID):gmatch("(.-)" .. VID) do parts[#parts + 1] = piece end
  return parts
end

local pause_ms, rate, backoff_ms, time_ids = nil, nil, nil, false
local backoffs = 0 -- 503/429 answers whose back-off is still to be taken
local next_slot = nil

function init(args)
  kind = args[1] or "metrics"
  tag = args[2] or "r"
  for i = 3, #args do
    local name, value = string.match(args[i], "^(%a+)=([%d.]+)$")
    if name == "pause" then pause_ms = tonumber(value)
    elseif name == "rate" then rate = tonumber(value)
    elseif name == "backoff" then backoff_ms = tonumber(value)
    elseif name == "timeids" then time_ids = tonumber(value) == 1
    else error("unknown option " .. args[i] .. " (pause=MS, rate=N, backoff=MS, timeids=1)") end
  end
  if rate and rate <= 0 then error("rate must be > 0") end
  if kind ~= "metrics" and kind ~= "realistic" then
    error("KIND must be metrics or realistic")
  end
  start_ms = now_ms(0)
  math.randomseed(start_ms % 1000000007)
  for k = 1, 64 do templates[k] = template(k) end
end

local headers = {
  ["Content-Type"] = "text/plain;charset=UTF-8",
  ["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
}

function request()
  counter = counter + 1
  -- random order by default, the writer's harder case (as ids from other clients arrive); with
  -- timeids=1 as the proxy makes them (proxy/conn_h1.c view_id_new: 12 hex digits of the view's
  -- start in ms first), for views that started up to 10 s before their beacon; the counter
  -- keeps ids distinct
  local vid
  if time_ids then
    vid = string.format("%012x%s%dx%07x", math.floor(now_ms(0)) - math.random(0, 10000), tag,
      tid, counter)
  else
    vid = string.format("%s%dx%08x%07x", tag, tid, math.random(0, 0x7fffffff), counter)
  end
  local parts = templates[1 + counter % 64]
  local body = table.concat(parts, vid)
  return wrk.format("POST", nil, headers, body)
end

-- Called before every request (wrk then writes it after the returned ms).
function delay()
  local d = pause_ms or 0
  if rate then
    local t = now_ms()
    if not next_slot then next_slot = t end
    if next_slot > t then d = next_slot - t end
    next_slot = next_slot + 1000 / rate
  end
  if backoffs > 0 then
    backoffs = backoffs - 1
    if backoff_ms and backoff_ms > d then d = backoff_ms end
  end
  return d
end

function response(status, hdrs, body)
  if status == 204 then
    s204 = s204 + 1
  elseif status == 429 then
    s429 = s429 + 1
    backoffs = backoffs + 1
  elseif status == 503 then
    s503 = s503 + 1
    backoffs = backoffs + 1
  elseif status >= 400 and status < 500 then
    s4xx = s4xx + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local t = { s204 = 0, s429 = 0, s503 = 0, s4xx = 0, other = 0 }
  for _, th in ipairs(threads) do
    for key in pairs(t) do t[key] = t[key] + (th:get(key) or 0) end
  end
  local e = summary.errors
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
    "s204=%d s429=%d s503=%d s4xx=%d other=%d connect_err=%d read_err=%d write_err=%d timeout=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, t.s204, t.s429, t.s503, t.s4xx, t.other,
    e.connect, e.read, e.write, e.timeout))
end
