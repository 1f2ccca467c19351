/* store/query against a database filled through the store: nearest-rank percentiles vs
 * hand-computed values, good/ni/poor boundaries, summary/views/view/HAR shapes, filters as bound
 * parameters, API latency, health, reader refusals. */
#include "config.h"

#include "store/query.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/vp_err.h"
#include "store/store.h"
#include "store/store_internal.h"
#include "tap.h"

static int ingest(struct store *s, const char *body, const char *ua)
{
    struct store_beacon_ctx ctx = {"127.0.0.1", ua, 1764000001000, NULL, 1.0};
    char reason[96];
    return store_ingest_beacon(s, body, strlen(body), &ctx, reason, sizeof reason);
}

static bool near(double a, double b) { return fabs(a - b) < 1e-9; }

static double jnum(json_t *o, const char *path1, const char *path2)
{
    json_t *v = json_object_get(o, path1);
    if (path2)
        v = json_object_get(v, path2);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static json_t *route_of(json_t *summary, const char *route)
{
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(summary, "routes"), i, r) {
        if (strcmp(json_string_value(json_object_get(r, "route")), route) == 0)
            return r;
    }
    return NULL;
}

static const char *const har_required_entry[] = {"pageref", "startedDateTime", "time", "request",
                                                 "response", "cache", "timings", NULL};
static const char *const har_required_timing[] = {"blocked", "dns", "connect", "ssl",
                                                  "send",    "wait", "receive", NULL};
static const char *const har_required_req[] = {"method",      "url",         "httpVersion",
                                               "cookies",     "headers",     "queryString",
                                               "headersSize", "bodySize",    NULL};
static const char *const har_required_resp[] = {"status",      "statusText", "httpVersion",
                                                "cookies",     "headers",    "content",
                                                "redirectURL", "headersSize", "bodySize", NULL};

static bool has_all(json_t *o, const char *const *keys)
{
    for (size_t i = 0; keys[i]; i++)
        if (!json_object_get(o, keys[i]))
            return false;
    return true;
}

