/* The report's read side on a real database: fills one through the store's write API
 * (store_open, store_ingest_beacon, store_record_request, store_free), reopens it read-only and
 * checks exact numbers through store/query_report.h, the JSON API (web_api_handle) and the CLI
 * (cli_main): percentiles, initial JS, attribution targets, every finding type, routing
 * errors, budgets and exit statuses. */
#include "config.h"

#include <event2/buffer.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/vp_err.h"
#include "proxy/cli.h"
#include "store/query.h"
#include "store/query_report.h"
#include "store/store.h"
#include "tap.h"
#include "web/web.h"

static char db[256];
static const int64_t T0 = INT64_C(1764000000000); /* 2025-11-24T16:00:00Z */

static const char *ingest_label;

static int ingest(struct store *s, const char *fmt, ...)
{
    char body[4096], reason[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof body)
        return -1;
    struct store_beacon_ctx ctx = {"127.0.0.1", "Mozilla/5.0 Chrome/131.0.0.0 Safari/537.36",
                                   T0 + 10000, ingest_label, 1.0};
    int rc = store_ingest_beacon(s, body, (size_t)n, &ctx, reason, sizeof reason);
    if (rc)
        printf("# ingest: %s (%s)\n", vp_strerror(rc), reason);
    return rc;
}

static int request(struct store *s, const char *method, const char *url, const char *view,
                   const char *referer, int64_t at_us, int64_t ms, uint64_t bytes,
                   const char *ctype, const char *enc, const char *cc)
{
    struct store_request_rec q = {0};
    q.accept_us = at_us;
    q.head_done_us = at_us;
    q.sent_us = at_us + 100;
    q.first_byte_us = at_us + ms * 500;
    q.last_byte_us = at_us + ms * 1000;
    q.upstream_bytes = bytes;
    q.bytes_out = bytes + 200;
    q.status = 200;
    q.injected = view != NULL;
    q.method = method;
    q.url = url;
    q.host = "localhost:8080";
    q.protocol = "h1";
    q.view_id = view;
    q.referer = referer;
    q.content_type = ctype;
    q.content_encoding = enc;
    q.cache_control = cc;
    return store_record_request(s, &q);
}

