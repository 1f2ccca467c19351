#!/usr/bin/python3
"""Soak run of vitals-proxy under mixed traffic (not a test; run by bench/soak.sh).

Starts the real binary (plain and TLS listeners, --workers W) in front of
tests/support/upstream.py with a fresh database, drives mixed traffic for DURATION seconds and
samples the proxy every INTERVAL seconds. Traffic, all on loopback:
  - page loads: wrk on the plain listener and on the TLS listener (HTTP/1.1), paced, over
    identity/gzip/br/zstd/chunked HTML that gets injected, streamed SSR pages, a large
    streamed document, fragments, error pages, API calls and binary downloads (bench/soak.lua);
    h2load on the TLS listener (HTTP/2) over a similar list;
  - beacon POSTs from several client addresses (127.0.0.2..): valid payloads (a new view, or a
    second payload with resources for a view already sent) and invalid ones (bad JSON, bad view
    id, oversized body, wrong method), plus a burst from one address past its rate limit;
  - report and API queries: the page, summary (all, 1 h, by route), views, one view, its
    HAR/CSV/HTML exports, views.csv, api-latency, findings, targets, health, beacon.js;
  - clients that disconnect mid-response (FIN or RST, plain and TLS, large downloads, streamed
    pages, gzip pages), slow readers of large downloads, idle keep-alive connections that
    are replaced now and then, and WebSocket echo sessions (some closed cleanly, some cut).
Each sample: RSS (and its anonymous and file-backed parts: SQLite maps the database file, so
RssFile follows the pages read) and VmData of the proxy, open descriptors, threads, database and
WAL size, wal_pages / queued / refused_busy / write_errors / committed_rows from
/__vitals/api/health, p50/p99 of a probe (PROBE_N sequential GETs of an injected page on a fresh
keep-alive connection), the proxy's and its writer thread's CPU seconds, beacons acknowledged
(204) and views stored. The summary adds the median wall time of each report/API request in the
first and the last quarter after warm-up (those queries read a database that grows through the
run).

At the end the proxy is stopped with SIGTERM (the store drains) and every acknowledged view id
is looked up in the database: "lost" must be 0. The table gives each series at the first
sample after WARMUP, in the middle and at the end, with its least-squares slope per hour over
the samples after warm-up. Written to bench/results/soak-<time>.md and .csv.

Environment: VP_BIN (./vitals-proxy), DURATION (600 s), INTERVAL (5 s), WARMUP (60 s, at most a
third of DURATION), WORKERS (2), PAGE_CONNS (16 per wrk), PAGE_PAUSE_MS (100: each wrk
connection's pause between requests), H2_CLIENTS (4), H2_RPS (10 per client), BEACON_RATE
(40/s over all addresses), ADDRS (4), IDLE_CONNS (200), PROBE_N (50), KEEP_TMP (keep the temp
directory), RESULTS (bench/results), VP_EXTRA (more proxy flags, split on spaces).
"""

import http.client
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from benchutil import cpu_s, free_port, wait_port

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRC, "tests", "support"))
import upstream as up  # noqa: E402  (WebSocket framing)

BIN = os.path.abspath(os.environ.get("VP_BIN", "./vitals-proxy"))
DUR = float(os.environ.get("DURATION", "600"))
INTERVAL = float(os.environ.get("INTERVAL", "5"))
WARMUP = min(float(os.environ.get("WARMUP", "60")), DUR / 3)
WORKERS = int(os.environ.get("WORKERS", "2"))
PAGE_CONNS = int(os.environ.get("PAGE_CONNS", "16"))
PAGE_PAUSE_MS = int(os.environ.get("PAGE_PAUSE_MS", "100"))
H2_CLIENTS = int(os.environ.get("H2_CLIENTS", "4"))
H2_RPS = int(os.environ.get("H2_RPS", "10"))
BEACON_RATE = float(os.environ.get("BEACON_RATE", "40"))
ADDRS = int(os.environ.get("ADDRS", "4"))
IDLE_CONNS = int(os.environ.get("IDLE_CONNS", "200"))
PROBE_N = int(os.environ.get("PROBE_N", "50"))
RESULTS = os.environ.get("RESULTS", os.path.join(SRC, "bench", "results"))
VP_EXTRA = os.environ.get("VP_EXTRA", "").split()

UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/131.0.0.0 Safari/537.36")

stop_ev = threading.Event()
lock = threading.Lock()
counts = {}          # name -> count, under lock
acked = set()        # view ids with at least one 204, under lock
errors = []          # unexpected outcomes (first few kept), under lock
api_lat = {}         # API path -> [(t_s, ms)], under lock


def bump(name, n=1):
    with lock:
        counts[name] = counts.get(name, 0) + n


def note_error(what):
    with lock:
        counts["unexpected"] = counts.get("unexpected", 0) + 1
        if len(errors) < 20:
            errors.append("%.0fs %s" % (time.time() - T0, what))


T0 = time.time()
PLAIN = TLS = UP = 0
TLS_CTX = ssl.create_default_context()
TLS_CTX.check_hostname = False
TLS_CTX.verify_mode = ssl.CERT_NONE


def conn(tls=False, src=None, timeout=10):
    s = socket.create_connection(("127.0.0.1", TLS if tls else PLAIN), timeout,
                                 source_address=(src, 0) if src else None)
    if tls:
        s = TLS_CTX.wrap_socket(s, server_hostname="localhost")
    return s


def read_response(f):
    """Reads one HTTP/1.1 response from a file object; returns (status, headers, body)."""
    line = f.readline()
    if not line:
        raise ConnectionError("closed before the status line")
    status = int(line.split()[1])
    hdrs = {}
    while True:
        h = f.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        k, _, v = h.decode("latin-1").partition(":")
        hdrs[k.strip().lower()] = v.strip()
    body = b""
    if "content-length" in hdrs:
        body = f.read(int(hdrs["content-length"]))
    elif hdrs.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            n = int(f.readline().split(b";")[0], 16)
            if n == 0:
                while f.readline() not in (b"\r\n", b"\n", b""):
                    pass
                break
            parts.append(f.read(n))
            f.readline()
        body = b"".join(parts)
    return status, hdrs, body


def http_get(path, tls=False, timeout=20):
    c = (http.client.HTTPSConnection("127.0.0.1", TLS, timeout=timeout, context=TLS_CTX)
         if tls else http.client.HTTPConnection("127.0.0.1", PLAIN, timeout=timeout))
    try:
        c.request("GET", path, headers={"Accept-Encoding": "gzip, br"})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


# --------------------------------------------------------------------------- beacons

def beacon_body(vid, k, with_res):
    t0 = time.time() * 1000 - 3000.5
    m = []
    vals = {"LCP": 1800.0, "CLS": 0.04, "INP": 140.0, "FCP": 780.0, "TTFB": 120.0}
    for n, v in vals.items():
        v = v * (0.5 + (k % 37) / 18.0)
        m.append({"n": n, "id": "%s-%s" % (vid, n), "v": round(v, 4), "d": round(v, 4),
                  "a": {"target": "main>div.hero>img"} if n == "LCP" else {}})
    b = {"v": 1, "vid": vid, "url": "/products/%d" % (k % 300), "nav": "navigate",
         "t0": round(t0, 1), "dev": ("desktop", "mobile", "tablet")[k % 3], "ect": "4g",
         "mem": 8}
    if with_res:
        b["ri"] = 0
        b["res"] = [{"u": "/_next/static/chunks/%d-%x.js" % (r, k), "i": "script",
                     "s": 100.0 + r, "d": 20.0 + r, "fs": 100.0 + r, "rqs": 110.0 + r,
                     "rps": 115.0 + r, "rpe": 120.0 + r, "ts": 11000, "eb": 10700,
                     "db": 40000, "p": "h2", "st": 200} for r in range(20)]
    else:
        b["m"] = m
    return json.dumps(b, separators=(",", ":")).encode()


