#!/usr/bin/python3
"""Test upstream for vitals-proxy integration tests and benchmarks.

A deliberately hand-written HTTP/1.1 server on asyncio streams (no http.server) so that
it can misbehave on purpose: malformed heads, dying mid-body, hanging, 1xx responses,
and a WebSocket echo whose RFC 6455 handshake and framing are implemented here.

Invariants:
  * Every response body is generated on the fly and written with drain(), so a 100 MiB+
    download never sits in memory, and a slow reader exerts backpressure on this server.
  * Control endpoints under /_up/ (stats, reset) are not counted: the connection
    counter only counts connections that carried at least one non-control request, and
    the request log only records non-control requests. Tests read them directly,
    never through the proxy.
  * Large bodies use a fixed pattern (pattern_block) so a client can check every byte
    without a digest travelling in a header.

Usage: upstream.py --port N [--host 127.0.0.1] [--tls-cert PEM --tls-key PEM [--tls-max12]
[--no-tickets] [--plain-port N]]; with --port 0 the chosen port is the
first line on stdout. Endpoints are documented in ENDPOINTS below (GET /_up/help).
"""

import argparse
import asyncio
import base64
import gzip
import hashlib
import json
import os
import signal
import sys
import time
import urllib.parse
import zlib

try:
    import brotli
except ImportError:  # python3-brotli (Debian); only the br endpoints need it
    brotli = None
try:
    import zstandard
except ImportError:  # python3-zstandard (Debian); only the zstd endpoints need it
    zstandard = None

MAX_HEAD = 64 * 1024
# Trailer sections for /html?trailers=KIND: fields a proxy forwards, fields it must not
# (framing, routing, auth, content processing), a malformed section (obs-fold) and one larger
# than any head limit.
TRAILERS = {
    "ok": (b"Grpc-Status: 0\r\nX-Checksum: sha256=abc\r\nServer-Timing: app;dur=12.5\r\n"
           b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\nHost: evil\r\n"
           b"Set-Cookie: s=1\r\nAuthorization: Basic eA==\r\nContent-Type: text/plain\r\n"
           b"Connection: close\r\nTrailer: X-Checksum\r\n"),
    "fold": b"X-Checksum: sha256=abc\r\n continued\r\n",
    "big": b"".join(b"X-Big-%d: %s\r\n" % (i, b"b" * 1000) for i in range(80)),
}
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
WS_MAX_FRAME = 16 * 1024 * 1024

ENDPOINTS = """\
GET  /, /html[/ENC], /html?enc=ENC[&chunked=1][&size=N]   HTML page; ENC identity|gzip|deflate|br|zstd|auto
     ... &trailers=ok|fold|big      chunked, with a trailer section (TRAILERS)
     ... &status=N&type=CT&h=Name:value|Name2:value2&corrupt=1 (bytes garbled mid-body)
GET  /stream[?delay=S&chunks=K&enc=E]  chunked SSR-like HTML: shell, then K chunks S seconds apart
                                    (2 s); E encodes with a flush per chunk
GET  /bigpage?n=N[&enc=E]           streamed HTML document of about N bytes
GET  /bomb?mib=M                    gzip text/html decoding to M MiB (default 1024)
GET  /sse[?n=5&interval=0.3]        text/event-stream, n events interval s apart, then end
GET  /drip[?n=10&interval=0.1&size=16]  slow drip of n pieces (Content-Length framed; chunked=1;
                                    type=CT sets the Content-Type of the framed one)
GET  /bytes?n=N[&chunked=1]         N bytes of pattern_block(), streamed
POST /upload                        counts body bytes (CL or chunked) -> JSON {bytes,sha256,chunked,
                                    content_length,trailers: [[name, value]...] if chunked}
ANY  /echo                          request method/target/headers/body size as JSON
GET  /status/N                      status N (204, 304 have no body); HEAD on anything works
GET  /early-hints[?n=N]             N (1) 103 Early Hints with Link, then a 200 page
GET  /hang                          reads the request, never answers
GET  /hang-body                     sends head + part of body, then never finishes
GET  /die?mode=cl|chunked           sends part of the body, then closes the connection
GET  /malformed?kind=K              K: garbage|nocolon|cl-te|bad-cl|dup-cl|bad-chunk|obs-fold|
                                    huge-head|bad-status|close|gzip-garbage|gzip-garbage-chunked
                                    (then the connection closes)
GET  /slow?delay=S                  answers after S seconds
ANY  /api/...?delay=MS              JSON after MS milliseconds
GET  /csp                           HTML with CSP script-src 'self' 'nonce-abc' 'strict-dynamic'
GET  /close-on-next                 200, then the next request on this connection is closed unanswered
GET  /hop                           response with hop-by-hop headers (Connection: X-Up-Secret)
GET  /fragment                      text/html fragment, no doctype/html/head/body
GET  /many-headers?n=&len=&type=    n (at most 250) fields X-Field-NNN of len-byte values
GET  /_next/webpack-hmr, /_next/hmr WebSocket echo (text, binary, ping->pong, close)
GET  /_up/stats, /_up/reset, /_up/help   control (not counted)
"""


