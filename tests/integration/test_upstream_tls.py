#!/usr/bin/python3
"""Integration cases for TLS to the upstream (`--upstream https://...`), registered with run.py's
@case under the names uptls/....

Design:
  * Importing run.py gives the shared machinery (ProxyProc, Ctx, check, Conn, TAP runner); run
    alone with `python3 tests/integration/test_upstream_tls.py` (defaults to
    --filter '^uptls/').
  * The origins are tests/support/upstream.py serving HTTPS (--tls-cert/--tls-key): one with a
    self-signed certificate for localhost and 127.0.0.1 ("good"), one with a certificate for
    other.example only ("other"), and one limited to TLS 1.2. The certificates are made with the
    openssl command in a temp directory when the first case needs them. The origins count full
    and resumed handshakes (/_up/stats tls_full, tls_resumed), read here over TLS, so resumption
    is seen from the server's side. Each control request is itself one full handshake.
  * Every case starts its own proxy (proxy=False, ctx.start_proxy) with the https URL and the
    verification flags under test.
"""

import atexit
import base64
import gzip
import hashlib
import json
import os
import shutil
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run  # noqa: E402
from run import case, check, Conn, free_port, get, one_error_line, run_bin, up  # noqa: E402

MIB = 1024 * 1024
_certs = {}
_origins = {}


def certs():
    """{"good": (cert, key), "other": (cert, key)} in a temp dir (made once)."""
    if _certs:
        return _certs
    d = tempfile.mkdtemp(prefix="vp-uptls-")
    atexit.register(shutil.rmtree, d, True)
    for name, cn, san in (("good", "localhost", "DNS:localhost,IP:127.0.0.1"),
                          ("other", "other.example", "DNS:other.example")):
        _certs[name] = run.make_cert(d, name, cn, san)
    return _certs


