#!/usr/bin/env python3
"""Report page in headless Chromium against a fixture JSON API (TAP output).

Serves web/report.html at /__vitals/ and canned API replies (with XSS payloads in URLs, routes,
selectors and labels, and a view with 1,000 resources) from a local HTTP server, then loads each
screen (overview + drill-down, view waterfall, API latency, findings, health) at 1440 and 375
px wide with `chromium --headless --dump-dom`, and checks: no console errors, no failed API
request, the payloads stay text (no element or handler created from them), the expected
content is present. Screenshots go to tests/web/shots/ when SHOTS=1."""
import html.parser, http.server, json, os, re, shutil, socketserver, subprocess, sys, tempfile, threading

HERE = os.path.dirname(os.path.abspath(__file__))
PAGE = os.path.join(HERE, "..", "..", "web", "report.html")
XSS = '<img src=x onerror="document.title=\'PWNED\'">'
XSS2 = '"><script>document.title="PWNED2"</script>'

summary = {"routes": [
    {"route": "/", "views": 12, "metrics": {
        "LCP": {"n": 12, "p50": 1200, "p75": 2100, "p95": 3900, "p99": 4100, "good": .8, "ni": .1, "poor": .1},
        "CLS": {"n": 12, "p50": .01, "p75": .05, "p95": .2, "p99": .3, "good": .9, "ni": .05, "poor": .05}}},
    {"route": "/p/" + XSS, "views": 3, "metrics": {
        "INP": {"n": 3, "p50": 150, "p75": 300, "p95": 700, "p99": 800, "good": .34, "ni": .33, "poor": .33}}}]}
res = []
for i in range(1000):
    s = 10 + i * 2.5
    # store/query.h shape: column names of the resources table
    res.append({"idx": i, "url": "/static/chunk-%d.js?q=%s" % (i, XSS) if i % 100 == 0 else "/static/chunk-%d.js" % i,
                "initiator": "script", "start_ms": s, "duration_ms": 40, "fetch_start": s + 1,
                "dns_start": s + 1, "dns_end": s + 3, "connect_start": s + 3, "secure_start": s + 5,
                "connect_end": s + 8, "request_start": s + 9, "response_start": s + 25, "response_end": s + 40,
                "transfer_size": 1200, "render_blocking": "blocking" if i < 3 else "non-blocking", "protocol": "h2"})
view = {"id": "view0001", "started_at": "2026-11-24T10:00:00.000Z", "url": "/?q=" + XSS,
        "route": "/", "navigation_type": "navigate", "device": "desktop", "browser": "Chrome",
        "label": XSS2, "metrics": {"LCP": 2100, "CLS": .05, "INP": 120, "FCP": 900, "TTFB": 200},
        "attribution": {"LCP": {"target": XSS, "url": "/hero.jpg"}, "INP": {"target": XSS2}},
        "navigation": {"url": "/", "start_ms": 0, "duration_ms": 900, "request_start": 5, "response_start": 200,
                       "response_end": 260, "dcl_start": 700, "load_start": 1800},
        "resources": res, "initial_js_bytes": 1200000,
        "requests": [{"url": "/", "head_done_us": 1795514400000000 + 2000, "sent_us": 1795514400000000 + 2500,
                      "first_byte_us": 1795514400000000 + 150000, "last_byte_us": 1795514400000000 + 255000, "status": 200}]}
views = {"views": [{k: view[k] for k in ("id", "started_at", "url", "route", "navigation_type", "device", "label", "metrics")}]}
fixtures = {
    "summary": summary, "views": views, "views/view0001": view,
    "budget": {"results": [{"route": "/", "metric": "LCP", "percentile": "p75", "limit": 2000, "actual": 2100, "n": 12, "ok": False},
                           {"route": "/api/" + XSS, "method": "GET", "metric": "API", "percentile": "p95", "limit": 500, "actual": 900, "n": 4, "ok": False}],
               "checked": 2, "violations": 2, "budget": {"*": {"LCP": {"p75": 2000}}}},
    "targets": {"views": 1, "LCP": [{"target": XSS, "count": 3, "p75": 2500}], "CLS": [], "INP": [{"target": XSS2, "count": 1, "p75": 90}]},
    "api-latency": {"routes": [{"route": "/api/" + XSS, "method": "GET", "n": 40, "p50": 80, "p95": 650, "p99": 2500, "errors": 2}]},
    "findings": {"findings": [{"type": "cache-policy", "title": "Static asset without a long Cache-Control",
                               "evidence": "/static/" + XSS + " (Cache-Control: none)", "count": 7}]},
    "labels": {"labels": [{"label": XSS2, "views": 40, "first": "2026-11-24T09:00:00.000Z", "last": "2026-11-24T10:00:00.000Z"},
                          {"label": "lazy", "views": 41, "first": "2026-11-24T10:00:00.000Z", "last": "2026-11-24T11:00:00.000Z"}]},
    "compare": {"seed": 1, "min_n": 30, "rows": [
        {"route": "/p/" + XSS, "metric": "LCP", "stat": "p75", "a": {"n": 40, "p50": 2000, "p75": 2300, "p95": 2900},
         "b": {"n": 41, "p50": 1000, "p75": 1300, "p95": 1900}, "diff": -1000, "ci": [-1100, -900], "verdict": "better"},
        {"route": "/api/x", "method": "GET", "metric": "API", "stat": "p95", "a": {"n": 5}, "b": {"n": 6}, "verdict": "not enough data"}]},
    "label": {"label": XSS2, "switchable": True},
    "health": {"beacons_accepted": 10, "beacons_rejected": 1, "rejections": {XSS: 1}, "views": 2, "requests": 5, "oldest": "2026-11-24T09:00:00.000Z", "newest": "2026-11-24T10:00:00.000Z", "db_bytes": 4096},
}
seen = []


