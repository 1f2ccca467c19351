#!/usr/bin/python3
"""Benchmark of issue 3: HTML injection through vitals-proxy vs nginx sub_filter.

Design:
  * Origin: a static nginx (worker_processes 2) serving one generated page of 50 KiB:
    varied markup (nav, articles, tables, lists, forms) from a fixed-seed word list with
    Zipf-like frequencies, so it compresses about 3:1 (gzip -6) like a real page rather than
    like a repeated phrase. Its gzip ratio is printed and recorded. The gzip body is
    compressed once, before the run (level 1, nginx's default gzip level), and served by
    gzip_static (with gzip_proxied any, since vitals-proxy adds Via). Fairness: nginx
    sub_filter has to ask the origin for identity, vitals-proxy asks for what its client
    accepts; compressing on the fly at the origin would charge the proxy's runs, and only
    its runs, about 0.5 ms of origin CPU per request on the same two cores (the origin CPU
    column shows what each run cost the origin).
  * Subject: vitals-proxy --workers 1 --quiet (it records every request in SQLite).
    Peer: nginx, worker_processes 1, upstream keepalive, doing the same job: sub_filter
    inserts the very tag the proxy inserts (copied from a proxy response, with
    data-vid="$request_id") after <head>; proxy_set_header Accept-Encoding "" plus
    gunzip on / gzip on so that a gzip client still gets gzip.
  * Before measuring, every target is checked: the decoded body must be the page with the
    tag exactly once, right after <head>, and Content-Encoding must match the request.
  * Throughput: wrk, BENCH_CONNS (64) connections, BENCH_DURATION s (10) per run, without
    and with Accept-Encoding: gzip, for direct/nginx/proxy.
  * First byte: tests/support/upstream.py /stream sends the document head, then the rest
    after BENCH_TTFB_DELAY s. A raw-socket client times request-sent -> first body byte,
    BENCH_TTFB_REPS times per target; the median minus direct's median is the added delay.
  * Every process started here is stopped here, by pid (bench.py's start/stop_all).
"""

import datetime
import gzip
import http.client
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # importing bench.py must not leave bench/__pycache__
sys.path.insert(0, HERE)
import bench  # noqa: E402  (helpers: free_port, start, stop_all, nginx_conf, to_ms)

DURATION = int(os.environ.get("BENCH_DURATION", "10"))
CONNS = int(os.environ.get("BENCH_CONNS", "64"))
THREADS = int(os.environ.get("BENCH_THREADS", "1"))
REPEAT = max(1, int(os.environ.get("BENCH_REPEAT", "1")))
TTFB_REPS = max(1, int(os.environ.get("BENCH_TTFB_REPS", "21")))
TTFB_DELAY = float(os.environ.get("BENCH_TTFB_DELAY", "0.2"))
PAGE_BYTES = int(os.environ.get("BENCH_PAGE_BYTES", str(50 * 1024)))
VP_BIN = os.path.abspath(os.environ.get("VP_BIN", "./vitals-proxy"))
UPSTREAM_PY = os.path.join(os.path.dirname(HERE), "tests", "support", "upstream.py")
SEED = 20240603
TAG_RE = re.compile(rb'<script src="/__vitals/beacon\.js[^"]*" data-vid="[0-9a-f]+"'
                    rb'(?: nonce="[^"]*")? async=""></script>')


