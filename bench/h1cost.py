#!/usr/bin/python3
"""Benchmark (not a test): user-space cost per HTTP/1.1 request, in instructions.

The pages of bench/run.sh (1 KiB, served as text/html like the rest of that origin) and of
bench/inject.sh (the generated 50 KiB identity HTML page, injected), from a static nginx origin,
through vitals-proxy (--workers 1 --quiet) under callgrind:
  * instructions per request of the whole process, of its event loop and of its SQLite writer
    thread, from two runs of N1 and N2 keep-alive requests, (Ir(N2) - Ir(N1)) / (N2 - N1), so
    start-up and shutdown cancel out. The event loop's count is exact; the writer's depends on
    how many records each commit takes (one request at a time here: small batches, so a commit's
    cost weighs more than under load; bench/record_bench measures the writer under load).
  * calls per request to malloc, calloc, realloc and free (all threads), and to the system call
    wrappers the event loop uses (readv, writev, ioctl, recv, send...), from the same runs.
The client is one keep-alive connection (Python's http.client), a request at a time: the figures
are exact and repeatable on a shared machine, unlike req/s. Throughput and CPU time per request
under load are bench/run.sh's and bench/inject.sh's.
With BENCH_WRK=1, then CPU time per request under load, which the instruction counts predict
only for user space: wrk (64 connections, BENCH_DURATION s) against VP_BASE (another build, when
given), VP_BIN and, for the 1 KiB page, nginx (worker_processes 1, upstream keepalive, as in
bench/run.sh), the targets interleaved run after run (BENCH_REPEAT rounds) so that they share
the machine's noise; medians of user and system time per request, for the proxy split into its
event loop and its SQLite writer and checkpointer threads, from /proc.
Environment: VP_BIN (./vitals-proxy), BENCH_N1=200 BENCH_N2=1200, BENCH_PAGES=1k,50k (a
subset), BENCH_TOP=0 (print the N functions with the most instructions per request, loop thread),
BENCH_CG=0 (skip callgrind), BENCH_WRK=1, VP_BASE, BENCH_DURATION=5, BENCH_REPEAT=5.
"""
import http.client
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
from benchutil import free_port, static_nginx, wait_port  # noqa: E402
import inject  # noqa: E402  (make_page: the page of bench/inject.sh)

VP = os.path.abspath(os.environ.get("VP_BIN", "./vitals-proxy"))
N1 = int(os.environ.get("BENCH_N1", "200"))
N2 = int(os.environ.get("BENCH_N2", "1200"))
PAGES = os.environ.get("BENCH_PAGES", "1k,50k").split(",")
TOP = int(os.environ.get("BENCH_TOP", "0"))
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
WRK = os.environ.get("BENCH_WRK", "0") != "0"
CG = os.environ.get("BENCH_CG", "1") != "0"
BASE = os.environ.get("VP_BASE")
DUR = int(os.environ.get("BENCH_DURATION", "5"))
REPEAT = max(1, int(os.environ.get("BENCH_REPEAT", "5")))
COUNTED = ("malloc", "calloc", "realloc", "free", "readv", "writev", "ioctl", "recv", "send",
           "sendto", "recvfrom", "read", "write", "epoll_wait", "epoll_ctl", "clock_gettime")


