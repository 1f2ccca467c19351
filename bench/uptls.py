#!/usr/bin/python3
"""Benchmark (not a test): the cost of TLS to the upstream (--upstream https://).

One nginx origin serves a 1 KiB file over plain HTTP, over HTTPS with session tickets (and
TLS 1.3, its default), and over HTTPS with tickets and the session cache off (no resumption
possible). nginx logs $ssl_session_reused for the first request of each connection, so each row also
says how many upstream handshakes of its N2 run were full and how many resumed. vitals-proxy runs with --workers 1 --quiet:
  * callgrind: instructions per request of the whole proxy process, from two runs of N1 and N2
    keep-alive client requests, (Ir(N2) - Ir(N1)) / (N2 - N1), so start-up and shutdown cancel
    out. The SQLite writer thread's share moves with its batching (which depends on timing), so
    BENCH_LOOP_ONLY=1 counts only what runs inside event_base_loop (the worker's event loop):
    repeatable to a few dozen instructions. With VP_BASE_BIN (an older build), the plain row is
    measured for it too: the plain path's cost before and after.
  * wrk (BENCH_DURATION s, 8 connections): CPU time per request of the proxy process (utime +
    stime from /proc/PID/stat over requests served), median of BENCH_REPEAT runs.
Prints a Markdown table and writes it to bench/results/uptls-<date>.md. Rows: plain upstream; TLS upstream with pooled keep-alive connections (the handshake is paid
once); TLS upstream with --upstream-idle 0 (a new upstream connection, so a handshake, per
request), resumed and full.
Environment: VP_BIN (./vitals-proxy), VP_BASE_BIN, BENCH_N1=200 BENCH_N2=1200
BENCH_DURATION=5 BENCH_REPEAT=3, BENCH_CPU=0 to skip the wrk part, BENCH_ONLY=REGEX to run
only the rows whose label matches, BENCH_LOOP_ONLY=1.
"""
import datetime
import http.client
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile

from benchutil import free_port, wait_port, wrk_cpu