class TLSOrigin:
    """tests/support/upstream.py over HTTPS; control requests go over TLS too."""

    def __init__(self, which, extra=()):
        cert, key = certs()[which]
        self.cert = cert
        self.proc = subprocess.Popen([run.python_with_codecs(),
                                      os.path.join(run.SRCDIR, "tests", "support",
                                                   "upstream.py"),
                                      "--port", "0", "--tls-cert", cert, "--tls-key", key] +
                                     list(extra), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            raise run.CheckFailed("TLS origin did not start: %r %s" %
                                  (line, self.proc.stderr.read()))
        self.port = int(line)

    def url(self, host="localhost"):
        return "https://%s:%d" % (host, self.port)

    def control(self, path):
        ctx = ssl.create_default_context(cafile=certs()["good"][0])
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(b"GET %s HTTP/1.1\r\nHost: up\r\nConnection: close\r\n\r\n" %
                          path.encode())
                data, _ = run.recv_to_eof(s)
        body = data.split(b"\r\n\r\n", 1)[1]
        return json.loads(body) if path.endswith("stats") else body

    def stats(self):
        """Counters; the handshake of this control connection is taken out of tls_full."""
        st = self.control("/_up/stats")
        st["tls_full"] -= 1
        return st

    def reset(self):
        self.control("/_up/reset")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def origin(which="good", extra=()):
    """A shared TLS origin (started once, stopped at exit), its counters reset."""
    k = (which, tuple(extra))
    if k not in _origins:
        _origins[k] = TLSOrigin(which, extra)
        atexit.register(_origins[k].stop)
    o = _origins[k]
    o.reset()
    return o


def proxy(ctx, o, *flags, host="localhost", extra=()):
    """A proxy in front of origin o with the given verification flags."""
    args = list(flags)
    if "--upstream-insecure" not in args and "--no-ca" not in args:
        args = ["--upstream-ca", certs()["good"][0]] + args
    args = [a for a in args if a != "--no-ca"]
    ctx.px = ctx.start_proxy(args + list(extra), upstream_url=o.url(host))
    return ctx.px


def log_lines(ctx, needle):
    return [l for l in ctx.px.stderr_text().splitlines() if needle in l]


# --------------------------------------------------------------------------- verification

@case("uptls/verify-fails-without-ca", proxy=False, generic=False)
def t_verify_fail(ctx):
    o = origin()
    proxy(ctx, o, "--no-ca")
    r = get(ctx.port, "/echo")
    want = "upstream TLS: certificate verify failed: self-signed certificate"
    check(r.status == 502, "status %s, want 502" % r.status)
    check(want.encode() in r.body, "502 body lacks %r: %r" % (want, r.body[:300]))
    check(len(log_lines(ctx, want)) == 1, "want one log line naming the reason: %r" %
          ctx.px.stderr_text()[-500:])
    check(o.stats()["requests"] == 0, "the origin served a request over an unverified "
          "connection")


@case("uptls/ca-verifies", proxy=False, generic=False)
def t_ca_ok(ctx):
    o = origin()
    proxy(ctx, o)
    r = get(ctx.port, "/echo", host="app.test")
    check(r.status == 200, "status %s" % r.status)
    j = json.loads(r.body)
    hdr = dict((k.lower(), v) for k, v in j["headers"])
    check(hdr.get("host") == "app.test" and hdr.get("via") == "1.1 vitals-proxy",
          "request head as forwarded: %r" % hdr)
    r = get(ctx.port, "/echo?again")
    check(r.status == 200, "second request: %s" % r.status)
    ctx.px.stop()
    db = sqlite3.connect(os.path.join(ctx.tmp, "vitals.db"))
    rows = db.execute("SELECT url, connect_start_us, connect_end_us FROM requests "
                      "ORDER BY id").fetchall()
    check(len(rows) == 2, "timing records %r" % rows)
    cs, ce = rows[0][1], rows[0][2]
    check(cs and ce and ce > cs, "the first request's connect time (TCP + TLS handshake) is "
          "not recorded: %r" % (rows[0],))
    ctx.note("connect + handshake of the first request: %.2f ms" % ((ce - cs) / 1000.0))


@case("uptls/ip-literal-verified-by-address", proxy=False, generic=False)
def t_ip_literal(ctx):
    o = origin()
    proxy(ctx, o, host="127.0.0.1")  # the certificate holds IP:127.0.0.1
    r = get(ctx.port, "/echo")
    check(r.status == 200, "https://127.0.0.1 with a certificate for 127.0.0.1: %s %r" %
          (r.status, r.body[:300]))


@case("uptls/insecure-accepts-self-signed", proxy=False, generic=False)
def t_insecure(ctx):
    o = origin("other")  # a certificate for another name: only --upstream-insecure accepts it
    proxy(ctx, o, "--upstream-insecure")
    r = get(ctx.port, "/echo")
    check(r.status == 200, "status %s %r" % (r.status, r.body[:200]))
    warn = [l for l in ctx.px.stderr_text().splitlines() if "warning" in l]
    check(len(warn) == 1 and "--upstream-insecure" in warn[0],
          "want one start-up warning naming --upstream-insecure: %r" % warn)


@case("uptls/hostname-mismatch", proxy=False, generic=False)
def t_mismatch(ctx):
    o = origin("other")
    for host, why in (("localhost", "hostname mismatch"), ("127.0.0.1", "IP address mismatch")):
        ctx.px = ctx.start_proxy(["--upstream-ca", certs()["other"][0]],
                                 upstream_url=o.url(host))
        r = get(ctx.port, "/echo")
        check(r.status == 502, "%s: status %s, want 502" % (host, r.status))
        check(("certificate verify failed: " + why).lower().encode() in r.body.lower(),
              "%s: body lacks the reason %r: %r" % (host, why, r.body[:300]))
        ctx.px.stop()


@case("uptls/plain-origin-behind-https-url", proxy=False, generic=False)
def t_plain_origin(ctx):
    # A plain HTTP server that answers the ClientHello with a 400 and closes: another
    # vitals-proxy's plain listener.
    plain = ctx.start_proxy()
    ctx.px = ctx.start_proxy(["--upstream-insecure"],
                             upstream_url="https://127.0.0.1:%d" % plain.port)
    r = get(ctx.port, "/echo")
    check(r.status == 502, "status %s" % r.status)
    check(b"upstream TLS: handshake failed: wrong version number" in r.body,
          "body %r" % r.body[:300])


@case("uptls/handshake-timeout-is-connect-timeout", proxy=False, generic=False)
def t_handshake_timeout(ctx):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)  # the kernel completes TCP handshakes; nobody ever answers the ClientHello
    try:
        ctx.px = ctx.start_proxy(["--upstream-insecure", "--upstream-connect-timeout", "500ms"],
                                 upstream_url="https://127.0.0.1:%d" % s.getsockname()[1])
        t0 = time.time()
        r = get(ctx.port, "/echo")
        dt = time.time() - t0
    finally:
        s.close()
    check(r.status == 504, "status %s, want 504" % r.status)
    check(b"upstream TLS: handshake timeout" in r.body, "body %r" % r.body[:300])
    check(dt < 5, "answered after %.1f s with a 0.5 s connect timeout" % dt)


