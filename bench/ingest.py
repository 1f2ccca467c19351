#!/usr/bin/python3
"""Beacon ingestion through the proxy (issue 5's benchmark; not a test). Run by bench/ingest.sh.

For each payload kind (metrics-only: 5 metrics; realistic: 5 metrics + 60 resources), REPEAT
times: a fresh vitals-proxy (--workers W, --beacon-rate 0 so the per-peer token bucket does not
cap one load generator; defaults untouched) with a fresh database, wrk POSTing beacon.js-format
bodies (bench/ingest.lua, a distinct view id per request) for DURATION seconds, then SIGTERM (the
store drains) and a count of the rows in the database. Two loads per kind:
  - saturating: CONNS connections, each sending its next beacon as soon as the previous one is
    answered, except that after a 503 (store busy) it backs off BACKOFF_MS first, as a client
    should; without the back-off (BACKOFF_MS=0, wrk re-firing at once) the refusals take the
    CPU that the writer needs, and the figure measures the refusal path rather than ingestion;
  - fixed rate: RATE_CONNS connections offered RATE beacons/s on a clock schedule (default: 3/4
    of the saturating run's acknowledged rate, so below saturation), for the latency a steady
    load sees.
Reported per load (median of the runs): acknowledged beacons/s (204s), wrk's p50/p99 latency of
all answers, 204 vs 429/503 counts, the proxy's CPU time (all threads, /proc/PID/stat) per
acknowledged beacon (and its split: event loops, the store's writer thread, its checkpointer),
rows lost (expected rows of every 204 minus rows found; must be 0), and the
bare-SQLite ceiling: bench/ingest_bare re-inserting the same rows from the run's database in a
plain loop, with the ratio.

"Proxying unaffected": wrk on an HTML page proxied (and injected) from a static nginx, alone and
then while metrics-only ingestion runs against the same proxy, once at a fixed rate (4
connections offered PAGE_RATE beacons/s) and once saturating (CONNS connections, back-off as
above); req/s and p50/p99 of the page.

Environment: VP_BIN (./vitals-proxy), VP_INGEST_BARE (./bench/ingest_bare), DURATION (10),
CONNS (16), THREADS (1), REPEAT (3), WORKERS (1), KINDS ("metrics realistic"), BACKOFF_MS (5),
RATE (beacons/s; default 3/4 of the saturating median; 0 skips the fixed-rate run),
RATE_CONNS (64), PAGE_CONNS (8), PAGE_RATE (1000), PAGE (1; 0 skips the proxied-page part),
KEEP_TMP (keep the temporary directory), IDS (random; "time": view ids that begin with the view's
start in ms, as the proxy makes them, instead of random ones).
"""

import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from benchutil import free_port

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.abspath(os.environ.get("VP_BIN", "./vitals-proxy"))
BARE = os.path.abspath(os.environ.get("VP_INGEST_BARE", "./bench/ingest_bare"))
DUR = int(os.environ.get("DURATION", "10"))
CONNS = int(os.environ.get("CONNS", "16"))
THREADS = int(os.environ.get("THREADS", "1"))
REPEAT = int(os.environ.get("REPEAT", "3"))
WORKERS = int(os.environ.get("WORKERS", "1"))
KINDS = os.environ.get("KINDS", "metrics realistic").split()
PAGE_CONNS = int(os.environ.get("PAGE_CONNS", "8"))
PAGE_RATE = float(os.environ.get("PAGE_RATE", "1000"))  # paced ingestion, beacons/s
PACED_CONNS = 4
BACKOFF_MS = float(os.environ.get("BACKOFF_MS", "5"))
RATE = os.environ.get("RATE")
TIME_IDS = os.environ.get("IDS", "random") == "time"
RATE_CONNS = int(os.environ.get("RATE_CONNS", "64"))
LUA = os.path.join(HERE, "ingest.lua")
ROWS_PER = {"metrics": {"views": 1, "metrics": 5, "resources": 0},
            "realistic": {"views": 1, "metrics": 5, "resources": 60}}
TICK = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14, 15)