VP = os.path.abspath(os.environ.get("VP_BIN", "./vitals-proxy"))
BASE = os.environ.get("VP_BASE_BIN")
N1 = int(os.environ.get("BENCH_N1", "200"))
N2 = int(os.environ.get("BENCH_N2", "1200"))
DUR = int(os.environ.get("BENCH_DURATION", "5"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
LOOP_ONLY = os.environ.get("BENCH_LOOP_ONLY") == "1"


def start_proxy(binary, tmp, upstream, extra=(), wrap=()):
    port = free_port()
    db = os.path.join(tmp, "vp-%d.db" % port)
    p = subprocess.Popen(list(wrap) + [binary, "--listen", "127.0.0.1:%d" % port, "--upstream",
                                       upstream, "--db", db, "--workers", "1", "--quiet"] +
                         list(extra), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_port(port):
        p.kill()
        sys.exit("bench: the proxy did not start")
    return p, port


def requests(port, n):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for _ in range(n):
        c.request("GET", "/1k.bin")
        r = c.getresponse()
        r.read()
        if r.status != 200:
            sys.exit("bench: status %d" % r.status)
    c.close()


def callgrind_ir(binary, tmp, upstream, extra, n):
    out = os.path.join(tmp, "cg.out")
    wrap = ["valgrind", "--tool=callgrind", "-q", "--callgrind-out-file=" + out]
    if LOOP_ONLY:
        wrap.append("--toggle-collect=event_base_loop")
    p, port = start_proxy(binary, tmp, upstream, extra, wrap)
    try:
        requests(port, n)
    except BaseException:
        p.kill()
        p.wait()
        raise
    p.send_signal(signal.SIGINT)
    p.wait(timeout=120)
    with open(out) as f:
        m = re.search(r"^summary: (\d+)", f.read(), re.M)
    return int(m.group(1))


def cpu_us_per_req(binary, tmp, upstream, extra):
    p, port = start_proxy(binary, tmp, upstream, extra)
    try:
        requests(port, 20)
    except BaseException:
        p.kill()
        p.wait()
        raise
    r = wrk_cpu(p.pid, "http://127.0.0.1:%d/1k.bin" % port, 8, DUR)
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=30)
    return r


def reused_counts(log):
    """(full, resumed) handshakes since the last call, from nginx's access log."""
    try:
        with open(log) as f:
            lines = f.read().split()
        open(log, "w").close()
    except OSError:
        return 0, 0
    return lines.count("."), lines.count("r")


def main():
    tmp = tempfile.mkdtemp(prefix="vp-uptls.")
    os.chmod(tmp, 0o755)  # nginx workers may run as another user
    www = os.path.join(tmp, "www")
    os.mkdir(www)
    with open(os.path.join(www, "1k.bin"), "wb") as f:
        f.write(b"x" * 1024)
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert, "-days",
                    "2", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True,
                   capture_output=True)
    os.chmod(key, 0o644)
    plain, tls, tls_nt = free_port(), free_port(), free_port()
    log = os.path.join(tmp, "ssl.log")
    with open(os.path.join(tmp, "nginx.conf"), "w") as f:
        f.write("worker_processes 1; daemon off; pid %(t)s/nginx.pid; error_log %(t)s/nginx.err;\n"
                "events { worker_connections 4096; }\n"
                "http { access_log off; types { application/octet-stream bin; }\n"
                "  log_format r '$ssl_session_reused'; keepalive_requests 1000000;\n"
                "  map $connection_requests $first { 1 1; default 0; }\n"
                "  server { listen 127.0.0.1:%(p)d; root %(w)s; etag off; }\n"
                "  server { listen 127.0.0.1:%(s)d ssl; root %(w)s; etag off;\n"
                "    ssl_certificate %(c)s; ssl_certificate_key %(k)s;\n"
                "    access_log %(l)s r if=$first; }\n"
                "  server { listen 127.0.0.1:%(n)d ssl; root %(w)s; etag off;\n"
                "    ssl_certificate %(c)s; ssl_certificate_key %(k)s;\n"
                "    ssl_session_tickets off; ssl_session_cache off; access_log %(l)s r if=$first; }\n"
                "}\n" % dict(t=tmp, p=plain, w=www, s=tls, c=cert, k=key, l=log, n=tls_nt))
    ng = subprocess.Popen([NGINX, "-c", os.path.join(tmp, "nginx.conf"), "-p", tmp],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ca = ["--upstream-ca", cert]
    rows = [("plain upstream, pooled", "http://127.0.0.1:%d" % plain, []),
            ("TLS upstream, pooled", "https://localhost:%d" % tls, ca),
            ("TLS upstream, new connection per request, resumed",
             "https://localhost:%d" % tls, ca + ["--upstream-idle", "0"]),
            ("TLS upstream, new connection per request, full handshake",
             "https://localhost:%d" % tls_nt, ca + ["--upstream-idle", "0"])]
    try:
        for port in (plain, tls, tls_nt):
            if not wait_port(port):
                sys.exit("bench: nginx did not start")
        lines = []

        def out(line):
            print(line)
            sys.stdout.flush()
            lines.append(line)

        out("| 1 KiB, 1 worker | instructions/request (callgrind%s) | upstream handshakes "
            "full / resumed | CPU µs/request | req/s |" % (", event loop" if LOOP_ONLY else ""))
        out("|---|---:|---:|---:|---:|")
        bins = [("", VP)] + ([(" (VP_BASE_BIN)", BASE)] if BASE else [])
        only = os.environ.get("BENCH_ONLY", "")
        for label, upstream, extra in rows:
            if only and not re.search(only, label):
                continue
            for suffix, binary in bins:
                if suffix and upstream.startswith("https"):
                    continue
                ir1 = callgrind_ir(binary, tmp, upstream, extra, N1)
                reused_counts(log)
                ir = (callgrind_ir(binary, tmp, upstream, extra, N2) - ir1) / (N2 - N1)
                full, resumed = reused_counts(log)  # of the N2 run
                cpu = rps = float("nan")
                if os.environ.get("BENCH_CPU", "1") != "0" and shutil.which("wrk"):
                    runs = [cpu_us_per_req(binary, tmp, upstream, extra) for _ in range(REPEAT)]
                    cpu = statistics.median(r[0] for r in runs)
                    rps = statistics.median(r[1] for r in runs)
                hs = "%d / %d" % (full, resumed) if upstream.startswith("https") else "-"
                out("| %s%s | %.0f | %s | %.1f | %.0f |" % (label, suffix, ir, hs, cpu, rps))
        outdir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
        os.makedirs(outdir, exist_ok=True)
        stamp = datetime.datetime.utcnow().strftime("%Y-%m-%d-%H%M%S")
        with open(os.path.join(outdir, "uptls-%s.md" % stamp), "w") as f:
            f.write("\n".join(lines) + "\n")
        print("bench: wrote bench/results/uptls-%s.md" % stamp, file=sys.stderr)
    finally:
        ng.terminate()
        ng.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