class TrickleServer:
    """Accepts TCP connections and never completes a TLS handshake: with trickle, each
    connection gets the header of a 16 KiB handshake record and then one byte of it every 0.5 s
    (so every bufferevent read timeout restarts); without, nothing at all. Counts connections
    and notes when the peer closed each."""

    def __init__(self, trickle):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.trickle = trickle
        self.accepted = 0
        self.closed = []  # seconds from accept to the peer's close, per connection
        self.stop_ev = threading.Event()
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        self.sock.settimeout(0.2)
        while not self.stop_ev.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted += 1
            t = threading.Thread(target=self._serve, args=(c,), daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, c):
        t0 = time.time()
        c.settimeout(0.5)
        pending = b"\x16\x03\x03\x40\x00" + b"\x02" * 16384  # ServerHello record, never whole
        try:
            while not self.stop_ev.is_set():
                try:
                    d = c.recv(65536)
                    if not d:
                        self.closed.append(time.time() - t0)
                        return
                except socket.timeout:
                    pass
                if self.trickle and pending:
                    c.sendall(pending[:1])
                    pending = pending[1:]
        except OSError:
            self.closed.append(time.time() - t0)
        finally:
            c.close()

    def close(self):
        self.stop_ev.set()
        self.sock.close()
        for t in self.threads:
            t.join(5)


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


@case("uptls/handshake-deadline-trickle", proxy=False, generic=False)
def t_handshake_trickle(ctx):
    """An upstream that accepts and then sends its handshake a byte every 0.5 s restarts every
    read timeout: the connect timeout (1 s here) is a deadline for connect and handshake
    together, so each request gets a 504 naming the handshake within it, and the upstream
    connection is closed (no descriptor kept by the proxy). Also with an upstream that sends
    nothing, and over a kept-alive client connection."""
    for trickle in (True, False):
        srv = TrickleServer(trickle)
        try:
            ctx.px = ctx.start_proxy(["--upstream-insecure", "--upstream-connect-timeout", "1s"],
                                     upstream_url="https://127.0.0.1:%d" % srv.port)
            fds0 = open_fds(ctx.px.pid)
            c = Conn(ctx.port, timeout=30)
            for i in range(3):
                t0 = time.time()
                r = get(ctx.port, "/echo?%d" % i, conn=c)
                dt = time.time() - t0
                what = "trickle" if trickle else "silent"
                check(r.status == 504, "%s %d: status %s, want 504" % (what, i, r.status))
                check(b"upstream TLS: handshake timeout" in r.body, "%s %d: body %r" %
                      (what, i, r.body[:300]))
                check(0.9 < dt < 2.5, "%s %d: answered after %.2f s with a 1 s connect timeout" %
                      (what, i, dt))
                ctx.note("%s %d: 504 after %.2f s" % (what, i, dt))
            c.close()
            deadline = time.time() + 5
            while time.time() < deadline and len(srv.closed) < srv.accepted:
                time.sleep(0.05)
            check(srv.accepted == 3, "%d upstream connections for 3 requests" % srv.accepted)
            check(len(srv.closed) == srv.accepted, "the proxy closed %d of %d upstream "
                  "connections" % (len(srv.closed), srv.accepted))
            check(all(t < 2.5 for t in srv.closed), "upstream connections closed after %r s" %
                  srv.closed)
            time.sleep(0.2)
            fds1 = open_fds(ctx.px.pid)
            check(fds1 <= fds0, "the proxy holds %d descriptors, %d before" % (fds1, fds0))
            ctx.px.stop()
        finally:
            srv.close()
    check(len(log_lines(ctx, "upstream TLS: handshake timeout")) >= 3,
          "the request log does not name the handshake timeout")


