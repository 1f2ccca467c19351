/* Self-contained HTML export (see export_html.h).
 *
 * Invariants: database strings reach the output only through esc()/esc_n() (HTML-escaped, also
 * safe inside quoted attributes); numbers only through printf-style "%.*f"/"%lld" of finite
 * doubles; nothing else is copied verbatim. The waterfall is an inline <svg> whose geometry is
 * computed here, so the page needs no script: it reads the same with JavaScript disabled.
 * Rows: the navigation entry then the resources in stored order, at most EXPORT_HTML_MAX_ROWS.
 * Phases per row (ms from the view start, 0 = absent, as on the wire): dns (dns_start..dns_end),
 * connect (connect_start..secure_start or connect_end), tls (secure_start..connect_end), wait
 * (request_start..response_start), download (response_start..response_end); an entry with no
 * phase detail (cross-origin without Timing-Allow-Origin) is one grey bar start..start+duration.
 * Markers: FCP and LCP (metric values), DCL (dcl_start) and load (load_start). */
#include "config.h"

#include "web/export_html.h"

#include <event2/buffer.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/vp_err.h"
#include "store/query.h"

#define CHART_W 900   /* px of the bar area */
#define LABEL_W 320   /* px of the URL column */
#define ROW_H 16
#define TOP_H 28      /* marker labels */
#define URL_CHARS 48  /* characters of a URL shown in the label column */

/* Sticky error: the first failure wins and later writes are skipped. */
struct out {
    struct evbuffer *b;
    int rc;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
    if (o->rc)
        return;
    va_list ap;
    va_start(ap, fmt);
    if (evbuffer_add_vprintf(o->b, fmt, ap) < 0)
        o->rc = VP_ERR_NOMEM;
    va_end(ap);
}

static void lit(struct out *o, const char *s)
{
    if (!o->rc && evbuffer_add(o->b, s, strlen(s)) != 0)
        o->rc = VP_ERR_NOMEM;
}

int export_html_escape(struct evbuffer *out, const char *s, size_t len)
{
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        const char *rep = NULL;
        switch (s[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        case '\0': rep = "\xef\xbf\xbd"; break; /* U+FFFD */
        default: continue;
        }
        if (evbuffer_add(out, s + start, i - start) != 0 || evbuffer_add(out, rep, strlen(rep)))
            return VP_ERR_NOMEM;
        start = i + 1;
    }
    return evbuffer_add(out, s + start, len - start) == 0 ? 0 : VP_ERR_NOMEM;
}

static void esc_n(struct out *o, const char *s, size_t n)
{
    if (!o->rc && s)
        o->rc = export_html_escape(o->b, s, n);
}

static void esc(struct out *o, const char *s)
{
    if (s)
        esc_n(o, s, strlen(s));
}

/* Escapes the first `chars` code points of s, with an ellipsis when cut (UTF-8 aware so a cut
 * never splits a character). */
static void esc_cut(struct out *o, const char *s, size_t chars)
{
    size_t i = 0, cp = 0;
    while (s[i] && cp < chars) {
        i++;
        while (((unsigned char)s[i] & 0xc0) == 0x80)
            i++;
        cp++;
    }
    esc_n(o, s, i);
    if (s[i])
        lit(o, "\xe2\x80\xa6");
}

/* The store names entry fields by column (start_ms); the wire format by short key (s). Both
 * are accepted, so a view JSON from either source renders. */
static const char *const aliases[][2] = {
    {"start_ms", "s"},       {"duration_ms", "d"},     {"dns_start", "dls"},
    {"dns_end", "dle"},      {"connect_start", "cs"},  {"connect_end", "ce"},
    {"secure_start", "scs"}, {"request_start", "rqs"}, {"response_start", "rps"},
    {"response_end", "rpe"}, {"dcl_start", "dcl"},     {"load_start", "ls"},
    {"load_end", "le"},      {"url", "u"},             {"render_blocking", "rb"},
};

static const json_t *get(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    if (v)
        return v;
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcmp(aliases[i][0], k) == 0)
            return json_object_get(o, aliases[i][1]);
    return NULL;
}

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(get(o, k));
}

static double num(const json_t *o, const char *k)
{
    const json_t *v = get(o, k);
    double d = json_is_number(v) ? json_number_value(v) : 0;
    return isfinite(d) ? d : 0;
}