def thread_ticks(pid):
    """CPU ticks per thread role: the store's writer and checkpointer (named vp-writer and
    vp-ckpt by store/store.c) and everything else (the event loops, the main thread)."""
    out = {"writer": 0, "ckpt": 0, "loop": 0}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                head, rest = f.read().rsplit(")", 1)
        except OSError:
            continue
        comm = head.split("(", 1)[1]
        fields = rest.split()
        role = {"vp-writer": "writer", "vp-ckpt": "ckpt"}.get(comm, "loop")
        out[role] += int(fields[11]) + int(fields[12])
    return out


def wait_http(url, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"ingest: {url} did not answer")


class Proxy:
    def __init__(self, tmp, upstream_port, name):
        self.port = free_port()
        self.db = os.path.join(tmp, f"{name}.db")
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(self.db + suffix):
                os.unlink(self.db + suffix)
        self.log = open(os.path.join(tmp, f"{name}.log"), "w")
        self.p = subprocess.Popen(
            [BIN, "--listen", f"127.0.0.1:{self.port}", "--upstream",
             f"http://127.0.0.1:{upstream_port}", "--db", self.db, "--workers", str(WORKERS),
             "--beacon-rate", "0", "--quiet"], stdout=self.log, stderr=subprocess.STDOUT)
        wait_http(f"http://127.0.0.1:{self.port}/__vitals/healthz")

    def cpu(self):
        return cpu_ticks(self.p.pid)

    def threads(self):
        return thread_ticks(self.p.pid)

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.p.kill()
            raise SystemExit("ingest: the proxy did not stop within 60 s of SIGTERM")
        self.log.close()
        if rc != 0:
            raise SystemExit(f"ingest: the proxy exited with status {rc}")