def start_proxy(tmp, up_port, wrap=(), binary=None):
    port = free_port()
    db = os.path.join(tmp, "vp-%d.db" % port)
    p = subprocess.Popen(list(wrap) + [binary or VP, "--listen", "127.0.0.1:%d" % port, "--upstream",
                                       "http://127.0.0.1:%d" % up_port, "--db", db,
                                       "--workers", "1", "--quiet"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_port(port):
        p.kill()
        sys.exit("bench: the proxy did not start")
    return p, port


def requests(port, path, n):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for _ in range(n):
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        if r.status != 200:
            sys.exit("bench: status %d" % r.status)
    c.close()


def parse(text):
    """Total Ir, self Ir per function and calls per callee name of one callgrind output."""
    names = {}
    fn_self = {}
    calls = {}
    cur = None
    cfn = None
    pending_calls = False
    m = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
    total = int(m.group(1)) if m else 0

    def name_of(spec):
        mm = re.match(r"\((\d+)\)(?: (.*))?", spec)
        if not mm:
            return spec
        if mm.group(2):
            names[mm.group(1)] = mm.group(2)
        return names.get(mm.group(1), "?")

    for line in text.splitlines():
        if line.startswith("fn="):
            cur = name_of(line[3:])
            cfn = None
        elif line.startswith("cfn="):
            cfn = name_of(line[4:])
        elif line.startswith("calls="):
            n = int(line[6:].split()[0])
            calls[cfn] = calls.get(cfn, 0) + n
            pending_calls = True
        elif line and (line[0].isdigit() or line[0] in "+-*"):
            if pending_calls:
                pending_calls = False  # the cost line of a call: inclusive, not self
                continue
            parts = line.split()
            if len(parts) >= 2 and cur is not None:
                fn_self[cur] = fn_self.get(cur, 0) + int(parts[1])
        elif line.startswith(("cfi=", "cfl=", "fi=", "fe=", "fl=", "ob=", "cob=")):
            pass
    return total, fn_self, calls


def callgrind(tmp, up_port, path, n):
    out = os.path.join(tmp, "cg.out")
    p, port = start_proxy(tmp, up_port, ["valgrind", "--tool=callgrind", "-q",
                                         "--separate-threads=yes", "--compress-strings=no",
                                         "--compress-pos=no",
                                         "--callgrind-out-file=" + out])
    try:
        requests(port, path, n)
    except BaseException:
        p.kill()
        p.wait()
        raise
    p.send_signal(signal.SIGINT)
    p.wait(timeout=120)
    res = {"all": 0, "loop": 0, "writer": 0, "calls": {}, "loop_fn": {}}
    for name in os.listdir(tmp):
        if not name.startswith("cg.out"):
            continue
        with open(os.path.join(tmp, name)) as f:
            text = f.read()
        os.unlink(os.path.join(tmp, name))
        total, fn_self, calls = parse(text)
        res["all"] += total
        if "worker_main" in text:
            res["loop"] += total
            res["loop_fn"] = fn_self
        elif "writer_main" in text:
            res["writer"] += total
        for k, v in calls.items():
            res["calls"][k] = res["calls"].get(k, 0) + v
    return res


def thread_ticks(pid):
    """{thread name: (utime, stime)} of a process's threads, in clock ticks, summed per name."""
    out = {}
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, t)) as f:
                st = f.read()
        except OSError:
            continue
        name = st[st.index("(") + 1:st.rindex(")")]
        fl = st.rsplit(")", 1)[1].split()
        u, k = out.get(name, (0, 0))
        out[name] = (u + int(fl[11]), k + int(fl[12]))
    return out


def wrk_cpu(port, path, pid):
    """One wrk run: req/s and CPU µs per request (user, sys, and per thread role)."""
    hz = float(os.sysconf("SC_CLK_TCK"))
    a = thread_ticks(pid)
    out = subprocess.run(["wrk", "-t1", "-c64", "-d%ds" % DUR, "http://127.0.0.1:%d%s" % (port, path)],
                         capture_output=True, text=True, timeout=DUR + 60).stdout
    b = thread_ticks(pid)
    m = re.search(r"(\d+) requests in", out)
    n = int(m.group(1)) if m else 0
    if not n:
        sys.exit("bench: wrk served nothing:\n" + out)
    r = {"rps": n / float(DUR), "user": 0.0, "sys": 0.0, "store": 0.0, "writer": 0.0, "ckpt": 0.0}
    for name, (u, k) in b.items():
        du = (u - a.get(name, (0, 0))[0]) * 1e6 / hz / n
        dk = (k - a.get(name, (0, 0))[1]) * 1e6 / hz / n
        r["user"] += du
        r["sys"] += dk
        if name in ("vp-writer", "vp-ckpt"):
            r["store"] += du + dk
            r["writer" if name == "vp-writer" else "ckpt"] += du + dk
    r["cpu"] = r["user"] + r["sys"]
    return r


def wrk_part(tmp, up_port, peer_port, peer_pid):
    targets = ([("base", BASE)] if BASE else []) + [("this build", VP)]
    procs = []
    try:
        started = []
        for label, binary in targets:
            p, port = start_proxy(tmp, up_port, binary=binary)
            procs.append(p)
            started.append((label, port, p.pid))
        print("\n| page | target | req/s | CPU µs/req | user | sys | SQLite threads | writer |"
              " checkpointer |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for key, label, path in (("1k", "1 KiB", "/1KiB"), ("50k", "50 KiB HTML", "/page.html")):
            if key not in PAGES:
                continue
            runs = dict((t[0], []) for t in started)
            tl = list(started) + ([("nginx", peer_port, peer_pid)] if key == "1k" and peer_pid
                                  else [])
            runs.update((t[0], []) for t in tl)
            for _ in range(REPEAT):
                for name, port, pid in tl:
                    runs[name].append(wrk_cpu(port, path, pid))
            for name, _, _ in tl:
                med = dict((k, statistics.median(r[k] for r in runs[name]))
                           for k in ("rps", "cpu", "user", "sys", "store", "writer", "ckpt"))
                print("| %s | %s | %.0f | %.1f | %.1f | %.1f | %s |" % (
                    label, name, med["rps"], med["cpu"], med["user"], med["sys"],
                    " | ".join("%.2f" % med[k] if name != "nginx" else "–"
                               for k in ("store", "writer", "ckpt"))), flush=True)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=30)