static bool has_num(const json_t *o, const char *k)
{
    const json_t *v = get(o, k);
    return json_is_number(v) && isfinite(json_number_value(v));
}

static const char css[] =
    "body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;"
    "color:#1d1d1f;background:#fff}h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;"
    "margin:24px 0 8px}h3{font-size:14px;margin:16px 0 6px}.meta{color:#555;margin:0 0 12px}"
    "table{border-collapse:collapse;margin:4px 0 12px}th,td{border:1px solid #ddd;"
    "padding:3px 8px;text-align:left;vertical-align:top}td.n{text-align:right;"
    "font-variant-numeric:tabular-nums}.good{color:#0a7a3b}.ni{color:#a15c00}.poor{color:#c4141b}"
    ".wf{overflow-x:auto;border:1px solid #ddd;padding:4px}.legend span{display:inline-block;"
    "margin-right:12px}.sw{display:inline-block;width:12px;height:10px;margin-right:4px;"
    "vertical-align:middle}.attr{font-family:ui-monospace,monospace;font-size:12px;"
    "word-break:break-all}.note{color:#555;font-size:12px}section.view{border-top:2px solid #eee;"
    "margin-top:24px}code{word-break:break-all}";

struct phase {
    const char *name, *colour;
};
static const struct phase phases[] = {
    {"DNS", "#1b9e77"},     {"connect", "#d95f02"}, {"TLS", "#7570b3"},
    {"wait", "#e6ab02"},    {"download", "#1f78b4"}, {"no detail", "#b0b0b0"},
};

static void head(struct out *o, const char *title_a, const char *title_b)
{
    lit(o, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
           "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
           "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
           "style-src 'unsafe-inline'\"><title>vitals-proxy: ");
    esc(o, title_a);
    if (title_b) {
        lit(o, " ");
        esc(o, title_b);
    }
    put(o, "</title><style>%s</style></head><body>\n", css);
}

static void legend(struct out *o)
{
    lit(o, "<p class=\"legend\">");
    for (size_t i = 0; i < sizeof phases / sizeof phases[0]; i++)
        put(o, "<span><i class=\"sw\" style=\"background:%s\"></i>%s</span>", phases[i].colour,
            phases[i].name);
    lit(o, "<span><i class=\"sw\" style=\"background:#fff;outline:2px solid #c4141b\"></i>"
           "render-blocking</span><span>markers: FCP, LCP, DCL (DOMContentLoaded), load</span>"
           "</p>\n");
}

static double x_of(double t, double tmax)
{
    t = t < 0 ? 0 : t > tmax ? tmax : t;
    return LABEL_W + t / tmax * CHART_W;
}

static void bar(struct out *o, double from, double to, double tmax, double y, int phase)
{
    if (!(to > from))
        return;
    double x = x_of(from, tmax), w = x_of(to, tmax) - x;
    put(o, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>", x, y + 2,
        w < 1 ? 1 : w, ROW_H - 4, phases[phase].colour);
}

/* One waterfall row for an entry (navigation or resource). */
static void row(struct out *o, const json_t *e, size_t i, double tmax)
{
    double y = TOP_H + (double)i * ROW_H;
    double s = num(e, "start_ms"), d = num(e, "duration_ms");
    const char *url = str(e, "url");
    const char *rb = str(e, "render_blocking");
    bool blocking = rb && strcmp(rb, "blocking") == 0;
    put(o, "<g><title>");
    esc(o, url ? url : "(no url)");
    put(o, " \xe2\x80\x94 start %.1f ms, duration %.1f ms%s</title>", s, d,
        blocking ? ", render-blocking" : "");
    put(o, "<text x=\"4\" y=\"%.1f\" class=\"%s\">", y + ROW_H - 4, blocking ? "rb" : "u");
    esc_cut(o, url ? url : "(no url)", URL_CHARS);
    lit(o, "</text>");
    double dns_s = num(e, "dns_start"), dns_e = num(e, "dns_end");
    double cs = num(e, "connect_start"), ce = num(e, "connect_end"), ss = num(e, "secure_start");
    double rq = num(e, "request_start"), rs = num(e, "response_start"),
           re = num(e, "response_end");
    bool detail = rq > 0 || rs > 0;
    if (blocking)
        put(o, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" fill=\"none\" "
               "stroke=\"#c4141b\" stroke-width=\"2\"/>",
            x_of(s, tmax) - 1, y + 1, x_of(s + d, tmax) - x_of(s, tmax) + 2, ROW_H - 2);
    if (!detail) {
        bar(o, s, s + d, tmax, y, 5);
    } else {
        if (dns_e > dns_s && dns_s > 0)
            bar(o, dns_s, dns_e, tmax, y, 0);
        if (ce > cs && cs > 0) {
            bar(o, cs, ss > cs ? ss : ce, tmax, y, 1);
            if (ss > cs)
                bar(o, ss, ce, tmax, y, 2);
        }
        if (rs > rq && rq > 0)
            bar(o, rq, rs, tmax, y, 3);
        if (re > rs && rs > 0)
            bar(o, rs, re, tmax, y, 4);
    }
    lit(o, "</g>\n");
}