def wrk(url, conns, dur, script_args=None, threads=1):
    cmd = ["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{dur}s", "--latency"]
    if script_args is not None:
        cmd += ["-s", LUA, url, "--"] + script_args
    else:
        cmd += [url]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def parse_result(out):
    for line in out.splitlines():
        if line.startswith("RESULT "):
            return {k: int(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
    raise SystemExit("ingest: no RESULT line from wrk:\n" + out)


def to_us(s):
    for unit, f in (("us", 1), ("ms", 1000), ("s", 1000000)):
        if s.endswith(unit):
            return float(s[: -len(unit)]) * f
    return float(s)


def parse_plain(out):
    """req/s, p50 and p99 (us) and non-2xx count of a plain wrk --latency run."""
    rps = p50 = p99 = None
    bad = 0
    for line in out.splitlines():
        t = line.split()
        if line.startswith("Requests/sec:"):
            rps = float(t[1])
        elif len(t) == 2 and t[0] == "50%":
            p50 = to_us(t[1])
        elif len(t) == 2 and t[0] == "99%":
            p99 = to_us(t[1])
        elif line.strip().startswith("Non-2xx"):
            bad = int(t[-1])
    if rps is None:
        raise SystemExit("ingest: cannot read wrk's output:\n" + out)
    return rps, p50, p99, bad


def count_rows(db):
    c = sqlite3.connect(db)
    try:
        return {t: c.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("views", "metrics", "resources")}
    finally:
        c.close()


def load_args(rate=None, threads=1):
    """ingest.lua options: a fixed rate (split over the wrk threads), or saturating with the
    back-off after a refusal."""
    ids = ["timeids=1"] if TIME_IDS else []
    if rate is not None:
        return [f"rate={rate / threads:.3f}"] + ids
    return ([f"backoff={BACKOFF_MS:g}"] if BACKOFF_MS > 0 else []) + ids


def ingest_run(tmp, up_port, kind, n, rate=None):
    px = Proxy(tmp, up_port, f"{kind}-{n}-{'r' if rate else 's'}")
    c0, t0 = px.cpu(), px.threads()
    conns, threads = (RATE_CONNS, 1) if rate else (CONNS, THREADS)
    w = wrk(f"http://127.0.0.1:{px.port}/__vitals/beacon", conns, DUR,
            [kind, f"{kind[0]}{'r' if rate else 's'}{n}"] + load_args(rate, threads), threads)
    out, err = w.communicate()
    c1, t1 = px.cpu(), px.threads()
    px.stop()
    if w.returncode != 0:
        raise SystemExit("ingest: wrk failed:\n" + err)
    r = parse_result(out)
    rows = count_rows(px.db)
    acked = r["s204"]
    lost = sum(max(0, acked * per - rows[t]) for t, per in ROWS_PER[kind].items())
    r.update(kind=kind, db=px.db, rows=rows, lost=lost,
             rps=acked / (r["duration_us"] / 1e6),
             cpu_us=(c1 - c0) * 1e6 / TICK / acked if acked else float("nan"),
             **{f"cpu_{k}_us": (t1[k] - t0[k]) * 1e6 / TICK / acked if acked else float("nan")
                for k in t0})
    return r


def bare(src, tmp, max_views):
    out = subprocess.run([BARE, src, os.path.join(tmp, "bare.db"), str(max_views)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit("ingest: ingest_bare failed:\n" + out.stderr)
    return {k: float(v) for k, v in (kv.split("=") for kv in out.stdout.split())}


def page_runs(tmp, up_port, paced):
    """Page req/s and latency alone, then during metrics-only ingestion (saturating, or paced
    at about PAGE_RATE beacons/s); REPEAT pairs."""
    alone, busy = [], []
    for n in range(REPEAT):
        px = Proxy(tmp, up_port, f"page-{n}")
        try:  # a failed run must not leave its proxy behind
            page = f"http://127.0.0.1:{px.port}/page.html"
            out, _ = wrk(page, PAGE_CONNS, DUR).communicate()
            alone.append(parse_plain(out))
            if paced:
                iw = wrk(f"http://127.0.0.1:{px.port}/__vitals/beacon", PACED_CONNS, DUR + 2,
                         ["metrics", f"q{n}"] + load_args(PAGE_RATE))
            else:
                iw = wrk(f"http://127.0.0.1:{px.port}/__vitals/beacon", CONNS, DUR + 2,
                         ["metrics", f"p{n}"] + load_args(None, THREADS), THREADS)
            time.sleep(1)
            out, _ = wrk(page, PAGE_CONNS, DUR).communicate()
            busy.append(parse_plain(out))
            iout, _ = iw.communicate()
            busy[-1] = busy[-1] + (parse_result(iout),)
        finally:
            px.stop()
    return alone, busy


def med(xs):
    return statistics.median(xs)


def report_runs(tmp, kind, name, load, runs):
    for r in runs:
        print(f"#   {kind} {load} run: {r['rps']:.0f}/s p99 {r['p99_us'] / 1000:.2f} ms "
              f"204 {r['s204']} 503 {r['s503']} 429 {r['s429']} 4xx {r['s4xx']} "
              f"other {r['other']} cpu {r['cpu_us']:.1f} us rows {r['rows']} "
              f"lost {r['lost']}", file=sys.stderr)
    mid = sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]
    views = 20000 if kind == "metrics" else 5000
    b = bare(mid["db"], tmp, views)
    rps = med([r["rps"] for r in runs])
    print(f"| {name} | {load} "
          f"| {rps:,.0f} | {med([r['p50_us'] for r in runs]) / 1000:.2f} "
          f"| {med([r['p99_us'] for r in runs]) / 1000:.2f} "
          f"| {sum(r['s204'] for r in runs):,} | {sum(r['s429'] for r in runs):,} "
          f"| {sum(r['s503'] for r in runs):,} "
          f"| {med([r['cpu_us'] for r in runs]):.1f} ({med([r['cpu_loop_us'] for r in runs]):.0f} "
          f"+ {med([r['cpu_writer_us'] for r in runs]):.0f} "
          f"+ {med([r['cpu_ckpt_us'] for r in runs]):.0f}) | {sum(r['lost'] for r in runs)} "
          f"| {b['views_per_s']:,.0f} | {rps / b['views_per_s']:.2f} |", flush=True)
    if any(r["s4xx"] or r["other"] for r in runs):
        print(f"# {kind}: unexpected answers (4xx other than 429, or non-4xx/5xx)")


def main():
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool) and not os.path.exists(f"/usr/sbin/{tool}"):
            raise SystemExit(f"ingest: {tool} not found (apt-get install -y wrk nginx-light)")
    for f in (BIN, BARE):
        if not os.access(f, os.X_OK):
            raise SystemExit(f"ingest: {f} not built (make)")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    tmp = tempfile.mkdtemp(prefix="vp-bench-ingest.")
    os.chmod(tmp, 0o755)  # nginx's worker may run as another user
    up_port = free_port()
    os.makedirs(os.path.join(tmp, "www"))
    os.makedirs(os.path.join(tmp, "logs"))
    with open(os.path.join(tmp, "www", "page.html"), "w") as f:
        f.write("<!doctype html><html><head><meta charset=utf-8><title>bench</title></head>"
                "<body>\n" + "".join(f"<p>paragraph {i} of the benchmark page</p>\n"
                                     for i in range(200)) + "</body></html>\n")
    conf = os.path.join(tmp, "up.conf")
    with open(conf, "w") as f:
        f.write(f"worker_processes 1; daemon on; pid {tmp}/up.pid; error_log {tmp}/logs/up.err;\n"
                "events { worker_connections 4096; }\n"
                "http { access_log off; keepalive_requests 100000; types { text/html html; }\n"
                f"  server {{ listen 127.0.0.1:{up_port}; root {tmp}/www; }} }}\n")
    subprocess.run([nginx, "-p", tmp, "-c", conf, "-e", f"{tmp}/logs/up.err"], check=True)
    try:
        wait_http(f"http://127.0.0.1:{up_port}/page.html")
        print(f"# vitals-proxy --workers {WORKERS} --beacon-rate 0; saturating: wrk -t{THREADS} "
              f"-c{CONNS}, back-off {BACKOFF_MS:g} ms after a 503; fixed rate: wrk -t1 "
              f"-c{RATE_CONNS}; -d{DUR}s; {'time-ordered' if TIME_IDS else 'random'} view ids; "
              f"median of {REPEAT} runs; {os.cpu_count()} cores, load "
              f"{os.getloadavg()[0]:.1f}")
        print("| payload | load | beacons/s (204) | p50 ms | p99 ms | 204 | 429 | 503 "
              "| CPU µs/beacon (loop + writer + ckpt) | rows lost | bare SQLite views/s | ratio |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for kind in KINDS:
            name = "metrics-only (5 metrics)" if kind == "metrics" else \
                "realistic (5 metrics + 60 res)"
            runs = [ingest_run(tmp, up_port, kind, n) for n in range(REPEAT)]
            report_runs(tmp, kind, name, "saturating", runs)
            rps = med([r["rps"] for r in runs])
            rate = float(RATE) if RATE is not None else round(rps * 0.75, -1)
            if rate > 0:
                runs = [ingest_run(tmp, up_port, kind, n, rate) for n in range(REPEAT)]
                report_runs(tmp, kind, name, f"fixed {rate:,.0f}/s", runs)
        if os.environ.get("PAGE", "1") == "0":
            return
        print()
        print(f"| proxied page (wrk -c{PAGE_CONNS}) | req/s | p50 ms | p99 ms | non-2xx "
              "| ratio req/s |")
        print("|---|---:|---:|---:|---:|---:|")
        for paced in (True, False):
            alone, busy = page_runs(tmp, up_port, paced)
            a = (med([x[0] for x in alone]), med([x[1] for x in alone]),
                 med([x[2] for x in alone]))
            b = (med([x[0] for x in busy]), med([x[1] for x in busy]), med([x[2] for x in busy]))
            ing = med([x[4]["s204"] / (x[4]["duration_us"] / 1e6) for x in busy])
            refused = sum(x[4]["s503"] for x in busy)
            print(f"| alone | {a[0]:,.0f} | {a[1] / 1000:.2f} | {a[2] / 1000:.2f} "
                  f"| {sum(x[3] for x in alone)} | |")
            print(f"| during {'fixed-rate' if paced else 'saturating'} metrics-only ingestion "
                  f"({ing:,.0f} beacons/s acknowledged, {refused} refused) | {b[0]:,.0f} "
                  f"| {b[1] / 1000:.2f} | {b[2] / 1000:.2f} | {sum(x[3] for x in busy)} "
                  f"| {b[0] / a[0]:.2f} |", flush=True)
    finally:
        try:
            with open(os.path.join(tmp, "up.pid")) as f:
                os.kill(int(f.read().strip()), signal.SIGTERM)
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
        if not os.environ.get("KEEP_TMP"):
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