INVALID = [
    (b"{not json", 400),
    (b'{"v":1,"vid":"x","url":"/","nav":"navigate","t0":1,"dev":"desktop"}', 400),
    (b'{"v":1,"vid":"abcdefgh12","url":"/","nav":"warp","t0":1,"dev":"desktop"}', 400),
    (b'{"v":1,"vid":"abcdefgh12","url":"/","nav":"navigate","t0":1,"dev":"desktop",'
     b'"m":[{"n":"LCP","id":"a","v":-5,"d":1}]}', 400),
    (b"x" * (70 * 1024), 413),
]


class BeaconClient:
    """One keep-alive connection from a given source address, reconnecting when closed."""

    def __init__(self, src, tls):
        self.src, self.tls, self.s, self.f = src, tls, None, None

    def post(self, body, method="POST", path="/__vitals/beacon"):
        for attempt in range(2):
            try:
                if self.s is None:
                    self.s = conn(self.tls, self.src)
                    self.f = self.s.makefile("rb")
                self.s.sendall(b"%s %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: %s\r\n"
                               b"Content-Type: text/plain;charset=UTF-8\r\n"
                               b"Content-Length: %d\r\n\r\n" % (method.encode(), path.encode(),
                                                                 UA.encode(), len(body)) + body)
                st, h, _ = read_response(self.f)
                if h.get("connection", "").lower() == "close":
                    self.close()
                return st
            except (OSError, ConnectionError, ValueError, IndexError):
                self.close()
                if attempt == 1:
                    raise
        return None

    def close(self):
        if self.s:
            try:
                self.s.close()
            except OSError:
                pass
        self.s = self.f = None


def beacons(idx, src):
    rnd = random.Random(idx)
    client = BeaconClient(src, tls=(idx % 2 == 1))
    period = ADDRS / BEACON_RATE
    k = 0
    mine = []
    nxt = time.monotonic()
    while not stop_ev.is_set():
        nxt += period
        d = nxt - time.monotonic()
        if d > 0 and stop_ev.wait(d):
            break
        k += 1
        r = rnd.random()
        try:
            if r < 0.08:
                body, want = INVALID[k % len(INVALID)]
                st = client.post(body)
                bump("beacon_invalid")
                if st != want and st != 503:  # a busy store refuses before parsing
                    note_error("invalid beacon got %s, want %s" % (st, want))
                continue
            if r < 0.10:
                st = client.post(b"", method="GET")
                if st not in (404, 405):
                    note_error("GET /__vitals/beacon got %s" % st)
                continue
            if r < 0.3 and mine:
                vid, withres = rnd.choice(mine), True
            else:
                vid, withres = "sk%d%s%06d" % (idx, "%08x" % rnd.getrandbits(32), k), False
            st = client.post(beacon_body(vid, k, withres))
            if count_beacon(st, None if withres else vid, "valid beacon") and not withres:
                mine.append(vid)
                if len(mine) > 50:
                    mine.pop(0)
        except (OSError, ConnectionError, ValueError) as e:
            bump("beacon_conn_err")
            note_error("beacon %s: %r" % (src, e))
    client.close()


def count_beacon(st, vid, what):
    """Counts the answer st to a beacon; True when it was acknowledged (204). vid, when given,
    is then a view the database must hold at the end."""
    if st == 204:
        bump("beacon_204")
        if vid:
            with lock:
                acked.add(vid)
        return True
    if st in (429, 503):
        bump("beacon_%d" % st)
    else:
        note_error("%s got %s" % (what, st))
    return False


def burst(src):
    """Every 60 s, 700 small invalid-free beacons at once from one address: past --beacon-burst
    (500), so some are refused with 429; those acknowledged are counted like the others."""
    client = BeaconClient(src, tls=False)
    k = 10 ** 7
    while not stop_ev.wait(60):
        for _ in range(700):
            if stop_ev.is_set():
                break
            k += 1
            vid = "sb%08x%07d" % (random.getrandbits(32), k)
            try:
                st = client.post(beacon_body(vid, k, False))
            except (OSError, ConnectionError, ValueError) as e:
                note_error("burst: %r" % e)
                break
            count_beacon(st, vid, "burst beacon")
    client.close()


# --------------------------------------------------------------------------- report / API