def make_page(nbytes, seed=SEED):
    """Deterministic, varied HTML of exactly nbytes (padding goes in a final comment)."""
    rnd = random.Random(seed)
    cons, vows = "bcdfghjklmnprstvwz", "aeiou"

    def word():
        return "".join(rnd.choice(cons) + rnd.choice(vows) for _ in range(rnd.randint(1, 4)))
    vocab = [word() for _ in range(1500)] + ["the", "and", "of", "to", "in", "for", "with",
                                             "on", "is", "your", "our", "from"] * 20
    classes = ["card", "grid", "row", "col", "btn", "btn-primary", "muted", "lead", "title",
               "badge", "nav-link", "item", "media", "container", "flex", "gap-2", "p-4",
               "text-sm", "text-lg", "font-bold", "rounded", "shadow", "hidden", "md:flex"]

    zipf = [1.0 / (i + 1) for i in range(len(vocab))]  # word frequencies fall off like prose

    def words(lo, hi):
        return " ".join(rnd.choices(vocab, zipf, k=rnd.randint(lo, hi)))

    def cls():
        return " ".join(rnd.sample(classes, rnd.randint(1, 4)))

    def href():
        return "/" + "/".join(rnd.choice(vocab) for _ in range(rnd.randint(1, 3))) + \
            ("?id=%d" % rnd.randint(1, 99999) if rnd.random() < 0.3 else "")

    head = ('<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            '<title>%s</title>\n<meta name="description" content="%s">\n'
            '<link rel="stylesheet" href="/_next/static/css/%08x.css">\n'
            '<link rel="preload" as="font" href="/fonts/%08x.woff2" crossorigin="">\n'
            '<script src="/_next/static/chunks/%08x.js" defer=""></script>\n</head>\n'
            '<body class="%s">\n<header class="%s"><nav>\n' % (
                words(3, 6).title(), words(12, 20), rnd.getrandbits(32), rnd.getrandbits(32),
                rnd.getrandbits(32), cls(), cls()))
    parts = [head]
    for _ in range(8):
        parts.append('  <a class="%s" href="%s">%s</a>\n' % (cls(), href(), words(1, 2)))
    parts.append("</nav></header>\n<main>\n")
    tail = "</main>\n<footer class=\"%s\"><p>%s</p></footer>\n</body>\n</html>\n" % (
        cls(), words(6, 12))
    size = sum(len(p) for p in parts) + len(tail)
    while True:
        kind = rnd.random()
        if kind < 0.45:
            s = '<article class="%s" id="a-%d">\n<h2>%s</h2>\n' % (
                cls(), rnd.randint(1, 10 ** 6), words(3, 8).capitalize())
            for _ in range(rnd.randint(1, 3)):
                s += "<p>%s <a href=\"%s\">%s</a> %s.</p>\n" % (
                    words(10, 40).capitalize(), href(), words(1, 3), words(5, 25))
            s += "</article>\n"
        elif kind < 0.65:
            s = '<ul class="%s">\n' % cls()
            for _ in range(rnd.randint(3, 8)):
                s += '  <li data-key="%x"><a href="%s">%s</a></li>\n' % (
                    rnd.getrandbits(24), href(), words(2, 5))
            s += "</ul>\n"
        elif kind < 0.8:
            s = '<table class="%s"><thead><tr><th>%s</th><th>%s</th><th>%s</th></tr></thead>' \
                "<tbody>\n" % (cls(), words(1, 2), words(1, 2), words(1, 2))
            for _ in range(rnd.randint(3, 6)):
                s += "<tr><td>%s</td><td>%d</td><td>%.2f</td></tr>\n" % (
                    words(1, 3), rnd.randint(0, 5000), rnd.random() * 1000)
            s += "</tbody></table>\n"
        elif kind < 0.92:
            s = '<div class="%s"><img src="/img/%08x.webp" alt="%s" width="%d" height="%d" ' \
                'loading="lazy"><span class="%s">%s</span></div>\n' % (
                    cls(), rnd.getrandbits(32), words(2, 6), rnd.choice([320, 640, 1280]),
                    rnd.choice([180, 360, 720]), cls(), words(2, 8))
        else:
            s = '<form class="%s" action="%s" method="post"><label for="f%d">%s</label>' \
                '<input id="f%d" name="%s" type="text" placeholder="%s">' \
                '<button class="%s" type="submit">%s</button></form>\n' % (
                    cls(), href(), rnd.randint(1, 999), words(1, 3), rnd.randint(1, 999),
                    rnd.choice(vocab), words(1, 3), cls(), words(1, 2))
        if size + len(s) > nbytes - 16:
            break
        parts.append(s)
        size += len(s)
    pad = nbytes - size - len("<!--  -->\n")
    parts.append("<!-- %s -->\n" % "".join(rnd.choice(vocab + [" "] * 300)
                                         for _ in range(pad * 2))[:max(pad, 0)])
    parts.append(tail)
    page = "".join(parts).encode()
    return page[:nbytes] if len(page) > nbytes else page