static void marker(struct out *o, const char *name, double t, double tmax, size_t rows, int k)
{
    if (!(t > 0))
        return;
    double x = x_of(t, tmax);
    double h = TOP_H + (double)rows * ROW_H;
    put(o, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%.1f\" class=\"m%d\"/>"
           "<text x=\"%.1f\" y=\"%d\" class=\"ml m%d\">%s %.0f</text>\n",
        x, x, 12 + (k % 2) * 8, h, k, x + 2, 10 + (k % 2) * 8, k, name, t);
}

static void waterfall(struct out *o, const json_t *view)
{
    const json_t *nav = json_object_get(view, "navigation");
    const json_t *res = json_object_get(view, "resources");
    const json_t *metrics = json_object_get(view, "metrics");
    size_t nres = json_array_size(res);
    size_t rows = (json_is_object(nav) ? 1 : 0) + nres;
    size_t shown = rows > EXPORT_HTML_MAX_ROWS ? EXPORT_HTML_MAX_ROWS : rows;
    double tmax = 1;
    size_t i;
    const json_t *e;
    if (json_is_object(nav)) {
        double end = num(nav, "start_ms") + num(nav, "duration_ms");
        tmax = fmax(tmax, fmax(end, fmax(num(nav, "load_end"), num(nav, "load_start"))));
    }
    json_array_foreach(res, i, e) {
        if (i + 1 >= EXPORT_HTML_MAX_ROWS)
            break;
        tmax = fmax(tmax, num(e, "start_ms") + num(e, "duration_ms"));
        tmax = fmax(tmax, num(e, "response_end"));
    }
    tmax = fmax(tmax, fmax(num(metrics, "LCP"), num(metrics, "FCP")));
    tmax = fmin(tmax, 1e9) * 1.05; /* hostile times: keep the geometry finite */
    lit(o, "<h3>Waterfall</h3>");
    if (rows == 0) {
        lit(o, "<p class=\"note\">No navigation or resource timing was reported for this view."
               "</p>\n");
        return;
    }
    legend(o);
    double h = TOP_H + (double)shown * ROW_H + 20;
    put(o, "<div class=\"wf\"><svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" "
           "aria-label=\"waterfall\" width=\"%d\" height=\"%.0f\" viewBox=\"0 0 %d %.0f\" "
           "font-size=\"11\" font-family=\"ui-monospace,monospace\">"
           "<style>.u{fill:#1d1d1f}.rb{fill:#c4141b;font-weight:bold}"
           "line{stroke-width:1.5;stroke-dasharray:4 3}.m0{stroke:#0a7a3b;fill:#0a7a3b}"
           ".m1{stroke:#c4141b;fill:#c4141b}.m2{stroke:#555;fill:#555}.m3{stroke:#000;fill:#000}"
           ".ml{stroke:none;font-size:10px}.g{stroke:#eee;stroke-dasharray:none}</style>\n",
        LABEL_W + CHART_W + 10, h, LABEL_W + CHART_W + 10, h);
    /* time grid: 5 ticks */
    for (int t = 0; t <= 4; t++) {
        double tv = tmax / 1.05 * t / 4;
        double x = x_of(tv, tmax);
        put(o, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%.0f\" class=\"g\"/>"
               "<text x=\"%.1f\" y=\"%.0f\" fill=\"#777\">%.0f ms</text>\n",
            x, x, TOP_H, h - 16, x + 2, h - 4, tv);
    }
    size_t k = 0;
    if (json_is_object(nav))
        row(o, nav, k++, tmax);
    json_array_foreach(res, i, e) {
        if (k >= shown)
            break;
        row(o, e, k++, tmax);
    }
    marker(o, "FCP", num(metrics, "FCP"), tmax, shown, 0);
    marker(o, "LCP", num(metrics, "LCP"), tmax, shown, 1);
    if (json_is_object(nav)) {
        marker(o, "DCL", num(nav, "dcl_start"), tmax, shown, 2);
        marker(o, "load", num(nav, "load_start"), tmax, shown, 3);
    }
    lit(o, "</svg></div>\n");
    if (rows > shown)
        put(o, "<p class=\"note\">%zu more entries not drawn.</p>\n", rows - shown);
}