class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        path, _, q = self.path.partition("?")
        seen.append(self.path)
        if path == "/__vitals/":
            body, ctype, st = open(PAGE, "rb").read(), "text/html; charset=utf-8", 200
        elif path.startswith("/__vitals/api/"):
            name = path[len("/__vitals/api/"):]
            if "token=t0k" not in q:
                body, st = b'{"error":"token missing"}', 401
            elif name not in fixtures:
                body, st = b'{"error":"not found"}', 404
            else:
                body, st = json.dumps(fixtures[name]).encode(), 200
            ctype = "application/json"
        else:
            body, ctype, st = b"not found", "text/plain", 404
        self.send_response(st)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Audit(html.parser.HTMLParser):
    """Collects what an injection would create: event-handler attributes, scripts, images."""

    def __init__(self):
        super().__init__()
        self.handlers, self.scripts, self.imgs, self.title, self._in_title = [], 0, 0, "", False

    def handle_starttag(self, tag, attrs):
        self.handlers += [(tag, k) for k, _ in attrs if k.startswith("on")]
        self.scripts += tag == "script"
        self.imgs += tag == "img"
        self._in_title = tag == "title"

    def handle_endtag(self, tag):
        self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data


n = 0
failed = 0


def ok(cond, name):
    global n, failed
    n += 1
    if not cond:
        failed += 1
    print("%s %d - %s" % ("ok" if cond else "not ok", n, name))
    sys.stdout.flush()


def chromium():
    for c in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(c)
        if p:
            return p
    return None


def load(browser, url, width, shot=None):
    prof = tempfile.mkdtemp(prefix="vp-chrome-")
    args = [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--user-data-dir=" + prof, "--enable-logging=stderr", "--v=0",
            "--window-size=%d,900" % width, "--virtual-time-budget=4000", "--run-all-compositor-stages-before-draw"]
    args += ["--screenshot=" + shot] if shot else ["--dump-dom"]
    try:
        p = subprocess.run(args + [url], capture_output=True, text=True, timeout=60)
    finally:
        shutil.rmtree(prof, ignore_errors=True)
    errors = [l for l in p.stderr.splitlines() if "CONSOLE" in l and ("Uncaught" in l or "rror" in l)]
    return p.stdout, errors


def main():
    browser = chromium()
    if not browser:
        print("1..0 # SKIP chromium not installed")
        return 77
    srv = socketserver.TCPServer(("127.0.0.1", 0), H)
    port = srv.server_address[1]
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = "http://127.0.0.1:%d/__vitals/?token=t0k" % port
    shots = os.environ.get("SHOTS") == "1"
    if shots:
        os.makedirs(os.path.join(HERE, "shots"), exist_ok=True)
    size = os.path.getsize(PAGE)
    ok(size < 60 * 1024, "page/size_under_60k (%d bytes uncompressed)" % size)
    html = open(PAGE).read()
    ok(not re.search(r'(src|href)=["\']?https?://', html), "page/self_contained")
    screens = [("overview", base + "&route=%2F", ["Routes", "Slowest views", "Top LCP elements", "1 over"]),
               ("view", base + "&view=view0001", ["Waterfall", "HTML report", "1001 requests", "render-blocking", ">DCL<", ">load<", ">LCP<", ">FCP<", "Attribution"]),
               ("api", base + "&tab=api", ["API latency", "GET"]),
               ("findings", base + "&tab=findings", ["Static asset without a long Cache-Control", "/static/&lt;img"]),
               ("health", base + "&tab=health", ["beacons accepted", "Rejected beacons"]),
               ("compare", base + "&tab=compare&a=lazy&b=-1h..now", ["Compare two runs", "Set label", "better", "not enough data", "−1000 ms".replace("−", "-"), "[-1100 ms, -900 ms]"])]
    for name, url, want in screens:
        for width in (1440, 375):
            del seen[:]
            dom, errors = load(browser, url, width)
            ok(not errors, "%s@%d/no_console_errors %s" % (name, width, errors[:2]))
            ok(all(w in dom for w in want), "%s@%d/content %s" % (name, width, [w for w in want if w not in dom]))
            audit = Audit()
            audit.feed(dom)
            ok(audit.title == "vitals-proxy report", "%s@%d/xss_inert_title (%r)" % (name, width, audit.title))
            ok(not audit.handlers and audit.scripts == 1 and audit.imgs == 0,
               "%s@%d/no_injected_elements %s scripts=%d imgs=%d" % (name, width, audit.handlers[:2], audit.scripts, audit.imgs))
            ok(all("token=t0k" in s for s in seen if "/api/" in s) and any("/api/" in s for s in seen),
               "%s@%d/token_carried" % (name, width))
            if shots:
                load(browser, url, width, os.path.join(HERE, "shots", "%s-%d.png" % (name, width)))
    # an XSS payload must appear as text somewhere (escaped), proving the fixture was rendered
    dom, _ = load(browser, base + "&view=view0001", 1440)
    ok("&lt;img src=x onerror=" in dom, "xss/payload_rendered_as_text")
    srv.shutdown()
    print("1..%d" % n)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