def api_loop():
    paths = ["/__vitals/", "/__vitals/api/summary", "/__vitals/api/summary?since=1h",
             "/__vitals/api/summary?route=/products/[id]", "/__vitals/api/views?limit=50",
             "/__vitals/api/views.csv", "/__vitals/api/api-latency",
             "/__vitals/api/findings", "/__vitals/api/targets", "/__vitals/api/health",
             "/__vitals/api/labels", "/__vitals/beacon.js", "/__vitals/healthz"]
    i = 0
    while not stop_ev.wait(1.0):
        i += 1
        p = paths[i % len(paths)]
        try:
            t = time.perf_counter()
            st, body = http_get(p, tls=(i % 3 == 0))
            ms = (time.perf_counter() - t) * 1000
            with lock:
                api_lat.setdefault(p, []).append((time.time() - T0, ms))
            bump("api")
            if st != 200:
                note_error("%s got %d" % (p, st))
            if i % 5 == 0:
                with lock:
                    vid = next(iter(acked), None) if acked else None
                if vid:
                    for suffix in ("", "/har", "/csv", "/html"):
                        st, _ = http_get("/__vitals/api/views/%s%s" % (vid, suffix))
                        bump("api")
                        if st != 200:
                            note_error("view%s got %d" % (suffix, st))
        except (OSError, http.client.HTTPException) as e:
            note_error("api %s: %r" % (p, e))


# --------------------------------------------------------------------------- hostile clients

ABORT_PATHS = ["/bytes?n=5000000", "/bigpage?n=3000000&enc=gzip", "/stream?delay=0.5&chunks=6",
               "/html?enc=br&chunked=1&size=300000", "/bytes?n=2000000&chunked=1",
               "/slow?delay=1", "/api/x?delay=800"]


def aborts():
    """Clients that go away mid-response: after the head or some body, with FIN or RST."""
    i = 0
    while not stop_ev.wait(0.25):
        i += 1
        p = ABORT_PATHS[i % len(ABORT_PATHS)]
        tls = i % 3 == 0
        try:
            s = conn(tls, timeout=5)
            s.sendall(b"GET %s HTTP/1.1\r\nHost: localhost\r\nAccept-Encoding: gzip, br\r\n"
                      b"\r\n" % p.encode())
            want = (i * 7919) % 40000
            got = 0
            s.settimeout(1.5)
            try:
                while got < want:
                    b = s.recv(16384)
                    if not b:
                        break
                    got += len(b)
            except socket.timeout:
                pass  # a page smaller than want, or slower: cut it where it is
            if i % 2 == 0 and not tls:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            s.close()
            bump("aborted")
        except (OSError, ssl.SSLError) as e:
            bump("abort_err")
            if not isinstance(e, (socket.timeout, ConnectionResetError)):
                note_error("abort %s: %r" % (p, e))


def slow_reader(idx):
    """Reads a 50 MB download at ~160 KB/s for 20 s, then closes."""
    while not stop_ev.is_set():
        try:
            s = conn(idx % 2 == 1, timeout=30)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
            s.sendall(b"GET /bytes?n=50000000 HTTP/1.1\r\nHost: localhost\r\n\r\n")
            end = time.monotonic() + 20
            while time.monotonic() < end and not stop_ev.is_set():
                if not s.recv(16384):
                    note_error("slow reader: closed early")
                    break
                time.sleep(0.1)
            s.close()
            bump("slow_reads")
        except (OSError, ssl.SSLError) as e:
            note_error("slow reader: %r" % e)
            stop_ev.wait(1)


