#!/usr/bin/python3
"""Benchmark of issue 2: vitals-proxy vs nginx vs direct-to-origin, with wrk on loopback.

Design:
  * The origin is a second nginx serving static 1 KiB and 100 KiB files (worker_processes
    2), so the origin is not the bottleneck. The peer is nginx (worker_processes 1,
    proxy_pass with an upstream keepalive pool); the subject is the proxy (--workers 1).
  * Throughput: wrk, 64 connections, BENCH_DURATION seconds per run (default 10), for
    each (target, size). Added latency: the same with 1 connection (no queueing), where
    p99(target) - p99(direct) is the per-hop cost.
  * CPU time per request: utime + stime of the serving process (all its threads: for
    vitals-proxy that includes the SQLite writer) over each wrk run, divided by the requests wrk
    completed. Unlike req/s it hardly depends on what else the machine runs, so it is the figure
    to compare between builds and against nginx on a shared machine.
  * Memory: N idle keep-alive connections (default 10,000), each having completed one
    request, and the VmRSS of the serving process before/after; (after-before)/N.
  * Every process started here is stopped here, by pid. Results: a Markdown table on
    stdout, and bench/results/<date>.md + .json.

Env: VP_BIN (default ./vitals-proxy), BENCH_DURATION, BENCH_CONNS (64), BENCH_THREADS (1),
BENCH_IDLE (10000), BENCH_REPEAT (1; runs per cell, the median-p99 run is reported),
BENCH_PROXY_SLOT=nginx (put a second nginx in the proxy slot, to check
the script itself), NGINX_BIN.
"""

import datetime
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from benchutil import cpu_s, free_port

HERE = os.path.dirname(os.path.abspath(__file__))
NGINX = os.environ.get("NGINX_BIN", "/usr/sbin/nginx")
DURATION = int(os.environ.get("BENCH_DURATION", "10"))
CONNS = int(os.environ.get("BENCH_CONNS", "64"))
THREADS = int(os.environ.get("BENCH_THREADS", "1"))
IDLE = int(os.environ.get("BENCH_IDLE", "10000"))
REPEAT = max(1, int(os.environ.get("BENCH_REPEAT", "1")))
SLOT = os.environ.get("BENCH_PROXY_SLOT", "vitals-proxy")
VP_BIN = os.path.abspath(os.environ.get("VP_BIN", "./vitals-proxy"))
SIZES = {"1KiB": 1024, "100KiB": 100 * 1024}

procs = []