def pattern_block():
    """The 64 KiB block /bytes repeats; byte i of the body is block[i % len(block)]."""
    out = bytearray()
    seed = b"vitals-proxy-pattern"
    while len(out) < 65536:
        seed = hashlib.sha256(seed).digest()
        out += seed
    return bytes(out[:65536])


PATTERN = pattern_block()


def pattern_bytes(offset, n):
    """n bytes of the /bytes pattern starting at body offset `offset`."""
    out = bytearray()
    L = len(PATTERN)
    while n > 0:
        o = offset % L
        take = min(n, L - o)
        out += PATTERN[o:o + take]
        offset += take
        n -= take
    return bytes(out)


def html_page(title="vitals test page", size=0):
    filler = ""
    if size > 0:
        line = "<p>lorem ipsum dolor sit amet, consectetur adipiscing elit</p>\n"
        filler = line * (size // len(line) + 1)
    body = ("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<title>%s</title>\n</head>\n<body>\n<h1>%s</h1>\n%s</body>\n</html>\n"
            % (title, title, filler))
    return body.encode()


def encode(data, enc):
    if enc in ("identity", "", None):
        return data
    if enc == "gzip":
        return gzip.compress(data, mtime=0)  # the same bytes (and ETag) every second
    if enc == "deflate":
        return zlib.compress(data)  # RFC 9110 "deflate" = zlib stream
    if enc == "br":
        if brotli is None:
            raise RuntimeError("python3-brotli missing")
        return brotli.compress(data)
    if enc == "zstd":
        if zstandard is None:
            raise RuntimeError("python3-zstandard missing")
        return zstandard.ZstdCompressor().compress(data)
    raise ValueError(enc)


class StreamEncoder:
    """Incremental encoder whose flush() makes everything so far decodable (SSR flushes)."""

    def __init__(self, enc):
        self.enc = enc
        if enc == "gzip":
            self.z = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        elif enc == "deflate":
            self.z = zlib.compressobj(6)
        elif enc == "br":
            if brotli is None:
                raise RuntimeError("python3-brotli missing")
            self.z = brotli.Compressor(quality=5)
        elif enc == "zstd":
            if zstandard is None:
                raise RuntimeError("python3-zstandard missing")
            self.z = zstandard.ZstdCompressor().compressobj()
        elif enc != "identity":
            raise ValueError(enc)

    def chunk(self, data, flush=True):
        if self.enc == "identity":
            return data
        if self.enc in ("gzip", "deflate"):
            return self.z.compress(data) + (self.z.flush(zlib.Z_SYNC_FLUSH) if flush else b"")
        if self.enc == "br":
            return self.z.process(data) + (self.z.flush() if flush else b"")
        out = self.z.compress(data)
        return out + (self.z.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK) if flush else b"")

    def finish(self):
        if self.enc == "identity":
            return b""
        if self.enc == "br":
            return self.z.finish()
        return self.z.flush()


class BadRequest(Exception):
    pass


