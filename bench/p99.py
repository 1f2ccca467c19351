#!/usr/bin/python3
"""Benchmark (not a test): added latency of one connection, p50 and p99, against direct.

bench/run.sh's added-latency cell (wrk, 1 connection, 1 thread, the 1 KiB file of a static nginx
origin), here with the targets interleaved run after run so that they share the machine's noise:
direct to the origin, VP_BASE (another build, when given) and VP_BIN, each BENCH_REPEAT times for
BENCH_DURATION s. Prints, per target, the median p50 and p99 and their medians minus direct's in
the same round, and the CPU of the proxy's SQLite threads per request (the writer, whose commits
are what the p99 waits for when they land on the event loop's CPU).
Environment: VP_BIN (./vitals-proxy), VP_BASE, BENCH_DURATION=4, BENCH_REPEAT=5.
"""
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
from benchutil import free_port, static_nginx, wait_port  # noqa: E402
from h1cost import start_proxy, thread_ticks  # noqa: E402

VP = os.path.abspath(os.environ.get("VP_BIN", "./vitals-proxy"))
BASE = os.environ.get("VP_BASE")
DUR = int(os.environ.get("BENCH_DURATION", "4"))
REPEAT = max(1, int(os.environ.get("BENCH_REPEAT", "5")))
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk1(port):
    out = subprocess.run(["wrk", "-t1", "-c1", "-d%ds" % DUR, "--latency",
                          "http://127.0.0.1:%d/1KiB" % port],
                         capture_output=True, text=True, timeout=DUR + 30).stdout
    lat = {}
    for pct, val, unit in re.findall(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", out, re.M):
        lat[pct] = float(val) * UNITS[unit]
    reqs = re.search(r"(\d+) requests in", out)
    if "50" not in lat or "99" not in lat or not reqs:
        sys.exit("bench: cannot parse wrk's output:\n" + out)
    return lat["50"], lat["99"], int(reqs.group(1))


def sqlite_ticks(pid):
    """CPU ticks (user + system) of the proxy's writer and checkpointer threads."""
    return sum(sum(v) for k, v in thread_ticks(pid).items() if k in ("vp-writer", "vp-ckpt"))


def main():
    tmp = tempfile.mkdtemp(prefix="vp-p99.")
    os.chmod(tmp, 0o755)
    www = os.path.join(tmp, "www")
    os.mkdir(www)
    with open(os.path.join(www, "1KiB"), "wb") as f:
        f.write((b"0123456789abcdef" * 65)[:1024])
    up_port = free_port()
    ng = static_nginx(NGINX, tmp, www, up_port)
    procs = []
    try:
        if not wait_port(up_port):
            sys.exit("bench: nginx did not start")
        targets = [("direct", None, up_port)]
        for name, binary in (("base", BASE), ("this build", VP)):
            if binary:
                p, port = start_proxy(tmp, up_port, binary=os.path.abspath(binary))
                procs.append(p)
                targets.append((name, p, port))
        rows = {name: [] for name, _, _ in targets}
        tick = os.sysconf("SC_CLK_TCK")
        for _ in range(REPEAT):
            for name, p, port in targets:
                t0 = sqlite_ticks(p.pid) if p else 0
                p50, p99, n = wrk1(port)
                t1 = sqlite_ticks(p.pid) if p else 0
                rows[name].append((p50, p99, (t1 - t0) * 1e6 / tick / max(n, 1)))
        print("One connection, 1 KiB, %d runs of %d s interleaved (medians; added = minus direct's "
              "median)\n" % (REPEAT, DUR))
        print("| target | p50 ms | p99 ms | added p50 µs | added p99 µs | SQLite threads CPU µs/req |")
        print("|---|---:|---:|---:|---:|---:|")
        d50 = statistics.median(r[0] for r in rows["direct"])
        d99 = statistics.median(r[1] for r in rows["direct"])
        for name, p, _ in targets:
            m50 = statistics.median(r[0] for r in rows[name])
            m99 = statistics.median(r[1] for r in rows[name])
            cpu = "%.1f" % statistics.median(r[2] for r in rows[name]) if p else "–"
            print("| %s | %.3f | %.3f | %+.0f | %+.0f | %s |" % (
                name, m50, m99, (m50 - d50) * 1000, (m99 - d99) * 1000, cpu))
        print("\np99 of each run (ms): " + "; ".join(
            "%s %s" % (name, " ".join("%.3f" % r[1] for r in rows[name])) for name in rows))
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)
        ng.terminate()
        ng.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