@case("uptls/cli-errors", proxy=False, generic=False)
def t_cli(ctx):
    db = os.path.join(ctx.tmp, "x.db")
    lst = "127.0.0.1:%d" % free_port()
    for args, needle in (
            (["--upstream", "https://localhost:1", "--upstream-ca", "/no/such/ca.pem"],
             "--upstream-ca"),
            (["--upstream", "https://localhost:1", "--upstream-ca", "/etc/hostname"],
             "--upstream-ca"),
            (["--upstream", "http://localhost:1", "--upstream-ca", certs()["good"][0]],
             "--upstream-ca"),
            (["--upstream", "http://localhost:1", "--upstream-insecure"],
             "--upstream-insecure"),
            (["--upstream", "https://localhost:1", "--upstream-insecure", "--upstream-ca",
              certs()["good"][0]], "--upstream-insecure"),
            (["--upstream", "https://localhost:1", "--upstream-ca", "/no/such/ca.pem",
              "--check-config"], "--upstream-ca"),
            (["--upstream", "https://user@localhost:1"], "--upstream")):
        r = run_bin(ctx.opts, args + ["--listen", lst, "--db", db])
        line = one_error_line(r, " ".join(args))
        check(needle in line, "%s: message %r does not name %s" % (args, line, needle))
    r = run_bin(ctx.opts, ["--upstream", "https://localhost", "--upstream-ca",
                           certs()["good"][0], "--check-config"])
    check(r.returncode == 0, "--check-config with a good CA: exit %d %s" %
          (r.returncode, r.stderr))
    r = run_bin(ctx.opts, ["--help"])
    for opt in ("--upstream-ca", "--upstream-insecure"):
        check(opt in r.stdout, "--help does not list %s" % opt)


# --------------------------------------------------------------------------- traffic

@case("uptls/injection-identity-and-gzip", proxy=False, generic=False)
def t_inject(ctx):
    o = origin()
    proxy(ctx, o)
    for enc in ("identity", "gzip"):
        for chunked in ("", "&chunked=1"):
            r = get(ctx.port, "/html?enc=%s%s" % (enc, chunked),
                    headers=[("Accept-Encoding", "gzip")])
            check(r.status == 200 and r.complete, "%s%s: status %s" % (enc, chunked, r.status))
            body = gzip.decompress(r.body) if enc == "gzip" else r.body
            check(body.count(b"/__vitals/beacon.js") == 1, "%s%s: beacon tag not injected once"
                  % (enc, chunked))
            check(body.rstrip().endswith(b"</html>"), "%s%s: page cut short" % (enc, chunked))


