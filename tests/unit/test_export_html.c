/* web/export_html against a real temporary database: a view with navigation, resources (one
 * render-blocking), attribution and proxy records, where stored strings carry XSS payloads
 * (URL query, LCP target selector, label, request URL). Checks: one document, no <script> or
 * event-handler attribute produced from data (the payloads appear only escaped), the SVG
 * waterfall with its phase bars, render-blocking mark and FCP/LCP/DCL/load markers, the vitals
 * and upstream tables; a route export with percentiles and the slowest views, ordered by LCP;
 * NOTFOUND cases. Writes the documents to $EXPORT_HTML_DIR (default tests/logs/) for the
 * headless-browser check (tests/web/test_export_html.sh). */
#include "config.h"

#include "web/export_html.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/vp_err.h"
#include "store/query.h"
#include "store/store.h"
#include "store/store_internal.h"
#include "tap.h"

#define T0 1764000000000LL
#define XSS "<img src=x onerror=alert(1)>"
#define XSS_J "<img src=x onerror=alert(1)>"

static int ingest(struct store *s, const char *body, const char *label, int64_t t)
{
    struct store_beacon_ctx ctx = {"127.0.0.1", "Mozilla/5.0 Chrome/131.0.0.0", t, label, 1.0};
    char reason[128];
    int rc = store_ingest_beacon(s, body, strlen(body), &ctx, reason, sizeof reason);
    if (rc)
        printf("# ingest: %s (%s)\n", vp_strerror(rc), reason);
    return rc;
}

static char *text(struct evbuffer *b)
{
    size_t n = evbuffer_get_length(b);
    char *t = malloc(n + 1);
    if (t) {
        evbuffer_copyout(b, t, n);
        t[n] = '\0';
    }
    return t;
}

static size_t count(const char *s, const char *needle)
{
    size_t n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

static size_t count(const char *s, const char *needle);

/* No element or attribute produced from the payloads: nothing of them survives unescaped. */
static bool inert(const char *html)
{
    return !strcasestr(html, "<script") && !strcasestr(html, "<img") &&
           !strcasestr(html, "javascript:") &&
           count(html, "onerror=") == count(html, "&lt;img src=x onerror=alert(1)&gt;");
}

static void save(const char *dir, const char *name, const char *html)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(html, f);
        fclose(f);
    }
}