static const char *const metric_order[] = {"LCP", "FCP", "TTFB", "INP", "CLS"};

static void fmt_metric(struct out *o, const char *name, double v)
{
    if (strcmp(name, "CLS") == 0)
        put(o, "%.3f", v);
    else
        put(o, "%.0f ms", v);
}

static const char *rating_class(const char *name, double v)
{
    double good, poor;
    if (query_thresholds(name, &good, &poor))
        return "";
    return v <= good ? "good" : v <= poor ? "ni" : "poor";
}

static void vitals(struct out *o, const json_t *view)
{
    const json_t *metrics = json_object_get(view, "metrics");
    const json_t *attr = json_object_get(view, "attribution");
    lit(o, "<h3>Web Vitals</h3><table><tr><th>metric</th><th>value</th><th>rating</th>"
           "<th>attribution</th></tr>\n");
    bool any = false;
    for (size_t m = 0; m < sizeof metric_order / sizeof metric_order[0]; m++) {
        const char *name = metric_order[m];
        if (!has_num(metrics, name))
            continue;
        any = true;
        double v = num(metrics, name);
        const char *cls = rating_class(name, v);
        put(o, "<tr><td>%s</td><td class=\"n %s\">", name, cls);
        fmt_metric(o, name, v);
        put(o, "</td><td class=\"%s\">%s</td><td class=\"attr\">", cls,
            *cls == 'g' ? "good" : *cls == 'n' ? "needs improvement" : *cls ? "poor" : "");
        const json_t *a = json_object_get(attr, name);
        const char *key;
        const json_t *val;
        json_object_foreach((json_t *)a, key, val) {
            lit(o, "<div>");
            esc(o, key);
            lit(o, ": ");
            if (json_is_string(val)) {
                esc(o, json_string_value(val));
            } else {
                char *t = json_dumps(val, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(6));
                if (!t) {
                    o->rc = o->rc ? o->rc : VP_ERR_NOMEM;
                    return;
                }
                esc(o, t);
                free(t);
            }
            lit(o, "</div>");
        }
        lit(o, "</td></tr>\n");
    }
    lit(o, "</table>\n");
    if (!any)
        lit(o, "<p class=\"note\">No metrics were reported for this view.</p>\n");
}

static double span_ms(const json_t *q, const char *a, const char *b)
{
    double x = num(q, a), y = num(q, b);
    return x > 0 && y >= x ? (y - x) / 1000.0 : -1;
}

static void ms_cell(struct out *o, double v)
{
    if (v < 0)
        lit(o, "<td class=\"n\">\xe2\x80\x93</td>");
    else
        put(o, "<td class=\"n\">%.1f</td>", v);
}