@case("uptls/streamed-chunks-arrive-early", proxy=False, generic=False)
def t_stream(ctx):
    o = origin()
    proxy(ctx, o)
    c = Conn(ctx.port, timeout=10)
    t0 = time.time()
    c.send(b"GET /stream?delay=0.6&chunks=3 HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _, headers = c.read_head()
    check(status == 200, "status %s" % status)
    c.read_until(b"\r\n")  # the first chunk's size line: the shell, before the delays
    first = time.time() - t0
    c.buf = b""
    while c.fill():
        if c.buf.endswith(b"0\r\n\r\n"):
            break
    total = time.time() - t0
    check(first < 0.5, "the shell arrived after %.2f s: held back until later chunks" % first)
    check(total >= 1.5, "whole stream in %.2f s: delays missing?" % total)
    check(b"</html>" in c.buf, "stream incomplete")
    c.close()


@case("uptls/keepalive-reuses-one-tls-connection", proxy=False, generic=False)
def t_keepalive(ctx):
    o = origin()
    proxy(ctx, o)
    c = Conn(ctx.port)
    for i in range(20):
        r = get(ctx.port, "/echo?i=%d" % i, conn=c)
        check(r.status == 200, "request %d: %s" % (i, r.status))
    c.close()
    for i in range(5):  # separate client connections share the pooled upstream connection
        check(get(ctx.port, "/echo?j=%d" % i).status == 200, "client %d" % i)
    st = o.stats()
    check(st["requests"] == 25, "origin saw %d requests" % st["requests"])
    check(st["connections"] == 1 and st["tls_full"] + st["tls_resumed"] == 1,
          "25 sequential requests used %d upstream connections (%d full, %d resumed "
          "handshakes), want 1" % (st["connections"], st["tls_full"], st["tls_resumed"]))


def resumption(ctx, o, n=12):
    proxy(ctx, o, extra=["--upstream-idle", "0"])  # every request on a fresh connection
    for i in range(n):
        r = get(ctx.port, "/echo?n=%d" % i)
        check(r.status == 200, "request %d: %s" % (i, r.status))
    st = o.stats()
    ctx.note("%d fresh upstream connections: %d full, %d resumed handshakes" %
             (st["connections"], st["tls_full"], st["tls_resumed"]))
    check(st["connections"] == n, "want %d upstream connections, got %d" %
          (n, st["connections"]))
    check(st["tls_full"] == 1 and st["tls_resumed"] == n - 1,
          "want 1 full and %d resumed handshakes, got %d and %d" %
          (n - 1, st["tls_full"], st["tls_resumed"]))


@case("uptls/session-resumption-tls13", proxy=False, generic=False)
def t_resume13(ctx):
    resumption(ctx, origin())


@case("uptls/session-resumption-tls12", proxy=False, generic=False)
def t_resume12(ctx):
    resumption(ctx, origin("good", ["--tls-max12"]))


@case("uptls/concurrent-new-connections-resume", proxy=False, generic=False)
def t_resume_concurrent(ctx):
    # Connections opened while others are between their resumed handshake and their new ticket
    # must still resume (a TLS 1.3 ticket is marked as used at the end of the handshake).
    import concurrent.futures
    o = origin()
    proxy(ctx, o, extra=["--upstream-idle", "0"])
    check(get(ctx.port, "/echo").status == 200, "warm-up request")

    def worker(k):
        return [get(ctx.port, "/echo?k=%d&i=%d" % (k, i)).status for i in range(10)]

    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        statuses = sum(ex.map(worker, range(16)), [])
    check(statuses == [200] * 160, "statuses %r" % sorted(set(statuses)))
    st = o.stats()
    ctx.note("161 fresh upstream connections, 16 at a time: %d full, %d resumed" %
             (st["tls_full"], st["tls_resumed"]))
    check(st["connections"] == 161, "%d upstream connections, want 161" % st["connections"])
    check(st["tls_full"] == 1 and st["tls_resumed"] == 160,
          "want 1 full and 160 resumed handshakes, got %d and %d" %
          (st["tls_full"], st["tls_resumed"]))


@case("uptls/no-tickets-means-full-handshakes", proxy=False, generic=False)
def t_no_tickets(ctx):
    o = origin("good", ["--no-tickets"])
    proxy(ctx, o, extra=["--upstream-idle", "0"])
    for i in range(4):
        check(get(ctx.port, "/echo").status == 200, "request %d" % i)
    st = o.stats()
    check(st["tls_full"] == 4 and st["tls_resumed"] == 0,
          "an origin without tickets: %d full, %d resumed" % (st["tls_full"], st["tls_resumed"]))


@case("uptls/large-bodies-both-ways", proxy=False, generic=False)
def t_large(ctx):
    o = origin()
    proxy(ctx, o)
    n = 12 * MIB + 12345
    for chunked in ("", "&chunked=1"):
        c = Conn(ctx.port, timeout=60)
        c.send(b"GET /bytes?n=%d%s HTTP/1.1\r\nHost: x\r\n\r\n" % (n, chunked.encode()))
        r = c.read_response()
        c.close()
        check(r.status == 200 and r.complete and len(r.body) == n,
              "download%s: status %s, %d of %d bytes" % (chunked, r.status, len(r.body), n))
        check(r.body == up.pattern_bytes(0, n), "download%s: bytes differ" % chunked)
    c = Conn(ctx.port, timeout=60)
    c.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % n)
    data = os.urandom(n)
    c.send(data)
    r = c.read_response()
    c.close()
    check(r.status == 200, "upload status %s" % r.status)
    j = json.loads(r.body)
    check(j["bytes"] == n and j["sha256"] == hashlib.sha256(data).hexdigest(),
          "upload: origin got %d bytes, digest %s" % (j["bytes"], "same" if j["sha256"] ==
                                                      hashlib.sha256(data).hexdigest()
                                                      else "differs"))
    # Chunked upload, then a slow reader of a big download (backpressure over TLS).
    c = Conn(ctx.port, timeout=60)
    c.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    h = hashlib.sha256()
    for i in range(0, 3 * MIB, 256 * 1024):
        piece = os.urandom(256 * 1024)
        h.update(piece)
        c.send(b"%x\r\n%s\r\n" % (len(piece), piece))
    c.send(b"0\r\n\r\n")
    r = c.read_response()
    c.close()
    j = json.loads(r.body)
    check(j["bytes"] == 3 * MIB and j["sha256"] == h.hexdigest() and j["chunked"],
          "chunked upload: %r" % j)
    n = 64 * MIB
    o.reset()
    hwm0 = run.proc_status(ctx.px.pid, "VmHWM")
    c = Conn(ctx.port, timeout=60, rcvbuf=65536)
    c.send(b"GET /bytes?n=%d HTTP/1.1\r\nHost: x\r\n\r\n" % n)
    c.read_head()
    got = len(c.buf)
    ok = c.buf == up.pattern_bytes(0, got)
    c.buf = b""
    while got < MIB:
        data = c.sock.recv(16384)
        check(data, "EOF after %d bytes" % got)
        ok = ok and data == up.pattern_bytes(got, len(data))
        got += len(data)
    time.sleep(1.5)  # stalled client: the proxy stops reading the TLS upstream
    ahead = o.stats()["bytes_sent"] - got
    hwm1 = run.proc_status(ctx.px.pid, "VmHWM")
    while got < n:
        data = c.sock.recv(1 << 20)
        check(data, "EOF after %d of %d bytes" % (got, n))
        ok = ok and data == up.pattern_bytes(got, len(data))
        got += len(data)
    c.close()
    ctx.note("stalled reader: origin %.1f MiB ahead (kernel buffers included), proxy VmHWM "
             "+%d KiB" % (ahead / MIB, hwm1 - hwm0))
    check(ok, "slow reader: bytes differ")
    check(ahead < 48 * MIB, "origin ran %.1f MiB ahead of a stalled client over TLS" %
          (ahead / MIB))
    check(hwm1 - hwm0 < 32 * 1024, "proxy VmHWM grew by %d KiB while the client stalled" %
          (hwm1 - hwm0))


