#!/usr/bin/env python3
"""The HTML export in headless Chromium with JavaScript disabled (TAP output).

Runs tests/unit/test_export_html (built by `make check`) to write a view export and a route
export from a real database whose stored strings carry XSS payloads, then opens each file with
`chromium --headless --disable-javascript` from file:// (offline: no server, no network):
  - --dump-dom: the parsed document has the <svg> waterfall with its bars, and no <img>,
    <script> or on* attribute came out of the payloads (the DOM a browser built, not our text);
  - --screenshot (saved under tests/logs/): the waterfall's phase colours are really painted
    (pixels of the DNS, connect, TLS, wait and download colours are counted in the PNG).
The PNG is decoded here with zlib (8-bit RGB/RGBA, no interlace), so no imaging package is
needed."""
import html.parser, os, shutil, struct, subprocess, sys, tempfile, zlib

HERE = os.path.dirname(os.path.abspath(__file__))
n = failed = 0


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


def run_chromium(browser, url, extra, height=1000):
    prof = tempfile.mkdtemp(prefix="vp-chrome-")
    args = [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-javascript", "--user-data-dir=" + prof, "--hide-scrollbars",
            "--window-size=1300,%d" % height, "--run-all-compositor-stages-before-draw"] + extra
    try:
        return subprocess.run(args + [url], capture_output=True, text=True, timeout=60)
    finally:
        shutil.rmtree(prof, ignore_errors=True)


class Dom(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = {}
        self.handlers = []

    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        for k, _ in attrs:
            if k.lower().startswith("on"):
                self.handlers.append((tag, k))


def png_pixels(path):
    """(width, height, rows of bytes, bytes per pixel) of an 8-bit RGB/RGBA PNG."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        ln, typ = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + ln]
        if typ == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and ctype in (2, 6) and interlace == 0
            bpp = 3 if ctype == 2 else 4
        elif typ == b"IDAT":
            idat += body
        pos += 12 + ln
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, rows, bpp


def colour_bands(path, colours):
    """Per colour (exact RGB, opaque), the number of separate horizontal bands (runs of pixel rows) holding at least
    4 pixels of it. A legend swatch is one band; each waterfall row's bar is another (rows are
    16 px apart with 12 px bars, so bars of different rows are separate bands)."""
    w, h, rows, bpp = png_pixels(path)
    want = {c: bytes.fromhex(c[1:]) + (b"\xff" if bpp == 4 else b"") for c in colours}
    bands = dict.fromkeys(colours, 0)
    inside = dict.fromkeys(colours, False)
    for row in rows:
        for c in colours:
            on = row.count(want[c]) >= 4  # solid fills are painted exactly
            if on and not inside[c]:
                bands[c] += 1
            inside[c] = on
    return bands


def main():
    browser = chromium()
    ok(browser is not None, "chromium is installed (apt-get install chromium)")
    if not browser:
        print("1..%d" % n)
        return 1
    builddir = os.getcwd()
    logs = os.path.join(builddir, "tests", "logs")
    os.makedirs(logs, exist_ok=True)
    exe = os.path.join(builddir, "tests", "unit", "test_export_html")
    p = subprocess.run([exe], capture_output=True, text=True, env=dict(os.environ, EXPORT_HTML_DIR=logs))
    ok(p.returncode == 0, "export documents generated by test_export_html")
    phases = {"DNS": "#1b9e77", "connect": "#d95f02", "TLS": "#7570b3", "wait": "#e6ab02",
              "download": "#1f78b4"}
    for name in ("export_view", "export_route"):
        src = os.path.join(logs, name + ".html")
        url = "file://" + src
        d = run_chromium(browser, url, ["--dump-dom"])
        dom = Dom()
        dom.feed(d.stdout)
        ok(dom.tags.get("svg", 0) >= 1 and dom.tags.get("rect", 0) >= 5,
           "%s: DOM has the svg waterfall (%d svg, %d rect)" % (name, dom.tags.get("svg", 0), dom.tags.get("rect", 0)))
        ok(dom.tags.get("img", 0) == 0 and dom.tags.get("script", 0) == 0 and not dom.handlers,
           "%s: XSS payloads inert in the DOM (img %d, script %d, handlers %r)"
           % (name, dom.tags.get("img", 0), dom.tags.get("script", 0), dom.handlers[:3]))
        if name == "export_view":
            ok("<img src=x onerror=alert(1)>" in html.unescape(d.stdout),
               "%s: payload shown as text" % name)
        shot = os.path.join(logs, name + ".png")
        if os.path.exists(shot):
            os.unlink(shot)
        run_chromium(browser, url, ["--screenshot=" + shot], 1000 if name == "export_view" else 3200)
        ok(os.path.exists(shot), "%s: screenshot saved to %s" % (name, shot))
        if os.path.exists(shot):
            bands = colour_bands(shot, list(phases.values()))
            painted = {k: bands[v] for k, v in phases.items()}
            # legends drawn: 1 per waterfall; bars beyond them must be painted too. The view has
            # DNS/connect/TLS on the navigation row and wait/download on 3 rows; each of the 5
            # route views has wait/download on its navigation row.
            legends = dom.tags.get("svg", 0)
            need = {"wait": 2 * legends, "download": 2 * legends} if name == "export_route" else \
                {"DNS": 2, "connect": 2, "TLS": 2, "wait": 4, "download": 4}
            ok(all(painted[k] >= v for k, v in need.items()),
               "%s: waterfall bars painted without JavaScript (colour bands %r, need %r)"
               % (name, painted, need))
    print("1..%d" % n)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
