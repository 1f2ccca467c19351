#!/usr/bin/python3
"""Integration cases for TLS termination and HTTP/2 (issue 7), registered with run.py's @case.

Design:
  * Importing run.py gives the shared machinery (upstream process, ProxyProc, Ctx, check,
    TAP runner); this file only adds cases named tls/... and h2/.... Run alone with
    `python3 tests/integration/test_h2.py` (defaults to --filter '^(tls|h2)/'), or import it
    from run.py to have the cases in the full suite.
  * Each case's proxy gets --tls-listen on a second free port with --tls-self-signed (the
    certificate cache lands in the case's temp dir beside --db).
  * Ordinary traffic goes through curl --http2 / nghttp / h2load (Debian nghttp2-client); the
    attacks (rapid reset, PING flood, CONTINUATION flood) and the shutdown GOAWAY use the small
    raw HTTP/2 client below (H2), which writes frames by hand and encodes HPACK without
    Huffman or indexing, so nothing in the client hides what the server did.
"""

import gzip
import json
import os
import re
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run  # noqa: E402
from run import case, check, Conn, free_port, get, one_error_line, poll, run_bin, up  # noqa: E402

try:
    import brotli
except ImportError:
    brotli = None
    if run.python_with_codecs() != sys.executable and not os.environ.get("VP_H2_REEXEC"):
        os.environ["VP_H2_REEXEC"] = "1"  # the Debian interpreter has python3-brotli
        os.execv(run.python_with_codecs(), [run.python_with_codecs()] + sys.argv)

ENHANCE_YOUR_CALM = 0x0B
T_DATA, T_HEADERS, T_RST, T_SETTINGS, T_PING, T_GOAWAY, T_WINDOW, T_CONT = 0, 1, 3, 4, 6, 7, 8, 9
F_END_STREAM, F_END_HEADERS, F_ACK = 0x1, 0x4, 0x1


def tls_args(ctx):
    ctx.tls_port = free_port()
    return ["--tls-listen", "127.0.0.1:%d" % ctx.tls_port, "--tls-self-signed"]


def wait_tls(ctx):
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", ctx.tls_port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise run.CheckFailed("TLS listener not up on %d" % ctx.tls_port)


def base(ctx):
    wait_tls(ctx)
    return "https://localhost:%d" % ctx.tls_port


def curl(args, timeout=30):
    r = subprocess.run(["curl", "-sS", "-k", "--max-time", str(timeout)] + args,
                       capture_output=True, timeout=timeout + 5)
    return r


def curl_get(url, extra=(), http="--http2"):
    """Returns (status, http_version, headers dict lowercased, body bytes)."""
    r = curl([http, "-D", "-", "-o", "/dev/stdout", "-w", "\n%{http_code} %{http_version}"] +
             list(extra) + [url])
    check(r.returncode == 0, "curl %s failed: %s" % (url, r.stderr.decode()[:300]))
    out = r.stdout
    tail = out.rsplit(b"\n", 1)
    code, ver = tail[1].decode().split()
    out = tail[0]
    head, _, body = out.partition(b"\r\n\r\n")
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(code), ver, headers, body


def tls_context(alpn):
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    c.set_alpn_protocols(alpn)
    return c


class TLSConn(Conn):
    """run.Conn over TLS (ALPN http/1.1 by default): same read helpers."""

    def __init__(self, port, timeout=10, alpn=("http/1.1",), session=None, context=None):
        self.raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock = (context or tls_context(list(alpn))).wrap_socket(self.raw, server_hostname="localhost",
                                                        session=session)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.eof = False


# --------------------------------------------------------------------------- raw HTTP/2

def hp_int(v, prefix, flags=0):
    lim = (1 << prefix) - 1
    if v < lim:
        return bytes([flags | v])
    out = bytearray([flags | lim])
    v -= lim
    while v >= 128:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def hp_str(s):
    s = s.encode() if isinstance(s, str) else s
    return hp_int(len(s), 7) + s


def hpack(headers):
    """Literal header fields without indexing, new names (RFC 7541 6.2.2), no Huffman."""
    out = b""
    for k, v in headers:
        out += b"\x00" + hp_str(k) + hp_str(v)
    return out


def frame(ftype, flags, sid, payload=b""):
    return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + sid.to_bytes(4, "big") + \
        payload


class H2:
    def __init__(self, port, timeout=10, settings=b""):
        self.sock = TLSConn(port, timeout=timeout, alpn=("h2",)).sock
        check(self.sock.selected_alpn_protocol() == "h2",
              "ALPN chose %r" % self.sock.selected_alpn_protocol())
        self.buf = b""
        self.port = port
        self.sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(T_SETTINGS, 0, 0, settings))

    def request(self, sid, path, method="GET", end=True, extra=()):
        hb = hpack([(":method", method), (":scheme", "https"), (":path", path),
                    (":authority", "localhost:%d" % self.port)] + list(extra))
        return frame(T_HEADERS, F_END_HEADERS | (F_END_STREAM if end else 0), sid, hb)

    def send(self, data):
        self.sock.sendall(data)

    def read_frame(self):
        """(type, flags, sid, payload), or None on EOF/reset."""
        while True:
            if len(self.buf) >= 9:
                n = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) >= 9 + n:
                    f = (self.buf[3], self.buf[4], int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF,
                         self.buf[9:9 + n])
                    self.buf = self.buf[9 + n:]
                    return f
            try:
                d = self.sock.recv(1 << 16)
            except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
                d = b""
            if not d:
                return None
            self.buf += d

    def until_goaway(self, timeout=10):
        """Reads until GOAWAY (returns its error code) or EOF (returns None)."""
        self.sock.settimeout(timeout)
        while True:
            f = self.read_frame()
            if f is None:
                return None
            if f[0] == T_GOAWAY:
                return int.from_bytes(f[3][4:8], "big")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def healthz_ok(ctx):
    code, ver, _, body = curl_get(base(ctx) + "/__vitals/healthz")
    return code == 200 and ver == "2" and body == b"ok"


# --------------------------------------------------------------------------- cases