@case("uptls/origin-dies-mid-body", proxy=False, generic=False)
def t_die(ctx):
    o = origin()
    proxy(ctx, o)
    for mode in ("cl", "chunked"):
        c = Conn(ctx.port)
        r = get(ctx.port, "/die?mode=%s" % mode, conn=c)
        check(r.status == 200, "%s: status %s" % (mode, r.status))
        check(not r.complete, "%s: the client got a body that looks complete" % mode)
        check(c.eof or c.closed_within(5), "%s: client connection not closed" % mode)
        c.close()
    check(get(ctx.port, "/echo").status == 200, "proxy unusable afterwards")


@case("uptls/stale-pooled-tls-connection-retried", proxy=False, generic=False)
def t_stale(ctx):
    o = origin()
    proxy(ctx, o)
    c = Conn(ctx.port)
    r = get(ctx.port, "/close-on-next", conn=c)
    check(r.status == 200, "priming request: %s" % r.status)
    time.sleep(0.1)
    r = get(ctx.port, "/echo?retried", conn=c)
    c.close()
    st = o.stats()
    check(r.status == 200, "GET on a pooled TLS connection the origin dropped: %s" % r.status)
    check(st["dropped"] == ["GET /echo?retried"], "pooled connection not used first: %r" %
          st["dropped"])
    check(st["log"].count("GET /echo?retried") == 1, "not retried exactly once: %r" % st["log"])
    check(st["tls_resumed"] >= 1, "the retry's new connection did not resume (%d full, %d "
          "resumed)" % (st["tls_full"], st["tls_resumed"]))