def main():
    tmp = tempfile.mkdtemp(prefix="vp-h1cost.")
    os.chmod(tmp, 0o755)  # nginx workers may run as another user
    www = os.path.join(tmp, "www")
    os.mkdir(www)
    with open(os.path.join(www, "1KiB"), "wb") as f:
        f.write((b"0123456789abcdef" * 65)[:1024])
    with open(os.path.join(www, "page.html"), "wb") as f:
        f.write(inject.make_page(50 * 1024))
    up_port = free_port()
    ng = static_nginx(NGINX, tmp, www, up_port, workers=2)
    peer = None
    try:
        if not wait_port(up_port):
            sys.exit("bench: nginx did not start")
        if CG:
            callgrind_part(tmp, up_port)
        if WRK:
            peer_port = free_port()
            pdir = os.path.join(tmp, "peer")
            os.mkdir(pdir)
            with open(os.path.join(pdir, "nginx.conf"), "w") as f:
                f.write("worker_processes 1; daemon off; pid %s/nginx.pid; error_log %s/err;\n"
                        "events { worker_connections 4096; }\n"
                        "http { access_log off; keepalive_requests 1000000;\n"
                        "  upstream origin { server 127.0.0.1:%d; keepalive 64; }\n"
                        "  server { listen 127.0.0.1:%d; location / { proxy_pass http://origin;"
                        " proxy_http_version 1.1; proxy_set_header Connection \"\"; } } }\n"
                        % (pdir, pdir, up_port, peer_port))
            peer = subprocess.Popen([NGINX, "-c", os.path.join(pdir, "nginx.conf"), "-p", pdir],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if not wait_port(peer_port):
                sys.exit("bench: the nginx peer did not start")
            peer_pid = None
            for _ in range(50):
                try:
                    with open("/proc/%d/task/%d/children" % (peer.pid, peer.pid)) as f:
                        kids = f.read().split()
                    if kids:
                        peer_pid = int(kids[0])
                        break
                except OSError:
                    pass
                time.sleep(0.1)
            wrk_part(tmp, up_port, peer_port, peer_pid)
    finally:
        if peer:
            peer.terminate()
            peer.wait(timeout=10)
        ng.terminate()
        ng.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


def callgrind_part(tmp, up_port):
    print("| page | Ir/req | event loop | writer | malloc+calloc+realloc | free | "
          "system calls (loop wrappers) |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for key, label, path in (("1k", "1 KiB (run.sh)", "/1KiB"),
                             ("50k", "50 KiB HTML, identity (inject.sh)", "/page.html")):
        if key not in PAGES:
            continue
        a = callgrind(tmp, up_port, path, N1)
        b = callgrind(tmp, up_port, path, N2)
        dn = float(N2 - N1)
        d = {k: (b[k] - a[k]) / dn for k in ("all", "loop", "writer")}
        c = dict((k, (b["calls"].get(k, 0) - a["calls"].get(k, 0)) / dn) for k in COUNTED)
        allocs = c["malloc"] + c["calloc"] + c["realloc"]
        sys_calls = ", ".join("%s %.2f" % (k, c[k]) for k in COUNTED[4:] if c[k] >= 0.005)
        print("| %s | %.0f | %.0f | %.0f | %.2f | %.2f | %s |" % (
            label, d["all"], d["loop"], d["writer"], allocs, c["free"], sys_calls),
            flush=True)
        if TOP:
            fns = set(a["loop_fn"]) | set(b["loop_fn"])
            per = sorted(((b["loop_fn"].get(f, 0) - a["loop_fn"].get(f, 0)) / dn, f)
                         for f in fns)
            for v, f in reversed(per[-TOP:]):
                print("    %8.0f  %s" % (v, f), file=sys.stderr)


if __name__ == "__main__":
    main()