static int fill(void)
{
    struct store *s = NULL;
    struct store_options opt;
    char err[256] = "";
    store_options_default(&opt);
    opt.retention_days = 0;
    if (store_open(&s, db, &opt, err, sizeof err) != 0) {
        printf("# store_open: %s\n", err);
        return -1;
    }
    static const double lcp[] = {1000, 2000, 3000, 5000};
    static const char *const tgt[] = {"img.hero", "img.hero", "img.hero", "h1"};
    int rc = 0;
    for (int i = 0; i < 4; i++) {
        rc |= ingest(s,
                     "{\"v\":1,\"vid\":\"prod%05d\",\"url\":\"/products/%d\",\"t0\":%lld,"
                     "\"nav\":\"navigate\",\"dev\":\"desktop\",\"ect\":\"4g\",\"m\":["
                     "{\"n\":\"LCP\",\"id\":\"lcp-%d\",\"v\":%.0f,\"d\":1,\"r\":\"good\","
                     "\"a\":{\"target\":\"%s\"}}%s],"
                     "\"nt\":{\"u\":\"/products/%d\",\"rps\":100,\"dcl\":800,\"ls\":1500},"
                     "\"res\":[{\"u\":\"/app.js\",\"i\":\"script\",\"s\":10,\"ts\":150000},"
                     "{\"u\":\"/late.js\",\"i\":\"script\",\"s\":2000,\"ts\":50000},"
                     "{\"u\":\"/b.css\",\"i\":\"link\",\"s\":5,\"ts\":1000,\"rb\":\"blocking\"}%s"
                     "],\"ri\":0}",
                     i + 1, i + 1, (long long)(T0 + i * 1000), i, lcp[i], tgt[i],
                     i == 0 ? ",{\"n\":\"CLS\",\"id\":\"cls-0\",\"v\":0.3,\"a\":{\"target\":"
                              "\"<script>alert(1)</script>\"}}"
                            : "",
                     i + 1,
                     i == 3 ? ",{\"u\":\"/vendor.js?v=2\",\"i\":\"link\",\"s\":20,\"ts\":100000}"
                            : "");
    }
    rc |= ingest(s, "{\"v\":1,\"vid\":\"home00001\",\"url\":\"/\",\"t0\":%lld,\"nav\":\"reload\","
                    "\"m\":[{\"n\":\"LCP\",\"id\":\"lcp-h\",\"v\":1200}]}",
                 (long long)(T0 + 5000));
    /* labelled runs for compare: "base" LCP 2000..2390 ms, "lazy" 1000..1390 ms, 40 each */
    for (int i = 0; i < 80; i++) {
        ingest_label = i < 40 ? "base" : "lazy";
        rc |= ingest(s, "{\"v\":1,\"vid\":\"run%06d\",\"url\":\"/run\",\"t0\":%lld,"
                        "\"m\":[{\"n\":\"LCP\",\"id\":\"l\",\"v\":%d}]}",
                     i, (long long)(T0 + 20000 + i), (i < 40 ? 2000 : 1000) + (i % 40) * 10);
    }
    ingest_label = NULL;
    int64_t nav_us = T0 * 1000 + 1000;
    rc |= request(s, "GET", "/products/1", "prod00001", NULL, nav_us, 40, 30000, "text/html",
                  "gzip", NULL);
    for (int i = 0; i < 12; i++) {
        char url[64];
        snprintf(url, sizeof url, "/api/items?page=%d", i);
        rc |= request(s, "GET", url, NULL, "http://localhost:8080/products/1",
                      nav_us + 5000 + i * 1000, 600, 2000, "application/json", NULL, NULL);
    }
    /* three URLs of one route: one finding for the route, not one per URL */
    for (int i = 0; i < 3; i++) {
        char url[64];
        snprintf(url, sizeof url, "/docs/%d", 1000 + i);
        rc |= request(s, "GET", url, NULL, NULL, nav_us + 40000 + i * 100, 20, 4000 + i,
                      "text/plain", NULL, NULL);
    }
    rc |= request(s, "GET", "/api/big", NULL, "http://localhost:8080/products/1", nav_us + 50000,
                  90, 2000000, "application/json; charset=utf-8", "gzip", NULL);
    rc |= request(s, "GET", "/static/app.js", NULL, NULL, nav_us + 60000, 5, 5000,
                  "text/javascript", "br", "public, max-age=60");
    rc |= request(s, "GET", "/static/ok.js", NULL, NULL, nav_us + 61000, 5, 5000,
                  "text/javascript", "br", "public, max-age=31536000, immutable");
    store_free(s);
    return rc;
}

static const json_t *find_finding(const json_t *list, const char *type, const char *needle)
{
    size_t i;
    const json_t *x;
    json_array_foreach(list, i, x) {
        const char *t = json_string_value(json_object_get(x, "type"));
        const char *e = json_string_value(json_object_get(x, "evidence"));
        if (t && e && strcmp(t, type) == 0 && strstr(e, needle))
            return x;
    }
    return NULL;
}

static struct web_reply reply;
static char body[65536];
static json_t *json;

static int req(struct store_reader *r, const char *method, const char *rest, const char *query)
{
    json_decref(json);
    memset(&reply, 0, sizeof reply);
    reply.body = evbuffer_new();
    int rc = web_api_handle(r, method, rest, query, &reply);
    size_t n = evbuffer_get_length(reply.body);
    if (n >= sizeof body)
        n = sizeof body - 1;
    evbuffer_remove(reply.body, body, n);
    body[n] = '\0';
    evbuffer_free(reply.body);
    json = json_loads(body, 0, NULL);
    return rc == 0 ? reply.status : rc;
}

static char out[65536], errtext[4096];

static void slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
}

