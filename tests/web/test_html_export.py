#!/usr/bin/env python3
"""Shareable HTML export in headless Chromium with JavaScript disabled (TAP output).

Runs tests/web/html_export_demo (built by make check) to write a view report and a route
report from hostile fixtures, checks the files are self-contained (no script, no external
reference, no event handler), opens each in Chromium with scripts disabled, and checks the
waterfall SVG is there and every payload stayed text. SHOTS=1 saves screenshots under
tests/web/shots/."""
import html.parser, os, re, shutil, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
DEMO = os.path.join("tests", "web", "html_export_demo")
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
        self.external = []

    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        self.handlers += [(tag, k) for k, _ in attrs if k.startswith("on")]
        self.external += [v for k, v in attrs if k in ("src", "href") and v]
        self._t = tag == "title" and self.tags[tag] == 1  # the document title, not SVG <title>s

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        self._t = False

    def handle_endtag(self, tag):
        self._t = False

    def handle_data(self, d):
        if self._t:
            self.title += d


def colours(png):
    """Distinct RGB(A) pixels of a PNG (8-bit, non-interlaced, as Chromium writes them)."""
    import struct, zlib
    try:
        data = open(png, "rb").read()
    except OSError:
        return 0
    pos, idat, w = 8, b"", 0
    bpp = 4
    while pos < len(data):
        ln, typ = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + ln]
        if typ == b"IHDR":
            w, ctype = struct.unpack(">I", body[:4])[0], body[9]
            bpp = 4 if ctype == 6 else 3
        elif typ == b"IDAT":
            idat += body
        pos += 12 + ln
    raw = zlib.decompress(idat)
    stride, seen, prev = w * bpp + 1, set(), bytearray(w * bpp)
    for y in range(len(raw) // stride):
        f, line = raw[y * stride], bytearray(raw[y * stride + 1:(y + 1) * stride])
        for i in range(len(line)):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1: line[i] = (line[i] + a) & 255
            elif f == 2: line[i] = (line[i] + b) & 255
            elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        if y % 8 == 0:
            for x in range(0, len(line), bpp * 4):
                seen.add(bytes(line[x:x + 3]))
        prev = line
    return len(seen)


def chromium():
    for c in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(c):
            return shutil.which(c)
    return None


def load(browser, path, extra, js=False):
    prof = tempfile.mkdtemp(prefix="vp-chrome-")
    try:
        p = subprocess.run([browser, "--headless=new", "--no-sandbox", "--disable-gpu",
                            "--no-first-run", "--user-data-dir=" + prof, "--window-size=1280,900"]
                           + ([] if js else ["--blink-settings=scriptEnabled=false"])
                           + extra + ["file://" + path], capture_output=True, text=True, timeout=60)
    finally:
        shutil.rmtree(prof, ignore_errors=True)
    return p.stdout


def main():
    browser = chromium()
    if not browser or not os.path.exists(DEMO):
        print("1..0 # SKIP chromium or %s missing" % DEMO)
        return 77
    tmp = tempfile.mkdtemp(prefix="vp-html-")
    view, route = os.path.join(tmp, "view.html"), os.path.join(tmp, "route.html")
    ok(subprocess.run([DEMO, view, route]).returncode == 0, "demo/written")
    for name, path, want in (("view", view, ["Waterfall", "Proxy upstream timings", "Attribution"]),
                             ("route", route, ["Route /p/&lt;b&gt;bold&lt;/b&gt;", "Slowest views", "2600"])):
        text = open(path, encoding="utf-8").read()
        a = Audit()
        a.feed(text)
        ok(a.tags.get("script", 0) == 0 and not a.handlers and not a.external,
           "%s/file_inert scripts=%d handlers=%s external=%s" % (name, a.tags.get("script", 0), a.handlers[:2], a.external[:2]))
        ok(a.title.startswith("vitals-proxy: "), "%s/title" % name)
        ok(re.search(r'http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'; img-src data:"', text) is not None,
           "%s/csp_blocks_all_scripts" % name)
        ok(a.tags.get("svg", 0) >= 1 and a.tags.get("rect", 0) >= 200, "%s/svg_waterfall rects=%d" % (name, a.tags.get("rect", 0)))
        ok(all(w in text for w in want), "%s/content" % name)
        ok("&lt;img src=x onerror=&quot;" in text, "%s/payload_escaped" % name)
        # --dump-dom serialises through script, so the DOM is read with scripts on (the file has
        # none); the rendering itself is checked with scripts off, from a screenshot.
        dom = load(browser, path, ["--dump-dom"], js=True)
        b = Audit()
        b.feed(dom)
        ok("<svg" in dom and b.tags.get("rect", 0) >= 200, "%s/renders_without_js" % name)
        ok(not b.handlers and b.tags.get("img", 0) == 0 and b.tags.get("script", 0) == 0 and "PWNED" not in b.title,
           "%s/no_injected_elements_in_dom" % name)
        shot = os.path.join(tmp, name + ".png")
        if os.environ.get("SHOTS") == "1":
            os.makedirs(os.path.join(HERE, "shots"), exist_ok=True)
            shot = os.path.join(HERE, "shots", "export-%s.png" % name)
        # Headless Chromium cannot capture with scriptEnabled=false (capture goes through
        # script), so the screenshot is taken with the file's own CSP (default-src 'none')
        # forbidding every script on the page, which is what a reader without JS sees.
        load(browser, path, ["--screenshot=" + shot], js=True)
        ok(colours(shot) >= 6, "%s/screenshot_scripts_blocked_has_content (%d colours)" % (name, colours(shot)))
    shutil.rmtree(tmp, ignore_errors=True)
    print("1..%d" % n)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