int main(void)
{
    char dir[] = "/tmp/vp_test_export_html.XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char path[160], err[256];
    snprintf(path, sizeof path, "%s/e.db", dir);
    struct store_options opt;
    store_options_default(&opt);
    opt.retention_days = 0;
    opt.keep_query = true;
    struct store *s = NULL;
    if (store_open(&s, path, &opt, err, sizeof err) != 0) {
        TAP_OK(0, "export_html/open: %s", err);
        TAP_DONE();
    }
    int rc = 0;
    char body[8192];
    snprintf(body, sizeof body,
             "{\"v\":1,\"vid\":\"xview00001\",\"url\":\"/shop?q=%s\",\"t0\":%lld,"
             "\"nav\":\"navigate\",\"dev\":\"desktop\",\"ect\":\"4g\","
             "\"m\":[{\"n\":\"LCP\",\"id\":\"l1\",\"v\":2480,\"a\":{\"target\":\"%s\","
             "\"url\":\"/hero.jpg\",\"renderDelay\":300}},{\"n\":\"FCP\",\"id\":\"f1\",\"v\":950},"
             "{\"n\":\"CLS\",\"id\":\"c1\",\"v\":0.31},{\"n\":\"TTFB\",\"id\":\"t1\",\"v\":180}],"
             "\"nt\":{\"u\":\"/shop\",\"s\":0,\"d\":1900,\"fs\":1,\"dls\":2,\"dle\":20,\"cs\":20,"
             "\"scs\":60,\"ce\":110,\"rqs\":111,\"rps\":180,\"rpe\":260,\"ts\":9000,\"st\":200,"
             "\"dcl\":1200,\"ls\":1800,\"ty\":\"navigate\"},"
             "\"res\":[{\"u\":\"/static/app.js?x=%s\",\"i\":\"script\",\"s\":300,\"d\":400,"
             "\"fs\":300,\"rqs\":320,\"rps\":500,\"rpe\":700,\"ts\":80000,\"rb\":\"blocking\"},"
             "{\"u\":\"https://cdn.example/font.woff2\",\"i\":\"css\",\"s\":710,\"d\":300},"
             "{\"u\":\"/hero.jpg\",\"i\":\"img\",\"s\":720,\"d\":900,\"fs\":720,\"rqs\":730,"
             "\"rps\":900,\"rpe\":1620,\"ts\":200000}],\"ri\":0}",
             XSS_J, (long long)T0, XSS_J, XSS_J);
    rc |= ingest(s, body, "run-1", T0 + 2000);
    struct store_request_rec q = {0};
    q.accept_us = T0 * 1000 + 500;
    q.head_done_us = q.accept_us + 200;
    q.connect_start_us = q.accept_us + 300;
    q.connect_end_us = q.accept_us + 1300;
    q.sent_us = q.accept_us + 1500;
    q.first_byte_us = q.accept_us + 150000;
    q.last_byte_us = q.accept_us + 230000;
    q.status = 200;
    q.bytes_out = 9000;
    q.upstream_bytes = 30000;
    q.injected = true;
    q.method = "GET";
    q.url = "/shop?q=" XSS;
    q.view_id = "xview00001";
    q.protocol = "h1";
    q.content_encoding = "gzip";
    q.label = "run-1";
    rc |= store_record_request(s, &q);
    /* /shop: 8 more views with LCP 1000..8000 for the route export */
    for (int i = 1; i <= 8; i++) {
        snprintf(body, sizeof body,
                 "{\"v\":1,\"vid\":\"sview%05d\",\"url\":\"/shop\",\"t0\":%lld,"
                 "\"m\":[{\"n\":\"LCP\",\"id\":\"l\",\"v\":%d}],"
                 "\"nt\":{\"u\":\"/shop\",\"s\":0,\"d\":500,\"rqs\":5,\"rps\":100,\"rpe\":150,"
                 "\"dcl\":300,\"ls\":400}}",
                 i, (long long)(T0 + i * 1000), i * 1000);
        rc |= ingest(s, body, "run-1", T0 + i * 1000 + 500);
    }
    TAP_OK(rc == 0 && store_sync(s) == 0, "export_html/data");
    store_free(s);

    struct store_reader *r = NULL;
    if (store_reader_open(&r, path, err, sizeof err) != 0) {
        TAP_OK(0, "export_html/reader: %s", err);
        TAP_DONE();
    }
    const char *logdir = getenv("EXPORT_HTML_DIR") ? getenv("EXPORT_HTML_DIR") : "tests/logs";
    mkdir(logdir, 0755);

    struct evbuffer *b = evbuffer_new();
    TAP_OK(export_html_write_view(r, "xview00001", b) == 0, "export_html/view_rc");
    char *h = text(b);
    save(logdir, "export_view.html", h);
    TAP_OK(h && strncmp(h, "<!DOCTYPE html>", 15) == 0 && count(h, "<html") == 1 &&
               strstr(h, "</html>\n") && count(h, "<svg") == 1,
           "export_html/one_document_one_svg");
    TAP_OK(h && inert(h), "export_html/xss_inert");
    TAP_OK(h && count(h, "&lt;img src=x onerror=alert(1)&gt;") >= 4,
           "export_html/xss_shown_escaped (%zu)", h ? count(h, "&lt;img src=x onerror") : 0);
    TAP_OK(h && strstr(h, "Content-Security-Policy") && strstr(h, "default-src 'none'") &&
               !strstr(h, "src=\"http") && !strstr(h, "href="),
           "export_html/self_contained_csp");
    /* phases: nav has DNS, connect, TLS, wait, download; app.js wait+download; font no detail */
    TAP_OK(h && count(h, "fill=\"#1b9e77\"/>") == 1 && count(h, "fill=\"#d95f02\"/>") == 1 &&
               count(h, "fill=\"#7570b3\"/>") == 1 && count(h, "fill=\"#e6ab02\"/>") == 3 &&
               count(h, "fill=\"#1f78b4\"/>") == 3 && count(h, "fill=\"#b0b0b0\"/>") == 1,
           "export_html/phase_bars");
    TAP_OK(h && count(h, "stroke=\"#c4141b\" stroke-width=\"2\"") == 1 &&
               count(h, "class=\"rb\"") == 1 && strstr(h, "render-blocking</title>"),
           "export_html/render_blocking_marked");
    TAP_OK(h && strstr(h, ">FCP 950<") && strstr(h, ">LCP 2480<") && strstr(h, ">DCL 1200<") &&
               strstr(h, ">load 1800<"),
           "export_html/markers");
    TAP_OK(h && strstr(h, "<td>LCP</td><td class=\"n good\">2480 ms") &&
               strstr(h, "<td>CLS</td><td class=\"n poor\">0.310") && strstr(h, "renderDelay: 300"),
           "export_html/vitals_attribution");
    TAP_OK(h && strstr(h, "<td class=\"n\">1.0</td><td class=\"n\">148.5</td>"
                          "<td class=\"n\">80.0</td><td class=\"n\">229.8</td>") &&
               strstr(h, "beacon injected") && strstr(h, "encoding gzip"),
           "export_html/upstream_timings");
    TAP_OK(h && strstr(h, "label run-1"), "export_html/label_shown");
    free(h);
    evbuffer_drain(b, evbuffer_get_length(b));

    TAP_OK(export_html_write_route(r, "/shop", "run-1", b) == 0, "export_html/route_rc");
    h = text(b);
    save(logdir, "export_route.html", h);
    const char *v8 = h ? strstr(h, "sview00008") : NULL, *v7 = h ? strstr(h, "sview00007") : NULL;
    const char *v4 = h ? strstr(h, "sview00004") : NULL, *v3 = h ? strstr(h, "sview00003") : NULL;
    TAP_OK(h && count(h, "<section class=\"view\">") == 5 && v8 && v7 && v4 && v8 < v7 && v7 < v4 &&
               !v3,
           "export_html/route_five_slowest_by_lcp");
    TAP_OK(h && strstr(h, "<td>LCP</td><td class=\"n\">9</td>") && count(h, "<svg") == 5 &&
               inert(h),
           "export_html/route_percentiles_inert");
    free(h);
    evbuffer_drain(b, evbuffer_get_length(b));
    TAP_OK(export_html_write_route(r, "/shop", "other-label", b) == VP_ERR_NOTFOUND &&
               export_html_write_route(r, "/nothing", NULL, b) == VP_ERR_NOTFOUND &&
               export_html_write_view(r, "nosuchview1", b) == VP_ERR_NOTFOUND,
           "export_html/not_found");
    TAP_OK(export_html_view(b, json_null()) == VP_ERR_INVALID, "export_html/bad_json");
    /* the escaper alone */
    evbuffer_drain(b, evbuffer_get_length(b));
    TAP_OK(export_html_escape(b, "a<b>&\"'\0z", 9) == 0, "export_html/escape_rc");
    h = text(b);
    TAP_OK(h && strcmp(h, "a&lt;b&gt;&amp;&quot;&#39;\xef\xbf\xbdz") == 0, "export_html/escape");
    free(h);
    evbuffer_free(b);
    store_reader_free(r);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        TAP_OK(0, "cleanup");
    TAP_DONE();
}