static int cli(const char *first, ...)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)"vitals-proxy";
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && argc < 31; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    fflush(stdout);
    int so = dup(1), se = dup(2);
    int fo = open("test_report_db.out", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int fe = open("test_report_db.err", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fo, 1);
    dup2(fe, 2);
    int rc = cli_main(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    close(fo);
    close(fe);
    slurp("test_report_db.out", out, sizeof out);
    slurp("test_report_db.err", errtext, sizeof errtext);
    return rc;
}

int main(void)
{
    char dir[] = "/tmp/vp-report-XXXXXX";
    if (!mkdtemp(dir))
        return 99;
    snprintf(db, sizeof db, "%s/v.db", dir);
    TAP_OK(fill() == 0, "setup/fill");
    struct store_reader *r = NULL;
    char err[256] = "";
    TAP_OK(store_reader_open(&r, db, err, sizeof err) == 0, "setup/reader (%s)", err);

    /* summary: exact nearest-rank percentiles of 1000, 2000, 3000, 5000 */
    struct query_filter f = {0}, fp = {.route = "/products/[id]"};
    json_t *j = NULL;
    TAP_OK(query_summary(r, &fp, &j) == 0, "summary/ok");
    const json_t *prod = json_array_get(json_object_get(j, "routes"), 0);
    const json_t *l = json_object_get(json_object_get(prod, "metrics"), "LCP");
    TAP_OK(strcmp(json_string_value(json_object_get(prod, "route")), "/products/[id]") == 0 &&
               json_integer_value(json_object_get(prod, "views")) == 4,
           "summary/route_views");
    TAP_OK(json_number_value(json_object_get(l, "p50")) == 2000 &&
               json_number_value(json_object_get(l, "p75")) == 3000 &&
               json_number_value(json_object_get(l, "p95")) == 5000 &&
               json_number_value(json_object_get(l, "good")) == 0.5 &&
               json_number_value(json_object_get(l, "poor")) == 0.25,
           "summary/lcp_exact");
    json_decref(j);

    /* initial JS: app.js (and vendor.js via <link>) before load; late.js after load */
    TAP_OK(query_initial_js(r, &f, 200000, &j) == 0, "js/ok");
    const json_t *jr = NULL;
    size_t i;
    const json_t *x;
    json_array_foreach(json_object_get(j, "routes"), i, x) {
        if (strcmp(json_string_value(json_object_get(x, "route")), "/products/[id]") == 0)
            jr = x;
    }
    TAP_OK(jr && json_integer_value(json_object_get(jr, "n")) == 4 &&
               json_number_value(json_object_get(jr, "p75")) == 150000 &&
               json_number_value(json_object_get(jr, "max")) == 250000,
           "js/per_route_exact");
    TAP_OK(json_array_size(json_object_get(j, "over")) == 1 &&
               strcmp(json_string_value(json_object_get(json_array_get(json_object_get(j, "over"), 0),
                                                        "id")),
                      "prod00004") == 0,
           "js/over_list");
    json_decref(j);

    /* top attribution targets */
    TAP_OK(query_targets(r, &f, 10, &j) == 0, "targets/ok");
    const json_t *t0 = json_array_get(json_object_get(j, "LCP"), 0);
    TAP_OK(t0 && strcmp(json_string_value(json_object_get(t0, "target")), "img.hero") == 0 &&
               json_integer_value(json_object_get(t0, "count")) == 3 &&
               json_number_value(json_object_get(t0, "p75")) == 3000,
           "targets/lcp_exact");
    TAP_OK(json_array_size(json_object_get(j, "LCP")) == 2 &&
               json_array_size(json_object_get(j, "CLS")) == 1 &&
               strcmp(json_string_value(json_object_get(json_array_get(json_object_get(j, "CLS"), 0),
                                                        "target")),
                      "<script>alert(1)</script>") == 0,
           "targets/cls_kept_verbatim");
    json_decref(j);
    struct query_filter fr = {.route = "/"};
    TAP_OK(query_targets(r, &fr, 10, &j) == 0 && json_array_size(json_object_get(j, "LCP")) == 0,
           "targets/route_filter");
    json_decref(j);

    /* findings: every type the proxy records can show */
    TAP_OK(query_findings(r, &f, "/api/", &j) == 0, "findings/ok");
    const json_t *fl = json_object_get(j, "findings");
    x = find_finding(fl, "uncompressed-text", "/api/items");
    TAP_OK(x && json_integer_value(json_object_get(x, "count")) == 12, "findings/uncompressed");
    TAP_OK(find_finding(fl, "large-json", "/api/big (up to 2000000 bytes)") != NULL,
           "findings/large_json");
    TAP_OK(find_finding(fl, "cache-policy", "/static/app.js") != NULL &&
               find_finding(fl, "cache-policy", "/static/ok.js") == NULL,
           "findings/cache_policy");
    x = find_finding(fl, "n-plus-one", "GET /api/items (up to 12 requests in one view)");
    TAP_OK(x && json_integer_value(json_object_get(x, "count")) == 1, "findings/n_plus_one");
    TAP_OK(find_finding(fl, "initial-js", "/products/[id] (up to 250000 bytes)") != NULL,
           "findings/initial_js");
    x = find_finding(fl, "render-blocking", "/b.css");
    TAP_OK(x && json_integer_value(json_object_get(x, "count")) == 4, "findings/render_blocking");
    TAP_OK(!find_finding(fl, "uncompressed-text", "/products/1"), "findings/gzip_not_flagged");
    x = find_finding(fl, "uncompressed-text", "/docs/[id] (3 URLs, up to 4002 bytes)");
    TAP_OK(x && json_integer_value(json_object_get(x, "count")) == 3 &&
               !find_finding(fl, "uncompressed-text", "/docs/1000"),
           "findings/grouped_by_route");
    json_decref(j);

    /* the JSON API over the real reader */
    TAP_OK(req(r, "GET", "summary", "since=2025-11-24T00:00:00Z") == 200 &&
               json_array_size(json_object_get(json, "routes")) == 3,
           "api/summary_since_iso");
    TAP_OK(req(r, "GET", "summary", "since=2025-11-25") == 200 &&
               json_array_size(json_object_get(json, "routes")) == 0,
           "api/summary_since_excludes");
    TAP_OK(req(r, "GET", "views", "route=%2Fproducts%2F%5Bid%5D&limit=2") == 200 &&
               json_array_size(json_object_get(json, "views")) == 2,
           "api/views_route_limit");
    TAP_OK(req(r, "GET", "views/prod00001", NULL) == 200 &&
               json_number_value(json_object_get(json, "initial_js_bytes")) == 150000,
           "api/view_initial_js");
    TAP_OK(req(r, "GET", "views/prod00001/har", NULL) == 200 &&
               strstr(reply.content_disposition, "attachment") &&
               strcmp(json_string_value(json_object_get(json_object_get(json, "log"), "version")),
                      "1.2") == 0,
           "api/har");
    TAP_OK(req(r, "GET", "views/nosuchview", NULL) == 404, "api/unknown_view_404");
    TAP_OK(req(r, "PUT", "views/prod00001", NULL) == 405, "api/put_405");
    TAP_OK(req(r, "GET", "views", "limit=abc") == 400, "api/bad_limit_400");
    TAP_OK(req(r, "GET", "nothing/here", NULL) == 404, "api/unknown_404");
    TAP_OK(req(r, "GET", "api-latency", NULL) == 200, "api/api_latency");
    x = NULL;
    const json_t *y;
    json_array_foreach(json_object_get(json, "routes"), i, y) {
        if (strcmp(json_string_value(json_object_get(y, "route")), "/api/items") == 0)
            x = y;
    }
    TAP_OK(x &&
               json_integer_value(json_object_get(x, "n")) == 12 &&
               json_number_value(json_object_get(x, "p95")) == 600,
           "api/api_latency_exact");
    TAP_OK(req(r, "GET", "findings", NULL) == 200 &&
               find_finding(json_object_get(json, "findings"), "slow-api",
                            "GET /api/items API p95 600 ms > limit 500 ms (n=12)"),
           "api/findings_slow_api");
    TAP_OK(req(r, "GET", "budget", NULL) == 200 &&
               json_integer_value(json_object_get(json, "violations")) == 3,
           "api/budget_default (LCP p75, CLS p75, API p95 over; JS p75 within)");
    TAP_OK(req(r, "GET", "labels", NULL) == 200 &&
               json_array_size(json_object_get(json, "labels")) == 2 &&
               json_integer_value(json_object_get(json_array_get(json_object_get(json, "labels"), 0),
                                                  "views")) == 40 &&
               strcmp(json_string_value(json_object_get(
                          json_array_get(json_object_get(json, "labels"), 0), "label")),
                      "lazy") == 0 &&
               strcmp(json_string_value(json_object_get(
                          json_array_get(json_object_get(json, "labels"), 1), "first")),
                      "2025-11-24T16:00:20.000Z") == 0,
           "api/labels (%.300s)", body);
    TAP_OK(req(r, "GET", "compare", "a=base&b=lazy") == 200 &&
               strcmp(json_string_value(json_object_get(
                          json_array_get(json_object_get(json, "rows"), 0), "verdict")),
                      "better") == 0,
           "api/compare_labels");
    TAP_OK(req(r, "GET", "views.csv", NULL) == 200 && strncmp(body, "id,started_at,url,", 18) == 0,
           "api/views_csv");
    json_decref(json);
    json = NULL;
    store_reader_free(r);

    /* the CLI on the same file */
    TAP_OK(cli("report", "--db", db, "--format", "json", "--route", "/products/[id]", NULL) == 0 &&
               strncmp(out, "{\"routes\":[{\"route\":\"/products/[id]\",\"views\":4,",
                       strlen("{\"routes\":[{\"route\":\"/products/[id]\",\"views\":4,")) == 0 &&
               strstr(out, "\"CLS\":{\"n\":1,\"p50\":0.3,"),
           "cli/report_json (%s)", errtext);
    TAP_OK(cli("report", "--db", db, NULL) == 0 && strstr(out, "/products/[id]") &&
               strstr(out, "3000 N"),
           "cli/report_table");
    char budget[300];
    snprintf(budget, sizeof budget, "%s/budget.json", dir);
    FILE *bf = fopen(budget, "wb");
    fputs("{\"/products/*\": {\"LCP\": {\"p75\": 2500}}, \"/\": {\"LCP\": {\"p75\": 2500}}}", bf);
    fclose(bf);
    TAP_OK(cli("check", "--db", db, "--budget", budget, NULL) == 1 &&
               strstr(out, "over budget: /products/[id] LCP p75 3000 ms > limit 2500 ms (n=4)") &&
               strstr(out, "1 of 2 budget checks over"),
           "cli/check_over");
    bf = fopen(budget, "wb");
    fputs("{\"*\": {\"LCP\": {\"p75\": 3000}, \"API\": {\"p95\": 600}, \"JS\": {\"p75\": 150000}}}",
          bf);
    fclose(bf);
    TAP_OK(cli("check", "--db", db, "--budget", budget, NULL) == 0 &&
               strstr(out, "within budget: 6 checks"),
           "cli/check_within");
    TAP_OK(cli("export", "--db", db, "--last", NULL) == 0 && strstr(out, "\"version\":\"1.2\""),
           "cli/export_last_har");
    TAP_OK(cli("export", "--db", db, "--view", "prod00002", "--format", "csv", NULL) == 0 &&
               strstr(out, "/app.js,script,10,"),
           "cli/export_csv");
    TAP_OK(cli("compare", "--db", db, "base", "lazy", "--format", "json", NULL) == 0,
           "cli/compare_labels (%s)", errtext);
    json_t *cmp = json_loads(out, 0, NULL);
    const json_t *crow = json_array_get(json_object_get(cmp, "rows"), 0);
    TAP_OK(json_array_size(json_object_get(cmp, "rows")) == 1 &&
               strcmp(json_string_value(json_object_get(crow, "route")), "/run") == 0 &&
               json_number_value(json_object_get(crow, "diff")) == -1000 &&
               strcmp(json_string_value(json_object_get(crow, "verdict")), "better") == 0,
           "cli/compare_exact_diff_better");
    json_decref(cmp);
    TAP_OK(cli("compare", "--db", db, "lazy", "base", "--fail-on-regression", NULL) == 1 &&
               strstr(out, "worse"),
           "cli/compare_regression_exit_1");
    TAP_OK(cli("compare", "--db", db, "2025-11-24T16:00..16:01", "lazy", NULL) == 0 &&
               strstr(out, "/run"),
           "cli/compare_time_range_vs_label");
    TAP_OK(cli("export", "--db", db, "--view", "prod00001", "--format", "html", NULL) == 0 &&
               strncmp(out, "<!doctype html>", 15) == 0 && strstr(out, "<svg") &&
               strstr(out, "&lt;script&gt;alert(1)&lt;/script&gt;") && !strstr(out, "<script"),
           "cli/export_view_html");
    TAP_OK(cli("export", "--db", db, "--route", "/products/[id]", "--format", "html", NULL) == 0 &&
               strstr(out, "Route /products/[id]") && strstr(out, "View prod00004") &&
               strstr(out, "View prod00003") && strstr(out, "View prod00002") &&
               !strstr(out, "View prod00001"),
           "cli/export_route_html_slowest_three");
    TAP_OK(cli("export", "--db", db, "--route", "/run", "--label", "lazy", "--format", "html",
               NULL) == 0 &&
               strstr(out, "40 views") && strstr(out, "label lazy"),
           "cli/export_route_html_label");
    TAP_OK(cli("export", "--db", db, "--route", "/nothing", "--format", "html", NULL) == 1 &&
               strstr(errtext, "no views"),
           "cli/export_route_empty_1");
    TAP_OK(cli("export", "--db", db, "--route", "/run", NULL) == 2 && strstr(errtext, "--format html"),
           "cli/export_route_needs_html_2");
    remove("test_report_db.out");
    remove("test_report_db.err");
    if (getenv("KEEP")) { printf("# kept %s\n", dir); TAP_DONE(); }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
    TAP_DONE();
}