def wait_port(port, proc, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit("bench: %s exited with %d at start-up" % (proc.args[0],
                                                                        proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("bench: nothing listening on %d" % port)


def start(argv, port, log):
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=open(log, "wb"),
                         stdin=subprocess.DEVNULL)
    procs.append(p)
    wait_port(port, p)
    return p


def stop_all():
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGQUIT if os.path.basename(p.args[0]) == "nginx"
                          else signal.SIGTERM)
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def nginx_conf(tmp, name, body, workers):
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    conf = """daemon off; master_process on; worker_processes %d; user root;
error_log %s/error.log warn; pid %s/nginx.pid; worker_rlimit_nofile 65536;
events { worker_connections 32768; }
http { access_log off; client_body_temp_path %s/cb; proxy_temp_path %s/pt;
  fastcgi_temp_path %s/ft; uwsgi_temp_path %s/ut; scgi_temp_path %s/st;
  keepalive_requests 1000000; keepalive_timeout 300s;
%s
}
""" % ((workers, d, d) + (d,) * 5 + (body,))
    path = os.path.join(d, "nginx.conf")
    with open(path, "w") as f:
        f.write(conf)
    return [NGINX, "-p", d, "-c", path, "-e", os.path.join(d, "error.log")]


def worker_pid(p):
    """nginx: the (single) worker; anything else: the process itself."""
    if os.path.basename(p.args[0]) != "nginx":
        return p.pid
    for _ in range(50):
        try:
            with open("/proc/%d/task/%d/children" % (p.pid, p.pid)) as f:
                kids = f.read().split()
            if kids:
                return int(kids[0])
        except OSError:
            pass
        time.sleep(0.05)
    return p.pid


def vmrss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def to_ms(v, unit):
    return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(port, path, conns, threads, pid=None):
    c0 = cpu_s(pid) if pid else 0.0
    out = subprocess.run(["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % DURATION,
                          "--latency", "http://127.0.0.1:%d%s" % (port, path)],
                         capture_output=True, text=True, timeout=DURATION + 60).stdout
    c1 = cpu_s(pid) if pid else 0.0
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    nreq = re.search(r"(\d+) requests in", out)
    lat = dict((m.group(1), to_ms(m.group(2), m.group(3)))
               for m in re.finditer(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M))
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock_errs = re.search(r"Socket errors: (.*)", out)
    if not rps or "50" not in lat or "99" not in lat:
        raise SystemExit("bench: cannot parse wrk output:\n" + out)
    n = int(nreq.group(1)) if nreq else 0
    return {"rps": float(rps.group(1)), "p50_ms": lat["50"], "p99_ms": lat["99"],
            "cpu_us_per_req": (c1 - c0) * 1e6 / n if pid and n else None,
            "non2xx": int(errs.group(1)) if errs else 0,
            "socket_errors": sock_errs.group(1) if sock_errs else ""}


def wrk_median(port, path, conns, threads, pid=None):
    """BENCH_REPEAT runs; the run with the median p99 (shared machines are noisy), and the
    median CPU time per request of all runs."""
    runs = sorted((wrk(port, path, conns, threads, pid) for _ in range(REPEAT)),
                  key=lambda r: r["p99_ms"])
    best = dict(runs[len(runs) // 2])
    cpus = sorted(r["cpu_us_per_req"] for r in runs if r["cpu_us_per_req"] is not None)
    best["cpu_us_per_req"] = cpus[len(cpus) // 2] if cpus else None
    best["repeats"] = [dict(rps=r["rps"], p50_ms=r["p50_ms"], p99_ms=r["p99_ms"],
                            cpu_us_per_req=r["cpu_us_per_req"]) for r in runs]
    return best


def idle_rss(port, pid, n):
    """Opens n keep-alive connections that each complete one request, measures RSS."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 100:
        raise SystemExit("bench: ulimit -n %d is too low for %d idle connections" % (soft, n))
    time.sleep(0.5)
    before = vmrss(pid)
    socks = []
    req = b"GET /1KiB HTTP/1.1\r\nHost: bench\r\n\r\n"
    try:
        for i in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(req)
            socks.append(s)
            if len(socks) % 500 == 0:
                drain(socks[-500:])
        drain(socks[len(socks) - len(socks) % 500:])
        time.sleep(1)
        after = vmrss(pid)
        alive = sum(1 for s in socks if still_open(s))
    finally:
        for s in socks:
            s.close()
    return {"connections": n, "alive_after": alive, "rss_before_kib": before,
            "rss_after_kib": after, "kib_per_conn": (after - before) / float(n)}


def drain(socks):
    for s in socks:
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < 1024:
            chunk = s.recv(65536)
            if not chunk:
                raise SystemExit("bench: idle-connection probe got EOF")
            data += chunk


def still_open(s):
    s.setblocking(False)
    try:
        return s.recv(1) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        s.setblocking(True)


def main():
    tmp = tempfile.mkdtemp(prefix="vp-bench-")
    origin_port, nginx_port, proxy_port = free_port(), free_port(), free_port()
    www = os.path.join(tmp, "www")
    os.makedirs(www)
    for name, n in SIZES.items():
        with open(os.path.join(www, name), "wb") as f:
            f.write((b"0123456789abcdef" * (n // 16 + 1))[:n])
    results = {"date": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
               "duration_s": DURATION, "repeat": REPEAT, "connections": CONNS, "wrk_threads": THREADS,
               "cpus": os.cpu_count(), "loadavg": open("/proc/loadavg").read().split()[0],
               "proxy_slot": SLOT, "runs": [], "added_latency": [],
               "idle": {}}
    try:
        start(nginx_conf(tmp, "origin", """  server { listen 127.0.0.1:%d reuseport backlog=8192;
    root %s; location / { default_type text/html; } }""" % (origin_port, www), 2),
              origin_port, os.path.join(tmp, "origin.log"))
        peer_body = """  upstream origin { server 127.0.0.1:%d; keepalive 64; }
  server { listen 127.0.0.1:%%d backlog=8192;
    location / { proxy_pass http://origin; proxy_http_version 1.1;
      proxy_set_header Connection ""; } }""" % origin_port
        peer = start(nginx_conf(tmp, "nginx", peer_body % nginx_port, 1), nginx_port,
                     os.path.join(tmp, "nginx.log"))
        if SLOT == "nginx":
            subj = start(nginx_conf(tmp, "slot", peer_body % proxy_port, 1), proxy_port,
                         os.path.join(tmp, "slot.log"))
        else:
            subj = start([VP_BIN, "--listen", "127.0.0.1:%d" % proxy_port, "--upstream",
                          "http://127.0.0.1:%d" % origin_port, "--db",
                          os.path.join(tmp, "bench.db"), "--workers", "1", "--quiet"],
                         proxy_port, os.path.join(tmp, "proxy.log"))
        targets = [("direct", origin_port), ("nginx", nginx_port), (SLOT, proxy_port)]
        # CPU per request is read from the serving process; the origin (two workers) is not.
        pids = {nginx_port: worker_pid(peer), proxy_port: worker_pid(subj)}
        subj_name = SLOT if SLOT != "nginx" else "nginx(slot)"
        for size in SIZES:
            for name, port in targets:
                print("bench: %s %s, %d connections, %d s" % (name, size, CONNS, DURATION),
                      file=sys.stderr, flush=True)
                r = wrk_median(port, "/" + size, CONNS, THREADS, pids.get(port))
                r.update(target=name if port != proxy_port else subj_name, size=size)
                results["runs"].append(r)
            for name, port in targets:
                r = wrk_median(port, "/" + size, 1, 1, pids.get(port))
                r.update(target=name if port != proxy_port else subj_name, size=size)
                results["added_latency"].append(r)
        for name, p, port in (("nginx", peer, nginx_port), (subj_name, subj, proxy_port)):
            print("bench: %d idle connections to %s" % (IDLE, name), file=sys.stderr,
                  flush=True)
            results["idle"][name] = idle_rss(port, worker_pid(p), IDLE)
    finally:
        stop_all()
        logs = {}
        for log in ("proxy.log", "slot.log"):
            path = os.path.join(tmp, log)
            if os.path.exists(path) and os.path.getsize(path):
                with open(path, "rb") as f:
                    logs[log] = f.read()[-2000:].decode("utf-8", "replace")
        shutil.rmtree(tmp, ignore_errors=True)
        for k, v in logs.items():
            print("bench: %s tail:\n%s" % (k, v), file=sys.stderr)

    md = render(results, subj_name)
    print(md)
    outdir = os.path.join(HERE, "results")
    os.makedirs(outdir, exist_ok=True)
    stamp = datetime.datetime.utcnow().strftime("%Y-%m-%d-%H%M%S")
    with open(os.path.join(outdir, stamp + ".md"), "w") as f:
        f.write(md)
    with open(os.path.join(outdir, stamp + ".json"), "w") as f:
        json.dump(results, f, indent=1)
    print("bench: wrote bench/results/%s.md and .json" % stamp, file=sys.stderr)
    return 0


def cpu_cell(r):
    return "%.1f" % r["cpu_us_per_req"] if r.get("cpu_us_per_req") is not None else "–"


def render(res, subj):
    out = ["# vitals-proxy benchmark %s" % res["date"], "",
           "wrk on loopback, %d connections, %d thread(s), %d s per run (median-p99 of %d), "
           "%s CPUs; origin = nginx static (2 workers); nginx = worker_processes 1 + upstream "
           "keepalive, access_log off (records nothing); %s = --workers 1 --quiet, which still "
           "records every request (timings, sizes, headers) in SQLite through its writer "
           "thread. CPU µs/req: user + system time of the serving process (all threads) per "
           "completed request, median of the runs. Load average at start: %s." % (
               res["connections"], res["wrk_threads"], res["duration_s"], res["repeat"],
               res["cpus"], subj, res["loadavg"]), "",
           "| target | size | req/s | p50 ms | p99 ms | vs nginx | vs direct | CPU µs/req | errors |",
           "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    by = {(r["target"], r["size"]): r for r in res["runs"]}
    for r in res["runs"]:
        ng = by.get(("nginx", r["size"]))
        di = by.get(("direct", r["size"]))
        err = "%d non-2xx" % r["non2xx"] if r["non2xx"] else ""
        if r["socket_errors"]:
            err += " sock: " + r["socket_errors"]
        out.append("| %s | %s | %.0f | %.3f | %.3f | %.2f× | %.2f× | %s | %s |" % (
            r["target"], r["size"], r["rps"], r["p50_ms"], r["p99_ms"],
            r["rps"] / ng["rps"], r["rps"] / di["rps"], cpu_cell(r), err))
    out += ["", "Added latency, 1 connection (no queueing): minus direct's p50/p99. On a shared, "
            "loaded machine p99 is scheduler noise; p50 is the stable figure.", "",
            "| target | size | p50 ms | p99 ms | added p50 µs | added p99 µs | CPU µs/req |",
            "|---|---|---:|---:|---:|---:|---:|"]
    lat = {(r["target"], r["size"]): r for r in res["added_latency"]}
    for r in res["added_latency"]:
        d = lat[("direct", r["size"])]
        out.append("| %s | %s | %.3f | %.3f | %.0f | %.0f | %s |" % (
            r["target"], r["size"], r["p50_ms"], r["p99_ms"],
            (r["p50_ms"] - d["p50_ms"]) * 1000, (r["p99_ms"] - d["p99_ms"]) * 1000, cpu_cell(r)))
    out += ["", "Idle keep-alive connections (each completed one request), VmRSS of the "
            "serving process:", "",
            "| target | connections | still open | RSS before KiB | RSS after KiB | KiB/conn |",
            "|---|---:|---:|---:|---:|---:|"]
    for name, r in res["idle"].items():
        out.append("| %s | %d | %d | %d | %d | %.2f |" % (
            name, r["connections"], r["alive_after"], r["rss_before_kib"],
            r["rss_after_kib"], r["kib_per_conn"]))
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.exit(main())