static void upstream(struct out *o, const json_t *view)
{
    const json_t *reqs = json_object_get(view, "requests");
    lit(o, "<h3>Proxy upstream timings</h3>");
    if (json_array_size(reqs) == 0) {
        lit(o, "<p class=\"note\">The proxy recorded no request for this view.</p>\n");
        return;
    }
    lit(o, "<table><tr><th>request</th><th>status</th><th>protocol</th><th>connect ms</th>"
           "<th>upstream wait ms</th><th>transfer ms</th><th>total ms</th><th>bytes out</th>"
           "<th>upstream bytes</th><th>notes</th></tr>\n");
    size_t i;
    const json_t *q;
    json_array_foreach(reqs, i, q) {
        if (i >= EXPORT_HTML_MAX_ROWS)
            break;
        lit(o, "<tr><td><code>");
        esc(o, str(q, "method"));
        lit(o, " ");
        esc_cut(o, str(q, "url") ? str(q, "url") : "", 120);
        put(o, "</code></td><td class=\"n\">%.0f</td><td>", num(q, "status"));
        esc(o, str(q, "protocol"));
        if (str(q, "tls_version")) {
            lit(o, " ");
            esc(o, str(q, "tls_version"));
        }
        lit(o, "</td>");
        ms_cell(o, span_ms(q, "connect_start_us", "connect_end_us"));
        ms_cell(o, span_ms(q, "sent_us", "first_byte_us"));
        ms_cell(o, span_ms(q, "first_byte_us", "last_byte_us"));
        ms_cell(o, has_num(q, "head_done_us") && num(q, "head_done_us") > 0
                       ? span_ms(q, "head_done_us", "last_byte_us")
                       : span_ms(q, "accept_us", "last_byte_us"));
        put(o, "<td class=\"n\">%.0f</td><td class=\"n\">%.0f</td><td>", num(q, "bytes_out"),
            num(q, "upstream_bytes"));
        if (num(q, "reused") != 0)
            lit(o, "reused connection. ");
        if (num(q, "injected") != 0)
            lit(o, "beacon injected. ");
        if (str(q, "content_encoding")) {
            lit(o, "encoding ");
            esc(o, str(q, "content_encoding"));
            lit(o, ". ");
        }
        if (str(q, "error")) {
            lit(o, "<b class=\"poor\">");
            esc(o, str(q, "error"));
            lit(o, "</b>");
        }
        lit(o, "</td></tr>\n");
    }
    lit(o, "</table>\n");
}

/* The view's header line, vitals, waterfall and upstream timings. */
static void view_body(struct out *o, const json_t *view, const char *heading_tag)
{
    put(o, "<%s>View <code>", heading_tag);
    esc(o, str(view, "id"));
    lit(o, "</code></");
    put(o, "%s>\n<p class=\"meta\"><code>", heading_tag);
    esc(o, str(view, "url"));
    lit(o, "</code> \xc2\xb7 route <code>");
    esc(o, str(view, "route"));
    lit(o, "</code> \xc2\xb7 ");
    esc(o, str(view, "started_at"));
    const char *fields[] = {"navigation_type", "device", "browser", "ect", "label"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const char *v = str(view, fields[i]);
        if (!v)
            continue;
        put(o, " \xc2\xb7 %s ", fields[i]);
        esc(o, v);
    }
    lit(o, "</p>\n");
    vitals(o, view);
    waterfall(o, view);
    upstream(o, view);
}

static void foot(struct out *o)
{
    lit(o, "<p class=\"note\">Exported by vitals-proxy. Times in ms from the view start; "
           "URLs as stored (no cookies or headers).</p>\n</body></html>\n");
}

int export_html_view(struct evbuffer *b, const json_t *view)
{
    if (!json_is_object(view) || !str(view, "id"))
        return VP_ERR_INVALID;
    struct out o = {b, 0};
    head(&o, "view", str(view, "url"));
    lit(&o, "<h1>vitals-proxy \xc2\xb7 page view</h1>\n");
    view_body(&o, view, "h2");
    foot(&o);
    return o.rc;
}