@case("tls/h2-and-h1-by-alpn", args=tls_args, generic=False)
def t_alpn(ctx):
    code, ver, _, body = curl_get(base(ctx) + "/__vitals/healthz")
    check((code, ver, body) == (200, "2", b"ok"), "h2 healthz: %r" % ((code, ver, body),))
    code, ver, _, body = curl_get(base(ctx) + "/__vitals/healthz", http="--http1.1")
    check((code, ver, body) == (200, "1.1", b"ok"), "h1 healthz: %r" % ((code, ver, body),))
    c = TLSConn(ctx.tls_port, alpn=("h2", "http/1.1"))
    check(c.sock.selected_alpn_protocol() == "h2", "h2 not preferred")
    check(c.sock.version() in ("TLSv1.2", "TLSv1.3"), "TLS version %s" % c.sock.version())
    c.close()
    # No ALPN at all: HTTP/1.1.
    c = TLSConn(ctx.tls_port, alpn=())
    c.send(b"GET /__vitals/healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    r = c.read_response()
    check(r.status == 200 and r.body == b"ok", "no-ALPN request: %s %r" % (r.status, r.body))
    c.close()


@case("tls/old-protocols-refused", args=tls_args, generic=False)
def t_old_tls(ctx):
    wait_tls(ctx)
    c = tls_context(["http/1.1"])
    with warnings.catch_warnings():  # the point is to offer deprecated versions
        warnings.simplefilter("ignore", DeprecationWarning)
        c.minimum_version = ssl.TLSVersion.TLSv1
        c.maximum_version = ssl.TLSVersion.TLSv1_1
    try:
        c.set_ciphers("ALL:@SECLEVEL=0")
    except ssl.SSLError:
        pass
    raw = socket.create_connection(("127.0.0.1", ctx.tls_port), timeout=5)
    try:
        c.wrap_socket(raw, server_hostname="localhost")
        check(False, "TLS 1.1 handshake succeeded")
    except (ssl.SSLError, ConnectionResetError, OSError):
        pass
    raw.close()
    check(healthz_ok(ctx), "server unhappy after a refused handshake")


def plain_exchange(port, data, timeout=5):
    """Sends data in the clear to port and reads until the server closes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        return run.recv_to_eof(s)
    finally:
        s.close()


@case("tls/plain-http-on-tls-port-400", args=tls_args, generic=False)
def t_plain_on_tls(ctx):
    wait_tls(ctx)
    for req in (b"GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n",
                b"HEAD / HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n",
                b"POST /__vitals/beacon HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
                b"\r\nhello",
                b"PUT /u HTTP/1.0\r\n\r\n",
                b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"):
        got, reset = plain_exchange(ctx.tls_port, req)
        head, _, body = got.partition(b"\r\n\r\n")
        check(head.startswith(b"HTTP/1.1 400 ") and b"Connection: close" in head,
              "%r answered %r (reset %s)" % (req[:12], got[:80], reset))
        check(b"https://" in body and not reset, "%r: body %r, reset %s" % (req[:12], body, reset))
    # Bytes that are neither TLS nor a request OpenSSL recognises: closed, no answer.
    got, _ = plain_exchange(ctx.tls_port, b"\x00\x01garbage\r\n\r\n")
    check(got == b"" or not got.startswith(b"HTTP/"), "garbage answered %r" % got[:40])
    check(healthz_ok(ctx), "TLS listener unhappy after plain requests")
    code, _, _, body = curl_get(base(ctx) + "/__vitals/healthz", http="--http1.1")
    check(code == 200 and body == b"ok", "h1 over TLS after plain requests: %s" % code)


@case("tls/session-resumption", args=tls_args, generic=False)
def t_resume(ctx):
    wait_tls(ctx)
    tc = tls_context(["http/1.1"])
    c = TLSConn(ctx.tls_port, context=tc)
    c.send(b"GET /__vitals/healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
    r = c.read_response()  # TLS 1.3 tickets arrive after the handshake
    check(r.status == 200, "first request %s" % r.status)
    sess = c.sock.session
    c.close()
    c2 = TLSConn(ctx.tls_port, session=sess, context=tc)
    check(c2.sock.session_reused, "session not resumed")
    c2.close()


def tls_with_first_records(port, alpn, records, until, timeout=10, tls13=True):
    """A TLS client whose first application records leave in the same send(2) as its last
    handshake flight (memory BIOs), so that they reach the server together: for TLS 1.3 the
    server reads them with the client's Finished. records: plaintexts, one TLS record each.
    Reads plaintext until until(bytes) is true or EOF; returns (selected ALPN, plaintext)."""
    ctx = tls_context(list(alpn))
    if tls13:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                if out.pending:
                    sock.sendall(out.read())
                d = sock.recv(1 << 16)
                check(d, "server closed during the handshake")
                inc.write(d)
        for r in records:
            obj.write(r)
        sock.sendall(out.read())
        got = b""
        deadline = time.time() + timeout
        while not until(got) and time.time() < deadline:
            try:
                got += obj.read(1 << 16)
                continue
            except ssl.SSLWantReadError:
                pass
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                break
            d = sock.recv(1 << 16)
            if not d:
                break
            inc.write(d)
        return obj.selected_alpn_protocol(), got
    finally:
        sock.close()


def h2_frames(data):
    """[(type, flags, sid, payload)] of the whole frames in data."""
    frames = []
    while len(data) >= 9:
        n = int.from_bytes(data[:3], "big")
        if len(data) < 9 + n:
            break
        frames.append((data[3], data[4], int.from_bytes(data[5:9], "big") & 0x7FFFFFFF,
                       data[9:9 + n]))
        data = data[9 + n:]
    return frames


@case("tls/first-records-with-the-handshake", args=tls_args, generic=False)
def t_first_records(ctx):
    """What a client sends with its last handshake flight (read ahead for HTTP/2 clients, and
    left inside OpenSSL) is answered: an h2 preface, request and PING in three records; two
    pipelined HTTP/1.1 requests in two records, with ALPN http/1.1, without ALPN, and with a
    list that offers h2 after http/1.1 (h2 is preferred)."""
    wait_tls(ctx)
    authority = "localhost:%d" % ctx.tls_port
    hb = hpack([(":method", "GET"), (":scheme", "https"), (":path", "/__vitals/healthz"),
                (":authority", authority)])
    records = [b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(T_SETTINGS, 0, 0),
               frame(T_HEADERS, F_END_HEADERS | F_END_STREAM, 1, hb),
               frame(T_PING, 0, 0, b"firstrec")]

    def h2_done(got):
        fs = h2_frames(got)
        return (any(f[0] == T_DATA and f[2] == 1 and f[1] & F_END_STREAM for f in fs) and
                any(f[0] == T_PING and f[1] & F_ACK for f in fs))
    for alpn in (("h2",), ("http/1.1", "h2")):
        proto, got = tls_with_first_records(ctx.tls_port, alpn, records, h2_done)
        check(proto == "h2", "ALPN %r chose %r" % (alpn, proto))
        fs = h2_frames(got)
        check(fs and fs[0][0] == T_SETTINGS and not fs[0][1] & F_ACK,
              "the server's first frame is not its SETTINGS: %r" % (fs[:1],))
        heads = [f for f in fs if f[0] == T_HEADERS and f[2] == 1]
        check(heads and heads[0][3][:1] == b"\x88", "no :status 200 on stream 1: %r" % (fs,))
        body = b"".join(f[3] for f in fs if f[0] == T_DATA and f[2] == 1)
        check(body == b"ok", "stream 1 body %r" % body)
        check(any(f[0] == T_PING and f[1] & F_ACK and f[3] == b"firstrec" for f in fs),
              "PING not answered: %r" % (fs,))
        check(any(f[0] == T_SETTINGS and f[1] & F_ACK for f in fs), "SETTINGS not acknowledged")
    reqs = [b"GET /__vitals/healthz HTTP/1.1\r\nHost: localhost\r\n\r\n",
            b"GET /__vitals/healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"]
    for alpn in (("http/1.1",), ()):
        proto, got = tls_with_first_records(ctx.tls_port, alpn, reqs,
                                            lambda g: g.count(b"HTTP/1.1 200") == 2 and
                                            g.endswith(b"ok"))
        check(proto == (alpn[0] if alpn else None), "ALPN %r chose %r" % (alpn, proto))
        check(got.count(b"HTTP/1.1 200") == 2 and got.endswith(b"\r\n\r\nok"),
              "ALPN %r: two pipelined requests: %r" % (alpn, got[-300:]))


@case("tls/self-signed-cached-beside-db", args=tls_args, generic=False)
def t_selfsigned_cache(ctx):
    wait_tls(ctx)
    path = os.path.join(ctx.tmp, "vitals-proxy-selfsigned.pem")
    check(os.path.exists(path), "no %s" % path)
    check(os.stat(path).st_mode & 0o077 == 0, "cache file is readable by others")
    pem1 = open(path).read()
    der1 = TLSConn(ctx.tls_port).sock.getpeercert(binary_form=True)
    check(ssl.DER_cert_to_PEM_cert(der1).strip() in pem1, "served certificate is not the cached one")
    cert = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName"],
                          input=pem1.encode(), capture_output=True).stdout.decode()
    for want in ("DNS:localhost", "IP Address:127.0.0.1", "IP Address:0:0:0:0:0:0:0:1"):
        check(want in cert, "SAN lacks %s: %r" % (want, cert))
    ctx.px.stop()
    # A restart reuses it (the browser exception survives).
    ctx.px = ctx.start_proxy(["--tls-listen", "127.0.0.1:%d" % ctx.tls_port, "--tls-self-signed"])
    wait_tls(ctx)
    der2 = TLSConn(ctx.tls_port).sock.getpeercert(binary_form=True)
    check(der1 == der2, "certificate changed across restarts")
    check(open(path).read() == pem1, "cache file rewritten")


def openssl_pair(tmp, name, days=30):
    k, c = os.path.join(tmp, name + ".key"), os.path.join(tmp, name + ".crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", str(days), "-subj",
                    "/CN=localhost", "-keyout", k, "-out", c], check=True, capture_output=True)
    return c, k


def openssl_expired(tmp):
    d = os.path.join(tmp, "ca")
    os.mkdir(d)
    open(os.path.join(d, "index.txt"), "w").close()
    open(os.path.join(d, "serial"), "w").write("01\n")
    open(os.path.join(d, "ca.cnf"), "w").write(
        "[ca]\ndefault_ca = c\n[c]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n"
        "default_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n")
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost", "-keyout",
                    "k.pem", "-out", "r.csr"], cwd=d, check=True, capture_output=True)
    subprocess.run(["openssl", "ca", "-config", "ca.cnf", "-selfsign", "-keyfile", "k.pem", "-in",
                    "r.csr", "-startdate", "20200101000000Z", "-enddate", "20200201000000Z",
                    "-batch", "-out", "c.pem"], cwd=d, check=True, capture_output=True)
    return os.path.join(d, "c.pem"), os.path.join(d, "k.pem")


@case("tls/client-gone-mid-response-frees-both-sides", args=tls_args, generic=False)
def t_tls_client_gone(ctx):
    """An HTTP/1.1 client over TLS that closes its socket (no close_notify) in the middle of a
    large response: the proxy ends the exchange and closes the upstream connection. Before, the
    EOF was taken for a half-close after a complete request, the response went on into an output
    that libevent's OpenSSL bufferevent no longer wrote (it stops writing at EOF), the upstream
    was paused at the high watermark, and both connections stayed open for good (bench/soak.sh:
    about 7 descriptors a minute)."""
    wait_tls(ctx)
    for i in range(3):
        c = TLSConn(ctx.tls_port)
        c.sock.sendall(b"GET /bytes?n=20000000 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        got = 0
        while got < 65536:
            b = c.sock.recv(16384)
            check(b, "response ended after %d bytes" % got)
            got += len(b)
        c.raw.close()
        c.sock.close()
    check(ctx.up.stats()["requests"] == 3, "upstream saw %r" % ctx.up.stats()["requests"])
    # "open" counts the connection that asks for the stats too
    check(poll(lambda: ctx.up.stats()["open"] == 1, timeout=8),
          "upstream connections still open 8 s after the clients left: %d" %
          (ctx.up.stats()["open"] - 1))
    # The proxy still serves on the same listener.
    c = TLSConn(ctx.tls_port)
    r = get(ctx.tls_port, "/bytes?n=1000", conn=c)
    check(r.status == 200 and len(r.body) == 1000, "status %s, %d bytes" % (r.status, len(r.body)))
    c.close()


@case("tls/bad-cert-or-key-exit-2", proxy=False, generic=False)
def t_bad_cert(ctx):
    port, tport = free_port(), free_port()
    common = ["--listen", "127.0.0.1:%d" % port, "--tls-listen", "127.0.0.1:%d" % tport,
              "--db", os.path.join(ctx.tmp, "v.db"), "--upstream", ctx.up.url]
    c1, k1 = openssl_pair(ctx.tmp, "a")
    _, k2 = openssl_pair(ctx.tmp, "b")
    ce, ke = openssl_expired(ctx.tmp)
    junk = os.path.join(ctx.tmp, "junk.pem")
    open(junk, "w").write("not a certificate\n")
    cases = [
        (["--cert", "/nonexistent/c.pem", "--key", k1], "--cert", "No such file"),
        (["--cert", c1, "--key", "/nonexistent/k.pem"], "--key", "No such file"),
        (["--cert", c1, "--key", k2], "--key", "does not match"),
        (["--cert", ce, "--key", ke], "--cert", "expired"),
        (["--cert", junk, "--key", k1], "--cert", "not a PEM certificate"),
        (["--cert", c1, "--key", junk], "--key", "not a PEM private key"),
        (["--cert", c1], "--tls-listen", "needs"),
    ]
    for extra, opt, words in cases:
        r = run_bin(ctx.opts, common + extra)
        line = one_error_line(r, " ".join(extra))
        check(opt in line and words in line, "%s: line %r lacks %s/%s" % (extra, line, opt, words))
    # The good pair serves.
    ctx.tls_port = tport
    ctx.px = ctx.start_proxy(["--tls-listen", "127.0.0.1:%d" % tport, "--cert", c1, "--key", k1])
    check(healthz_ok(ctx), "valid --cert/--key did not serve")


def openssl_chain(tmp):
    """A root, an intermediate it signs and a leaf for localhost the intermediate signs:
    (leaf + intermediate file, leaf-only file, key)."""
    d = os.path.join(tmp, "chain")
    os.mkdir(d)

    def ossl(*args):
        subprocess.run(["openssl"] + list(args), cwd=d, check=True, capture_output=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    ossl("req", "-x509", *ec, "-days", "30", "-subj", "/CN=root", "-keyout", "root.key",
         "-out", "root.pem")
    ossl("req", *ec, "-subj", "/CN=intermediate", "-keyout", "int.key", "-out", "int.csr")
    open(os.path.join(d, "int.ext"), "w").write(
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n")
    ossl("x509", "-req", "-in", "int.csr", "-CA", "root.pem", "-CAkey", "root.key",
         "-CAcreateserial", "-days", "30", "-extfile", "int.ext", "-out", "int.pem")
    ossl("req", *ec, "-subj", "/CN=localhost", "-keyout", "leaf.key", "-out", "leaf.csr")
    open(os.path.join(d, "leaf.ext"), "w").write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    ossl("x509", "-req", "-in", "leaf.csr", "-CA", "int.pem", "-CAkey", "int.key",
         "-CAcreateserial", "-days", "30", "-extfile", "leaf.ext", "-out", "leaf.pem")
    full = os.path.join(d, "full.pem")
    with open(full, "w") as f:
        f.write(open(os.path.join(d, "leaf.pem")).read() + open(os.path.join(d, "int.pem")).read())
    return full, os.path.join(d, "leaf.pem"), os.path.join(d, "leaf.key"), \
        os.path.join(d, "root.pem")


def certs_sent(port):
    """Subjects of the certificates the server sends, in order (openssl s_client)."""
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                        "-servername", "localhost", "-showcerts"], input=b"",
                       capture_output=True, timeout=20)
    return re.findall(r"^\s*\d+ s:\s*(.*)$", r.stdout.decode("latin-1"), re.M)


@case("tls/certificate-chain-as-given", proxy=False, generic=False)
def t_chain(ctx):
    """The chain sent is the --cert file's, as written: leaf and intermediate when both are in
    it, the leaf alone otherwise (no chain is built from a trust store at handshake time)."""
    full, leaf, key, root = openssl_chain(ctx.tmp)
    for cert, want in ((full, ["CN = localhost", "CN = intermediate"]),
                       (leaf, ["CN = localhost"])):
        ctx.tls_port = free_port()
        px = ctx.start_proxy(["--tls-listen", "127.0.0.1:%d" % ctx.tls_port, "--cert", cert,
                              "--key", key])
        check(healthz_ok(ctx), "%s did not serve" % cert)
        got = certs_sent(ctx.tls_port)
        check(got == want, "%s: certificates sent %r, want %r" % (os.path.basename(cert), got, want))
        px.stop()
    # A client that trusts only the root verifies the full chain.
    ctx.tls_port = free_port()
    ctx.start_proxy(["--tls-listen", "127.0.0.1:%d" % ctx.tls_port, "--cert", full, "--key", key])
    wait_tls(ctx)
    c = ssl.create_default_context(cafile=root)
    s = c.wrap_socket(socket.create_connection(("127.0.0.1", ctx.tls_port), timeout=10),
                      server_hostname="localhost")
    s.sendall(b"GET /__vitals/healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    got, _ = run.recv_to_eof(s)
    s.close()
    check(got.startswith(b"HTTP/1.1 200") and got.endswith(b"ok"), "verified request: %r" % got)


@case("h2/injection-gzip-and-br", args=tls_args, generic=False)
def t_inject(ctx):
    b = base(ctx)
    code, ver, h, body = curl_get(b + "/html/gzip", ["-H", "Accept-Encoding: gzip"])
    check(code == 200 and ver == "2", "gzip page: %s %s" % (code, ver))
    check(h.get("content-encoding") == "gzip", "content-encoding %r" % h.get("content-encoding"))
    html = gzip.decompress(body)
    check(b"/__vitals/beacon.js" in html, "no beacon tag in the gzip page over h2")
    check("content-length" not in h or int(h["content-length"]) == len(body),
          "content-length %r vs %d bytes" % (h.get("content-length"), len(body)))
    if brotli is None:
        ctx.note("python3-brotli missing: br part skipped")
        return
    code, ver, h, body = curl_get(b + "/html/br", ["-H", "Accept-Encoding: br"])
    check(code == 200 and ver == "2", "br page: %s %s" % (code, ver))
    check(h.get("content-encoding") == "br", "content-encoding %r" % h.get("content-encoding"))
    check(b"/__vitals/beacon.js" in brotli.decompress(body), "no beacon tag in the br page")


@case("h2/beacon-post-and-timing-record", args=tls_args, generic=False)
def t_beacon(ctx):
    b = base(ctx)
    code, ver, _, html = curl_get(b + "/html")
    check(code == 200 and b"data-vid=" in html, "page %s lacks data-vid" % code)
    vid = html.split(b'data-vid="')[1].split(b'"')[0].decode()
    beacon = {"v": 1, "vid": vid, "url": "/html", "nav": "navigate",
              "t0": time.time() * 1000, "dev": "desktop",
              "m": [{"n": "LCP", "id": "v1-1-1", "v": 1234.5, "d": 1234.5, "r": "good"}]}
    r = curl(["--http2", "-o", "/dev/null", "-w", "%{http_code} %{http_version}", "-H",
              "Content-Type: text/plain;charset=UTF-8", "--data-binary", json.dumps(beacon),
              b + "/__vitals/beacon"])
    check(r.stdout.decode() == "204 2", "beacon POST over h2: %r %r" % (r.stdout, r.stderr))
    code, ver, h, body = curl_get(b + "/echo")
    j = json.loads(body)
    hdrs = dict((k.lower(), v) for k, v in (j["headers"].items() if isinstance(j["headers"], dict)
                                            else j["headers"]))
    check(hdrs.get("x-forwarded-proto") == "https", "X-Forwarded-Proto %r" %
          hdrs.get("x-forwarded-proto"))
    check(hdrs.get("x-forwarded-for", "").endswith("127.0.0.1"), "X-Forwarded-For %r" %
          hdrs.get("x-forwarded-for"))
    check(hdrs.get("host") == "localhost:%d" % ctx.tls_port, "Host %r" % hdrs.get("host"))
    ctx.px.stop()
    db = sqlite3.connect(os.path.join(ctx.tmp, "vitals.db"))
    rows = db.execute("SELECT protocol, tls_version FROM requests WHERE url = '/html'").fetchall()
    check(rows and all(p == "h2" and t and t.startswith("TLSv1.") for p, t in rows),
          "timing records %r" % rows)
    n = db.execute("SELECT count(*) FROM metrics WHERE view_seq = "
                   "(SELECT seq FROM views WHERE id = ?)", (vid,)).fetchone()[0]
    check(n == 1, "beacon metric rows for the view: %d" % n)


@case("h2/request-bodies-both-framings", args=tls_args, generic=False)
def t_upload(ctx):
    b = base(ctx)
    data = os.urandom(3 * 1024 * 1024 + 17)
    path = os.path.join(ctx.tmp, "up.bin")
    open(path, "wb").write(data)
    import hashlib
    want = hashlib.sha256(data).hexdigest()
    code, ver, _, body = curl_get(b + "/upload", ["--data-binary", "@" + path])
    j = json.loads(body)
    check(code == 200 and j["bytes"] == len(data) and j["sha256"] == want,
          "CL upload: %s %r" % (code, j))
    # No content-length: the proxy forwards it chunked.
    h2 = H2(ctx.tls_port)
    h2.send(h2.request(1, "/upload", method="POST", end=False))
    chunk = data[:100000]
    for i in range(0, len(chunk), 16384):
        h2.send(frame(T_DATA, F_END_STREAM if i + 16384 >= len(chunk) else 0, 1,
                      chunk[i:i + 16384]))
    got, status_seen = b"", False
    while True:
        f = h2.read_frame()
        check(f is not None, "connection closed before the response")
        if f[2] == 1 and f[0] == T_HEADERS:
            status_seen = True
        if f[2] == 1 and f[0] == T_DATA:
            got += f[3]
        if f[2] == 1 and f[1] & F_END_STREAM and f[0] in (T_DATA, T_HEADERS):
            break
        check(f[0] != T_RST, "stream reset")
    j = json.loads(got)
    check(status_seen and j["bytes"] == len(chunk) and j["chunked"],
          "chunked upload: %r" % j)
    h2.close()


@case("h2/100-concurrent-streams", args=tls_args, generic=False)
def t_concurrent(ctx):
    b = base(ctx)
    r = subprocess.run(["h2load", "-n", "300", "-c", "1", "-m", "100",
                        b + "/bytes?n=20000"], capture_output=True, text=True, timeout=60)
    out = r.stdout
    check("300 succeeded" in out and "300 2xx" in out, "h2load: %s" % out[-600:])
    check(healthz_ok(ctx), "healthz after the burst")


@case("h2/handshake-burst-shares-upstream-connections", args=tls_args, generic=False)
def t_burst_pool(ctx):
    """Many new TLS connections at once, one request each (bench/h2.sh's handshake row): while
    the handshakes keep the loop busy, a request that finds the pool empty waits for one of the
    busy upstream connections instead of opening its own, so the upstream sees fewer
    connections than requests. Every request is answered, with its own body."""
    b = base(ctx)
    n = 400
    ctx.up.reset()
    r = subprocess.run(["h2load", "-n", str(n), "-c", str(n), "-m", "1", b + "/bytes?n=1000"],
                       capture_output=True, text=True, timeout=120)
    out = r.stdout
    check("%d succeeded" % n in out and "%d 2xx" % n in out and "(%d) data" % (n * 1000) in out,
          "h2load: %s" % out[-600:])
    st = ctx.up.stats()
    ctx.note("%d requests over %d upstream connections" % (st["requests"], st["connections"]))
    check(st["requests"] == n, "upstream saw %d requests, want %d" % (st["requests"], n))
    # How many depends on how slow the test upstream gets beside the handshakes (46-228 of 400
    # measured, up to 282 under ASan; 122-399 without the wait): a loose bound, which a proxy
    # that connects for every request of the burst fails; bench/h2cost.sh's handshake row
    # counts the connects per connection against nginx's upstream.
    check(st["connections"] * 10 <= n * 9, "%d upstream connections for %d requests, want at "
          "most 90 %%" % (st["connections"], n))


@case("h2/sequential-streams-reuse-pairs", args=tls_args, generic=False)
def t_reuse(ctx):
    """Streams one after another on one connection: body-less ones reuse the parked pair of the
    previous one. Bodies stay exact across CL, chunked, local replies, a 502 and an injected
    page in between, and each record's timing starts with its own stream."""
    b = base(ctx)
    paths = ["/bytes?n=5000", "/bytes?n=70000&chunked=1", "/malformed?kind=garbage",
             "/bytes?n=3000", "/__vitals/healthz", "/status/204", "/html", "/bytes?n=12345"]
    args = ["--http2", "-w", "%{http_code} %{num_connects}\n"]
    for i, p in enumerate(paths):
        args += [b + p, "-o", os.path.join(ctx.tmp, "r%d" % i)]
    r = curl(args)
    check(r.returncode == 0, "curl: %s" % r.stderr.decode()[:300])
    lines = r.stdout.decode().split()
    codes, connects = lines[0::2], [int(x) for x in lines[1::2]]
    check(codes == ["200", "200", "502", "200", "200", "204", "200", "200"], "codes %r" % codes)
    check(connects[0] == 1 and sum(connects) == 1, "curl made %r connections" % connects)
    body = [open(os.path.join(ctx.tmp, "r%d" % i), "rb").read() if os.path.exists(
        os.path.join(ctx.tmp, "r%d" % i)) else b"" for i in range(len(paths))]
    for i, n in ((0, 5000), (1, 70000), (3, 3000), (7, 12345)):
        check(body[i] == up.pattern_bytes(0, n), "%s: body differs (%d bytes)" % (paths[i], len(body[i])))
    check(body[4] == b"ok" and body[5] == b"", "local replies %r %r" % (body[4], body[5]))
    check(b"/__vitals/beacon.js" in body[6], "page not injected")
    # Many more on one connection, mixed: every one complete.
    r = subprocess.run(["h2load", "-n", "80", "-c", "1", "-m", "1", b + "/bytes?n=5000",
                        b + "/bytes?n=7001&chunked=1", b + "/__vitals/healthz", b + "/status/204"],
                       capture_output=True, text=True, timeout=60)
    check("80 succeeded" in r.stdout and "(240060) data" in r.stdout, "h2load: %s" % r.stdout[-600:])
    ctx.px.stop()
    db = sqlite3.connect(os.path.join(ctx.tmp, "vitals.db"))
    rows = db.execute("SELECT url, accept_us, head_done_us, last_byte_us FROM requests "
                      "WHERE url IN ('/bytes?n=5000', '/bytes?n=70000&chunked=1', '/bytes?n=3000', "
                      "'/html', '/bytes?n=12345') ORDER BY head_done_us LIMIT 5").fetchall()
    check([x[0] for x in rows] == ["/bytes?n=5000", "/bytes?n=70000&chunked=1", "/bytes?n=3000",
                                   "/html", "/bytes?n=12345"], "records %r" % rows)
    for prev, cur in zip(rows, rows[1:]):
        check(cur[1] >= prev[3], "%s: timing starts before the previous stream ended (%r, %r)"
              % (cur[0], prev, cur))


def rss_kib(pid):
    return run.proc_status(pid, "VmRSS"), run.proc_status(pid, "VmHWM")


@case("h2/slow-reader-bounded-memory", args=tls_args, generic=False)
def t_slow_reader(ctx):
    wait_tls(ctx)
    n = 96 * 1024 * 1024
    # A client that opens every window wide, then does not read: only TCP pushes back.
    h2 = H2(ctx.tls_port, timeout=30,
            settings=(4).to_bytes(2, "big") + (0x7FFFFFFF).to_bytes(4, "big"))
    h2.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    h2.send(frame(T_WINDOW, 0, 0, (0x7FFFFFFF - 65535).to_bytes(4, "big")))
    rss0, hwm0 = rss_kib(ctx.px.pid)
    h2.send(h2.request(1, "/bytes?n=%d" % n))
    time.sleep(2.5)
    rss1, hwm1 = rss_kib(ctx.px.pid)
    got, pos, ok = 0, 0, True
    while True:
        f = h2.read_frame()
        check(f is not None, "closed after %d bytes" % got)
        if f[0] == T_DATA and f[2] == 1:
            if pos < 4:  # spot-check the pattern on the first frames
                ok &= f[3] == up.pattern_bytes(got, len(f[3]))
                pos += 1
            got += len(f[3])
            if f[1] & F_END_STREAM:
                break
        check(f[0] != T_RST, "stream reset after %d bytes" % got)
    ctx.note("proxy VmRSS %d -> %d KiB (stalled), VmHWM %d -> %d KiB" % (rss0, rss1, hwm0, hwm1))
    check(ok, "body bytes differ from the pattern")
    check(got == n, "got %d bytes, want %d" % (got, n))
    check(hwm1 - hwm0 < 40 * 1024, "proxy VmHWM grew by %d KiB while stalled" % (hwm1 - hwm0))
    h2.close()


@case("h2/client-never-reads-stream-flood-bounded", args=tls_args, generic=False)
def t_never_reads_flood(ctx):
    """A client that opens streams as fast as it can and never reads: once its output is full
    the session stops reading it, so neither responses nor the RST_STREAMs of refused streams
    pile up in memory (about 170 MB in 6 s before); the proxy serves others meanwhile."""
    wait_tls(ctx)
    h2 = H2(ctx.tls_port)
    h2.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    h2.sock.setblocking(False)
    rss0, hwm0 = rss_kib(ctx.px.pid)
    hb = hpack([(":method", "GET"), (":scheme", "https"), (":authority", "localhost"),
                (":path", "/__vitals/")])
    sid, pend, t0 = 1, b"", time.time()
    while time.time() - t0 < 4:
        if not pend:
            pend = b"".join(frame(T_HEADERS, F_END_HEADERS | F_END_STREAM, sid + 2 * i, hb)
                            for i in range(50))
            sid += 100
        try:
            pend = pend[h2.sock.send(pend):]
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
            time.sleep(0.02)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            break
    rss1, hwm1 = rss_kib(ctx.px.pid)
    check(healthz_ok(ctx), "healthz beside the flooding client")
    h2.close()
    ctx.note("%d streams sent; proxy VmRSS %d -> %d KiB, VmHWM %d -> %d KiB" %
             (sid // 2, rss0, rss1, hwm0, hwm1))
    check(hwm1 - hwm0 < 40 * 1024, "proxy VmHWM grew by %d KiB" % (hwm1 - hwm0))


@case("h2/large-download-curl", args=tls_args, generic=False)
def t_large(ctx):
    b = base(ctx)
    n = 20 * 1024 * 1024
    r = curl(["--http2", "-o", os.path.join(ctx.tmp, "dl"), "-w", "%{http_code} %{size_download}",
              b + "/bytes?n=%d&chunked=1" % n])
    check(r.stdout.decode() == "200 %d" % n, "download: %r %r" % (r.stdout, r.stderr))
    with open(os.path.join(ctx.tmp, "dl"), "rb") as f:
        check(f.read(65536 * 2) == up.pattern_bytes(0, 65536 * 2), "pattern mismatch")


@case("h2/upstream-dies-mid-body-resets-stream", args=tls_args, generic=False)
def t_die(ctx):
    b = base(ctx)
    for mode in ("cl", "chunked"):
        r = curl(["--http2", "-o", "/dev/null", "-w", "%{http_code}", b + "/die?mode=" + mode])
        check(r.returncode != 0, "%s: truncated body looked complete (%r)" % (mode, r.stdout))
    check(healthz_ok(ctx), "healthz after upstream deaths")


@case("h2/header-list-too-large-431", args=tls_args, generic=False)
def t_431(ctx):
    b = base(ctx)
    extra = []
    for i in range(8):
        extra += ["-H", "x-big-%d: %s" % (i, "a" * 6000)]
    code, ver, _, _ = curl_get(b + "/html", extra)
    check(code == 431 and ver == "2", "got %s over %s" % (code, ver))
    check(healthz_ok(ctx), "healthz after 431")


@case("h2/connect-501-no-extended-connect", args=tls_args, generic=False)
def t_connect(ctx):
    wait_tls(ctx)
    h2 = H2(ctx.tls_port)
    settings = None
    while settings is None:
        f = h2.read_frame()
        check(f is not None, "no SETTINGS")
        if f[0] == T_SETTINGS and not f[1] & F_ACK:
            settings = f[3]
    ids = [int.from_bytes(settings[i:i + 2], "big") for i in range(0, len(settings), 6)]
    check(8 not in ids, "SETTINGS_ENABLE_CONNECT_PROTOCOL advertised")
    check(3 in ids, "SETTINGS_MAX_CONCURRENT_STREAMS not advertised")
    hb = hpack([(":method", "CONNECT"), (":authority", "example.com:443")])
    h2.send(frame(T_HEADERS, F_END_HEADERS | F_END_STREAM, 1, hb))
    while True:
        f = h2.read_frame()
        check(f is not None, "closed")
        if f[2] == 1 and f[0] == T_HEADERS:
            # ":status: 501" as nghttp2 encodes it: literal (indexed name 8), Huffman "501".
            check(f[3][1:4] == b"\x82\x6c\x01", "CONNECT answer %r" % f[3][:20])
            break
        check(f[0] != T_RST, "stream reset instead of 501")
    h2.close()


@case("h2/rapid-reset-goaway", args=tls_args, generic=False)
def t_rapid_reset(ctx):
    wait_tls(ctx)
    h2 = H2(ctx.tls_port)
    out = b""
    for i in range(1000):
        sid = 1 + 2 * i
        out += h2.request(sid, "/slow?delay=5") + frame(T_RST, 0, sid, (8).to_bytes(4, "big"))
    try:
        h2.send(out)
    except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
        pass
    code = h2.until_goaway()
    check(code == ENHANCE_YOUR_CALM, "GOAWAY code %r, want ENHANCE_YOUR_CALM" % code)
    h2.close()
    check(healthz_ok(ctx), "server unhealthy after the rapid-reset attack")


@case("h2/ping-flood-goaway", args=tls_args, generic=False)
def t_ping_flood(ctx):
    wait_tls(ctx)
    h2 = H2(ctx.tls_port)
    try:
        h2.send(b"".join(frame(T_PING, 0, 0, i.to_bytes(8, "big")) for i in range(5000)))
    except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
        pass
    code = h2.until_goaway()
    check(code == ENHANCE_YOUR_CALM, "GOAWAY code %r, want ENHANCE_YOUR_CALM" % code)
    h2.close()
    check(healthz_ok(ctx), "server unhealthy after the PING flood")


@case("h2/continuation-flood-closed", args=tls_args, generic=False)
def t_continuation(ctx):
    wait_tls(ctx)
    h2 = H2(ctx.tls_port)
    first = hpack([(":method", "GET"), (":scheme", "https"), (":path", "/"),
                   (":authority", "localhost")])
    h2.send(frame(T_HEADERS, 0, 1, first))
    t0 = time.time()
    try:
        for i in range(2000):
            h2.send(frame(T_CONT, 0, 1, hpack([("x-f%d" % i, "v" * 50)])))
    except (BrokenPipeError, ConnectionResetError, ssl.SSLError, socket.timeout):
        pass
    code = h2.until_goaway(timeout=5)
    ctx.note("GOAWAY code %r after %.2f s" % (code, time.time() - t0))
    check(code == ENHANCE_YOUR_CALM, "GOAWAY code %r, want ENHANCE_YOUR_CALM" % code)
    h2.close()
    check(healthz_ok(ctx), "server unhealthy after the CONTINUATION flood")


@case("h2/graceful-shutdown-goaway", args=tls_args, generic=False)
def t_shutdown(ctx):
    wait_tls(ctx)
    h2 = H2(ctx.tls_port)
    h2.send(h2.request(1, "/slow?delay=1"))
    time.sleep(0.3)
    ctx.px.signal_stop()
    goaway, body_done = None, False
    while True:
        f = h2.read_frame()
        if f is None:
            break
        if f[0] == T_GOAWAY:
            goaway = int.from_bytes(f[3][4:8], "big")
        if f[2] == 1 and f[1] & F_END_STREAM:
            body_done = True
    check(goaway == 0, "GOAWAY code %r, want NO_ERROR" % goaway)
    check(body_done, "in-flight stream not finished before close")
    ctx.px.proc.wait(10)
    check(ctx.px.proc.returncode == 0, "exit %s" % ctx.px.proc.returncode)


def load_then_stop(ctx, second_signal):
    """Load over both listeners, then SIGTERM with idle keep-alive connections, HTTP/1.1
    exchanges and a few hundred HTTP/2 streams still waiting on the upstream: the hard stop
    (end of --grace, or a second signal) frees them all at once. The process must exit 0 with
    nothing on stderr from a sanitizer (the runner checks); a short exchange in flight at the
    signal still gets its response, and the timing records of the load reach the database."""
    b = base(ctx)
    r = subprocess.run(["h2load", "-n", "400", "-c", "2", "-m", "50", b + "/html"],
                       capture_output=True, text=True, timeout=60)
    check("400 succeeded" in r.stdout, "h2load: %s" % r.stdout[-600:])
    idle = []
    for _ in range(8):  # served once each, then left open (keep-alive)
        c = Conn(ctx.port)
        rr = run.get(ctx.port, "/html", conn=c)
        check(rr.status == 200, "keep-alive GET /html: %s" % rr.status)
        idle.append(c)
    slow = []
    for _ in range(8):  # HTTP/1.1 exchanges waiting on the upstream
        c = Conn(ctx.port)
        c.send(b"GET /slow?delay=5 HTTP/1.1\r\nHost: itest.local\r\n\r\n")
        slow.append(c)
    sessions = []
    for _ in range(2):  # 100 streams each (the default --h2-max-streams)
        h2 = H2(ctx.tls_port)
        h2.send(b"".join(h2.request(sid, "/slow?delay=5") for sid in range(1, 200, 2)))
        sessions.append(h2)
    # Records refused by admission control (a writer lagging on a loaded machine) are counted,
    # not stored: read the count while the proxy runs.
    hr = run.get(ctx.port, "/__vitals/api/health", host="localhost")
    check(hr.status == 200, "health: %s" % hr.status)
    refused = json.loads(hr.body).get("refused_busy", 0)
    short = Conn(ctx.port)
    short.send(b"GET /slow?delay=0.3 HTTP/1.1\r\nHost: itest.local\r\n\r\n")
    time.sleep(0.5 if second_signal else 0.1)
    ctx.px.signal_stop()
    if second_signal:
        time.sleep(0.3)
        ctx.px.signal_stop()
    else:
        rr = short.read_response()
        check(rr.status == 200, "exchange in flight at SIGTERM: %s" % rr.status)
    try:
        ctx.px.proc.wait(20)
    except subprocess.TimeoutExpired:
        raise run.CheckFailed("proxy still running 20 s after SIGTERM")
    rc = ctx.px.proc.returncode
    check(rc == 0, "exit %s" % rc)
    for c in idle + slow + [short]:
        c.sock.close()
    for h2 in sessions:
        h2.close()
    db = sqlite3.connect(os.path.join(ctx.tmp, "vitals.db"))
    n = db.execute("SELECT count(*) FROM requests WHERE url = '/html'").fetchone()[0]
    check(n + refused >= 408 and refused < 100,
          "timing records for /html after shutdown: %d stored + %d refused under load, want >= 408"
          % (n, refused))


@case("h2/shutdown-hard-stop-after-grace", args=lambda ctx: tls_args(ctx) + ["--grace", "1s"],
      generic=False)
def t_hard_stop_grace(ctx):
    load_then_stop(ctx, second_signal=False)


@case("h2/shutdown-second-signal", args=tls_args, generic=False)
def t_hard_stop_second(ctx):
    load_then_stop(ctx, second_signal=True)


@case("tls/websocket-over-tls-http1", args=tls_args, generic=False)
def t_ws_tls(ctx):
    import base64
    import hashlib
    wait_tls(ctx)
    key = base64.b64encode(os.urandom(16)).decode()
    c = TLSConn(ctx.tls_port, timeout=5, alpn=("h2", "http/1.1"))
    # A browser offering both gets h2; WebSocket then uses its own HTTP/1.1 connection.
    c.sock.close()
    c = TLSConn(ctx.tls_port, timeout=5, alpn=("http/1.1",))
    c.send(("GET /_next/webpack-hmr HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
            "Origin: https://localhost\r\n\r\n" % key).encode())
    status, _, headers = c.read_head()
    check(status == 101, "status %d" % status)
    acc = dict((k.lower(), v) for k, v in headers).get("sec-websocket-accept")
    check(acc == base64.b64encode(hashlib.sha1(key.encode() + up.WS_GUID).digest()).decode(),
          "bad accept")
    for op, payload in ((1, b"hello over tls"), (2, os.urandom(70000))):
        c.send(up.ws_frame(op, payload, mask=os.urandom(4)))
        check(run.ws_recv(c) == (op, payload), "echo mismatch (opcode %d)" % op)
    c.close()


@case("h2/response-heads-as-h1", args=tls_args, generic=False)
def t_h2_heads_as_h1(ctx):
    # The fields an HTTP/2 client gets are the ones an HTTP/1.1 client gets, less the
    # connection-specific ones: plain, hop-by-hop, CSP-rewritten and injected pages, a head of
    # 250 fields (beyond the reader's stack arrays), a HEAD request and a 304.
    b = base(ctx)
    conn_specific = {"connection", "keep-alive", "transfer-encoding", "proxy-connection",
                     "upgrade", "te", "trailer"}
    vary = ("date",)  # the second differs between the two requests
    for path, extra in (("/html", ()), ("/html/gzip", ("-H", "Accept-Encoding: gzip")),
                        ("/csp", ()), ("/hop", ()), ("/many-headers?n=250&len=180", ()),
                        ("/many-headers?n=60&type=text/html", ()), ("/html", ("-I",)),
                        ("/status/304", ()), ("/status/404", ())):
        s1, v1, h1, body1 = curl_get(b + path, extra, http="--http1.1")
        s2, v2, h2, body2 = curl_get(b + path, extra)
        check(v1 == "1.1" and v2 == "2", "%s: versions %s %s" % (path, v1, v2))
        check(s1 == s2, "%s: status %d over h1, %d over h2" % (path, s1, s2))
        k1 = {k: v for k, v in h1.items() if k not in conn_specific and k not in vary and k}
        k2 = {k: v for k, v in h2.items() if k not in vary and k}
        if "content-length" not in k2 or "content-length" not in k1:
            k1.pop("content-length", None)  # h1 chunked, h2 without a length: both unframed
            k2.pop("content-length", None)
        check(k1 == k2, "%s: fields differ: h1 only %r, h2 only %r" % (
            path, sorted(set(k1.items()) - set(k2.items()))[:6],
            sorted(set(k2.items()) - set(k1.items()))[:6]))
        check(not (set(h2) & conn_specific), "%s: connection-specific field over h2: %r" %
              (path, sorted(set(h2) & conn_specific)))
        if path.startswith("/many-headers?n=250"):
            for i in (0, 47, 48, 249):
                check(h2.get("x-field-%03d" % i, "").startswith("v%d-xx" % i),
                      "x-field-%03d: %r" % (i, h2.get("x-field-%03d" % i)))
            check(len(h2["x-field-249"]) == 180, "value length %d" % len(h2["x-field-249"]))
        if ("html" in h1.get("content-type", "") and s1 != 304 and "-I" not in extra and
                "content-encoding" not in h2):
            check(b"data-vid" in body2, "%s: no beacon tag over h2" % path)


@case("h2/early-hints-forwarded", args=tls_args, generic=False)
def t_early_hints(ctx):
    b = base(ctx)
    r = subprocess.run(["nghttp", "-v", b + "/early-hints"], capture_output=True, text=True,
                       timeout=30)
    st = [l.split(":status: ")[1].strip() for l in r.stdout.splitlines() if ":status: " in l]
    check(st == ["103", "200"], "statuses %r" % st)
    check("rel=preload" in r.stdout, "Link header of the 103 missing")


@case("h2/idle-goaway", args=lambda ctx: tls_args(ctx) + ["--idle-timeout", "1"],
      generic=False)
def t_idle(ctx):
    wait_tls(ctx)
    h2 = H2(ctx.tls_port)
    h2.send(h2.request(1, "/__vitals/healthz"))
    t0 = time.time()
    code = h2.until_goaway(timeout=5)
    dt = time.time() - t0
    check(code == 0, "GOAWAY code %r, want NO_ERROR" % code)
    check(0.8 < dt < 4, "idle GOAWAY after %.2f s (idle timeout 1 s)" % dt)
    check(h2.read_frame() is None, "connection not closed after the idle GOAWAY")
    h2.close()


def nghttp_blocks(url, extra=()):
    """One GET with nghttp -v: (header blocks [(fields, flags)], DATA bytes, DATA flags) of the
    response, read from nghttp's frame log (nghttp2-client)."""
    r = subprocess.run(["nghttp", "-v", "-n"] + list(extra) + [url], capture_output=True,
                       text=True, timeout=30)
    check(r.returncode == 0, "nghttp %s: %s" % (url, r.stderr[-300:]))
    blocks, fields, data, dflags = [], [], 0, []
    for line in r.stdout.splitlines():
        m = re.match(r"\[\s*[\d.]+\] recv \(stream_id=\d+\) ([^:]+|:[^:]+): (.*)$", line)
        if m:
            fields.append((m.group(1), m.group(2)))
            continue
        m = re.match(r"\[\s*[\d.]+\] recv (HEADERS|DATA) frame <length=(\d+), flags=0x([0-9a-f]+), "
                     r"stream_id=(\d+)>", line)
        if m and m.group(4) != "0":
            if m.group(1) == "HEADERS":
                blocks.append((fields, int(m.group(3), 16)))
                fields = []
            else:
                data += int(m.group(2))
                dflags.append(int(m.group(3), 16))
    return blocks, data, dflags


def nghttp_body(url, extra=()):
    r = subprocess.run(["nghttp"] + list(extra) + [url], capture_output=True, timeout=30)
    check(r.returncode == 0, "nghttp %s: %s" % (url, r.stderr[-300:]))
    return gzip.decompress(r.stdout) if r.stdout[:2] == b"\x1f\x8b" else r.stdout


@case("h2/response-trailers", args=tls_args, generic=False)
def t_h2_trailers(ctx):
    b = base(ctx)
    # The upstream's chunked trailers become the stream's last HEADERS frame (END_STREAM), names
    # lower-cased, without the fields that must not travel in trailers: on an injected identity
    # page, an injected gzip page (decoded and re-encoded) and a body that is not HTML.
    for path, extra, html in (("/html?trailers=ok", [], True),
                              ("/html/gzip?trailers=ok", ["-H", "accept-encoding: gzip"], True),
                              ("/html?trailers=ok&type=application/octet-stream", [], False)):
        blocks, data, dflags = nghttp_blocks(b + path, extra)
        check(len(blocks) == 2,
              "%s: %d header blocks, want head and trailers" % (path, len(blocks)))
        head, trailers = blocks
        check((":status", "200") in head[0], "%s: head %r" % (path, head[0]))
        check(data > 0 and not any(f & F_END_STREAM for f in dflags),
              "%s: DATA %d bytes, flags %r" % (path, data, dflags))
        check(trailers[1] & F_END_STREAM and trailers[0] == run.TRAILERS_KEPT,
              "%s: trailers %r flags %#x" % (path, trailers[0], trailers[1]))
        body = nghttp_body(b + path, extra)
        check(body.rstrip().endswith(b"</html>") and (b"/__vitals/beacon.js" in body) == html,
              "%s: body (%d bytes) incomplete or injection wrong" % (path, len(body)))


@case("h2/response-trailers-cut", args=tls_args, generic=False)
def t_h2_trailers_cut(ctx):
    # Malformed or oversized upstream trailers: the body is complete, the stream ends with its
    # last DATA frame, and no trailers.
    b = base(ctx)
    for kind in ("fold", "big"):
        path = "/html?trailers=" + kind
        blocks, data, dflags = nghttp_blocks(b + path)
        check(len(blocks) == 1 and data > 0 and dflags and dflags[-1] & F_END_STREAM,
              "%s: %d header blocks, DATA flags %r" % (path, len(blocks), dflags))
        body = nghttp_body(b + path)
        check(body.rstrip().endswith(b"</html>") and b"/__vitals/beacon.js" in body,
              "%s: body incomplete" % path)


@case("h2/request-trailers", args=tls_args, generic=False)
def t_h2_request_trailers(ctx):
    base(ctx)
    # Without content-length the body goes up chunked, and the client's trailers (gRPC style)
    # follow it, minus the fields that must not travel in trailers.
    h2 = H2(ctx.tls_port)
    h2.send(h2.request(1, "/upload", method="POST", end=False))
    h2.send(frame(T_DATA, 0, 1, b"hello"))
    h2.send(frame(T_HEADERS, F_END_STREAM | F_END_HEADERS, 1,
                  hpack([("x-sum", "5"), ("authorization", "Basic eA=="),
                         ("grpc-timeout", "1S"), ("content-type", "x/y")])))
    got = b""
    while True:
        f = h2.read_frame()
        check(f is not None, "connection closed before the response")
        check(not (f[0] == T_RST and f[2] == 1), "stream reset")
        if f[2] == 1 and f[0] == T_DATA:
            got += f[3]
        if f[2] == 1 and f[1] & F_END_STREAM and f[0] in (T_DATA, T_HEADERS):
            break
    h2.close()
    j = json.loads(got)
    check(j["bytes"] == 5 and j["chunked"] and
          j["trailers"] == [["x-sum", "5"], ["grpc-timeout", "1S"]], "upload with trailers: %r" % j)
    # With content-length the body goes up with that length: no room for trailers, which are
    # dropped (the body arrives whole).
    path = os.path.join(ctx.tmp, "body")
    with open(path, "wb") as fh:
        fh.write(b"hello!")
    r = subprocess.run(["nghttp", "-d", path, "--trailer", "x-sum: 6",
                        "https://127.0.0.1:%d/upload" % ctx.tls_port],
                       capture_output=True, timeout=30)
    j = json.loads(r.stdout)
    check(j["bytes"] == 6 and j["content_length"] == "6" and j["trailers"] == [],
          "content-length upload with trailers: %r" % j)


@case("h2/injected-page-head-not-held", args=tls_args, generic=False)
def t_h2_head_not_held(ctx):
    # An identity HTML page with a Content-Length whose first bytes leave the scanner undecided
    # (no <head> yet), then nothing for a long while: the head must not wait for the rest. It
    # goes out with chunked framing at the end of the read, and the first bytes with it.
    base(ctx)
    h2 = H2(ctx.tls_port, timeout=10)
    h2.send(h2.request(1, "/drip?type=text/html&n=3&size=40&interval=30"))
    head, data = False, b""
    while not (head and data):
        f = h2.read_frame()
        check(f is not None, "no response head and first bytes (head %s, %d bytes)" %
              (head, len(data)))
        if f[2] == 1 and f[0] == T_HEADERS:
            head = True
        if f[2] == 1 and f[0] == T_DATA:
            data += f[3]
        check(not (f[2] == 1 and f[0] == T_RST), "stream reset")
    check(data.startswith(b"d" * 39 + b"\n"), "first bytes %r" % data[:60])
    h2.close()


@case("h2/h2c-prior-knowledge", args=["--h2c"], generic=False)
def t_h2c(ctx):
    url = "http://127.0.0.1:%d" % ctx.port
    code, ver, _, body = curl_get(url + "/__vitals/healthz", http="--http2-prior-knowledge")
    check((code, ver, body) == (200, "2", b"ok"), "h2c healthz: %r" % ((code, ver, body),))
    code, ver, _, body = curl_get(url + "/html", http="--http2-prior-knowledge")
    check(code == 200 and b"/__vitals/beacon.js" in body, "h2c page: %s" % code)
    code, ver, _, body = curl_get(url + "/__vitals/healthz", http="--http1.1")
    check((code, ver, body) == (200, "1.1", b"ok"), "h1 next to h2c: %r" % ((code, ver, body),))
    r = subprocess.run(["h2load", "-n", "200", "-c", "2", "-m", "20", url + "/bytes?n=1000"],
                       capture_output=True, text=True, timeout=60)
    check("200 succeeded" in r.stdout, "h2load h2c: %s" % r.stdout[-400:])
    ctx.px.stop()
    db = sqlite3.connect(os.path.join(ctx.tmp, "vitals.db"))
    rows = db.execute("SELECT protocol, tls_version FROM requests WHERE url = '/html'").fetchall()
    check(rows == [("h2", None)], "timing records %r" % rows)


@case("h2/h2c-off-by-default", generic=False)
def t_h2c_off(ctx):
    r = curl(["--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_code}",
              "http://127.0.0.1:%d/__vitals/healthz" % ctx.port], timeout=10)
    check(r.returncode != 0 or r.stdout.decode() != "200", "preface served without --h2c")
    code, ver, _, body = curl_get("http://127.0.0.1:%d/__vitals/healthz" % ctx.port,
                                  http="--http1.1")
    check(code == 200, "h1 after a refused preface: %s" % code)


def tls_h2c_args(ctx):
    return tls_args(ctx) + ["--h2c"]


def as_host(ctx, url_host, path, http, tls=True, extra=()):
    """(status, http version, body) of path requested as https://url_host:tls_port (or
    http://url_host:port with tls=False) over the given protocol, the connection going to
    127.0.0.1 whatever the name: so url_host becomes Host, or :authority over HTTP/2."""
    port = ctx.tls_port if tls else ctx.port
    url = "%s://%s:%d%s" % ("https" if tls else "http", url_host, port, path)
    code, ver, _, body = curl_get(url, extra=["--connect-to", "::127.0.0.1:%d" % port] +
                                  list(extra), http=http)
    return code, ver, body


@case("h2/report-refuses-foreign-authority", args=tls_h2c_args, generic=False)
def t_h2_report_host(ctx):
    """DNS rebinding over every listener and protocol: without a token the report and the API
    answer only an :authority (Host over HTTP/1.1) that names the proxy; a foreign name gets 403
    naming --allow-host and --report-token, over HTTP/2 on the TLS listener, HTTP/1.1 on the TLS
    listener and h2c on the plain one. healthz and the beacon script answer every name."""
    wait_tls(ctx)
    for tls, http, want_ver in ((True, "--http2", "2"), (True, "--http1.1", "1.1"),
                                (False, "--http2-prior-knowledge", "2")):
        for name in ("evil.example", "localhost.evil.example", "127.0.0.1.evil.example"):
            for path in ("/__vitals/", "/__vitals/api/summary", "/__vitals/api/views"):
                code, ver, body = as_host(ctx, name, path, http, tls)
                check(ver == want_ver, "%s: HTTP/%s" % (http, ver))
                check(code == 403 and b"--allow-host" in body and b"--report-token" in body,
                      "%s %s %s: %s %r" % (http, name, path, code, body[:200]))
            for path in ("/__vitals/healthz", "/__vitals/beacon.js?v=x"):
                code, ver, body = as_host(ctx, name, path, http, tls)
                check(code == 200, "%s %s %s: %s" % (http, name, path, code))
        for name in ("localhost", "127.0.0.1", "[::1]", "app.localhost"):
            for path in ("/__vitals/", "/__vitals/api/summary", "/__vitals/api/views"):
                code, ver, body = as_host(ctx, name, path, http, tls)
                check(code == 200 and ver == want_ver, "%s %s %s: %s HTTP/%s %r" %
                      (http, name, path, code, ver, body[:200]))
    # A raw HTTP/2 request whose :authority differs from its Host field: :authority decides.
    for authority, host, want in (("evil.example", "localhost", b"403"),
                                  ("localhost", "evil.example", b"200")):
        r = subprocess.run(["nghttp", "-v", "-H", ":authority: " + authority,
                            "-H", "host: " + host,
                            "https://127.0.0.1:%d/__vitals/api/summary" % ctx.tls_port],
                           capture_output=True, text=True, timeout=30)
        st = [l.split(":status: ")[1].strip() for l in r.stdout.splitlines()
              if ":status: " in l and "recv" in l]
        check(st == [want.decode()], ":authority %s, host %s: statuses %r (want %s) %s" %
              (authority, host, st, want.decode(), r.stderr[-200:]))


@case("h2/report-allow-host-and-token", generic=False,
      args=lambda ctx: tls_args(ctx) + ["--allow-host", "devbox.lan"])
def t_h2_allow_host(ctx):
    """--allow-host over HTTP/2: the allowed name is answered, another is not."""
    wait_tls(ctx)
    code, ver, body = as_host(ctx, "devbox.lan", "/__vitals/api/summary", "--http2")
    check(code == 200 and ver == "2", "allowed name: %s HTTP/%s %r" % (code, ver, body[:200]))
    code, ver, body = as_host(ctx, "other.lan", "/__vitals/api/summary", "--http2")
    check(code == 403, "other name: %s" % code)


@case("h2/report-token-any-authority", generic=False,
      args=lambda ctx: tls_args(ctx) + ["--report-token", "tok3n"])
def t_h2_token_host(ctx):
    """With --report-token, any :authority is answered with the token and none without it."""
    wait_tls(ctx)
    for name in ("evil.example", "localhost"):
        code, ver, body = as_host(ctx, name, "/__vitals/api/summary", "--http2",
                                  extra=["-H", "Authorization: Bearer tok3n"])
        check(code == 200 and ver == "2", "%s with the token: %s %r" % (name, code, body[:200]))
        code, ver, body = as_host(ctx, name, "/__vitals/api/summary", "--http2")
        check(code == 401, "%s without the token: %s" % (name, code))


class H2c(H2):
    """H2 over a plain socket with prior knowledge (--h2c): no TLS in the way of the frames."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.port = port
        self.sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(T_SETTINGS, 0, 0))


# Requests HTTP/2 can express and HTTP/1.1 cannot carry (RFC 9113 8.2, 8.3): each must be refused
# (RST_STREAM or a 4xx) and none may reach the HTTP/1.1 upstream, where a CR LF in a value or a
# space in the path would start a second request or header.
DOWNGRADE = [
    ("crlf-in-value", {}, [("x-a", "a\r\nx-injected: 1")]),
    ("lf-in-value", {}, [("x-a", "a\nGET /smuggled HTTP/1.1")]),
    ("cr-in-value", {}, [("x-a", "a\rb")]),
    ("nul-in-value", {}, [("x-a", "a\x00b")]),
    ("uppercase-name", {}, [("X-A", "b")]),
    ("space-in-name", {}, [("x a", "b")]),
    ("colon-in-name", {}, [("x:a", "b")]),
    ("transfer-encoding", {}, [("transfer-encoding", "chunked")]),
    ("connection", {}, [("connection", "keep-alive")]),
    ("keep-alive", {}, [("keep-alive", "timeout=5")]),
    ("upgrade", {}, [("upgrade", "websocket")]),
    ("te-not-trailers", {}, [("te", "gzip")]),
    ("path-without-slash", {":path": "smuggled"}, []),
    ("path-with-space", {":path": "/html HTTP/1.1\r\nx: y"}, []),
    ("path-with-space-only", {":path": "/html x"}, []),
    ("path-absolute", {":path": "http://evil/html"}, []),
    ("method-with-space", {":method": "GET /smuggled HTTP/1.1\r\nx:"}, []),
    ("authority-crlf", {":authority": "x\r\nx-injected: 1"}, []),
    ("authority-userinfo", {":authority": "user@evil"}, []),
    ("authority-port-letters", {":authority": "x:abc"}, []),
    ("duplicate-path", {}, [(":path", "/other")]),
    ("pseudo-after-regular", {}, [("x-a", "b"), (":scheme", "http")]),
    ("unknown-pseudo", {}, [(":smuggle", "1")]),
    ("content-length-twice", {":method": "POST"}, [("content-length", "1"),
                                                   ("content-length", "2")]),
]


@case("h2/downgrade-refuses-what-h1-cannot-carry", args=["--h2c"], generic=False)
def t_h2_downgrade(ctx):
    h2 = H2c(ctx.port)
    sid = 1
    for name, pseudo, extra in DOWNGRADE:
        p = {":method": "GET", ":scheme": "http", ":path": "/html", ":authority": "localhost"}
        p.update(pseudo)
        h2.send(frame(T_HEADERS, F_END_HEADERS | F_END_STREAM, sid, hpack(list(p.items()) + extra)))
        while True:
            f = h2.read_frame()
            check(f is not None and f[0] != T_GOAWAY, "%s: connection ended (%r)" % (name, f))
            if f[2] != sid or f[0] not in (T_HEADERS, T_RST):
                continue
            # HEADERS: a 2xx/3xx :status is an indexed field 8..11 of the static table.
            check(f[0] == T_RST or not 0x88 <= f[3][0] <= 0x8B, "%s: answered %r" % (name, f[3][:8]))
            break
        sid += 2
    h2.send(h2.request(sid, "/html"))
    while True:
        f = h2.read_frame()
        check(f is not None, "the connection did not survive the refused streams")
        if f[2] == sid and f[0] == T_HEADERS:
            check(f[3][0] == 0x88, "a good request after the refusals: %r" % f[3][:8])
            break
    h2.close()
    st = ctx.up.stats()
    check(st["requests"] == 1 and all("smuggled" not in json.dumps(x) for x in st["log"]),
          "refused requests reached the upstream: %r" % st["log"])


if __name__ == "__main__":
    if not any(a.startswith("--filter") for a in sys.argv[1:]):
        sys.argv += ["--filter", "^(tls|h2)/"]
    sys.exit(run.main())