def idle_pool():
    """IDLE_CONNS keep-alive connections, each after one request, mostly idle; every 15 s a
    tenth of them is replaced (and those the proxy closed after --idle-timeout too)."""
    pool = []

    def fresh(i):
        s = conn(i % 4 == 0, timeout=10)
        s.sendall(b"GET /html HTTP/1.1\r\nHost: localhost\r\n\r\n")
        f = s.makefile("rb")
        st, _, _ = read_response(f)
        if st != 200:
            note_error("idle conn first request got %d" % st)
        return (s, f)

    i = 0
    while not stop_ev.is_set():
        try:
            while len(pool) < IDLE_CONNS and not stop_ev.is_set():
                i += 1
                pool.append(fresh(i))
            for _ in range(IDLE_CONNS // 10):
                s, f = pool.pop(0)
                s.close()
            bump("idle_cycles")
        except (OSError, ssl.SSLError, ConnectionError) as e:
            note_error("idle pool: %r" % e)
        if stop_ev.wait(15):
            break
        # drop the ones the proxy closed (idle timeout): a readable socket with EOF
        keep = []
        for s, f in pool:
            try:
                s.setblocking(False)
                try:
                    b = s.recv(1) if not isinstance(s, ssl.SSLSocket) else s.recv(1)
                except (BlockingIOError, ssl.SSLWantReadError):
                    b = None
                s.setblocking(True)
                if b == b"":
                    s.close()
                    bump("idle_closed_by_proxy")
                    continue
                keep.append((s, f))
            except (OSError, ssl.SSLError):
                s.close()
                bump("idle_closed_by_proxy")
        pool = keep
    for s, _ in pool:
        s.close()


def websockets():
    i = 0
    while not stop_ev.wait(0.5):
        i += 1
        tls = i % 2 == 0
        try:
            s = conn(tls, timeout=10)
            s.sendall(b"GET /_next/hmr HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                      b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
            f = s.makefile("rb")
            line = f.readline()
            if b" 101 " not in line:
                note_error("websocket got %r" % line)
                s.close()
                continue
            while f.readline() not in (b"\r\n", b""):
                pass
            for k in range(3):
                msg = b"hello %d %d" % (i, k) * (1 + k * 50)
                s.sendall(up.ws_frame(1, msg, mask=os.urandom(4)))
                b0, b1 = f.read(2)
                n = b1 & 0x7F
                if n == 126:
                    n = int.from_bytes(f.read(2), "big")
                elif n == 127:
                    n = int.from_bytes(f.read(8), "big")
                if f.read(n) != msg:
                    note_error("websocket echo differs")
            if i % 3:
                s.sendall(up.ws_frame(8, b"\x03\xe8", mask=os.urandom(4)))
                f.read(4)
            s.close()
            bump("websockets")
        except (OSError, ssl.SSLError, ValueError) as e:
            note_error("websocket: %r" % e)


def upstream_reset():
    """The test upstream keeps a log of every request: clear it so the origin stays small."""
    while not stop_ev.wait(30):
        try:
            c = http.client.HTTPConnection("127.0.0.1", UP, timeout=5)
            c.request("GET", "/_up/reset")
            c.getresponse().read()
            c.close()
        except OSError:
            pass


# --------------------------------------------------------------------------- sampling

def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon", "RssFile", "VmData", "Threads"):
                out[k] = int(v.split()[0])
    return out


def writer_cpu_s(pid):
    """CPU seconds of the store's writer thread (vp-writer), None when not found."""
    tck = float(os.sysconf("SC_CLK_TCK"))
    try:
        for t in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/comm" % (pid, t)) as f:
                if f.read().strip() != "vp-writer":
                    continue
            with open("/proc/%d/task/%s/stat" % (pid, t)) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / tck
    except OSError:
        pass
    return None


def probe():
    """PROBE_N sequential GETs of an injected page over one keep-alive connection (ms)."""
    lat = []
    try:
        s = conn(False, timeout=10)
        f = s.makefile("rb")
        for _ in range(PROBE_N):
            t = time.perf_counter()
            s.sendall(b"GET /html HTTP/1.1\r\nHost: localhost\r\n\r\n")
            st, _, _ = read_response(f)
            lat.append((time.perf_counter() - t) * 1000)
            if st != 200:
                note_error("probe got %d" % st)
        s.close()
    except (OSError, ConnectionError, ValueError) as e:
        note_error("probe: %r" % e)
    if not lat:
        return None, None
    lat.sort()
    return lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]


def fsize(p):
    try:
        return os.path.getsize(p)
    except OSError:
        return 0


def stored_views(db):
    try:
        c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
        try:
            return c.execute("SELECT count(*) FROM views WHERE id GLOB 's[kb]*'").fetchone()[0]
        finally:
            c.close()
    except sqlite3.Error:
        return None


COLS = ["t_s", "rss_kb", "rss_anon_kb", "rss_file_kb", "vmdata_kb", "fds", "threads", "db_kb",
        "wal_kb", "wal_pages", "queued", "refused_busy", "write_errors", "committed_rows",
        "probe_p50_ms", "probe_p99_ms", "cpu_s", "writer_cpu_s", "beacons_acked", "views_stored"]


def sample(pid, db):
    st = proc_status(pid)
    row = {"t_s": round(time.time() - T0, 1), "rss_kb": st.get("VmRSS"),
           "rss_anon_kb": st.get("RssAnon"), "rss_file_kb": st.get("RssFile"),
           "vmdata_kb": st.get("VmData"), "threads": st.get("Threads"),
           "fds": len(os.listdir("/proc/%d/fd" % pid)),
           "db_kb": fsize(db) // 1024, "wal_kb": fsize(db + "-wal") // 1024}
    try:
        _, body = http_get("/__vitals/api/health", timeout=10)
        h = json.loads(body)
        for k in ("wal_pages", "queued", "refused_busy", "write_errors", "committed_rows"):
            row[k] = h.get(k)
    except (OSError, ValueError, http.client.HTTPException) as e:
        note_error("health: %r" % e)
    row["probe_p50_ms"], row["probe_p99_ms"] = [None if v is None else round(v, 3)
                                                for v in probe()]
    row["cpu_s"] = round(cpu_s(pid), 2)
    w = writer_cpu_s(pid)
    row["writer_cpu_s"] = None if w is None else round(w, 2)
    with lock:
        row["beacons_acked"] = len(acked)
    row["views_stored"] = stored_views(db)
    return row


def slope_per_hour(rows, key, t_from):
    pts = [(r["t_s"], r[key]) for r in rows if r["t_s"] >= t_from and r.get(key) is not None]
    if len(pts) < 3:
        return None
    mx = statistics.fmean(p[0] for p in pts)
    my = statistics.fmean(p[1] for p in pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    if sxx == 0:
        return None
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx * 3600


# --------------------------------------------------------------------------- main

def main():
    global PLAIN, TLS, UP, T0
    for tool in ("wrk", "h2load"):
        if not shutil.which(tool):
            sys.exit("soak: %s not found (apt-get install wrk nghttp2-client)" % tool)
    tmp = tempfile.mkdtemp(prefix="vp-soak-")
    db = os.path.join(tmp, "soak.db")
    py = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    upl = open(os.path.join(tmp, "upstream.log"), "w")
    upp = subprocess.Popen([py, os.path.join(SRC, "tests", "support", "upstream.py"),
                            "--port", "0"], stdout=subprocess.PIPE, stderr=upl, text=True)
    UP = int(upp.stdout.readline())
    PLAIN, TLS = free_port(), free_port()
    perr = open(os.path.join(tmp, "proxy.log"), "w")
    args = [BIN, "--listen", "127.0.0.1:%d" % PLAIN, "--tls-listen", "127.0.0.1:%d" % TLS,
            "--tls-self-signed", "--db", db, "--workers", str(WORKERS), "--quiet",
            "--upstream", "http://127.0.0.1:%d" % UP] + VP_EXTRA
    proxy = subprocess.Popen(args, stdout=perr, stderr=subprocess.STDOUT, cwd=tmp)
    procs = []
    rows = []
    try:
        if not (wait_port(PLAIN) and wait_port(TLS)):
            sys.exit("soak: the proxy did not start (%s)" % os.path.join(tmp, "proxy.log"))
        T0 = time.time()
        d = "%ds" % int(DUR)
        lua = os.path.join(HERE, "soak.lua")
        wrk_out = []
        for url in ("http://127.0.0.1:%d/" % PLAIN, "https://127.0.0.1:%d/" % TLS):
            o = open(os.path.join(tmp, "wrk-%d.out" % len(wrk_out)), "w+")
            wrk_out.append(o)
            procs.append(subprocess.Popen(["wrk", "-t1", "-c%d" % PAGE_CONNS, "-d" + d,
                                           "--timeout", "10s", "-s", lua, url, "--",
                                           str(PAGE_PAUSE_MS)], stdout=o, stderr=o))
        urls = os.path.join(tmp, "h2urls")
        with open(urls, "w") as f:
            for p in ("/html", "/html/gzip", "/html/br", "/html?chunked=1",
                      "/stream?delay=0.02&chunks=3", "/bytes?n=30000", "/api/h2?delay=2",
                      "/__vitals/beacon.js", "/fragment"):
                f.write("https://127.0.0.1:%d%s\n" % (TLS, p))
        h2o = open(os.path.join(tmp, "h2load.out"), "w+")
        procs.append(subprocess.Popen(["h2load", "-c%d" % H2_CLIENTS, "-m4",
                                       "--rps=%d" % H2_RPS, "-D", str(int(DUR)), "-i", urls,
                                       "-H", "Accept-Encoding: gzip, br"],
                                      stdout=h2o, stderr=h2o))
        threads = [threading.Thread(target=beacons, args=(i, "127.0.0.%d" % (2 + i)))
                   for i in range(ADDRS)]
        threads += [threading.Thread(target=burst, args=("127.0.0.%d" % (2 + ADDRS),)),
                    threading.Thread(target=api_loop), threading.Thread(target=aborts),
                    threading.Thread(target=slow_reader, args=(0,)),
                    threading.Thread(target=slow_reader, args=(1,)),
                    threading.Thread(target=idle_pool), threading.Thread(target=websockets),
                    threading.Thread(target=upstream_reset)]
        for t in threads:
            t.daemon = True
            t.start()
        print("# soak: %d s, sampling every %g s, warm-up %g s; proxy pid %d, tmp %s" %
              (DUR, INTERVAL, WARMUP, proxy.pid, tmp), flush=True)
        print("# " + " ".join(COLS), flush=True)
        nxt = time.time()
        while time.time() - T0 < DUR:
            if proxy.poll() is not None:
                note_error("the proxy exited with %s" % proxy.returncode)
                break
            rows.append(sample(proxy.pid, db))
            print("  " + " ".join(str(rows[-1].get(c)) for c in COLS), flush=True)
            nxt += INTERVAL
            time.sleep(max(0.0, nxt - time.time()))
        stop_ev.set()
        for t in threads:
            t.join(30)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        pages = []
        for o in wrk_out:
            o.seek(0)
            txt = o.read()
            res = [ln for ln in txt.splitlines() if ln.startswith("RESULT")]
            pages.append(res[0] if res else "wrk: " + txt[-300:])
        h2o.seek(0)
        h2txt = [ln.strip() for ln in h2o.read().splitlines()
                 if ln.startswith(("requests:", "status codes:", "finished in"))]
        alive = proxy.poll() is None
        if alive:
            cpu_end = cpu_s(proxy.pid)
            proxy.send_signal(signal.SIGTERM)
            rc = proxy.wait(60)
        else:
            cpu_end, rc = None, proxy.returncode
        c = sqlite3.connect(db)
        have = set(r[0] for r in c.execute("SELECT id FROM views WHERE id GLOB 's[kb]*'"))
        c.close()
        with lock:
            lost = sorted(acked - have)
            report(rows, pages, h2txt, lost, rc, cpu_end, db, tmp)
    finally:
        stop_ev.set()
        for p in procs:
            if p.poll() is None:
                p.kill()
        if proxy.poll() is None:
            proxy.kill()
            proxy.wait()
        upp.send_signal(signal.SIGTERM)
        try:
            upp.wait(10)
        except subprocess.TimeoutExpired:
            upp.kill()
        if not os.environ.get("KEEP_TMP"):
            shutil.rmtree(tmp, ignore_errors=True)


def report(rows, pages, h2txt, lost, rc, cpu_end, db, tmp):
    post = [r for r in rows if r["t_s"] >= WARMUP] or rows
    picks = [("after warm-up", post[0]), ("middle", post[len(post) // 2]), ("end", post[-1])]
    out = []
    out.append("## vitals-proxy soak, %s\n" % time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    out.append("%d s, --workers %d, samples every %g s, warm-up %g s; load average at the end %s" %
               (DUR, WORKERS, INTERVAL, WARMUP, " ".join(os.getloadavg().__repr__()[1:-1]
                                                         .split(", "))))
    out.append("")
    out.append("| series | %s | slope per hour |" % " | ".join(
        "%s (%.0f s)" % (n, r["t_s"]) for n, r in picks))
    out.append("|---|" + "---:|" * (len(picks) + 1))
    for k in COLS[1:]:
        s = slope_per_hour(rows, k, WARMUP)
        out.append("| %s | %s | %s |" % (k, " | ".join(str(r.get(k)) for _, r in picks),
                                         "-" if s is None else "%+.1f" % s))
    mx = {k: max((r.get(k) or 0) for r in rows) for k in ("rss_kb", "fds", "wal_kb",
                                                           "wal_pages", "queued")}
    out.append("")
    out.append("Maxima over the run: RSS %d KiB, descriptors %d, WAL %d KiB (%d pages), "
               "queue %d." % (mx["rss_kb"], mx["fds"], mx["wal_kb"], mx["wal_pages"],
                              mx["queued"]))
    with_cpu = [r for r in rows if r.get("cpu_s") is not None]
    if len(with_cpu) > 2:
        a, b = with_cpu[len(with_cpu) // 10], with_cpu[-1]
        out.append("Proxy CPU: %.1f %% of one core from %.0f s to the end." %
                   (100 * (b["cpu_s"] - a["cpu_s"]) / max(1e-9, b["t_s"] - a["t_s"]), a["t_s"]))
        rows_d = (b.get("committed_rows") or 0) - (a.get("committed_rows") or 0)
        if b.get("writer_cpu_s") is not None and a.get("writer_cpu_s") is not None and rows_d > 0:
            out.append("Writer thread: %.1f us of CPU per committed row over the same span." %
                       (1e6 * (b["writer_cpu_s"] - a["writer_cpu_s"]) / rows_d))
    span = max(r["t_s"] for r in rows) if rows else DUR
    first = [(WARMUP, WARMUP + (span - WARMUP) / 4), (span - (span - WARMUP) / 4, span + 1)]
    lines = []
    for p, pts in sorted(api_lat.items()):
        a = [ms for t, ms in pts if first[0][0] <= t < first[0][1]]
        b = [ms for t, ms in pts if first[1][0] <= t < first[1][1]]
        if a and b:
            lines.append("| %s | %.1f | %.1f |" % (p, statistics.median(a), statistics.median(b)))
    if lines:
        out.append("")
        out.append("| API request (wall ms, median) | first quarter after warm-up | last quarter |")
        out.append("|---|---:|---:|")
        out += lines
        out.append("")
    out.append("Traffic: " + ", ".join("%s %d" % kv for kv in sorted(counts.items())))
    for p in pages:
        out.append("wrk (plain, TLS): " + p)
    out.append("h2load: " + "; ".join(h2txt))
    out.append("Stop: exit status %s; database %d KiB, WAL %d KiB after exit." %
               (rc, fsize(db) // 1024, fsize(db + "-wal") // 1024))
    out.append("Beacons acknowledged (distinct views): %d, not in the database: %d%s" %
               (len(acked), len(lost), (" (e.g. %s)" % ", ".join(lost[:5])) if lost else ""))
    if errors:
        out.append("Unexpected outcomes (%d), first ones:" % counts.get("unexpected", 0))
        out += ["  - " + e for e in errors]
    text = "\n".join(out) + "\n"
    print(text)
    os.makedirs(RESULTS, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    with open(os.path.join(RESULTS, "soak-%s.md" % stamp), "w") as f:
        f.write(text)
    with open(os.path.join(RESULTS, "soak-%s.csv" % stamp), "w") as f:
        f.write(",".join(COLS) + "\n")
        for r in rows:
            f.write(",".join("" if r.get(c) is None else str(r.get(c)) for c in COLS) + "\n")
    print("# written to %s/soak-%s.{md,csv}" % (RESULTS, stamp))
    try:
        with open(os.path.join(tmp, "proxy.log")) as f:
            tail = f.read()[-2000:]
        if tail.strip():
            print("# proxy output (tail):\n" + tail)
    except OSError:
        pass


if __name__ == "__main__":
    main()