class Request:
    def __init__(self, method, target, version, headers):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers  # list of (name, value), order kept
        u = urllib.parse.urlsplit(target)
        self.path = u.path
        self.query = dict(urllib.parse.parse_qsl(u.query))
        self.query_list = urllib.parse.parse_qsl(u.query)

    def header(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def header_tokens(self, name):
        out = []
        for k, v in self.headers:
            if k.lower() == name.lower():
                out += [t.strip().lower() for t in v.split(",") if t.strip()]
        return out

    def qall(self, name):
        return [v for k, v in self.query_list if k == name]

    def qint(self, name, default):
        try:
            return int(self.query.get(name, default))
        except ValueError:
            return default

    def qfloat(self, name, default):
        try:
            return float(self.query.get(name, default))
        except ValueError:
            return default


class Upstream:
    def __init__(self):
        self.connections = 0  # connections that carried a non-control request
        self.accepted = 0     # every accepted TCP connection
        self.requests = 0
        self.log = []         # "METHOD target" of non-control requests, capped
        self.open = 0
        self.bytes_sent = 0   # /bytes body bytes handed to the kernel (backpressure checks)
        self.tls_full = 0     # --tls-cert: handshakes, full and resumed
        self.tls_resumed = 0
        self.dropped = []     # requests closed unanswered after /close-on-next
        self.cache = {}       # generated bodies worth keeping (bombs)

    # ---- request reading ----
    async def read_head(self, reader):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            raise BadRequest("head too large")
        lines = head[:-4].split(b"\r\n")
        try:
            method, target, version = lines[0].decode("latin-1").split(" ", 2)
        except ValueError:
            raise BadRequest("bad request line")
        headers = []
        for raw in lines[1:]:
            if b":" not in raw:
                raise BadRequest("bad header line")
            k, v = raw.split(b":", 1)
            headers.append((k.decode("latin-1"), v.strip().decode("latin-1")))
        return Request(method, target, version, headers)

    async def body_chunks(self, reader, req):
        """Yields the request body in pieces (CL or chunked)."""
        te = req.header_tokens("transfer-encoding")
        if te:
            if te[-1] != "chunked":
                raise BadRequest("unsupported transfer-encoding")
            while True:
                line = await reader.readuntil(b"\r\n")
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    req.trailers = []
                    while True:
                        line = await reader.readuntil(b"\r\n")
                        if line == b"\r\n":
                            return
                        k, _, v = line[:-2].decode("latin-1").partition(":")
                        req.trailers.append([k, v.strip()])
                remaining = size
                while remaining:
                    piece = await reader.read(min(remaining, 65536))
                    if not piece:
                        raise BadRequest("eof in chunk")
                    remaining -= len(piece)
                    yield piece
                if await reader.readexactly(2) != b"\r\n":
                    raise BadRequest("bad chunk end")
        else:
            cl = req.header("content-length")
            remaining = int(cl) if cl else 0
            while remaining:
                piece = await reader.read(min(remaining, 65536))
                if not piece:
                    raise BadRequest("eof in body")
                remaining -= len(piece)
                yield piece

    # ---- response helpers ----
    @staticmethod
    def head_bytes(status, reason, headers):
        out = ["HTTP/1.1 %d %s\r\n" % (status, reason)]
        for k, v in headers:
            out.append("%s: %s\r\n" % (k, v))
        out.append("\r\n")
        return "".join(out).encode("latin-1")

    async def send(self, writer, req, status, headers, body=b"", reason="OK"):
        headers = list(headers)
        if status not in (204, 304) and not (100 <= status < 200):
            headers.append(("Content-Length", str(len(body))))
        writer.write(self.head_bytes(status, reason, headers))
        if req.method != "HEAD" and status not in (204, 304):
            writer.write(body)
        await writer.drain()

    async def send_chunked(self, writer, req, status, headers, pieces, reason="OK",
                           trailers=b""):
        """pieces: async iterator of (bytes, delay_after_seconds); trailers: the raw trailer
        section (field lines with their CRLFs), sent as is."""
        headers = list(headers) + [("Transfer-Encoding", "chunked")]
        writer.write(self.head_bytes(status, reason, headers))
        await writer.drain()
        if req.method == "HEAD":
            return
        async for piece, delay in pieces:
            if piece:
                writer.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
                await writer.drain()
            if delay:
                await asyncio.sleep(delay)
        writer.write(b"0\r\n" + trailers + b"\r\n")
        await writer.drain()

    # ---- connection loop ----
    async def handle(self, reader, writer):
        self.accepted += 1
        self.open += 1
        sslobj = writer.get_extra_info("ssl_object")
        if sslobj is not None:
            if sslobj.session_reused:
                self.tls_resumed += 1
            else:
                self.tls_full += 1
        counted = False
        drop_next = False
        try:
            while True:
                try:
                    req = await self.read_head(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                except BadRequest:
                    writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                                 b"Connection: close\r\n\r\n")
                    await writer.drain()
                    return
                control = req.path.startswith("/_up/")
                if drop_next:
                    # Keep-alive race: the request arrives on a connection this server
                    # has given up on. Nothing of it is processed or counted.
                    self.dropped.append("%s %s" % (req.method, req.target))
                    return
                if req.path == "/close-on-next":
                    drop_next = True
                if not control:
                    if not counted:
                        counted = True
                        self.connections += 1
                    self.requests += 1
                    if len(self.log) < 10000:
                        self.log.append("%s %s" % (req.method, req.target))
                keep = await self.dispatch(req, reader, writer)
                if not keep or "close" in req.header_tokens("connection") \
                        or req.version == "HTTP/1.0":
                    return
        except (ConnectionError, asyncio.IncompleteReadError, BadRequest):
            return
        finally:
            self.open -= 1
            try:
                writer.close()
            except Exception:
                pass

    async def dispatch(self, req, reader, writer):
        """Serves one request. Returns False when the connection must close."""
        p = req.path
        # Drain any request body for endpoints that do not consume it.
        if p not in ("/upload", "/echo") and not p.startswith("/api/"):
            async for _ in self.body_chunks(reader, req):
                pass
        if p == "/_up/stats":
            body = json.dumps({"connections": self.connections, "accepted": self.accepted,
                               "requests": self.requests, "open": self.open,
                               "bytes_sent": self.bytes_sent, "dropped": self.dropped,
                               "tls_full": self.tls_full, "tls_resumed": self.tls_resumed,
                               "log": self.log}).encode()
            await self.send(writer, req, 200, [("Content-Type", "application/json")], body)
            return True
        if p == "/_up/reset":
            self.connections = self.requests = self.accepted = self.bytes_sent = 0
            self.tls_full = self.tls_resumed = 0
            self.log = []
            self.dropped = []
            await self.send(writer, req, 200, [("Content-Type", "text/plain")], b"reset\n")
            return True
        if p == "/_up/help":
            await self.send(writer, req, 200, [("Content-Type", "text/plain")],
                            ENDPOINTS.encode())
            return True
        if p in ("/", "/html") or p.startswith("/html/"):
            return await self.ep_html(req, writer)
        if p == "/bigpage":
            return await self.ep_bigpage(req, writer)
        if p == "/bomb":
            return await self.ep_bomb(req, writer)
        if p == "/stream":
            return await self.ep_stream(req, writer)
        if p == "/sse":
            return await self.ep_sse(req, writer)
        if p == "/drip":
            return await self.ep_drip(req, writer)
        if p == "/bytes":
            return await self.ep_bytes(req, writer)
        if p == "/upload":
            return await self.ep_upload(req, reader, writer)
        if p == "/echo":
            return await self.ep_echo(req, reader, writer)
        if p.startswith("/status/"):
            return await self.ep_status(req, writer)
        if p == "/early-hints":
            hint = self.head_bytes(103, "Early Hints", [("Link", "</style.css>; rel=preload; as=style")])
            for _ in range(max(1, min(req.qint("n", 1), 1000000))):
                writer.write(hint)
                await writer.drain()
            await asyncio.sleep(0.05)
            await self.send(writer, req, 200, [("Content-Type", "text/html; charset=utf-8")],
                            html_page("early hints"))
            return True
        if p == "/hang":
            await asyncio.sleep(3600)
            return False
        if p == "/hang-body":
            writer.write(self.head_bytes(200, "OK", [("Content-Type", "text/plain"),
                                                     ("Content-Length", "1000")]))
            writer.write(b"x" * 100)
            await writer.drain()
            await asyncio.sleep(3600)
            return False
        if p == "/die":
            return await self.ep_die(req, writer)
        if p == "/malformed":
            return await self.ep_malformed(req, writer)
        if p == "/slow":
            await asyncio.sleep(req.qfloat("delay", 2.0))
            await self.send(writer, req, 200, [("Content-Type", "text/plain")], b"slow done\n")
            return True
        if p.startswith("/api/"):
            return await self.ep_api(req, reader, writer)
        if p == "/csp":
            body = (b"<!doctype html><html><head><meta charset=\"utf-8\"><title>csp</title>"
                    b"<script nonce=\"abc\" src=\"/app.js\"></script></head>"
                    b"<body><p>csp page</p></body></html>\n")
            # ?policy=P sends policy P instead (repeatable: one header each); ?ro=P adds a
            # Report-Only policy.
            policies = req.qall("policy") or [
                "script-src 'self' 'nonce-abc' 'strict-dynamic'; object-src 'none'"]
            headers = [("Content-Type", "text/html; charset=utf-8")]
            headers += [("Content-Security-Policy", pol) for pol in policies]
            headers += [("Content-Security-Policy-Report-Only", pol) for pol in req.qall("ro")]
            await self.send(writer, req, 200, headers, body)
            return True
        if p == "/close-on-next":
            await self.send(writer, req, 200, [("Content-Type", "text/plain")],
                            b"the next request on this connection is dropped\n")
            return True
        if p == "/hop":
            await self.send(writer, req, 200, [
                ("Content-Type", "text/plain"), ("Connection", "keep-alive, X-Up-Secret"),
                ("X-Up-Secret", "1"), ("Keep-Alive", "timeout=5"),
                ("Proxy-Connection", "keep-alive"), ("X-Up-Public", "1")], b"hop\n")
            return True
        if p == "/many-headers":
            n = max(0, min(req.qint("n", 100), 250))
            vlen = max(0, min(req.qint("len", 16), 200))
            headers = [("Content-Type", req.query.get("type", "text/plain"))]
            headers += [("X-Field-%03d" % i, ("v%d-" % i + "x" * vlen)[:max(vlen, 1)])
                        for i in range(n)]
            body = html_page("many headers") if "html" in headers[0][1] else b"many headers\n"
            await self.send(writer, req, 200, headers, body)
            return True
        if p == "/fragment":
            await self.send(writer, req, 200, [("Content-Type", "text/html")],
                            b"<p>just a fragment</p>\n")
            return True
        if p in ("/_next/webpack-hmr", "/_next/hmr"):
            return await self.ep_websocket(req, reader, writer)
        await self.send(writer, req, 404, [("Content-Type", "text/plain")], b"not found\n",
                        reason="Not Found")
        return True

    # ---- endpoints ----
    async def ep_html(self, req, writer):
        enc = req.query.get("enc", "identity")
        if req.path.startswith("/html/"):
            enc = req.path[len("/html/"):]
        if enc == "auto":
            acc = req.header_tokens("accept-encoding")
            acc = [a.split(";")[0].strip() for a in acc]
            enc = next((e for e in ("zstd", "br", "gzip", "deflate") if e in acc), "identity")
        if enc not in ("identity", "gzip", "deflate", "br", "zstd"):
            await self.send(writer, req, 400, [("Content-Type", "text/plain")],
                            b"bad enc\n", reason="Bad Request")
            return True
        page = html_page("page " + enc, req.qint("size", 0))
        if req.query.get("corrupt") == "1" and enc != "identity":
            # A valid, flushed first half (the head decodes), then bytes no decoder accepts
            # (deflate: reserved block type 3; brotli: data after the last meta-block;
            # zstd: reserved block type), then the rest.
            e = StreamEncoder(enc)
            mid = len(page) // 2
            body = e.chunk(page[:mid]) + b"\xff" * 16 + e.chunk(page[mid:]) + e.finish()
        else:
            body = encode(page, enc)
        headers = [("Content-Type", req.query.get("type", "text/html; charset=utf-8")),
                   ("Vary", "Accept-Encoding"),
                   ("ETag", '"%s"' % hashlib.sha1(body).hexdigest()[:16])]
        if enc != "identity":
            headers.append(("Content-Encoding", enc))
        for h in filter(None, req.query.get("h", "").split("|")):
            k, _, v = h.partition(":")
            headers.append((k.strip(), v.strip()))
        status = req.qint("status", 200)
        trailers = TRAILERS.get(req.query.get("trailers", ""), b"")
        if req.query.get("chunked") == "1" or trailers:
            async def pieces():
                for i in range(0, len(body), 1000):
                    yield body[i:i + 1000], 0
            await self.send_chunked(writer, req, status, headers, pieces(), reason="Page",
                                    trailers=trailers)
            # a broken trailer section leaves the connection in an unknown state
            return req.query.get("trailers", "ok") == "ok"
        else:
            await self.send(writer, req, status, headers, body, reason="Page")
        return True

    async def ep_bigpage(self, req, writer):
        """A streamed HTML document of about n bytes (decoded), optionally encoded."""
        n = max(0, req.qint("n", 1 << 20))
        enc = req.query.get("enc", "identity")
        e = StreamEncoder(enc)
        headers = [("Content-Type", "text/html; charset=utf-8")]
        if enc != "identity":
            headers.append(("Content-Encoding", enc))
        para = b"".join(b"<p>row %d: %s</p>\n" % (i, hashlib.sha256(b"%d" % i).hexdigest()
                                                     .encode()) for i in range(1000))

        async def pieces():
            head = b"<!doctype html><html><head><title>big</title></head><body>\n"
            yield e.chunk(head), 0
            sent = len(head)
            while sent < n:
                take = para[:min(len(para), n - sent)]
                sent += len(take)
                self.bytes_sent += len(take)
                out = e.chunk(take, flush=False)
                if out:
                    yield out, 0
            yield e.chunk(b"</body></html>\n") + e.finish(), 0
        await self.send_chunked(writer, req, 200, headers, pieces())
        return True

    async def ep_bomb(self, req, writer):
        """text/html whose gzip body decodes to `mib` MiB: a page head, then zeros."""
        mib = max(1, req.qint("mib", 1024))
        key = ("bomb", mib)
        if key not in self.cache:
            # Built without compressing M MiB: after a full flush the deflate state is
            # reset, so every MiB of zeros compresses to the same bytes; repeat them.
            z = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
            head = b"<!doctype html><html><head><title>bomb</title></head><body>"
            a = z.compress(head) + z.flush(zlib.Z_FULL_FLUSH)
            zero = bytes(1 << 20)
            block = z.compress(zero) + z.flush(zlib.Z_FULL_FLUSH)
            again = z.compress(zero) + z.flush(zlib.Z_FULL_FLUSH)
            assert block == again
            crc = zlib.crc32(head)
            for _ in range(mib):
                crc = zlib.crc32(zero, crc)
            size = (len(head) + mib * len(zero)) & 0xFFFFFFFF
            self.cache[key] = (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + a +
                               block * mib + z.flush() + crc.to_bytes(4, "little") +
                               size.to_bytes(4, "little"))
        body = self.cache[key]
        await self.send(writer, req, 200, [("Content-Type", "text/html"),
                                           ("Content-Encoding", "gzip")], body)
        return True


    async def ep_stream(self, req, writer):
        delay = req.qfloat("delay", 2.0)
        nchunks = req.qint("chunks", 1)
        enc = req.query.get("enc", "identity")
        e = StreamEncoder(enc)
        headers = [("Content-Type", "text/html; charset=utf-8")]
        if enc != "identity":
            headers.append(("Content-Encoding", enc))

        async def pieces():
            yield e.chunk(b"<!doctype html><html><head><meta charset=\"utf-8\"><title>stream"
                          b"</title></head><body><div id=\"shell\">shell</div>"
                          b"<template id=\"B:0\"></template><!--$?-->\n"), delay
            for i in range(nchunks):
                yield e.chunk(b"<div hidden id=\"S:%d\">suspense chunk %d</div>"
                              b"<script>/* $RC('B:%d','S:%d') */</script>\n" % (i, i, i, i)), \
                    (delay if i + 1 < nchunks else 0)
            yield e.chunk(b"</body></html>\n") + e.finish(), 0
        await self.send_chunked(writer, req, 200, headers, pieces())
        return True

    async def ep_sse(self, req, writer):
        n, interval = req.qint("n", 5), req.qfloat("interval", 0.3)

        async def pieces():
            for i in range(n):
                yield (b"id: %d\nevent: tick\ndata: {\"i\":%d,\"t\":%.6f}\n\n"
                       % (i, i, time.time())), (interval if i + 1 < n else 0)
        await self.send_chunked(writer, req, 200, [("Content-Type", "text/event-stream"),
                                                   ("Cache-Control", "no-cache")], pieces())
        return True

    async def ep_drip(self, req, writer):
        n, interval = req.qint("n", 10), req.qfloat("interval", 0.1)
        size = max(1, req.qint("size", 16))
        piece = b"d" * (size - 1) + b"\n"
        if req.query.get("chunked") == "1":
            async def pieces():
                for i in range(n):
                    yield piece, interval
            await self.send_chunked(writer, req, 200, [("Content-Type", "text/plain")], pieces())
            return True
        ctype = req.query.get("type", "text/plain")
        writer.write(self.head_bytes(200, "OK", [("Content-Type", ctype),
                                                 ("Content-Length", str(n * size))]))
        await writer.drain()
        if req.method == "HEAD":
            return True
        for _ in range(n):
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(interval)
        return True

    async def ep_bytes(self, req, writer):
        n = max(0, req.qint("n", 1024))
        step = 256 * 1024
        ctype = req.query.get("type", "application/octet-stream")
        if req.query.get("chunked") == "1":
            async def pieces():
                off = 0
                while off < n:
                    take = min(step, n - off)
                    self.bytes_sent += take
                    yield pattern_bytes(off, take), 0
                    off += take
            await self.send_chunked(writer, req, 200, [("Content-Type", ctype)], pieces())
            return True
        writer.write(self.head_bytes(200, "OK", [("Content-Type", ctype),
                                                 ("Content-Length", str(n))]))
        if req.method == "HEAD":
            await writer.drain()
            return True
        off = 0
        while off < n:
            take = min(step, n - off)
            writer.write(pattern_bytes(off, take))
            self.bytes_sent += take
            await writer.drain()
            off += take
        return True

    async def maybe_continue(self, req, writer):
        if (req.header("expect") or "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()

    async def ep_upload(self, req, reader, writer):
        await self.maybe_continue(req, writer)
        h = hashlib.sha256()
        total = 0
        async for piece in self.body_chunks(reader, req):
            h.update(piece)
            total += len(piece)
        chunked = "chunked" in req.header_tokens("transfer-encoding")
        body = json.dumps({"bytes": total, "sha256": h.hexdigest(), "chunked": chunked,
                           "content_length": req.header("content-length"),
                           "trailers": getattr(req, "trailers", [])}).encode()
        await self.send(writer, req, 200, [("Content-Type", "application/json")], body)
        return True

    async def ep_echo(self, req, reader, writer):
        await self.maybe_continue(req, writer)
        total = 0
        h = hashlib.sha256()
        async for piece in self.body_chunks(reader, req):
            total += len(piece)
            h.update(piece)
        peer = writer.get_extra_info("peername")
        body = json.dumps({"method": req.method, "target": req.target, "version": req.version,
                           "headers": req.headers, "body_bytes": total,
                           "body_sha256": h.hexdigest(),
                           "peer": list(peer)[:2] if peer else None}).encode()
        await self.send(writer, req, 200, [("Content-Type", "application/json")], body)
        return True

    async def ep_status(self, req, writer):
        try:
            code = int(req.path.rsplit("/", 1)[1])
        except ValueError:
            code = 400
        if not 200 <= code <= 599:
            code = 400
        headers = [("Content-Type", "text/plain"), ("X-Status", str(code))]
        if code == 304:
            headers = [("ETag", '"v1"'), ("X-Status", "304")]
        await self.send(writer, req, code, headers, b"status %d\n" % code, reason="Status")
        return True

    async def ep_die(self, req, writer):
        if req.query.get("mode") == "chunked":
            writer.write(self.head_bytes(200, "OK", [("Content-Type", "text/plain"),
                                                     ("Transfer-Encoding", "chunked")]))
            for _ in range(3):
                writer.write(b"100\r\n" + b"c" * 256 + b"\r\n")
                await writer.drain()
                await asyncio.sleep(0.05)
        else:
            writer.write(self.head_bytes(200, "OK", [("Content-Type", "text/plain"),
                                                     ("Content-Length", "100000")]))
            writer.write(b"x" * 30000)
            await writer.drain()
            await asyncio.sleep(0.05)
        # abort: RST-free close after partial body
        return False

    async def ep_malformed(self, req, writer):
        kind = req.query.get("kind", "garbage")
        heads = {
            "garbage": b"THIS IS NOT HTTP\r\n\r\n",
            "nocolon": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nBroken header line\r\n\r\nok",
            "cl-te": (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n"
                      b"\r\n2\r\nok\r\n0\r\n\r\n"),
            "bad-cl": b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\nok",
            "dup-cl": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!",
            "bad-chunk": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                          b"zz\r\nok\r\n0\r\n\r\n"),
            "obs-fold": b"HTTP/1.1 200 OK\r\nX-A: 1\r\n  folded\r\nContent-Length: 2\r\n\r\nok",
            "close": b"",
            "huge-head": (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" +
                          b"".join(b"X-Big-%d: %s\r\n" % (i, b"h" * 8000) for i in range(128)) +
                          b"\r\nok"),
            "bad-status": b"HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nok",
            # A gzip header followed by garbage, in one write with the head.
            "gzip-garbage": (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                             b"Content-Encoding: gzip\r\nContent-Length: 36\r\n\r\n"
                             b"\x1f\x8b\x08\x00" + b"garbage!" * 4),
            "gzip-garbage-chunked": (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                                     b"Content-Encoding: gzip\r\nTransfer-Encoding: chunked"
                                     b"\r\n\r\n24\r\n\x1f\x8b\x08\x00" + b"garbage!" * 4 +
                                     b"\r\n0\r\n\r\n"),
        }
        writer.write(heads.get(kind, heads["garbage"]))
        await writer.drain()
        return False

    async def ep_api(self, req, reader, writer):
        total = 0
        async for piece in self.body_chunks(reader, req):
            total += len(piece)
        await asyncio.sleep(req.qint("delay", 0) / 1000.0)
        body = json.dumps({"ok": True, "path": req.path, "method": req.method,
                           "body_bytes": total}).encode()
        await self.send(writer, req, 200, [("Content-Type", "application/json")], body)
        return True

    # ---- WebSocket (RFC 6455) ----
    async def ep_websocket(self, req, reader, writer):
        key = req.header("sec-websocket-key")
        if "websocket" not in req.header_tokens("upgrade") or \
                "upgrade" not in req.header_tokens("connection") or not key:
            await self.send(writer, req, 426, [("Content-Type", "text/plain"),
                                               ("Upgrade", "websocket")],
                            b"websocket upgrade required\n", reason="Upgrade Required")
            return True
        accept = base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()
        writer.write(self.head_bytes(101, "Switching Protocols", [
            ("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", accept)]))
        await writer.drain()
        while True:
            try:
                opcode, payload = await ws_read_frame(reader, require_mask=True)
            except (asyncio.IncompleteReadError, ConnectionError, ValueError):
                return False
            if opcode in (1, 2):
                writer.write(ws_frame(opcode, payload))
            elif opcode == 9:
                writer.write(ws_frame(10, payload))
            elif opcode == 8:
                writer.write(ws_frame(8, payload[:2]))
                await writer.drain()
                return False
            await writer.drain()


async def ws_read_frame(reader, require_mask):
    """Reads one (unfragmented or continuation-joined) frame; returns (opcode, payload)."""
    opcode_first = None
    data = b""
    while True:
        b0, b1 = await reader.readexactly(2)
        fin, opcode = b0 & 0x80, b0 & 0x0F
        masked, ln = b1 & 0x80, b1 & 0x7F
        if require_mask and not masked:
            raise ValueError("unmasked client frame")
        if ln == 126:
            ln = int.from_bytes(await reader.readexactly(2), "big")
        elif ln == 127:
            ln = int.from_bytes(await reader.readexactly(8), "big")
        if ln > WS_MAX_FRAME:
            raise ValueError("frame too large")
        mask = await reader.readexactly(4) if masked else None
        payload = await reader.readexactly(ln)
        if mask:
            payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        if opcode >= 8:
            return opcode, payload  # control frames are never fragmented
        if opcode_first is None:
            opcode_first = opcode
        data += payload
        if fin:
            return opcode_first, data


def ws_frame(opcode, payload, mask=None):
    """Builds one FIN frame; mask (4 bytes) for client-to-server frames."""
    out = bytearray([0x80 | opcode])
    mbit = 0x80 if mask else 0
    n = len(payload)
    if n < 126:
        out.append(mbit | n)
    elif n < 65536:
        out.append(mbit | 126)
        out += n.to_bytes(2, "big")
    else:
        out.append(mbit | 127)
        out += n.to_bytes(8, "big")
    if mask:
        out += mask
        payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
    return bytes(out) + payload


async def main_async(args):
    up = Upstream()
    ctx = None
    if args.tls_cert:
        # HTTPS origin (tests of --upstream https://): TLS 1.2+, ALPN http/1.1, session
        # tickets unless --no-tickets (then no resumption at all).
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if args.tls_max12:
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        ctx.set_alpn_protocols(["http/1.1"])
        if args.no_tickets:
            ctx.num_tickets = 0
            ctx.options |= ssl.OP_NO_TICKET
    server = await asyncio.start_server(up.handle, args.host, args.port, limit=MAX_HEAD,
                                        backlog=4096, reuse_address=True, ssl=ctx,
                                        ssl_handshake_timeout=10 if ctx else None)
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)
    if ctx and args.plain_port is not None:
        # The same endpoints and counters in plain HTTP too (control, direct comparisons).
        plain = await asyncio.start_server(up.handle, args.host, args.plain_port,
                                           limit=MAX_HEAD, backlog=4096, reuse_address=True)
        print(plain.sockets[0].getsockname()[1], flush=True)
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, lambda: stop.done() or stop.set_result(None))
    async with server:
        await stop


def main():
    ap = argparse.ArgumentParser(description="vitals-proxy test upstream")
    ap.add_argument("--port", type=int, default=3000)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate (chain)")
    ap.add_argument("--tls-key", help="the private key of --tls-cert")
    ap.add_argument("--tls-max12", action="store_true", help="TLS 1.2 only")
    ap.add_argument("--no-tickets", action="store_true", help="no session tickets")
    ap.add_argument("--plain-port", type=int,
                    help="with --tls-cert: also serve plain HTTP on this port (printed second)")
    args = ap.parse_args()
    try:
        asyncio.run(main_async(args))
    except OSError as e:
        print("upstream.py: %s" % e, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