@case("uptls/websocket-echo", proxy=False, generic=False)
def t_ws(ctx):
    o = origin()
    proxy(ctx, o)
    c = run.ws_handshake(ctx.port, "/_next/webpack-hmr")
    for op, payload in ((1, b"hello over an upstream TLS tunnel"), (2, os.urandom(70000)),
                        (2, os.urandom(300000)), (1, b"")):
        c.send(up.ws_frame(op, payload, mask=os.urandom(4)))
        check(run.ws_recv(c) == (op, payload), "echo mismatch (opcode %d, %d bytes)" %
              (op, len(payload)))
    # Several frames in flight at once, then a close handshake and a half-close.
    burst = [os.urandom(1000 * (i + 1)) for i in range(20)]
    c.send(b"".join(up.ws_frame(2, p, mask=os.urandom(4)) for p in burst))
    for i, p in enumerate(burst):
        check(run.ws_recv(c) == (2, p), "burst frame %d differs" % i)
    c.send(up.ws_frame(8, b"\x03\xe8", mask=os.urandom(4)))
    op, _ = run.ws_recv(c)
    check(op == 8, "no close frame echoed (opcode %d)" % op)
    c.sock.shutdown(socket.SHUT_WR)
    check(c.closed_within(5), "tunnel not closed after both sides closed")
    c.close()


@case("uptls/h2-client-to-tls-upstream", proxy=False, generic=False)
def t_h2(ctx):
    o = origin()
    tls_port = free_port()
    proxy(ctx, o, extra=["--tls-listen", "127.0.0.1:%d" % tls_port, "--tls-self-signed"])
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", tls_port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    base = "https://localhost:%d" % tls_port
    out = os.path.join(ctx.tmp, "out")
    for path, want in (("/html?enc=gzip", b"/__vitals/beacon.js"),
                       ("/html?enc=identity&chunked=1", b"/__vitals/beacon.js"),
                       ("/bytes?n=3000000", None)):
        r = subprocess.run(["curl", "-sS", "-k", "--http2", "--compressed", "--max-time", "30",
                            "-o", out, "-w", "%{http_code} %{http_version}", base + path],
                           capture_output=True, text=True, timeout=40)
        check(r.returncode == 0 and r.stdout == "200 2", "%s: curl %r %s" %
              (path, r.stdout, r.stderr[-300:]))
        with open(out, "rb") as f:
            body = f.read()
        if want:
            check(body.count(want) == 1, "%s: beacon not injected once over h2" % path)
        else:
            check(body == up.pattern_bytes(0, 3000000), "%s: bytes differ" % path)
    # Many concurrent streams share the pooled TLS upstream connections.
    r = subprocess.run(["h2load", "-n", "200", "-c", "2", "-m", "10", base + "/bytes?n=2000"],
                       capture_output=True, text=True, timeout=60)
    check("200 succeeded" in r.stdout, "h2load: %s" % r.stdout[-400:])
    st = o.stats()
    ctx.note("h2 -> TLS upstream: %d upstream connections, %d full, %d resumed handshakes" %
             (st["connections"], st["tls_full"], st["tls_resumed"]))
    check(st["tls_full"] == 1, "%d full handshakes for %d connections: sessions not resumed" %
          (st["tls_full"], st["connections"]))


if __name__ == "__main__":
    if not any(a.startswith("--filter") for a in sys.argv[1:]):
        sys.argv += ["--filter", "^uptls/"]
    sys.exit(run.main())
