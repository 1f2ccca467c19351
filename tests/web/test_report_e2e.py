#!/usr/bin/env python3
"""The report end to end (TAP output): the real ./vitals-proxy binary in front of a static
upstream, with --report-token. Beacons are POSTed through /__vitals/beacon, four with known LCP
values and one carrying XSS payloads in its URL (so its route), LCP target and a resource URL.
Checks: exact summary percentiles through the API; the report page in headless Chromium
(overview with drill-down into the hostile route, the hostile view's waterfall, findings)
loads with ?token= only, shows the payloads as text, creates no element or handler from them
and logs no console error; the CLI reads the database while the proxy runs (report, check
exit statuses, HTML export inert). Run from the build directory (make check)."""
import html.parser, json, os, shutil, socket, subprocess, sys, tempfile, time, urllib.parse, urllib.request

BIN = os.path.abspath("vitals-proxy")
XSS = "<img src=x onerror=document.title=/PWNED/.source>"
TOKEN = "e2e-t0k"
n = failed = 0


def ok(cond, name):
    global n, failed
    n += 1
    failed += 0 if cond else 1
    print("%s %d - %s" % ("ok" if cond else "not ok", n, name))
    sys.stdout.flush()


class Audit(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.handlers, self.title, self._t = {}, [], "", False

    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        self.handlers += [(tag, k) for k, _ in attrs if k.startswith("on")]
        self._t = tag == "title" and self.tags[tag] == 1

    def handle_endtag(self, tag):
        self._t = False

    def handle_data(self, d):
        if self._t:
            self.title += d


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def http(url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def chromium():
    for c in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(c):
            return shutil.which(c)
    return None


def load(browser, url):
    prof = tempfile.mkdtemp(prefix="vp-chrome-")
    try:
        p = subprocess.run([browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                            "--user-data-dir=" + prof, "--enable-logging=stderr", "--v=0",
                            "--window-size=1440,900", "--virtual-time-budget=4000", "--dump-dom", url],
                           capture_output=True, text=True, timeout=60)
    finally:
        shutil.rmtree(prof, ignore_errors=True)
    errors = [l for l in p.stderr.splitlines() if "CONSOLE" in l and ("Uncaught" in l or "rror" in l)]
    return p.stdout, errors


def cli(*args):
    p = subprocess.run([BIN] + list(args), capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def main():
    browser = chromium()
    if not browser or not os.path.exists(BIN):
        print("1..0 # SKIP chromium or ./vitals-proxy missing")
        return 77
    tmp = tempfile.mkdtemp(prefix="vp-e2e-")
    open(os.path.join(tmp, "index.html"), "w").write("<html><head><title>t</title></head><body>hi</body></html>")
    up_port, px_port = free_port(), free_port()
    db = os.path.join(tmp, "v.db")
    up = subprocess.Popen([sys.executable, "-m", "http.server", str(up_port), "--bind", "127.0.0.1"],
                          cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    px = subprocess.Popen([BIN, "--listen", "127.0.0.1:%d" % px_port, "--upstream", "http://127.0.0.1:%d" % up_port,
                           "--db", db, "--quiet", "--report-token", TOKEN],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = "http://127.0.0.1:%d/__vitals/" % px_port
    try:
        for _ in range(50):
            try:
                if http(base + "../__vitals/healthz")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        now = int(time.time() * 1000)
        codes = []
        for i, lcp in enumerate([1000, 2000, 3000, 5000]):
            body = {"v": 1, "vid": "e2eview%04d" % i, "url": "/products/%d" % (i + 1), "t0": now - 1000 + i,
                    "nav": "navigate", "dev": "desktop", "m": [{"n": "LCP", "id": "l%d" % i, "v": lcp}]}
            codes.append(http(base + "beacon", json.dumps(body).encode(), {"Content-Type": "text/plain"})[0])
        hostile = {"v": 1, "vid": "e2exss0001", "url": "/x/" + XSS, "t0": now, "nav": "navigate", "dev": "mobile",
                   "m": [{"n": "LCP", "id": "lx", "v": 4500, "a": {"target": XSS}},
                         {"n": "CLS", "id": "cx", "v": 0.3, "a": {"target": "<svg onload=alert(1)>"}}],
                   "nt": {"u": "/x/" + XSS, "s": 0, "d": 300, "rqs": 5, "rps": 100, "rpe": 150, "dcl": 200, "ls": 280},
                   "res": [{"u": "/static/a.js?q=" + XSS, "i": "script", "s": 20, "d": 50, "rqs": 25, "rps": 50,
                            "rpe": 70, "ts": 300000, "rb": "blocking"}], "ri": 0}
        codes.append(http(base + "beacon", json.dumps(hostile).encode(), {"Content-Type": "text/plain"})[0])
        ok(codes == [204] * 5, "beacons/accepted %s" % codes)
        auth = {"Authorization": "Bearer " + TOKEN}
        st, _ = http(base + "api/summary")
        ok(st == 401, "auth/api_needs_token (%d)" % st)
        views = []
        for _ in range(50):
            st, b = http(base + "api/views", headers=auth)
            views = json.loads(b).get("views", []) if st == 200 else []
            if len(views) == 5:
                break
            time.sleep(0.1)
        ok(len(views) == 5, "api/five_views (%d)" % len(views))
        st, b = http(base + "api/summary?route=" + urllib.parse.quote("/products/[id]", safe=""), headers=auth)
        lcp = json.loads(b)["routes"][0]["metrics"]["LCP"] if st == 200 else {}
        ok(lcp.get("p50") == 2000 and lcp.get("p75") == 3000 and lcp.get("p95") == 5000 and lcp.get("good") == 0.5,
           "api/summary_exact %s" % lcp)
        hroute = next((v["route"] for v in views if v["id"] == "e2exss0001"), "")
        q = "?token=" + TOKEN
        screens = [("overview", base + q + "&route=" + urllib.parse.quote(hroute, safe=""), ["Top LCP elements", "&lt;img src=x onerror="]),
                   ("view", base + q + "&view=e2exss0001", ["Waterfall", "/static/a.js?q=&lt;img", "RB"]),
                   ("findings", base + q + "&tab=findings", ["Render-blocking resource", "Initial JavaScript over 200 KB"])]
        for name, url, want in screens:
            dom, errors = load(browser, url)
            a = Audit()
            a.feed(dom)
            ok(not errors, "%s/no_console_errors %s" % (name, errors[:2]))
            ok(all(w in dom for w in want), "%s/content %s" % (name, [w for w in want if w not in dom]))
            ok(a.title == "vitals-proxy report" and not a.handlers and a.tags.get("script", 0) == 1 and a.tags.get("img", 0) == 0
               and a.tags.get("svg", 0) == 0, "%s/payloads_inert title=%r handlers=%s" % (name, a.title, a.handlers[:2]))
        rc, out, err = cli("report", "--db", db, "--format", "json")
        ok(rc == 0 and json.loads(out)["routes"], "cli/report_while_running (%d %s)" % (rc, err.strip()))
        rc, out, err = cli("report", "--db", db)
        ok(rc == 0 and "\x1b" not in out and all(len(l) <= 80 for l in out.splitlines()), "cli/table_80_columns_no_escapes")
        budget = os.path.join(tmp, "budget.json")
        open(budget, "w").write(json.dumps({"/products/*": {"LCP": {"p75": 2500}}}))
        rc, out, err = cli("check", "--db", db, "--budget", budget)
        ok(rc == 1 and "over budget: /products/[id] LCP p75 3000 ms > limit 2500 ms (n=4)" in out, "cli/check_over_1 (%d)" % rc)
        open(budget, "w").write(json.dumps({"/products/*": {"LCP": {"p75": 3000}}}))
        ok(cli("check", "--db", db, "--budget", budget)[0] == 0, "cli/check_within_0")
        open(budget, "w").write('{"*": {"LCP": {"p66": 1}}}')
        rc, out, err = cli("check", "--db", db, "--budget", budget)
        ok(rc == 2 and err.count("\n") == 1 and err.startswith("vitals-proxy: "), "cli/check_usage_2 (%s)" % err.strip())
        rc, out, err = cli("export", "--db", db, "--view", "e2exss0001", "--format", "html")
        a = Audit()
        a.feed(out)
        ok(rc == 0 and "<svg" in out and a.tags.get("script", 0) == 0 and not a.handlers and a.tags.get("img", 0) == 0,
           "cli/export_html_inert")
        rc, out, err = cli("export", "--db", db, "--last", "--format", "har")
        ok(rc == 0 and json.loads(out)["log"]["version"] == "1.2", "cli/export_har")
    finally:
        px.terminate()
        up.terminate()
        try:
            _, perr = px.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            px.kill()
            _, perr = px.communicate()
        up.wait(timeout=10)
        ok("Sanitizer" not in perr and "runtime error" not in perr, "proxy/no_sanitizer_report")
        shutil.rmtree(tmp, ignore_errors=True)
    print("1..%d" % n)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