int export_html_route(struct evbuffer *b, const char *route, const char *label,
                      const json_t *route_summary, const json_t *slowest)
{
    if (!route || (slowest && !json_is_array(slowest)))
        return VP_ERR_INVALID;
    struct out o = {b, 0};
    head(&o, "route", route);
    lit(&o, "<h1>vitals-proxy \xc2\xb7 route <code>");
    esc(&o, route);
    lit(&o, "</code></h1>\n<p class=\"meta\">");
    if (label) {
        lit(&o, "label <code>");
        esc(&o, label);
        lit(&o, "</code> \xc2\xb7 ");
    }
    put(&o, "%.0f views</p>\n", num(route_summary, "views"));
    lit(&o, "<h2>Percentiles</h2><table><tr><th>metric</th><th>n</th><th>p50</th><th>p75</th>"
            "<th>p95</th><th>p99</th><th>good</th><th>needs impr.</th><th>poor</th></tr>\n");
    const json_t *ms = json_object_get(route_summary, "metrics");
    for (size_t m = 0; m < sizeof metric_order / sizeof metric_order[0]; m++) {
        const json_t *s = json_object_get(ms, metric_order[m]);
        if (!json_is_object(s))
            continue;
        put(&o, "<tr><td>%s</td><td class=\"n\">%.0f</td>", metric_order[m], num(s, "n"));
        const char *ps[] = {"p50", "p75", "p95", "p99"};
        for (int k = 0; k < 4; k++) {
            double v = num(s, ps[k]);
            put(&o, "<td class=\"n %s\">", rating_class(metric_order[m], v));
            fmt_metric(&o, metric_order[m], v);
            lit(&o, "</td>");
        }
        put(&o,
            "<td class=\"n good\">%.0f %%</td><td class=\"n ni\">%.0f %%</td>"
            "<td class=\"n poor\">%.0f %%</td></tr>\n",
            num(s, "good") * 100, num(s, "ni") * 100, num(s, "poor") * 100);
    }
    lit(&o, "</table>\n");
    size_t n = json_array_size(slowest);
    put(&o, "<h2>The %zu slowest views (by LCP)</h2>\n", n);
    if (n == 0)
        lit(&o, "<p class=\"note\">No view of this route reported an LCP.</p>\n");
    size_t i;
    const json_t *v;
    json_array_foreach(slowest, i, v) {
        lit(&o, "<section class=\"view\">");
        view_body(&o, v, "h3");
        lit(&o, "</section>\n");
    }
    foot(&o);
    return o.rc;
}

int export_html_write_view(struct store_reader *r, const char *id, struct evbuffer *out)
{
    json_t *v = NULL;
    int rc = query_view(r, id, &v);
    if (rc)
        return rc;
    rc = export_html_view(out, v);
    json_decref(v);
    return rc;
}

struct ranked {
    const char *id;
    double lcp;
};

static int by_lcp_desc(const void *a, const void *b)
{
    double x = ((const struct ranked *)a)->lcp, y = ((const struct ranked *)b)->lcp;
    return (x < y) - (x > y);
}

int export_html_write_route(struct store_reader *r, const char *route, const char *label,
                            struct evbuffer *out)
{
    struct query_filter f;
    memset(&f, 0, sizeof f);
    f.route = route;
    f.label = label;
    f.limit = 1000;
    json_t *summary = NULL, *views = NULL, *slow = NULL;
    struct ranked *rk = NULL;
    int rc = query_summary(r, &f, &summary);
    if (rc)
        return rc;
    const json_t *rs = json_array_get(json_object_get(summary, "routes"), 0);
    if (!rs) {
        rc = VP_ERR_NOTFOUND;
        goto done;
    }
    if ((rc = query_views(r, &f, &views)))
        goto done;
    const json_t *list = json_object_get(views, "views");
    size_t nv = json_array_size(list), nr = 0;
    rk = calloc(nv ? nv : 1, sizeof *rk);
    slow = json_array();
    if (!rk || !slow) {
        rc = VP_ERR_NOMEM;
        goto done;
    }
    size_t i;
    const json_t *v;
    json_array_foreach(list, i, v) {
        const json_t *m = json_object_get(v, "metrics");
        if (has_num(m, "LCP") && str(v, "id"))
            rk[nr++] = (struct ranked){str(v, "id"), num(m, "LCP")};
    }
    qsort(rk, nr, sizeof *rk, by_lcp_desc);
    for (i = 0; i < nr && json_array_size(slow) < EXPORT_HTML_SLOWEST; i++) {
        json_t *detail = NULL;
        rc = query_view(r, rk[i].id, &detail);
        if (rc == VP_ERR_NOTFOUND) { /* removed by retention meanwhile */
            rc = 0;
            continue;
        }
        if (rc)
            goto done;
        if (json_array_append_new(slow, detail)) {
            rc = VP_ERR_NOMEM;
            goto done;
        }
    }
    rc = export_html_route(out, route, label, rs, slow);
done:
    free(rk);
    json_decref(slow);
    json_decref(views);
    json_decref(summary);
    return rc;
}
