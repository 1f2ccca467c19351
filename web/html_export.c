/* Shareable HTML report (see html_export.h).
 *
 * Built as text into an evbuffer: fixed markup from this file, numbers formatted here, and
 * database strings only through html_escape (text and attribute values alike, always inside
 * double quotes). The waterfall is one SVG whose x axis is the view's time span; each row is a
 * resource, each phase a rect in the same colours as the report page. Nothing executes: there
 * is no script, no event handler, no link, no external reference. */
#include "config.h"

#include "web/html_export.h"

#include <event2/buffer.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/vp_err.h"
#include "web/export.h"

#define ROW_H 16
#define LABEL_W 330
#define CHART_W 650

static int add(struct evbuffer *o, const char *s)
{
    return evbuffer_add(o, s, strlen(s)) == 0 ? 0 : VP_ERR_NOMEM;
}

__attribute__((format(printf, 2, 3))) static int addf(struct evbuffer *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = evbuffer_add_vprintf(o, fmt, ap);
    va_end(ap);
    return n < 0 ? VP_ERR_NOMEM : 0;
}

int html_escape(struct evbuffer *out, const char *s, size_t len)
{
    size_t from = 0;
    for (size_t i = 0; i < len; i++) {
        const char *rep = NULL;
        switch (s[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default:
            if ((unsigned char)s[i] < 0x20 && s[i] != '\t')
                rep = "\xef\xbf\xbd"; /* U+FFFD for control bytes */
        }
        if (!rep)
            continue;
        if ((i > from && evbuffer_add(out, s + from, i - from) != 0) || add(out, rep))
            return VP_ERR_NOMEM;
        from = i + 1;
    }
    return len > from && evbuffer_add(out, s + from, len - from) != 0 ? VP_ERR_NOMEM : 0;
}

static int esc_json(struct evbuffer *o, const json_t *v)
{
    if (json_is_string(v))
        return html_escape(o, json_string_value(v), json_string_length(v));
    if (json_is_number(v))
        return addf(o, "%g", json_number_value(v));
    return 0;
}

static double num(const json_t *o, const char *s, const char *l)
{
    const json_t *v = export_res_get(o, s, l);
    return json_is_number(v) ? json_number_value(v) : 0;
}

static const struct {
    const char *name;
    double good, poor;
} thr[] = {{"LCP", 2500, 4000}, {"CLS", 0.1, 0.25}, {"INP", 200, 500}, {"FCP", 1800, 3000},
           {"TTFB", 800, 1800}};

static const char *rating(size_t m, double v)
{
    return v <= thr[m].good ? "good" : v <= thr[m].poor ? "ni" : "poor";
}

static int fmt_metric(struct evbuffer *o, size_t m, double v)
{
    return m == 1 ? addf(o, "%.3f", v) : addf(o, "%.0f&#8239;ms", v);
}

static const char head[] =
    "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
    "style-src 'unsafe-inline'; img-src data:\">"
    "<meta name=\"referrer\" content=\"no-referrer\"><title>";
static const char style[] =
    "</title><style>"
    ":root{color-scheme:light dark;--good:#0a7d3b;--ni:#b36b00;--poor:#c62828;--line:#d0d7de;"
    "--mut:#5b6470}"
    "@media (prefers-color-scheme:dark){:root{--good:#3ecf7a;--ni:#ffb74d;--poor:#ff6b6b;"
    "--line:#2c333b;--mut:#9aa4b1}}"
    "body{font:14px/1.45 system-ui,sans-serif;margin:16px;max-width:1100px}"
    "table{border-collapse:collapse;font-variant-numeric:tabular-nums}"
    "th,td{padding:3px 8px;border-bottom:1px solid var(--line);text-align:right}"
    "th.l,td.l{text-align:left}.good{color:var(--good)}.ni{color:var(--ni)}"
    ".poor{color:var(--poor)}.mut{color:var(--mut)}svg{max-width:100%;height:auto}"
    "svg text{font:11px system-ui,sans-serif;fill:currentColor}"
    ".c-blk{fill:#b0bec5}.c-dns{fill:#0097a7}.c-conn{fill:#f9a825}.c-tls{fill:#8e24aa}"
    ".c-wait{fill:#43a047}.c-dl{fill:#1e88e5}.c-prx{fill:#6d4c41}.mk{stroke:#888;"
    "stroke-dasharray:3 3}.rb{fill:#c62828;font-weight:700}"
    ".lg span{margin-right:10px;font-size:12px}.lg i{display:inline-block;width:10px;"
    "height:10px;margin-right:4px;vertical-align:-1px}"
    "</style></head><body>";

static int legend(struct evbuffer *o)
{
    return add(o, "<p class=\"lg\"><span><i style=\"background:#b0bec5\"></i>queued</span>"
                  "<span><i style=\"background:#0097a7\"></i>DNS</span>"
                  "<span><i style=\"background:#f9a825\"></i>connect</span>"
                  "<span><i style=\"background:#8e24aa\"></i>TLS</span>"
                  "<span><i style=\"background:#43a047\"></i>wait</span>"
                  "<span><i style=\"background:#1e88e5\"></i>download</span>"
                  "<span><i style=\"background:#6d4c41\"></i>proxy: upstream request to last "
                  "byte</span><span class=\"poor\"><b>RB</b> render-blocking</span></p>");
}

static int rect(struct evbuffer *o, const char *cls, double t0, double t1, double span, int y,
                int h)
{
    if (t1 <= t0)
        return 0;
    double x = LABEL_W + t0 / span * CHART_W, w = (t1 - t0) / span * CHART_W;
    return addf(o, "<rect class=\"%s\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\"/>", cls,
                x, y, w < 0.5 ? 0.5 : w, h);
}

/* Proxy record of a resource URL (same path + query), or NULL. */
static const json_t *proxy_of(const json_t *reqs, const char *url)
{
    if (!url)
        return NULL;
    const char *p = url;
    const char *scheme = strstr(url, "://");
    if (scheme && (p = strchr(scheme + 3, '/')) == NULL)
        p = "/";
    size_t i;
    const json_t *q;
    json_array_foreach(reqs, i, q) {
        const char *u = json_string_value(json_object_get(q, "url"));
        if (u && strcmp(u, p) == 0)
            return q;
    }
    return NULL;
}

static int waterfall(struct evbuffer *o, const json_t *view)
{
    const json_t *nav = json_object_get(view, "navigation");
    const json_t *res = json_object_get(view, "resources");
    const json_t *reqs = json_object_get(view, "requests");
    const json_t *metrics = json_object_get(view, "metrics");
    size_t nres = json_array_size(res);
    double t0_ms = NAN;
    const json_t *sam = json_object_get(view, "started_at_ms");
    if (json_is_number(sam))
        t0_ms = json_number_value(sam);
    double span = 1;
    for (size_t i = 0; i <= nres; i++) {
        const json_t *r = i == 0 ? nav : json_array_get(res, i - 1);
        if (!r)
            continue;
        double e = num(r, "rpe", "response_end"), s = num(r, "s", "start_ms") + num(r, "d", "duration_ms");
        span = fmax(span, fmax(e, s));
    }
    static const char *const marks[][3] = {
        {"FCP", NULL, NULL}, {"LCP", NULL, NULL}, {"DCL", "dcl", "dcl_start"}, {"load", "ls", "load_start"}};
    double mt[4];
    for (int k = 0; k < 4; k++) {
        const json_t *v = marks[k][1] ? export_res_get(nav, marks[k][1], marks[k][2])
                                      : json_object_get(metrics, marks[k][0]);
        mt[k] = json_is_number(v) ? json_number_value(v) : -1;
        span = fmax(span, mt[k]);
    }
    span *= 1.03;
    int rows = (int)nres + 1, height = 22 + rows * ROW_H;
    int rc = addf(o, "<h2>Waterfall <span class=\"mut\">(%zu requests, 0 to %.0f ms)</span></h2>",
                  nres + (nav ? 1 : 0), span);
    if (!rc)
        rc = legend(o);
    if (!rc)
        rc = addf(o, "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" "
                     "width=\"%d\" height=\"%d\" role=\"img\" aria-label=\"waterfall\">",
                  LABEL_W + CHART_W + 10, height, LABEL_W + CHART_W + 10, height);
    for (int k = 0; !rc && k < 5; k++)
        rc = addf(o, "<text x=\"%.1f\" y=\"10\" class=\"mut\">%.0f ms</text>",
                  LABEL_W + k * CHART_W / 5.0, span * k / 5);
    for (int i = 0; !rc && i < rows; i++) {
        const json_t *r = i == 0 ? nav : json_array_get(res, (size_t)i - 1);
        if (!r)
            continue;
        int y = 20 + i * ROW_H;
        const char *url = json_string_value(export_res_get(r, "u", "url"));
        if (i == 0 && !url)
            url = json_string_value(json_object_get(view, "url"));
        const char *rb = json_string_value(export_res_get(r, "rb", "render_blocking"));
        bool blocking = rb && strcmp(rb, "blocking") == 0;
        rc = addf(o, "<text x=\"2\" y=\"%d\">%s", y + 11, blocking ? "<tspan class=\"rb\">RB </tspan>" : "");
        /* at most 60 characters of the URL as the row label; the full URL in a title */
        size_t ul = url ? strlen(url) : 0;
        if (!rc && url)
            rc = html_escape(o, url, ul > 60 ? 60 : ul);
        if (!rc && ul > 60)
            rc = add(o, "&#8230;");
        if (!rc)
            rc = add(o, "<title>");
        if (!rc && url)
            rc = html_escape(o, url, ul);
        if (!rc)
            rc = add(o, "</title></text>");
        double s = num(r, "s", "start_ms"), dls = num(r, "dls", "dns_start"),
               dle = num(r, "dle", "dns_end"), cs = num(r, "cs", "connect_start"),
               ce = num(r, "ce", "connect_end"), scs = num(r, "scs", "secure_start"),
               rqs = num(r, "rqs", "request_start"), rps = num(r, "rps", "response_start"),
               rpe = num(r, "rpe", "response_end"), d = num(r, "d", "duration_ms");
        double first = dls > 0 ? dls : cs > 0 ? cs : rqs > 0 ? rqs : rps > 0 ? rps : rpe;
        bool any = false;
        if (!rc && first > s) {
            rc = rect(o, "c-blk", s, first, span, y + 3, 9);
            any = true;
        }
        if (!rc && dls > 0 && dle > dls) {
            rc = rect(o, "c-dns", dls, dle, span, y + 3, 9);
            any = true;
        }
        if (!rc && cs > 0 && ce > cs) {
            bool tls = scs > cs && scs < ce;
            rc = rect(o, "c-conn", cs, tls ? scs : ce, span, y + 3, 9);
            if (!rc && tls)
                rc = rect(o, "c-tls", scs, ce, span, y + 3, 9);
            any = true;
        }
        if (!rc && rqs > 0 && rps > rqs) {
            rc = rect(o, "c-wait", rqs, rps, span, y + 3, 9);
            any = true;
        }
        if (!rc && rps > 0 && rpe > rps) {
            rc = rect(o, "c-dl", rps, rpe, span, y + 3, 9);
            any = true;
        }
        if (!rc && !any)
            rc = rect(o, "c-dl", s, s + d, span, y + 3, 9);
        const json_t *q = proxy_of(reqs, url);
        if (!rc && q && isfinite(t0_ms)) {
            double hd = json_number_value(json_object_get(q, "head_done_us"));
            double lb = json_number_value(json_object_get(q, "last_byte_us"));
            if (hd > 0 && lb > hd)
                rc = rect(o, "c-prx", hd / 1000 - t0_ms, lb / 1000 - t0_ms, span, y + 12, 3);
        }
    }
    /* Labels in time order, each on the first of three lines where it clears the previous
     * label (FCP, LCP and DCL often fall within a few pixels of each other). */
    int order[4] = {0, 1, 2, 3};
    for (int a = 1; a < 4; a++)
        for (int b = a; b > 0 && mt[order[b]] < mt[order[b - 1]]; b--) {
            int t = order[b];
            order[b] = order[b - 1];
            order[b - 1] = t;
        }
    double last_x[3] = {-1e9, -1e9, -1e9};
    for (int i = 0; !rc && i < 4; i++) {
        int k = order[i];
        if (mt[k] < 0)
            continue;
        double x = LABEL_W + mt[k] / span * CHART_W;
        int line = 0;
        while (line < 2 && x - last_x[line] < 30)
            line++;
        last_x[line] = x;
        rc = addf(o, "<line class=\"mk\" x1=\"%.1f\" x2=\"%.1f\" y1=\"14\" y2=\"%d\"/>"
                     "<text x=\"%.1f\" y=\"%d\" class=\"mut\">%s</text>",
                  x, x, height, x + 2, 22 + line * 10, marks[k][0]);
    }
    return rc ? rc : add(o, "</svg>");
}

static int view_section(struct evbuffer *o, const json_t *v, bool h1)
{
    const json_t *metrics = json_object_get(v, "metrics");
    int rc = add(o, h1 ? "<h1>View " : "<h2>View ");
    if (!rc)
        rc = esc_json(o, json_object_get(v, "id"));
    if (!rc)
        rc = add(o, h1 ? "</h1><p>" : "</h2><p>");
    static const char *const ctx[] = {"url", "route", "navigation_type", "device", "browser",
                                      "ect", "label", "started_at"};
    const char *sep = "";
    for (size_t i = 0; !rc && i < sizeof ctx / sizeof ctx[0]; i++) {
        const json_t *x = json_object_get(v, ctx[i]);
        if (!x || json_is_null(x))
            continue;
        rc = addf(o, "%s<span class=\"mut\">%s</span> ", sep, ctx[i]);
        if (!rc)
            rc = esc_json(o, x);
        sep = " &#183; ";
    }
    if (!rc)
        rc = add(o, "</p><table><tr>");
    for (size_t m = 0; !rc && m < 5; m++)
        rc = addf(o, "<th>%s</th>", thr[m].name);
    if (!rc)
        rc = add(o, "</tr><tr>");
    for (size_t m = 0; !rc && m < 5; m++) {
        const json_t *x = json_object_get(metrics, thr[m].name);
        if (!json_is_number(x)) {
            rc = add(o, "<td class=\"mut\">&#8211;</td>");
            continue;
        }
        rc = addf(o, "<td class=\"%s\">", rating(m, json_number_value(x)));
        if (!rc)
            rc = fmt_metric(o, m, json_number_value(x));
        if (!rc)
            rc = add(o, "</td>");
    }
    if (!rc)
        rc = add(o, "</tr></table>");
    const json_t *attr = json_object_get(v, "attribution");
    if (!rc && json_object_size(attr)) {
        rc = add(o, "<h3>Attribution</h3><table>");
        const char *k;
        const json_t *a;
        json_object_foreach((json_t *)attr, k, a) {
            if (rc)
                break;
            rc = add(o, "<tr><th class=\"l\">");
            if (!rc)
                rc = html_escape(o, k, strlen(k));
            if (!rc)
                rc = add(o, "</th><td class=\"l\">");
            const char *ak;
            const json_t *av;
            const char *asep = "";
            json_object_foreach((json_t *)a, ak, av) {
                if (rc)
                    break;
                rc = addf(o, "%s<span class=\"mut\">", asep);
                if (!rc)
                    rc = html_escape(o, ak, strlen(ak));
                if (!rc)
                    rc = add(o, "</span> ");
                if (!rc)
                    rc = esc_json(o, av);
                asep = " &#183; ";
            }
            if (!rc)
                rc = add(o, "</td></tr>");
        }
        if (!rc)
            rc = add(o, "</table>");
    }
    if (!rc)
        rc = waterfall(o, v);
    const json_t *reqs = json_object_get(v, "requests");
    if (!rc && json_array_size(reqs)) {
        rc = add(o, "<h3>Proxy upstream timings</h3><table><tr><th class=\"l\">request</th>"
                    "<th>status</th><th>upstream wait</th><th>total</th><th>bytes</th></tr>");
        size_t i;
        const json_t *q;
        json_array_foreach(reqs, i, q) {
            if (rc)
                break;
            double sent = json_number_value(json_object_get(q, "sent_us"));
            double fb = json_number_value(json_object_get(q, "first_byte_us"));
            double hd = json_number_value(json_object_get(q, "head_done_us"));
            double lb = json_number_value(json_object_get(q, "last_byte_us"));
            rc = add(o, "<tr><td class=\"l\">");
            if (!rc)
                rc = esc_json(o, json_object_get(q, "method"));
            if (!rc)
                rc = add(o, " ");
            if (!rc)
                rc = esc_json(o, json_object_get(q, "url"));
            if (!rc)
                rc = addf(o, "</td><td>%lld</td>",
                          (long long)json_integer_value(json_object_get(q, "status")));
            if (!rc)
                rc = fb > sent && sent > 0 ? addf(o, "<td>%.1f ms</td>", (fb - sent) / 1000)
                                           : add(o, "<td>&#8211;</td>");
            if (!rc)
                rc = lb > hd && hd > 0 ? addf(o, "<td>%.1f ms</td>", (lb - hd) / 1000)
                                       : add(o, "<td>&#8211;</td>");
            if (!rc)
                rc = addf(o, "<td>%lld</td></tr>",
                          (long long)json_integer_value(json_object_get(q, "bytes_out")));
        }
        if (!rc)
            rc = add(o, "</table>");
    }
    return rc;
}

static int doc_head(struct evbuffer *o, const char *title, size_t tlen)
{
    int rc = add(o, head);
    if (!rc)
        rc = add(o, "vitals-proxy: ");
    if (!rc)
        rc = html_escape(o, title, tlen);
    return rc ? rc : add(o, style);
}

static const char foot[] = "<p class=\"mut\">Made by vitals-proxy. Cookies and authorization "
                           "headers are never recorded.</p></body></html>\n";

int html_export_view(struct evbuffer *out, const json_t *view)
{
    const char *id = json_string_value(json_object_get(view, "id"));
    if (!json_is_object(view) || !id)
        return VP_ERR_INVALID;
    int rc = doc_head(out, id, strlen(id));
    if (!rc)
        rc = view_section(out, view, true);
    return rc ? rc : add(out, foot);
}

int html_export_route(struct evbuffer *out, const json_t *rs, const json_t *views,
                      const char *label)
{
    const char *route = json_string_value(json_object_get(rs, "route"));
    if (!route)
        return VP_ERR_INVALID;
    int rc = doc_head(out, route, strlen(route));
    if (!rc)
        rc = add(out, "<h1>Route ");
    if (!rc)
        rc = html_escape(out, route, strlen(route));
    if (!rc)
        rc = addf(out, "</h1><p>%lld views",
                  (long long)json_integer_value(json_object_get(rs, "views")));
    if (!rc && label) {
        rc = add(out, " &#183; label ");
        if (!rc)
            rc = html_escape(out, label, strlen(label));
    }
    if (!rc)
        rc = add(out, "</p><table><tr><th class=\"l\">metric</th><th>n</th><th>p50</th>"
                      "<th>p75</th><th>p95</th><th>p99</th><th>good</th><th>NI</th>"
                      "<th>poor</th></tr>");
    const json_t *ms = json_object_get(rs, "metrics");
    for (size_t m = 0; !rc && m < 5; m++) {
        const json_t *x = json_object_get(ms, thr[m].name);
        if (!json_is_object(x))
            continue;
        rc = addf(out, "<tr><th class=\"l\">%s</th><td>%lld</td>", thr[m].name,
                  (long long)json_integer_value(json_object_get(x, "n")));
        static const char *const ps[] = {"p50", "p75", "p95", "p99"};
        for (size_t k = 0; !rc && k < 4; k++) {
            double v = json_number_value(json_object_get(x, ps[k]));
            rc = addf(out, "<td class=\"%s\">", k == 1 ? rating(m, v) : "");
            if (!rc)
                rc = fmt_metric(out, m, v);
            if (!rc)
                rc = add(out, "</td>");
        }
        if (!rc)
            rc = addf(out, "<td>%.0f%%</td><td>%.0f%%</td><td>%.0f%%</td></tr>",
                      100 * json_number_value(json_object_get(x, "good")),
                      100 * json_number_value(json_object_get(x, "ni")),
                      100 * json_number_value(json_object_get(x, "poor")));
    }
    if (!rc)
        rc = add(out, "</table>");
    if (!rc && json_array_size(views))
        rc = addf(out, "<h2>Slowest views (by LCP)</h2>");
    size_t i;
    const json_t *v;
    json_array_foreach(views, i, v) {
        if (!rc)
            rc = view_section(out, v, false);
    }
    return rc ? rc : add(out, foot);
}
