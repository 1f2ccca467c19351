#!/usr/bin/python3
"""Benchmark (not a test): the per-response cost of an injected HTML page.

The same 8 KiB body from a static nginx origin, once as identity text/html (the proxy injects
the beacon) and once as application/octet-stream (passed through), through vitals-proxy
(--workers 1 --quiet):
  * callgrind: instructions per request of the whole process, and of its event loop and its
    SQLite writer thread apart, from two runs of N1 and N2 keep-alive requests,
    (Ir(N2) - Ir(N1)) / (N2 - N1), so start-up and shutdown cancel out. The event loop's count is
    exact; the writer's depends on how many records each commit takes (one request at a time
    here: small batches, so a commit's cost weighs more than under load; bench/record_bench
    measures the writer under load).
  * wrk (BENCH_DURATION s, 64 connections): CPU time per request of the proxy process
    (utime + stime from /proc/PID/stat over requests served), median of BENCH_REPEAT runs.
Environment: VP_BIN (./vitals-proxy), BENCH_N1=200 BENCH_N2=1200 BENCH_DURATION=5
BENCH_REPEAT=3 BENCH_CPU=0 to skip the wrk part.
"""
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile

from benchutil import free_port, wait_port, wrk_cpu
# The proxy under test, its keep-alive client and the callgrind runner are bench/h1cost.py's.
from h1cost import callgrind as callgrind_ir, requests, start_proxy

N1 = int(os.environ.get("BENCH_N1", "200"))
N2 = int(os.environ.get("BENCH_N2", "1200"))
DUR = int(os.environ.get("BENCH_DURATION", "5"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def cpu_us_per_req(tmp, up_port, path):
    p, port = start_proxy(tmp, up_port)
    try:
        requests(port, path, 50)
    except BaseException:
        p.kill()
        p.wait()
        raise
    r = wrk_cpu(p.pid, "http://127.0.0.1:%d%s" % (port, path), 64, DUR)
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=30)
    return r


def main():
    tmp = tempfile.mkdtemp(prefix="vp-htmlcost.")
    os.chmod(tmp, 0o755)  # nginx workers may run as another user
    www = os.path.join(tmp, "www")
    os.mkdir(www)
    body = ("<!doctype html><html><head><meta charset=utf-8><title>t</title></head><body>\n" +
            "<p>lorem ipsum dolor sit amet consectetur adipiscing elit</p>\n" * 140)
    body = body[:8192 - 15] + "</body></html>\n"
    for name in ("page.html", "page.bin"):
        with open(os.path.join(www, name), "w") as f:
            f.write(body)
    up_port = free_port()
    with open(os.path.join(tmp, "nginx.conf"), "w") as f:
        f.write("worker_processes 1; daemon off; pid %s/nginx.pid; error_log %s/nginx.err;\n"
                "events { worker_connections 1024; }\n"
                "http { access_log off; types { text/html html; application/octet-stream bin; }\n"
                "  server { listen 127.0.0.1:%d; root %s; etag off; } }\n"
                % (tmp, tmp, up_port, www))
    ng = subprocess.Popen([NGINX, "-c", os.path.join(tmp, "nginx.conf"), "-p", tmp],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not wait_port(up_port):
            sys.exit("bench: nginx did not start")
        print("| 8 KiB page | instructions/request (callgrind) | event loop | writer | "
              "CPU µs/request | req/s |")
        print("|---|---:|---:|---:|---:|---:|")
        rows = {}
        for label, path in (("text/html (injected)", "/page.html"),
                            ("octet-stream", "/page.bin")):
            a = callgrind_ir(tmp, up_port, path, N1)
            b = callgrind_ir(tmp, up_port, path, N2)
            d = {k: (b[k] - a[k]) / (N2 - N1) for k in ("all", "loop", "writer")}
            ir = d["all"]
            cpu = rps = float("nan")
            if os.environ.get("BENCH_CPU", "1") != "0" and shutil.which("wrk"):
                runs = [cpu_us_per_req(tmp, up_port, path) for _ in range(REPEAT)]
                cpu = statistics.median(r[0] for r in runs)
                rps = statistics.median(r[1] for r in runs)
            rows[label] = d
            print("| %s | %.0f | %.0f | %.0f | %.1f | %.0f |" % (label, ir, d["loop"], d["writer"],
                                                             cpu, rps))
        inj, plain = rows["text/html (injected)"], rows["octet-stream"]
        print("\ninjected minus plain: %.0f instructions/request (event loop %.0f, writer %.0f)" %
              (inj["all"] - plain["all"], inj["loop"] - plain["loop"],
               inj["writer"] - plain["writer"]))
    finally:
        ng.terminate()
        ng.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