def cpu_ticks(pids):
    """utime + stime of the given processes (all their threads), in clock ticks."""
    total = 0
    for pid in pids:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total


def nginx_workers(p):
    """The worker pids of an nginx master started by bench.start."""
    for _ in range(100):
        try:
            with open("/proc/%d/task/%d/children" % (p.pid, p.pid)) as f:
                kids = [int(k) for k in f.read().split()]
            if kids:
                return kids
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit("bench: no nginx workers under %d" % p.pid)


def wrk(port, path, conns, threads, headers=(), cpu=None):
    """One wrk run; cpu maps a name to the pids whose CPU time per request is recorded."""
    argv = ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % DURATION, "--latency"]
    for h in headers:
        argv += ["-H", h]
    cpu = cpu or {}
    hz = os.sysconf("SC_CLK_TCK")
    before = dict((k, cpu_ticks(v)) for k, v in cpu.items())
    out = subprocess.run(argv + ["http://127.0.0.1:%d%s" % (port, path)],
                         capture_output=True, text=True, timeout=DURATION + 60).stdout
    after = dict((k, cpu_ticks(v)) for k, v in cpu.items())
    nreq = re.search(r"(\d+) requests in", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    lat = dict((m.group(1), bench.to_ms(m.group(2), m.group(3)))
               for m in re.finditer(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M))
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock_errs = re.search(r"Socket errors: (.*)", out)
    xfer = re.search(r"Transfer/sec:\s+([\d.]+)([KMG]?B)", out)
    if not rps or "50" not in lat or "99" not in lat:
        raise SystemExit("bench: cannot parse wrk output:\n" + out)
    mib = float(xfer.group(1)) * {"B": 1.0 / 2 ** 20, "KB": 1.0 / 1024, "MB": 1.0,
                                  "GB": 1024.0}[xfer.group(2)] if xfer else 0.0
    n = int(nreq.group(1)) if nreq else 0
    us = dict((k, (after[k] - before[k]) * 1e6 / hz / n if n else 0.0) for k in cpu)
    return {"rps": float(rps.group(1)), "p50_ms": lat["50"], "p99_ms": lat["99"],
            "mib_s": mib, "non2xx": int(errs.group(1)) if errs else 0,
            "socket_errors": sock_errs.group(1) if sock_errs else "", "requests": n,
            "cpu_us": us}


def wrk_median(port, path, conns, threads, headers=(), cpu=None):
    runs = sorted((wrk(port, path, conns, threads, headers, cpu) for _ in range(REPEAT)),
                  key=lambda r: r["p99_ms"])
    best = dict(runs[len(runs) // 2])
    best["repeats"] = [dict(rps=r["rps"], p50_ms=r["p50_ms"], p99_ms=r["p99_ms"],
                            cpu_us=r["cpu_us"]) for r in runs]
    # CPU per request: the median over the repeats, each key on its own.
    best["cpu_us"] = dict((k, statistics.median(r["cpu_us"][k] for r in runs))
                          for k in best["cpu_us"])
    return best


def fetch(port, path, accept_gzip):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    hdrs = {"Accept-Encoding": "gzip"} if accept_gzip else {}
    c.request("GET", path, headers=hdrs)
    r = c.getresponse()
    raw = r.read()
    enc = (r.getheader("Content-Encoding") or "identity").lower()
    c.close()
    body = gzip.decompress(raw) if enc == "gzip" else raw
    return r.status, enc, raw, body


def verify(name, port, page, accept_gzip, want_tag):
    """The decoded body is the page with exactly one tag after <head>; returns wire bytes."""
    status, enc, raw, body = fetch(port, "/page.html", accept_gzip)
    want_enc = "gzip" if accept_gzip else "identity"
    if status != 200 or enc != want_enc:
        raise SystemExit("bench: %s: status %d, Content-Encoding %s (wanted 200, %s)" % (
            name, status, enc, want_enc))
    tags = TAG_RE.findall(body)
    if not want_tag:
        if body != page:
            raise SystemExit("bench: %s: body differs from the page" % name)
        return len(raw), None
    if len(tags) != 1:
        raise SystemExit("bench: %s: %d injected tags (wanted 1)" % (name, len(tags)))
    at = page.index(b"<head>") + len(b"<head>")
    if body != page[:at] + tags[0] + page[at:]:
        raise SystemExit("bench: %s: body is not the page with the tag after <head>" % name)
    return len(raw), tags[0]


def first_body_byte(port, path):
    """Seconds from sending the request to the first byte of the (de-chunked) body."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    req = ("GET %s HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n" % path).encode()
    buf = b""
    t0 = time.perf_counter()
    s.sendall(req)
    first = None
    try:
        while first is None:
            chunk = s.recv(65536)
            if not chunk:
                raise SystemExit("bench: EOF before the first body byte on %s" % path)
            buf += chunk
            if b"\r\n\r\n" not in buf:
                continue
            head, body = buf.split(b"\r\n\r\n", 1)
            if b"transfer-encoding: chunked" in head.lower():
                line_end = body.find(b"\r\n")
                if line_end >= 0:
                    size = int(body[:line_end].split(b";")[0], 16)
                    if size == 0:
                        raise SystemExit("bench: empty chunked body on %s" % path)
                    if len(body) > line_end + 2:
                        first = time.perf_counter() - t0
            elif body:
                first = time.perf_counter() - t0
        first_piece = buf
        while True:  # read to the end, so the whole response is checked
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    finally:
        s.close()
    if not head.startswith(b"HTTP/1.1 200"):
        raise SystemExit("bench: %s: %r" % (path, head[:80]))
    return first, first_piece, buf


def nginx_peer_body(origin_port, port, tag):
    # nginx sub_filter: the replacement may contain variables; quote for nginx's parser.
    repl = "<head>" + re.sub(rb'data-vid="[0-9a-f]+"', b'data-vid="$request_id"',
                             tag).decode()
    return """  upstream origin { server 127.0.0.1:%d; keepalive 64; }
  server { listen 127.0.0.1:%d backlog=8192;
    location / { proxy_pass http://origin; proxy_http_version 1.1;
      proxy_set_header Connection ""; proxy_set_header Accept-Encoding "";
      gunzip on; gzip on; gzip_proxied any; sub_filter_once on;
      sub_filter '<head>' '%s'; } }""" % (origin_port, port, repl)


def main():
    tmp = tempfile.mkdtemp(prefix="vp-injbench-")
    origin_port, nginx_port, proxy_port = bench.free_port(), bench.free_port(), bench.free_port()
    stream_port, sproxy_port, snginx_port = (bench.free_port(), bench.free_port(),
                                             bench.free_port())
    www = os.path.join(tmp, "www")
    os.makedirs(www)
    page = make_page(PAGE_BYTES)
    with open(os.path.join(www, "page.html"), "wb") as f:
        f.write(page)
    with open(os.path.join(www, "page.html.gz"), "wb") as f:
        f.write(gzip.compress(page, 1, mtime=0))
    gz6 = len(gzip.compress(page, 6))
    gz1 = len(zlib.compress(page, 1))
    print("bench: page %d bytes, gzip -6 %d bytes (%.2f:1), level 1 %d bytes (%.2f:1)" % (
        len(page), gz6, len(page) / gz6, gz1, len(page) / gz1), file=sys.stderr, flush=True)
    res = {"date": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
           "duration_s": DURATION, "repeat": REPEAT, "connections": CONNS,
           "wrk_threads": THREADS, "cpus": os.cpu_count(),
           "loadavg": open("/proc/loadavg").read().split()[0],
           "page": {"bytes": len(page), "gzip6_bytes": gz6, "ratio6": len(page) / gz6,
                    "gzip1_bytes": gz1, "ratio1": len(page) / gz1, "seed": SEED},
           "runs": [], "ttfb": [], "ttfb_delay_s": TTFB_DELAY, "ttfb_reps": TTFB_REPS}
    ok = False
    try:
        origin = bench.start(bench.nginx_conf(tmp, "origin", """  gzip_static on; gzip_proxied any;
  server { listen 127.0.0.1:%d reuseport backlog=8192;
    root %s; location / { default_type text/html; } }""" % (origin_port, www), 2),
            origin_port, os.path.join(tmp, "origin.log"))
        proxy = bench.start([VP_BIN, "--listen", "127.0.0.1:%d" % proxy_port, "--upstream",
                     "http://127.0.0.1:%d" % origin_port, "--db",
                     os.path.join(tmp, "bench.db"), "--workers", "1", "--quiet"],
                    proxy_port, os.path.join(tmp, "proxy.log"))
        _, tag = verify("vitals-proxy", proxy_port, page, False, True)
        res["tag"] = tag.decode()
        peer = bench.start(bench.nginx_conf(tmp, "nginx", nginx_peer_body(origin_port, nginx_port,
                                                                          tag), 1),
                    nginx_port, os.path.join(tmp, "nginx.log"))
        targets = [("direct", origin_port, False), ("nginx sub_filter", nginx_port, True),
                   ("vitals-proxy", proxy_port, True)]
        origin_pids = nginx_workers(origin)
        pids = {"direct": [], "nginx sub_filter": nginx_workers(peer),
                "vitals-proxy": [proxy.pid]}
        wire = {}
        for enc in ("identity", "gzip"):
            for name, port, inj in targets:
                wire[(name, enc)] = verify(name, port, page, enc == "gzip", inj)[0]
        for enc in ("identity", "gzip"):
            hdrs = ("Accept-Encoding: gzip",) if enc == "gzip" else ()
            for name, port, _ in targets:
                print("bench: %s %s, %d connections, %d s" % (name, enc, CONNS, DURATION),
                      file=sys.stderr, flush=True)
                cpu = {"origin": origin_pids}
                if pids[name]:
                    cpu["target"] = pids[name]
                r = wrk_median(port, "/page.html", CONNS, THREADS, hdrs, cpu)
                r.update(target=name, enc=enc, wire_bytes=wire[(name, enc)])
                res["runs"].append(r)
        # Chunked gzip origin: nginx compressing on the fly into 1 KiB gzip buffers, so each
        # response arrives as some twenty 1 KiB chunks, most of them in one read. Proxy only
        # (nginx sub_filter would ask this origin for identity): its CPU per request shows
        # what one encoder flush per upstream chunk, rather than per read batch, costs.
        chunk_port, cproxy_port = bench.free_port(), bench.free_port()
        corigin = bench.start(bench.nginx_conf(tmp, "corigin", """  gzip on; gzip_proxied any;
  gzip_buffers 64 1k;
  server { listen 127.0.0.1:%d reuseport backlog=8192;
    root %s; location / { default_type text/html; } }""" % (chunk_port, www), 2),
                              chunk_port, os.path.join(tmp, "corigin.log"))
        cproxy = bench.start([VP_BIN, "--listen", "127.0.0.1:%d" % cproxy_port, "--upstream",
                              "http://127.0.0.1:%d" % chunk_port, "--db",
                              os.path.join(tmp, "chunked.db"), "--workers", "1", "--quiet"],
                             cproxy_port, os.path.join(tmp, "cproxy.log"))
        wire[("vitals-proxy, 1 KiB gzip chunks", "gzip")] = verify(
            "vitals-proxy (chunked origin)", cproxy_port, page, True, True)[0]
        print("bench: vitals-proxy, chunked gzip origin, %d connections, %d s" % (
            CONNS, DURATION), file=sys.stderr, flush=True)
        r = wrk_median(cproxy_port, "/page.html", CONNS, THREADS, ("Accept-Encoding: gzip",),
                       {"target": [cproxy.pid], "origin": nginx_workers(corigin)})
        r.update(target="vitals-proxy, 1 KiB gzip chunks", enc="gzip",
                 wire_bytes=wire[("vitals-proxy, 1 KiB gzip chunks", "gzip")])
        res["chunked"] = r
        # Streaming page: the slow origin, and each proxy in front of it.
        up = subprocess.Popen([sys.executable, UPSTREAM_PY, "--port", str(stream_port)],
                              stdout=subprocess.DEVNULL, stderr=open(os.path.join(
                                  tmp, "upstream.log"), "wb"), stdin=subprocess.DEVNULL)
        bench.procs.append(up)
        bench.wait_port(stream_port, up)
        bench.start([VP_BIN, "--listen", "127.0.0.1:%d" % sproxy_port, "--upstream",
                     "http://127.0.0.1:%d" % stream_port, "--db",
                     os.path.join(tmp, "stream.db"), "--workers", "1", "--quiet"],
                    sproxy_port, os.path.join(tmp, "sproxy.log"))
        bench.start(bench.nginx_conf(tmp, "snginx", nginx_peer_body(stream_port, snginx_port,
                                                                    tag), 1),
                    snginx_port, os.path.join(tmp, "snginx.log"))
        path = "/stream?delay=%g&chunks=1" % TTFB_DELAY
        for name, port, inj in (("direct", stream_port, False),
                                ("nginx sub_filter", snginx_port, True),
                                ("vitals-proxy", sproxy_port, True)):
            print("bench: first body byte via %s, %d x %g s stream" % (
                name, TTFB_REPS, TTFB_DELAY), file=sys.stderr, flush=True)
            times, early_tag = [], 0
            for _ in range(TTFB_REPS):
                t, first_piece, whole = first_body_byte(port, path)
                if inj and len(TAG_RE.findall(whole)) != 1:
                    raise SystemExit("bench: %s: stream not injected exactly once" % name)
                if t >= TTFB_DELAY:
                    print("bench: warning: %s held the head for the whole delay" % name,
                          file=sys.stderr)
                early_tag += 1 if TAG_RE.search(first_piece) else 0
                times.append(t)
            res["ttfb"].append({"target": name, "median_ms": statistics.median(times) * 1e3,
                                "min_ms": min(times) * 1e3, "max_ms": max(times) * 1e3,
                                "tag_in_first_read": early_tag, "all_ms": [
                                    t * 1e3 for t in times]})
        ok = True
    finally:
        bench.stop_all()
        logs = {}
        for log in ("proxy.log", "sproxy.log", "upstream.log"):
            p = os.path.join(tmp, log)
            if os.path.exists(p) and os.path.getsize(p):
                with open(p, "rb") as f:
                    logs[log] = f.read()[-2000:].decode("utf-8", "replace")
        for sub in () if ok else ("nginx", "snginx", "origin"):
            p = os.path.join(tmp, sub, "error.log")
            if os.path.exists(p) and os.path.getsize(p):
                with open(p, "rb") as f:
                    logs[sub + "/error.log"] = f.read()[-2000:].decode("utf-8", "replace")
        shutil.rmtree(tmp, ignore_errors=True)
        for k, v in logs.items():
            print("bench: %s tail:\n%s" % (k, v), file=sys.stderr)

    md = render(res)
    print(md)
    outdir = os.path.join(HERE, "results")
    os.makedirs(outdir, exist_ok=True)
    stamp = datetime.datetime.utcnow().strftime("%Y-%m-%d-%H%M%S")
    for ext, data in (("md", md), ("json", json.dumps(res, indent=1))):
        with open(os.path.join(outdir, "inject-%s.%s" % (stamp, ext)), "w") as f:
            f.write(data)
    print("bench: wrote bench/results/inject-%s.md and .json" % stamp, file=sys.stderr)
    return 0


def render(res):
    pg = res["page"]
    out = ["# vitals-proxy injection benchmark %s" % res["date"], "",
           "Page: %d bytes of generated HTML (seed %d), gzip -6 %.2f:1, gzip -1 %.2f:1. "
           "Origin: static nginx, 2 workers, gzip_static (page compressed once at level 1), "
           "gzip_proxied any. "
           "nginx sub_filter: worker_processes 1, upstream keepalive, Accept-Encoding \"\" "
           "upstream, gunzip + gzip (level 1) to the client, access_log off (records nothing). "
           "vitals-proxy: --workers 1 --quiet, records every request in SQLite. wrk on "
           "loopback, %d connections, %d thread(s), %d s per run (median-p99 of %d), %s CPUs "
           "(shared), load average at start %s." % (
               pg["bytes"], pg["seed"], pg["ratio6"], pg["ratio1"], res["connections"],
               res["wrk_threads"], res["duration_s"], res["repeat"], res["cpus"],
               res["loadavg"]), "",
           "| target | encoding | req/s | p50 ms | p99 ms | vs nginx | vs direct | "
           "bytes/resp | CPU µs/req | origin CPU µs/req | errors |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    by = {(r["target"], r["enc"]): r for r in res["runs"]}
    for r in res["runs"]:
        ng, di = by[("nginx sub_filter", r["enc"])], by[("direct", r["enc"])]
        err = "%d non-2xx" % r["non2xx"] if r["non2xx"] else ""
        if r["socket_errors"]:
            err += " sock: " + r["socket_errors"]
        cpu = r["cpu_us"]
        out.append("| %s | %s | %.0f | %.3f | %.3f | %.2f× | %.2f× | %d | %s | %.1f | %s |" % (
            r["target"], r["enc"], r["rps"], r["p50_ms"], r["p99_ms"], r["rps"] / ng["rps"],
            r["rps"] / di["rps"], r["wire_bytes"],
            "%.1f" % cpu["target"] if "target" in cpu else "–", cpu["origin"], err))
    out += ["", "Targets (issue 3): vitals-proxy ≥ 1.5× nginx req/s on identity, ≥ 1.0× on "
            "gzip. Identity: %.2f×; gzip: %.2f×." % (
                by[("vitals-proxy", "identity")]["rps"] / by[("nginx sub_filter",
                                                              "identity")]["rps"],
                by[("vitals-proxy", "gzip")]["rps"] / by[("nginx sub_filter", "gzip")]["rps"]),
            "", "CPU time per request (utime + stime over the run / requests served; the proxy "
            "includes its SQLite writer thread), nginx / vitals-proxy: identity %.2f, gzip %.2f "
            "(above 1: the proxy spends less CPU per request)." % tuple(
                by[("nginx sub_filter", e)]["cpu_us"]["target"] /
                by[("vitals-proxy", e)]["cpu_us"]["target"] for e in ("identity", "gzip")),
            "", "Chunked gzip origin (nginx gzip on the fly, gzip_buffers 64 1k: some twenty "
            "1 KiB chunks per response), vitals-proxy only: %.0f req/s, p50 %.3f ms, CPU %.1f "
            "µs/req, origin CPU %.1f µs/req, %d bytes/resp." % (
                res["chunked"]["rps"], res["chunked"]["p50_ms"],
                res["chunked"]["cpu_us"]["target"], res["chunked"]["cpu_us"]["origin"],
                res["chunked"]["wire_bytes"]),
            "", "Streaming page (tests/support/upstream.py /stream: head, then the rest after "
            "%g s), time from request sent to the first body byte, %d repetitions, fresh "
            "connection each:" % (res["ttfb_delay_s"], res["ttfb_reps"]), "",
            "| target | median ms | min ms | max ms | added (median) ms | tag in first read |",
            "|---|---:|---:|---:|---:|---:|"]
    d = [t for t in res["ttfb"] if t["target"] == "direct"][0]
    for t in res["ttfb"]:
        out.append("| %s | %.3f | %.3f | %.3f | %.3f | %d/%d |" % (
            t["target"], t["median_ms"], t["min_ms"], t["max_ms"],
            t["median_ms"] - d["median_ms"], t["tag_in_first_read"], res["ttfb_reps"]))
    out += ["", "Target: first-byte delay ≤ 1 ms added."]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.exit(main())