int main(void)
{
    /* percentile function */
    double v5[] = {1, 2, 3, 4, 5};
    TAP_OK(near(query_percentile(v5, 5, 0), 1) && near(query_percentile(v5, 5, 20), 1) &&
               near(query_percentile(v5, 5, 21), 2) && near(query_percentile(v5, 5, 50), 3) &&
               near(query_percentile(v5, 5, 100), 5),
           "query/percentile_nearest_rank");
    TAP_OK(isnan(query_percentile(v5, 0, 50)), "query/percentile_empty");
    double g, p;
    TAP_OK(query_thresholds("CLS", &g, &p) == 0 && near(g, 0.1) && near(p, 0.25) &&
               query_thresholds("FID", &g, &p) == VP_ERR_NOTFOUND,
           "query/thresholds");

    char dir[] = "/tmp/vp_test_query.XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/q.db", dir);

    struct store_reader *r = NULL;
    TAP_OK(store_reader_open(&r, path, err, sizeof err) == VP_ERR_IO, "query/reader_missing_file");

    struct store_options opt;
    store_options_default(&opt);
    opt.retention_days = 0;
    struct store *s = NULL;
    if (store_open(&s, path, &opt, err, sizeof err) != 0) {
        TAP_OK(0, "query/open: %s", err);
        TAP_DONE();
    }
    const char *chrome = "Mozilla/5.0 Chrome/131.0.0.0 Safari/537.36";
    const char *ff = "Mozilla/5.0 Firefox/133.0";
    char body[2048];
    int rc = 0;
    /* /p/[id]: 10 views, LCP 100..1000 (each first reported at half, then the final value). */
    for (int i = 1; i <= 10; i++) {
        snprintf(body, sizeof body,
                 "{\"v\":1,\"vid\":\"pview%05d\",\"url\":\"/p/%d\",\"t0\":%lld,\"nav\":\"navigate\","
                 "\"dev\":\"%s\",\"m\":[{\"n\":\"LCP\",\"id\":\"l%d\",\"v\":%d}]}",
                 i, i, 1764000000000LL + i * 1000, i <= 5 ? "mobile" : "desktop", i, i * 50);
        rc |= ingest(s, body, i % 2 ? chrome : ff);
        snprintf(body, sizeof body,
                 "{\"v\":1,\"vid\":\"pview%05d\",\"url\":\"/p/%d\",\"t0\":%lld,"
                 "\"m\":[{\"n\":\"LCP\",\"id\":\"l%d\",\"v\":%d,\"a\":{\"target\":\"img.hero\"}}]}",
                 i, i, 1764000000000LL + i * 1000, i, i * 100);
        rc |= ingest(s, body, NULL);
    }
    /* /cart: INP at the boundaries 200 (good), 201, 500 (ni), 501 (poor). */
    const int inp[] = {200, 201, 500, 501};
    for (int i = 0; i < 4; i++) {
        snprintf(body, sizeof body,
                 "{\"v\":1,\"vid\":\"cview%05d\",\"url\":\"/cart\",\"t0\":%lld,"
                 "\"m\":[{\"n\":\"INP\",\"id\":\"i%d\",\"v\":%d},{\"n\":\"CLS\",\"id\":\"c%d\","
                 "\"v\":%s}]}",
                 i, 1764000100000LL + i, i, inp[i], i, i == 0 ? "0.1" : "0.25");
        rc |= ingest(s, body, chrome);
    }
    /* one detailed view with navigation, resources and proxy requests */
    rc |= ingest(s,
                 "{\"v\":1,\"vid\":\"detail0001\",\"url\":\"/d\",\"t0\":1764000200000,"
                 "\"m\":[{\"n\":\"TTFB\",\"id\":\"t\",\"v\":120}],"
                 "\"nt\":{\"u\":\"/d\",\"s\":0,\"d\":900,\"fs\":1,\"dls\":2,\"dle\":5,\"cs\":5,\"ce\":30,"
                 "\"scs\":10,\"rqs\":31,\"rps\":120,\"rpe\":150,\"ts\":5000,\"eb\":4700,\"db\":20000,"
                 "\"p\":\"http/1.1\",\"st\":200,\"dcl\":400,\"ls\":800,\"ty\":\"navigate\","
                 "\"sv\":[{\"n\":\"db\",\"d\":12}]},"
                 "\"res\":[{\"u\":\"/app.js\",\"i\":\"script\",\"s\":160,\"d\":40,\"fs\":160,\"rqs\":170,"
                 "\"rps\":190,\"rpe\":200,\"eb\":1000,\"db\":3000,\"p\":\"h2\",\"rb\":\"blocking\"}],"
                 "\"ri\":0}",
                 chrome);
    const int64_t T = 1764000200000LL * 1000;
    struct store_request_rec rec = {0};
    rec.accept_us = T;
    rec.head_done_us = T + 100;
    rec.connect_start_us = T + 200;
    rec.connect_end_us = T + 1200;
    rec.sent_us = T + 1300;
    rec.first_byte_us = T + 80000;
    rec.last_byte_us = T + 100100;
    rec.status = 200;
    rec.injected = true;
    rec.method = "GET";
    rec.url = "/d";
    rec.host = "localhost:8080";
    rec.view_id = "detail0001";
    rec.content_type = "text/html";
    rc |= store_record_request(s, &rec);
    /* API calls: GET /api/items/N with latencies 10,20,...,100 ms; one 502. */
    for (int i = 1; i <= 10; i++) {
        struct store_request_rec a = {0};
        a.accept_us = T + i * 1000000;
        a.head_done_us = a.accept_us;
        a.last_byte_us = a.accept_us + i * 10000;
        a.status = i == 10 ? 502 : 200;
        a.method = "GET";
        char u[64];
        snprintf(u, sizeof u, "/api/items/%d?x=1", i);
        a.url = u;
        a.referer = "http://localhost:8080/d";
        rc |= store_record_request(s, &a);
    }
    store_count_rejection(s, "rate-limited");
    TAP_OK(rc == 0 && store_sync(s) == 0, "query/data_ingested");

    TAP_OK(store_reader_open(&r, path, err, sizeof err) == 0, "query/reader_open: %s", err);
    if (!r)
        TAP_DONE();

    json_t *sum = NULL;
    TAP_OK(query_summary(r, NULL, &sum) == 0, "query/summary_ok");
    json_t *pr = route_of(sum, "/p/[id]");
    TAP_OK(pr && jnum(pr, "views", NULL) == 10, "query/summary_route_views");
    json_t *lcp = json_object_get(json_object_get(pr, "metrics"), "LCP");
    TAP_OK(lcp && jnum(lcp, "n", NULL) == 10 && near(jnum(lcp, "p50", NULL), 500) &&
               near(jnum(lcp, "p75", NULL), 800) && near(jnum(lcp, "p95", NULL), 1000) &&
               near(jnum(lcp, "p99", NULL), 1000),
           "query/summary_percentiles_hand_computed");
    TAP_OK(near(jnum(lcp, "good", NULL), 1) && near(jnum(lcp, "ni", NULL), 0) &&
               near(jnum(lcp, "poor", NULL), 0),
           "query/summary_shares");
    TAP_OK(!json_object_get(json_object_get(pr, "metrics"), "CLS"),
           "query/summary_metric_without_samples_omitted");
    json_t *cart = json_object_get(route_of(sum, "/cart"), "metrics");
    json_t *inpj = json_object_get(cart, "INP"), *cls = json_object_get(cart, "CLS");
    TAP_OK(inpj && near(jnum(inpj, "good", NULL), 0.25) && near(jnum(inpj, "ni", NULL), 0.5) &&
               near(jnum(inpj, "poor", NULL), 0.25) && near(jnum(inpj, "p50", NULL), 201) &&
               near(jnum(inpj, "p75", NULL), 500),
           "query/inclusive_boundaries_inp");
    TAP_OK(cls && near(jnum(cls, "good", NULL), 0.25) && near(jnum(cls, "ni", NULL), 0.75),
           "query/inclusive_boundaries_cls");
    json_decref(sum);

    struct query_filter f = {0};
    f.device = "mobile";
    TAP_OK(query_summary(r, &f, &sum) == 0 && jnum(route_of(sum, "/p/[id]"), "views", NULL) == 5,
           "query/filter_device");
    json_decref(sum);
    f = (struct query_filter){0};
    f.route = "/p/[id]' OR '1'='1";
    TAP_OK(query_summary(r, &f, &sum) == 0 &&
               json_array_size(json_object_get(sum, "routes")) == 0,
           "query/filter_is_bound_parameter");
    json_decref(sum);
    f = (struct query_filter){0};
    f.browser = "Firefox";
    TAP_OK(query_summary(r, &f, &sum) == 0 && jnum(route_of(sum, "/p/[id]"), "views", NULL) == 5,
           "query/filter_browser");
    json_decref(sum);

    json_t *views = NULL;
    f = (struct query_filter){0};
    f.limit = 3;
    TAP_OK(query_views(r, &f, &views) == 0 && json_array_size(json_object_get(views, "views")) == 3,
           "query/views_limit");
    json_t *v0 = json_array_get(json_object_get(views, "views"), 0);
    TAP_OK(v0 && strcmp(json_string_value(json_object_get(v0, "id")), "detail0001") == 0 &&
               strcmp(json_string_value(json_object_get(v0, "started_at")),
                      "2025-11-24T16:03:20.000Z") == 0 &&
               near(jnum(v0, "metrics", "TTFB"), 120),
           "query/views_newest_first_iso");
    json_decref(views);
    f = (struct query_filter){0};
    f.route = "/p/[id]";
    TAP_OK(query_views(r, &f, &views) == 0, "query/views_route");
    v0 = json_array_get(json_object_get(views, "views"), 0);
    TAP_OK(json_array_size(json_object_get(views, "views")) == 10 &&
               strcmp(json_string_value(json_object_get(v0, "url")), "/p/10") == 0 &&
               near(jnum(v0, "metrics", "LCP"), 1000) &&
               strcmp(json_string_value(json_object_get(v0, "navigation_type")), "navigate") == 0,
           "query/views_fields");
    json_decref(views);

    json_t *view = NULL;
    TAP_OK(query_view(r, "pview00003", &view) == 0 &&
               strcmp(json_string_value(
                          json_object_get(json_object_get(json_object_get(view, "attribution"),
                                                          "LCP"),
                                          "target")),
                      "img.hero") == 0,
           "query/view_attribution");
    json_decref(view);
    TAP_OK(query_view(r, "nosuchview", &view) == VP_ERR_NOTFOUND &&
               query_view(r, "bad id!", &view) == VP_ERR_NOTFOUND,
           "query/view_notfound");
    TAP_OK(query_view(r, "detail0001", &view) == 0, "query/view_detail");
    json_t *reqs = json_object_get(view, "requests");
    TAP_OK(json_array_size(json_object_get(view, "resources")) == 1 &&
               near(jnum(json_object_get(view, "navigation"), "dcl_start", NULL), 400) &&
               json_array_size(reqs) == 11,
           "query/view_nav_resources_requests: %zu requests", json_array_size(reqs));
    json_decref(view);

    json_t *har = NULL;
    TAP_OK(query_view_har(r, "detail0001", &har) == 0, "query/har_ok");
    json_t *log = json_object_get(har, "log");
    json_t *entries = json_object_get(log, "entries");
    json_t *page = json_array_get(json_object_get(log, "pages"), 0);
    TAP_OK(strcmp(json_string_value(json_object_get(log, "version")), "1.2") == 0 &&
               json_object_get(json_object_get(log, "creator"), "name") && page &&
               near(jnum(page, "pageTimings", "onContentLoad"), 400) &&
               near(jnum(page, "pageTimings", "onLoad"), 800),
           "query/har_log_pages");
    bool shape = json_array_size(entries) == 2;
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e) {
        shape = shape && has_all(e, har_required_entry) &&
                has_all(json_object_get(e, "timings"), har_required_timing) &&
                has_all(json_object_get(e, "request"), har_required_req) &&
                has_all(json_object_get(e, "response"), har_required_resp) &&
                json_array_size(json_object_get(json_object_get(e, "request"), "cookies")) == 0 &&
                json_array_size(json_object_get(json_object_get(e, "request"), "headers")) == 0;
    }
    TAP_OK(shape, "query/har_required_keys");
    json_t *nav = json_array_get(entries, 0), *res = json_array_get(entries, 1);
    json_t *tm = json_object_get(nav, "timings");
    TAP_OK(near(jnum(tm, "blocked", NULL), 1) && near(jnum(tm, "dns", NULL), 3) &&
               near(jnum(tm, "connect", NULL), 25) && near(jnum(tm, "ssl", NULL), 20) &&
               near(jnum(tm, "wait", NULL), 89) && near(jnum(tm, "receive", NULL), 30) &&
               near(jnum(nav, "time", NULL), 1 + 3 + 25 + 89 + 30),
           "query/har_nav_timings");
    TAP_OK(strcmp(json_string_value(json_object_get(json_object_get(nav, "request"), "url")),
                  "http://localhost:8080/d") == 0 &&
               json_object_get(nav, "_proxy") && json_object_get(nav, "_serverTiming") &&
               near(jnum(json_object_get(nav, "_proxy"), "upstream_wait", NULL), 78.7),
           "query/har_proxy_and_server_timing");
    tm = json_object_get(res, "timings");
    TAP_OK(near(jnum(tm, "dns", NULL), -1) && near(jnum(tm, "connect", NULL), -1) &&
               near(jnum(tm, "ssl", NULL), -1) && near(jnum(tm, "blocked", NULL), 10) &&
               strcmp(json_string_value(json_object_get(json_object_get(res, "response"),
                                                        "httpVersion")),
                      "HTTP/2") == 0,
           "query/har_absent_phases");
    json_decref(har);
    TAP_OK(query_view_har(r, "nosuchview", &har) == VP_ERR_NOTFOUND, "query/har_notfound");

    char last[80];
    TAP_OK(query_last_view_id(r, last, sizeof last) == 0 && strcmp(last, "detail0001") == 0,
           "query/last_view_id");
    TAP_OK(query_last_view_id(r, last, 4) == VP_ERR_LIMIT, "query/last_view_id_small");

    json_t *api = NULL;
    TAP_OK(query_api_latency(r, NULL, "/api/", &api) == 0, "query/api_ok");
    json_t *a0 = json_array_get(json_object_get(api, "routes"), 0);
    TAP_OK(json_array_size(json_object_get(api, "routes")) == 1 && a0 &&
               strcmp(json_string_value(json_object_get(a0, "route")), "/api/items/[id]") == 0 &&
               jnum(a0, "n", NULL) == 10 && near(jnum(a0, "p50", NULL), 50) &&
               near(jnum(a0, "p95", NULL), 100) && jnum(a0, "errors", NULL) == 1,
           "query/api_latency_values");
    json_decref(api);
    TAP_OK(query_api_latency(r, NULL, "/api%", &api) == 0 &&
               json_array_size(json_object_get(api, "routes")) == 0,
           "query/api_prefix_literal");
    json_decref(api);

    json_t *h = NULL;
    TAP_OK(query_health(r, &h) == 0, "query/health_ok");
    TAP_OK(jnum(h, "beacons_accepted", NULL) == 25 && jnum(h, "beacons_rejected", NULL) == 1 &&
               jnum(json_object_get(h, "rejections"), "rate-limited", NULL) == 1 &&
               jnum(h, "views", NULL) == 15 && jnum(h, "requests", NULL) == 11 &&
               jnum(h, "db_bytes", NULL) > 0 &&
               strcmp(json_string_value(json_object_get(h, "oldest")),
                      "2025-11-24T16:00:01.000Z") == 0,
           "query/health_values");
    json_decref(h);
    store_reader_free(r);
    store_free(s);

    /* The reader refuses a newer schema. */
    sqlite3 *db = NULL;
    sqlite3_open(path, &db);
    sqlite3_exec(db, "PRAGMA user_version=7", NULL, NULL, NULL);
    sqlite3_close(db);
    r = NULL;
    TAP_OK(store_reader_open(&r, path, err, sizeof err) == VP_ERR_VERSION && !r,
           "query/reader_newer_refused");
    /* ... and a negative one (hand-edited user_version) as not a vitals-proxy database. */
    sqlite3_open(path, &db);
    sqlite3_exec(db, "PRAGMA user_version=-3", NULL, NULL, NULL);
    sqlite3_close(db);
    r = NULL;
    TAP_OK(store_reader_open(&r, path, err, sizeof err) == VP_ERR_DB && !r &&
               strstr(err, "schema version -3"),
           "query/reader_negative_version_refused: %s", err);
    store_reader_free(r);
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
    TAP_DONE();
}
