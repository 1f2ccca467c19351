/* store/ write side through its public header (+ store_internal.h for sync and pruning):
 * migrations and refusals, ingestion, dedupe, idempotent resources, hostile strings stored
 * verbatim, rejection counting, request-to-view resolution, retention, back-pressure, drain on
 * close, concurrent producers, typed columns of the compact form, admission control by age.
 * The database is inspected with plain SQLite. */
#include "config.h"

#include "store/store.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/vp_buf.h"
#include "common/vp_err.h"
#include "store/query.h"
#include "store/query_report.h"
#include "store/store_internal.h"
#include "db_test_util.h"
#include "tap.h"

#ifndef SRCDIR
#define SRCDIR "."
#endif

static char dir[64];

static void path_of(char *out, size_t cap, const char *name)
{
    int w = snprintf(out, cap, "%s/%s", dir, name);
    if (w < 0 || (size_t)w >= cap)
        abort();
}

static char *qtext(const char *db, const char *sql)
{
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    char *v = NULL;
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        v = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(h);
    return v;
}

/* Test data is dated 2025-11: keep it (retention 0) unless a test prunes explicitly. */
static int open_keep(struct store **s, const char *p, struct store_options *opt, char *err,
                     size_t errlen)
{
    struct store_options def;
    if (!opt) {
        store_options_default(&def);
        opt = &def;
    }
    opt->retention_days = 0;
    return store_open(s, p, opt, err, errlen);
}

static int ingest(struct store *s, const char *body)
{
    struct store_beacon_ctx ctx = {"127.0.0.1", "Mozilla/5.0 Chrome/131.0.0.0 Safari/537.36",
                                   1764000001000, "run-a", 1.0};
    char reason[96];
    return store_ingest_beacon(s, body, strlen(body), &ctx, reason, sizeof reason);
}

static int write_file(const char *p, const void *data, size_t n)
{
    FILE *f = fopen(p, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(data, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

static bool same_file(const char *p, const void *data, size_t n)
{
    char buf[8192];
    FILE *f = fopen(p, "rb");
    if (!f)
        return false;
    size_t r = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return r == n && memcmp(buf, data, n) == 0;
}

static void test_open_and_refusals(void)
{
    char p[128], err[256];
    struct store *s = NULL;
    path_of(p, sizeof p, "fresh.db");
    int rc = store_open(&s, p, NULL, err, sizeof err);
    TAP_OK(rc == 0, "store/open_fresh: %s", err);
    store_free(s);
    TAP_OK(db_q1(p, "PRAGMA user_version") == STORE_SCHEMA_VERSION, "store/user_version_set");
    TAP_OK(db_q1(p, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name IN "
                 "('views','metrics','resources','navigation','requests','rejections','meta')") ==
               7,
           "store/tables_created");
    char *jm = qtext(p, "PRAGMA journal_mode");
    TAP_OK(jm && strcmp(jm, "wal") == 0, "store/wal_mode");
    free(jm);
    /* Reopen an existing database: no migration, data kept. */
    rc = store_open(&s, p, NULL, err, sizeof err);
    TAP_OK(rc == 0, "store/reopen");
    store_free(s);

    /* Newer schema: refused, file untouched. */
    path_of(p, sizeof p, "newer.db");
    sqlite3 *h = NULL;
    sqlite3_open(p, &h);
    sqlite3_exec(h, "CREATE TABLE future(x); PRAGMA user_version=99;", NULL, NULL, NULL);
    sqlite3_close(h);
    struct stat before, after;
    stat(p, &before);
    char *bytes = malloc((size_t)before.st_size);
    FILE *f = fopen(p, "rb");
    size_t got = f && bytes ? fread(bytes, 1, (size_t)before.st_size, f) : 0;
    if (f)
        fclose(f);
    s = NULL;
    rc = store_open(&s, p, NULL, err, sizeof err);
    stat(p, &after);
    char wal[160];
    int w = snprintf(wal, sizeof wal, "%s-wal", p);
    TAP_OK(rc == VP_ERR_VERSION && s == NULL && strstr(err, "newer"), "store/newer_refused: %s",
           err);
    TAP_OK(got == (size_t)before.st_size && after.st_size == before.st_size &&
               same_file(p, bytes, got) && w > 0 && access(wal, F_OK) != 0,
           "store/newer_untouched");
    free(bytes);

    /* Not a database: refused, untouched. */
    path_of(p, sizeof p, "garbage.db");
    static const char junk[] = "this is not a database, just some text that is long enough......"
                               "......................................................";
    write_file(p, junk, sizeof junk);
    rc = store_open(&s, p, NULL, err, sizeof err);
    TAP_OK(rc == VP_ERR_DB && err[0], "store/garbage_refused: %s", err);
    TAP_OK(same_file(p, junk, sizeof junk), "store/garbage_untouched");

    /* Another application's database: refused. */
    path_of(p, sizeof p, "other.db");
    sqlite3_open(p, &h);
    sqlite3_exec(h, "CREATE TABLE customers(id)", NULL, NULL, NULL);
    sqlite3_close(h);
    rc = store_open(&s, p, NULL, err, sizeof err);
    TAP_OK(rc == VP_ERR_DB && strstr(err, "not a vitals-proxy database"), "store/foreign_refused");
    TAP_OK(db_q1(p, "PRAGMA user_version") == 0, "store/foreign_untouched");

    /* A negative schema version (a hand-edited PRAGMA user_version): refused before any
     * migration step is looked up, and left as it was. */
    path_of(p, sizeof p, "negative.db");
    sqlite3_open(p, &h);
    sqlite3_exec(h, "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT); PRAGMA user_version=-1;",
                 NULL, NULL, NULL);
    sqlite3_close(h);
    s = NULL;
    rc = store_open(&s, p, NULL, err, sizeof err);
    TAP_OK(rc == VP_ERR_DB && s == NULL && strstr(err, "schema version -1"),
           "store/negative_version_refused: %s", err);
    TAP_OK(db_q1(p, "PRAGMA user_version") == -1, "store/negative_version_untouched");

    /* Unopenable path. */
    rc = store_open(&s, "/nonexistent-dir/x/y.db", NULL, err, sizeof err);
    TAP_OK(rc == VP_ERR_IO && err[0], "store/unopenable: %s", err);
}

#define VID "viewAAAA01"
#define CTXF "\"v\":1,\"vid\":\"" VID "\",\"url\":\"/products/42?x=1\",\"t0\":1764000000000"

static void test_ingest(void)
{
    char p[128], err[256];
    struct store *s = NULL;
    path_of(p, sizeof p, "ingest.db");
    if (open_keep(&s, p, NULL, err, sizeof err) != 0) {
        TAP_OK(0, "store/ingest_open: %s", err);
        return;
    }
    /* first payload: context + LCP 1000 */
    int rc = ingest(s, "{" CTXF ",\"nav\":\"navigate\",\"dev\":\"desktop\",\"m\":[{\"n\":\"LCP\","
                       "\"id\":\"lcp-1\",\"v\":1000,\"d\":1000,\"r\":\"good\"}],"
                       "\"res\":[{\"u\":\"/a.js\",\"s\":5},{\"u\":\"/b.css\",\"s\":6}],\"ri\":0}");
    /* same metric id grows; CLS appears; the same chunk is re-sent plus one new resource */
    rc |= ingest(s, "{" CTXF ",\"ect\":\"4g\",\"dev\":\"mobile\",\"m\":[{\"n\":\"LCP\",\"id\":\"lcp-1\","
                    "\"v\":3000,\"d\":2000,\"r\":\"needs-improvement\",\"a\":{\"target\":\"img#hero\"}},"
                    "{\"n\":\"CLS\",\"id\":\"cls-1\",\"v\":0.05}],"
                    "\"res\":[{\"u\":\"/a.js\",\"s\":99},{\"u\":\"/b.css\",\"s\":6}],\"ri\":0}");
    rc |= ingest(s, "{" CTXF ",\"res\":[{\"u\":\"/c.png\",\"s\":7}],\"ri\":2,"
                    "\"nt\":{\"u\":\"/products/42\",\"rps\":120,\"dcl\":400,\"ls\":900}}");
    TAP_OK(rc == 0, "store/ingest_accepted");
    TAP_OK(store_sync(s) == 0, "store/sync");
    TAP_OK(db_q1(p, "SELECT count(*) FROM views") == 1, "store/one_view");
    TAP_OK(db_q1(p, "SELECT count(*) FROM metrics WHERE name='LCP'") == 1 &&
               db_q1(p, "SELECT value FROM metrics WHERE metric_id='lcp-1'") == 3000,
           "store/dedupe_last_wins");
    char *a = qtext(p, "SELECT attribution FROM metrics WHERE metric_id='lcp-1'");
    TAP_OK(a && strstr(a, "img#hero"), "store/attribution_json");
    free(a);
    TAP_OK(db_q1(p, "SELECT count(*) FROM resources") == 3 &&
               db_q1(p, "SELECT start_ms FROM resources WHERE idx=0") == 5,
           "store/resources_idempotent");
    char *dev = qtext(p, "SELECT device || '|' || ect || '|' || route || '|' || path || '|' || "
                         "browser || browser_major || '|' || label FROM views");
    TAP_OK(dev && strcmp(dev, "desktop|4g|/products/[id]|/products/42|Chrome131|run-a") == 0,
           "store/view_context_first_known: %s", dev ? dev : "null");
    free(dev);
    TAP_OK(db_q1(p, "SELECT count(*) FROM navigation WHERE response_start=120") == 1,
           "store/navigation_stored");
    /* Ratings come from the thresholds, whatever the client sent (or did not send). */
    char *rt = qtext(p, "SELECT group_concat(name || '=' || rating, ',') FROM "
                        "(SELECT name, rating FROM metrics ORDER BY name)");
    TAP_OK(rt && strcmp(rt, "CLS=good,LCP=needs-improvement") == 0, "store/rating_derived: %s",
           rt ? rt : "null");
    free(rt);

    /* Hostile strings are stored verbatim and never interpreted as SQL. */
    rc = ingest(s, "{\"v\":1,\"vid\":\"viewXSS001\",\"url\":\"/q'); DROP TABLE views;--<script>\","
                   "\"t0\":1764000000000,\"m\":[{\"n\":\"INP\",\"id\":\"i1\",\"v\":50,"
                   "\"a\":{\"target\":\"div[onclick=\\\"alert('x')\\\"]\"}}]}");
    TAP_OK(rc == 0 && store_sync(s) == 0, "store/hostile_accepted");
    char *u = qtext(p, "SELECT url FROM views WHERE id='viewXSS001'");
    TAP_OK(u && strcmp(u, "/q'); DROP TABLE views;--<script>") == 0, "store/hostile_verbatim");
    free(u);
    a = qtext(p, "SELECT json_extract(attribution,'$.target') FROM metrics WHERE metric_id='i1'");
    TAP_OK(a && strcmp(a, "div[onclick=\"alert('x')\"]") == 0, "store/hostile_selector_verbatim");
    free(a);
    TAP_OK(db_q1(p, "SELECT count(*) FROM views") == 2, "store/tables_intact");

    /* One payload repeating a metric id: the last entry wins, whether the entries share one
     * multi-row statement (the first five) or not (the sixth); an attribution sent once stays. */
    rc = ingest(s, "{\"v\":1,\"vid\":\"viewDUP001\",\"url\":\"/d\",\"t0\":1764000000000,\"m\":["
                   "{\"n\":\"LCP\",\"id\":\"dup-1\",\"v\":1,\"a\":{\"target\":\"img#a\"}},"
                   "{\"n\":\"LCP\",\"id\":\"dup-1\",\"v\":2},{\"n\":\"INP\",\"id\":\"dup-2\",\"v\":10},"
                   "{\"n\":\"LCP\",\"id\":\"dup-1\",\"v\":3},{\"n\":\"INP\",\"id\":\"dup-2\",\"v\":20},"
                   "{\"n\":\"LCP\",\"id\":\"dup-1\",\"v\":4}]}");
    TAP_OK(rc == 0 && store_sync(s) == 0, "store/dup_in_payload_accepted");
    char *dup = qtext(p, "SELECT group_concat(metric_id || '=' || value || '/' || "
                         "coalesce(json_extract(attribution,'$.target'),'-'), ',') FROM "
                         "(SELECT * FROM metrics WHERE view_seq = "
                         "(SELECT seq FROM views WHERE id = 'viewDUP001') ORDER BY metric_id)");
    TAP_OK(dup && strcmp(dup, "dup-1=4.0/img#a,dup-2=20.0/-") == 0,
           "store/dup_in_payload_last_wins: %s", dup ? dup : "null");
    free(dup);

    /* Rejections are counted by reason, persisted. */
    char reason[96];
    struct store_beacon_ctx ctx = {0};
    rc = store_ingest_beacon(s, "{", 1, &ctx, reason, sizeof reason);
    TAP_OK(rc == VP_ERR_INVALID && strcmp(reason, "malformed JSON") == 0, "store/reject_400");
    rc = store_ingest_beacon(s, "{", 1, &ctx, reason, sizeof reason);
    static char big[64 * 1024 + 1];
    memset(big, ' ', sizeof big);
    rc = store_ingest_beacon(s, big, sizeof big, &ctx, reason, sizeof reason);
    TAP_OK(rc == VP_ERR_LIMIT, "store/reject_413");
    store_count_rejection(s, "rate-limited");
    TAP_OK(store_sync(s) == 0, "store/sync2");
    TAP_OK(db_q1(p, "SELECT count FROM rejections WHERE reason='malformed JSON'") == 2 &&
               db_q1(p, "SELECT count FROM rejections WHERE reason='body too large'") == 1 &&
               db_q1(p, "SELECT count FROM rejections WHERE reason='rate-limited'") == 1,
           "store/rejections_counted");
    struct store_stats st;
    store_get_stats(s, &st);
    TAP_OK(st.beacons_accepted == 5 && st.beacons_rejected == 4 && st.write_errors == 0,
           "store/stats: accepted %llu rejected %llu", (unsigned long long)st.beacons_accepted,
           (unsigned long long)st.beacons_rejected);
    TAP_OK(db_q1(p, "SELECT value FROM meta WHERE key='beacons_accepted'") == 5,
           "store/accepted_persisted");
    store_free(s);
}

static void test_requests(void)
{
    char p[128], err[256];
    struct store *s = NULL;
    path_of(p, sizeof p, "req.db");
    if (open_keep(&s, p, NULL, err, sizeof err) != 0) {
        TAP_OK(0, "store/req_open: %s", err);
        return;
    }
    const int64_t T = 1764000000000LL * 1000; /* epoch us */
    struct store_request_rec sub = {0};
    /* a sub-resource completes before its (streamed) HTML page is recorded */
    sub.accept_us = T + 200000;
    sub.last_byte_us = T + 250000;
    sub.status = 200;
    sub.method = "GET";
    sub.url = "/_next/static/app.js";
    sub.referer = "http://localhost:8080/products/42";
    sub.content_type = "text/javascript";
    int rc = store_record_request(s, &sub);
    struct store_request_rec html = {0};
    html.accept_us = T;
    html.head_done_us = T + 100;
    html.first_byte_us = T + 50000;
    html.last_byte_us = T + 900000;
    html.status = 200;
    html.injected = true;
    html.method = "GET";
    html.url = "/products/42";
    html.host = "localhost:8080";
    html.protocol = "h1";
    html.view_id = "htmlview01";
    rc |= store_record_request(s, &html);
    /* a later sub-resource resolves at insert time */
    sub.accept_us = T + 1000000;
    sub.url = "/api/products/42";
    rc |= store_record_request(s, &sub);
    /* too late: > 60 s after the view */
    sub.accept_us = T + 61000000;
    sub.url = "/api/late";
    rc |= store_record_request(s, &sub);
    /* a soft-navigation view created by a beacon claims requests that follow it */
    sub.accept_us = T + 5000000;
    sub.url = "/api/cart";
    sub.referer = "http://localhost:8080/cart";
    rc |= store_record_request(s, &sub);
    rc |= ingest(s, "{\"v\":1,\"vid\":\"softview01\",\"url\":\"/cart\",\"t0\":1764000004000,"
                    "\"nav\":\"soft-navigation\",\"pvid\":\"htmlview01\"}");
    TAP_OK(rc == 0 && store_sync(s) == 0, "store/requests_recorded");
    TAP_OK(db_q1(p, "SELECT count(*) FROM requests WHERE view_id='htmlview01'") == 3,
           "store/referer_resolution");
    TAP_OK(db_q1(p, "SELECT count(*) FROM requests WHERE url='/api/late' AND view_id IS NULL") == 1,
           "store/referer_window");
    TAP_OK(db_q1(p, "SELECT count(*) FROM requests WHERE url='/api/cart' AND view_id='softview01'") ==
               1,
           "store/soft_view_claims");
    char *r = qtext(p, "SELECT route FROM requests WHERE url='/api/products/42'");
    TAP_OK(r && strcmp(r, "/api/products/[id]") == 0, "store/request_route");
    free(r);

    /* Retention: a 40-day-old view and its rows go, recent ones stay. */
    rc = ingest(s, "{\"v\":1,\"vid\":\"oldview001\",\"url\":\"/old\",\"t0\":1760000000000,"
                   "\"m\":[{\"n\":\"LCP\",\"id\":\"o\",\"v\":1}],\"res\":[{\"u\":\"/x\"}]}");
    TAP_OK(rc == 0 && store_sync(s) == 0, "store/old_view_ingested");
    TAP_OK(store_prune_at(s, 1760000000000LL + 40LL * 86400000, 30) == 0 && store_sync(s) == 0,
           "store/prune_run");
    TAP_OK(db_q1(p, "SELECT count(*) FROM views WHERE id='oldview001'") == 0 &&
               db_q1(p, "SELECT count(*) FROM metrics WHERE view_seq = "
                        "(SELECT seq FROM views WHERE id = 'oldview001')") == 0 &&
               db_q1(p, "SELECT count(*) FROM resources WHERE view_seq = "
                        "(SELECT seq FROM views WHERE id = 'oldview001')") == 0,
           "store/prune_cascades");
    TAP_OK(db_q1(p, "SELECT count(*) FROM views") == 1 && db_q1(p, "SELECT count(*) FROM requests") == 5,
           "store/prune_keeps_recent");
    store_free(s);
}

static void test_full_and_drain(void)
{
    char p[128], err[256];
    struct store *s = NULL;
    struct store_options opt;
    store_options_default(&opt);
    opt.queue_max = 3;
    opt.batch_ms = 60000; /* the writer would wait a minute: store_free must not */
    opt.batch_rows = 1000;
    path_of(p, sizeof p, "full.db");
    if (open_keep(&s, p, &opt, err, sizeof err) != 0) {
        TAP_OK(0, "store/full_open: %s", err);
        return;
    }
    int ok = 0, full = 0;
    char body[256];
    for (int i = 0; i < 50; i++) {
        snprintf(body, sizeof body,
                 "{\"v\":1,\"vid\":\"fullview%02d\",\"url\":\"/f\",\"t0\":1764000000000}", i);
        int rc = ingest(s, body);
        if (rc == 0)
            ok++;
        else if (rc == VP_ERR_FULL)
            full++;
    }
    TAP_OK(full > 0 && ok + full == 50, "store/queue_full: ok %d full %d", ok, full);
    struct store_stats st;
    store_get_stats(s, &st);
    TAP_OK(st.dropped_full == (uint64_t)full, "store/dropped_counted");
    store_free(s);
    TAP_OK(db_q1(p, "SELECT count(*) FROM views") == ok, "store/drain_on_free: %lld of %d",
           db_q1(p, "SELECT count(*) FROM views"), ok);
}

struct producer {
    struct store *s;
    int id, n, failed;
};

static void *produce(void *arg)
{
    struct producer *pr = arg;
    char body[512];
    for (int i = 0; i < pr->n; i++) {
        snprintf(body, sizeof body,
                 "{\"v\":1,\"vid\":\"th%02d_%06d\",\"url\":\"/t/%d\",\"t0\":1764000000000,"
                 "\"m\":[{\"n\":\"LCP\",\"id\":\"l%d\",\"v\":%d},{\"n\":\"CLS\",\"id\":\"c%d\",\"v\":0.1}]}",
                 pr->id, i, i, i, i % 5000, i);
        int rc;
        while ((rc = ingest(pr->s, body)) == VP_ERR_FULL)
            usleep(1000);
        if (rc)
            pr->failed++;
        struct store_request_rec rec = {0};
        rec.accept_us = 1764000000000000LL + i;
        rec.url = "/api/x";
        rec.method = "GET";
        while ((rc = store_record_request(pr->s, &rec)) == VP_ERR_FULL)
            usleep(1000);
        if (rc)
            pr->failed++;
    }
    return NULL;
}

static void test_concurrent(void)
{
    char p[128], err[256];
    struct store *s = NULL;
    struct store_options opt;
    store_options_default(&opt);
    opt.queue_max = 500;
    path_of(p, sizeof p, "conc.db");
    if (open_keep(&s, p, &opt, err, sizeof err) != 0) {
        TAP_OK(0, "store/conc_open: %s", err);
        return;
    }
    enum { T = 4, N = 1500 };
    pthread_t th[T];
    struct producer pr[T];
    for (int i = 0; i < T; i++) {
        pr[i] = (struct producer){s, i, N, 0};
        pthread_create(&th[i], NULL, produce, &pr[i]);
    }
    int failed = 0;
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        failed += pr[i].failed;
    }
    store_free(s);
    TAP_OK(failed == 0, "store/concurrent_no_failures");
    TAP_OK(db_q1(p, "SELECT count(*) FROM views") == T * N &&
               db_q1(p, "SELECT count(*) FROM metrics") == 2 * T * N &&
               db_q1(p, "SELECT count(*) FROM requests") == T * N,
           "store/concurrent_all_committed: %lld views", db_q1(p, "SELECT count(*) FROM views"));
    char *ic = qtext(p, "PRAGMA integrity_check");
    TAP_OK(ic && strcmp(ic, "ok") == 0, "store/concurrent_integrity");
    free(ic);
}

/* Every column kind of the compact form lands with its SQL type and value. */
static void test_typed_columns(void)
{
    char p[128], err[256];
    struct store *s = NULL;
    path_of(p, sizeof p, "typed.db");
    if (open_keep(&s, p, NULL, err, sizeof err) != 0) {
        TAP_OK(0, "store/typed_open: %s", err);
        return;
    }
    int rc = ingest(
        s, "{\"v\":1,\"vid\":\"typedview1\",\"pvid\":\"parentview1\",\"url\":\"/t/1?q=2\","
           "\"t0\":1764000000000.4,\"nav\":\"reload\",\"dev\":\"mobile\",\"ect\":\"3g\",\"mem\":4,"
           "\"m\":[{\"n\":\"CLS\",\"id\":\"c1\",\"v\":0.25,\"d\":0.05,\"r\":\"needs-improvement\","
           "\"a\":{\"target\":\"div.ad\",\"time\":1200.5}}],"
           "\"nt\":{\"u\":\"/t/1\",\"s\":0,\"rps\":120.5,\"ts\":3000.6,\"st\":200,\"p\":\"h2\","
           "\"sv\":[{\"n\":\"db\",\"d\":12.5,\"de\":\"q\"}],\"di\":300,\"ty\":\"reload\",\"rc\":2},"
           "\"ri\":7,\"res\":[{\"u\":\"/a.js\",\"i\":\"script\",\"s\":1.5,\"eb\":99,\"rb\":\"blocking\"},"
           "{\"u\":\"/b.css\",\"d\":2}]}");
    TAP_OK(rc == 0, "store/typed_ingest: %s", vp_strerror(rc));
    TAP_OK(store_sync(s) == 0, "store/typed_sync");
    store_free(s);
    struct {
        const char *sql, *want;
    } cases[] = {
        {"SELECT typeof(started_at)||started_at FROM views WHERE id='typedview1'",
         "integer1764000000000"},
        {"SELECT parent_id||navigation_type||device||ect||typeof(device_memory)||path||route "
         "FROM views WHERE id='typedview1'",
         "parentview1reloadmobile3greal/t/1/t/[id]"},
        {"SELECT name||metric_id||value||delta||rating FROM metrics WHERE view_seq = "
         "(SELECT seq FROM views WHERE id = 'typedview1')",
         "CLSc10.250.05needs-improvement"},
        {"SELECT json_extract(attribution,'$.time') FROM metrics WHERE view_seq = "
         "(SELECT seq FROM views WHERE id = 'typedview1')",
         "1200.5"},
        {"SELECT typeof(response_start)||response_start||typeof(transfer_size)||transfer_size||"
         "status||protocol||dom_interactive||type||typeof(redirect_count)||redirect_count "
         "FROM navigation WHERE view_id='typedview1'",
         "real120.5integer3001200h2300.0reloadinteger2"},
        {"SELECT json_extract(server_timing,'$[0].d')||json_extract(server_timing,'$[0].de') "
         "FROM navigation WHERE view_id='typedview1'",
         "12.5q"},
        {"SELECT group_concat(idx||url||coalesce(initiator,'-')||coalesce(start_ms,'-')||"
         "coalesce(encoded_size,'-')||coalesce(render_blocking,'-')||coalesce(duration_ms,'-'),"
         "' ') FROM (SELECT * FROM resources WHERE view_seq = "
         "(SELECT seq FROM views WHERE id = 'typedview1') ORDER BY idx)",
         "7/a.jsscript1.599blocking- 8/b.css----2.0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = qtext(p, cases[i].sql);
        TAP_OK(got && strcmp(got, cases[i].want) == 0, "store/typed_%zu: %s", i,
               got ? got : "(null)");
        free(got);
    }
}

/* Admission control by age: while the oldest queued item is older than max_lag_ms, beacons are
 * refused (503) and request records dropped, both counted, in the stats and in the rejections
 * table the health section reads; once committed, ingestion is accepted again. */
static void test_admission_age(void)
{
    char p[128], err[256];
    struct store *s = NULL;
    struct store_options opt;
    store_options_default(&opt);
    opt.batch_ms = 5000; /* the writer holds the first item for 5 s unless synced */
    opt.max_lag_ms = 100;
    path_of(p, sizeof p, "admission.db");
    if (open_keep(&s, p, &opt, err, sizeof err) != 0) {
        TAP_OK(0, "store/admission_open: %s", err);
        return;
    }
    const char *b1 = "{\"v\":1,\"vid\":\"admitview1\",\"url\":\"/a\",\"t0\":1764000000000}";
    const char *b2 = "{\"v\":1,\"vid\":\"admitview2\",\"url\":\"/a\",\"t0\":1764000000000}";
    const char *b3 = "{\"v\":1,\"vid\":\"admitview3\",\"url\":\"/a\",\"t0\":1764000000000}";
    TAP_OK(ingest(s, b1) == 0, "store/admission_first");
    TAP_OK(ingest(s, b2) == 0, "store/admission_young_queue_accepts");
    usleep(250 * 1000);
    TAP_OK(ingest(s, b3) == VP_ERR_FULL, "store/admission_old_queue_refuses");
    struct store_request_rec rec = {0};
    rec.accept_us = 1764000000000000;
    rec.method = "GET";
    rec.url = "/x.js";
    TAP_OK(store_record_request(s, &rec) == VP_ERR_FULL, "store/admission_request_dropped");
    struct store_stats st;
    store_get_stats(s, &st);
    TAP_OK(st.dropped_full == 2 && st.requests_dropped == 1 && st.queued == 2,
           "store/admission_counted: full %llu requests %llu queued %llu",
           (unsigned long long)st.dropped_full, (unsigned long long)st.requests_dropped,
           (unsigned long long)st.queued);
    TAP_OK(store_sync(s) == 0, "store/admission_sync");
    TAP_OK(ingest(s, b3) == 0 && store_record_request(s, &rec) == 0,
           "store/admission_accepts_after_commit");
    TAP_OK(store_sync(s) == 0, "store/admission_sync2");
    store_get_stats(s, &st);
    TAP_OK(st.lag_max_us >= 250000 && st.lag_max_us < 5000000,
           "store/admission_lag_measured: %llu us", (unsigned long long)st.lag_max_us);
    store_free(s);
    TAP_OK(db_q1(p, "SELECT count(*) FROM views") == 3 && db_q1(p, "SELECT count(*) FROM requests") == 1,
           "store/admission_stored");
    TAP_OK(db_q1(p, "SELECT count FROM rejections WHERE reason='store busy'") == 1 &&
               db_q1(p, "SELECT count FROM rejections WHERE reason='request record dropped'") == 1,
           "store/admission_in_rejections");
}

/* A version-2 database (four full indexes on requests) is migrated to version 3 (partial
 * indexes) on open, its rows kept; a record written afterwards is found by its view. */
static void test_migrate_v3(void)
{
    char p[128], err[256];
    struct store *s = NULL;
    path_of(p, sizeof p, "v2.db");
    TAP_OK(open_keep(&s, p, NULL, err, sizeof err) == 0, "store/v2_setup: %s", err);
    struct store_request_rec r = {.accept_us = 1764000000500000,
                                  .status = 200,
                                  .method = "GET",
                                  .url = "/a.js",
                                  .referer = "http://x/p"};
    TAP_OK(store_record_request(s, &r) == 0 && store_sync(s) == 0, "store/v2_setup_row");
    store_free(s);
    sqlite3 *h = NULL;
    int rc = sqlite3_open(p, &h);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(h,
                          "BEGIN; DROP INDEX requests_view; DROP INDEX requests_path_time; "
                          "DROP INDEX requests_referer_time;"
                          DB_TEST_TEXT_KEYED_CHILDREN
                          "CREATE INDEX requests_view ON requests(view_id);"
                          "CREATE INDEX requests_path_time ON requests(path, accept_us);"
                          "CREATE INDEX requests_referer_time ON requests(referer_path, accept_us);"
                          "PRAGMA user_version = 2; COMMIT;",
                          NULL, NULL, NULL);
    sqlite3_close(h);
    TAP_OK(rc == SQLITE_OK && db_q1(p, "PRAGMA user_version") == 2, "store/v2_made");
    TAP_OK(open_keep(&s, p, NULL, err, sizeof err) == 0, "store/v2_migrates: %s", err);
    struct store_request_rec inj = {.accept_us = 1764000000000000,
                                    .status = 200,
                                    .method = "GET",
                                    .url = "/p",
                                    .injected = true,
                                    .view_id = "vid-after-migration"};
    TAP_OK(store_record_request(s, &inj) == 0 && store_sync(s) == 0, "store/v3_record");
    store_free(s);
    TAP_OK(db_q1(p, "PRAGMA user_version") == STORE_SCHEMA_VERSION, "store/v3_version");
    TAP_OK(db_q1(p, "SELECT count(*) FROM sqlite_master WHERE type='index' AND name IN "
                 "('requests_view','requests_path_time','requests_referer_time') AND "
                 "sql LIKE '%WHERE%'") == 3,
           "store/v3_partial_indexes");
    TAP_OK(db_q1(p, "SELECT count(*) FROM requests") == 2, "store/v3_rows_kept");
    /* The injected page claimed the earlier sub-resource through the partial referer index. */
    TAP_OK(db_q1(p, "SELECT count(*) FROM requests WHERE view_id = 'vid-after-migration'") == 2,
           "store/v3_claim_after_migration");
    char *ic = qtext(p, "PRAGMA integrity_check");
    TAP_OK(ic && strcmp(ic, "ok") == 0, "store/v3_integrity");
    free(ic);
}

/* Reads the whole of path into a NUL-terminated heap string (NULL on error). */
static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0, n;
    char chunk[4096];
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        memcpy(buf + len, chunk, n);
        len += n;
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

/* The answers of the readers that filter requests by time (API latency, findings, budget
 * samples), over every row and from two start times, as one string (NULL on an error). */
static char *request_answers(const char *p)
{
    struct store_reader *r = NULL;
    char err[256];
    if (store_reader_open(&r, p, err, sizeof err) != 0)
        return NULL;
    static const int64_t since[] = {0, 1795602349187, 1795602420000};
    json_t *all = json_array();
    bool ok = all != NULL;
    for (size_t i = 0; ok && i < sizeof since / sizeof since[0]; i++) {
        struct query_filter f = {.since_ms = since[i]};
        json_t *a = NULL, *b = NULL, *c = NULL;
        ok = query_api_latency(r, &f, "/", &a) == 0 && query_findings(r, &f, "/", &b) == 0 &&
             query_samples(r, &f, "/", &c) == 0;
        if (a)
            json_array_append_new(all, a);
        if (b)
            json_array_append_new(all, b);
        if (c)
            json_array_append_new(all, c);
    }
    store_reader_free(r);
    char *out = ok ? json_dumps(all, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(all);
    return out;
}

/* Rows whose id is below a mark's first id although they were accepted at or after its minute:
 * the marks' rule (store/schema.c, v5) says there are none. */
static long long marks_broken(const char *p)
{
    return db_q1(p, "SELECT count(*) FROM request_marks m JOIN requests r ON "
                    "r.accept_us >= m.minute * 60000000 AND r.id < m.first_id");
}

/* The readers' time filter (REQ_FILTER's id bound) finds, for each of several start times, the
 * same rows as a scan of every row. */
static bool time_filter_exact(const char *p)
{
    static const long long since_ms[] = {0,
                                         1795602349186,
                                         1795602349187,
                                         1795602360000,
                                         1795602400000,
                                         1795602460001,
                                         1795603000000,
                                         1795609999999};
    for (size_t i = 0; i < sizeof since_ms / sizeof since_ms[0]; i++) {
        char a[512], b[256];
        int w1 = snprintf(a, sizeof a,
                          "SELECT count(*) FROM requests q WHERE q.accept_us >= %lld * 1000 AND "
                          "q.id >= coalesce((SELECT first_id FROM request_marks WHERE minute <= "
                          "%lld / 60000 ORDER BY minute DESC LIMIT 1), 0)",
                          since_ms[i], since_ms[i]);
        int w2 =
            snprintf(b, sizeof b, "SELECT count(*) FROM requests WHERE accept_us >= %lld * 1000",
                     since_ms[i]);
        if (w1 < 0 || (size_t)w1 >= sizeof a || w2 < 0 || (size_t)w2 >= sizeof b ||
            db_q1(p, a) != db_q1(p, b))
            return false;
    }
    return true;
}

/* A schema-4 database written by a schema-4 build (tests/unit/fixtures/store_v4.sql: an injected
 * page, two claimed sub-resources, beacons), plus request rows as a v4 writer could leave them
 * (committed out of accept order: a request that took minutes, one from before the others, one
 * with no accept time), is upgraded in place to schema 5: requests_time gone, marks computed,
 * every row and value kept, and the readers' time filter exact. The writer then goes on from
 * there: ids above every old one, marks that keep the rule (a record dated ahead of the clock
 * included), also once retention has deleted the newest rows. */
static void test_migrate_v4_fixture(void)
{
    char p[128], err[256];
    struct store *s = NULL;
    path_of(p, sizeof p, "fixture_v4.db");
    char *sql = read_text(SRCDIR "/tests/unit/fixtures/store_v4.sql");
    sqlite3 *h = NULL;
    int rc = sql ? sqlite3_open(p, &h) : SQLITE_ERROR;
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(h, sql, NULL, NULL, NULL);
    /* Fixture rows are at 1795602349.19 s (minute 29926705); these spread over minutes. */
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(
            h,
            "INSERT INTO requests(id, accept_us, injected, reused, url, path) VALUES"
            "(10, 1795602360000000, 0, 0, '/a', '/a'),"       /* minute +0 */
            "(11, 1795602200000000, 0, 0, '/slow', '/slow')," /* a minute earlier, late */
            "(12, 1795602420000000, 0, 0, '/b', '/b'),"       /* minute +1 */
            "(13, NULL, 0, 0, '/c', '/c'),"
            "(14, 1795602480000000, 0, 0, '/d', '/d'),"  /* minute +2 */
            "(15, 1795602400000000, 0, 0, '/e', '/e');", /* minute +1, after minute +2 */
            NULL, NULL, NULL);
    sqlite3_close(h);
    free(sql);
    TAP_OK(rc == SQLITE_OK && db_q1(p, "PRAGMA user_version") == 4 &&
               db_q1(p, "SELECT count(*) FROM sqlite_master WHERE name='requests_time'") == 1,
           "store/fixture_v4_loaded");
    static const char sum_sql[] =
        "SELECT group_concat(id || coalesce(view_id, '') || coalesce(accept_us, '') || "
        "coalesce(last_byte_us, '') || coalesce(url, '') || coalesce(referer_path, '') || "
        "coalesce(status, ''), '|') FROM (SELECT * FROM requests ORDER BY id)";
    char *sum0 = qtext(p, sum_sql);
    char *answers4 = request_answers(p); /* read as v4, through requests_time */
    long long views0 = db_q1(p, "SELECT count(*) FROM views");
    long long metrics0 = db_q1(p, "SELECT count(*) FROM metrics");
    TAP_OK(db_q1(p, "SELECT count(*) FROM requests") == 9 && views0 == 3 && metrics0 == 11,
           "store/fixture_v4_rows");

    rc = open_keep(&s, p, NULL, err, sizeof err);
    TAP_OK(rc == 0, "store/fixture_v4_migrates: %s", err);
    if (rc != 0) {
        free(sum0);
        free(answers4);
        return;
    }
    store_free(s);
    s = NULL;
    char *sum1 = qtext(p, sum_sql);
    TAP_OK(db_q1(p, "PRAGMA user_version") == STORE_SCHEMA_VERSION &&
               db_q1(p, "SELECT count(*) FROM sqlite_master WHERE name='requests_time'") == 0 &&
               db_q1(p, "SELECT count(*) FROM request_marks") == 5,
           "store/fixture_v5_shape");
    TAP_OK(sum0 && sum1 && strcmp(sum0, sum1) == 0 &&
               db_q1(p, "SELECT count(*) FROM views") == views0 &&
               db_q1(p, "SELECT count(*) FROM metrics") == metrics0,
           "store/fixture_v5_rows_kept");
    free(sum0);
    free(sum1);
    /* A minute's mark is the smallest id accepted in it or later: id 15, accepted before id 12
     * and 14 but committed after them, leaves minute +1 at id 10. */
    TAP_OK(db_q1(p, "SELECT first_id FROM request_marks WHERE minute = 29926703") == 1 &&
               db_q1(p, "SELECT first_id FROM request_marks WHERE minute = 29926705") == 1 &&
               db_q1(p, "SELECT first_id FROM request_marks WHERE minute = 29926706") == 10 &&
               db_q1(p, "SELECT first_id FROM request_marks WHERE minute = 29926707") == 12 &&
               db_q1(p, "SELECT first_id FROM request_marks WHERE minute = 29926708") == 14,
           "store/fixture_v5_marks");
    TAP_OK(marks_broken(p) == 0 && time_filter_exact(p), "store/fixture_v5_time_filter");
    char *answers5 = request_answers(p);
    TAP_OK(answers4 && answers5 && strcmp(answers4, answers5) == 0 &&
               strstr(answers5, "/products/[id]") != NULL,
           "store/fixture_v5_answers_kept: %s", answers5 ? answers5 : "(error)");
    free(answers4);
    free(answers5);

    /* The writer on the migrated file: new rows now, one dated ahead of the clock, one old. */
    rc = open_keep(&s, p, NULL, err, sizeof err);
    int64_t now_us = vp_now_ms() * 1000;
    struct store_request_rec r = {.status = 200,
                                  .method = "GET",
                                  .url = "/now",
                                  .accept_us = now_us - 1000,
                                  .last_byte_us = now_us};
    rc = rc ? rc : store_record_request(s, &r);
    r.url = "/ahead";
    r.accept_us = now_us + 600000000LL; /* ten minutes ahead */
    rc = rc ? rc : store_record_request(s, &r);
    rc = rc ? rc : store_sync(s);
    r.url = "/old";
    r.accept_us = 1795602300000000LL;
    rc = rc ? rc : store_record_request(s, &r);
    rc = rc ? rc : store_sync(s);
    store_free(s);
    s = NULL;
    TAP_OK(rc == 0 &&
               db_q1(p, "SELECT min(id) FROM requests WHERE url IN ('/now', '/ahead', "
                        "'/old')") > 15 &&
               db_q1(p, "SELECT count(*) FROM requests") == 12,
           "store/v5_ids_above_old");
    TAP_OK(marks_broken(p) == 0, "store/v5_marks_kept_with_ahead_and_old");

    /* Retention deletes every row, the newest included; the next id is still new. */
    rc = open_keep(&s, p, NULL, err, sizeof err);
    rc = rc ? rc : store_prune_at(s, vp_now_ms() + 86400000LL, 0);
    rc = rc ? rc : store_sync(s);
    store_free(s);
    s = NULL;
    /* (A row without an accept time is never pruned, as before schema 5.) */
    TAP_OK(rc == 0 && db_q1(p, "SELECT count(*) FROM requests WHERE accept_us IS NOT NULL") == 0,
           "store/v5_prune_all");
    rc = open_keep(&s, p, NULL, err, sizeof err);
    r.url = "/after-prune";
    r.accept_us = vp_now_ms() * 1000;
    rc = rc ? rc : store_record_request(s, &r);
    rc = rc ? rc : store_sync(s);
    store_free(s);
    s = NULL;
    TAP_OK(rc == 0 &&
               db_q1(p, "SELECT id FROM requests WHERE url = '/after-prune'") >=
                   db_q1(p, "SELECT max(first_id) FROM request_marks") &&
               db_q1(p, "SELECT count(*) FROM request_marks") >= 1 && marks_broken(p) == 0,
           "store/v5_marks_hold_after_prune");

    /* Hand-edited files: an id at the top of the range is refused with a reason (the next id
     * would overflow), an absurd mark is survived. */
    sqlite3 *h2 = NULL;
    rc = sqlite3_open(p, &h2);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(h2,
                          "INSERT INTO requests(id, accept_us, injected, reused) "
                          "VALUES(9223372036854775807, 1, 0, 0)",
                          NULL, NULL, NULL);
    sqlite3_close(h2);
    err[0] = '\0';
    int orc = rc == SQLITE_OK ? open_keep(&s, p, NULL, err, sizeof err) : 0;
    store_free(s);
    s = NULL;
    TAP_OK(rc == SQLITE_OK && orc == VP_ERR_DB && strstr(err, "request ids exhausted") != NULL,
           "store/v5_hand_edited_id_refused: %s", err);
    h2 = NULL;
    rc = sqlite3_open(p, &h2);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(h2,
                          "DELETE FROM requests WHERE id = 9223372036854775807; "
                          "INSERT INTO request_marks(minute, first_id) "
                          "VALUES(-9223372036854775807, -9223372036854775807)",
                          NULL, NULL, NULL);
    sqlite3_close(h2);
    orc = rc == SQLITE_OK ? open_keep(&s, p, NULL, err, sizeof err) : -1;
    r.url = "/after-edit";
    r.accept_us = vp_now_ms() * 1000;
    if (orc == 0)
        orc = store_record_request(s, &r);
    if (orc == 0)
        orc = store_sync(s);
    store_free(s);
    s = NULL;
    TAP_OK(rc == SQLITE_OK && orc == 0 &&
               db_q1(p, "SELECT count(*) FROM requests WHERE url = '/after-edit'") == 1,
           "store/v5_hand_edited_mark_survived: %s", err);
}

/* The writer remembers the browser of the last User-Agent: each view still gets its own
 * beacon's browser when the agents alternate, repeat, or are missing. */
static void test_browser_per_view(void)
{
    char p[128], err[256];
    struct store *s = NULL;
    path_of(p, sizeof p, "browsers.db");
    int rc = open_keep(&s, p, NULL, err, sizeof err);
    static const char *const uas[] = {
        "Mozilla/5.0 Chrome/131.0.0.0 Safari/537.36", "Mozilla/5.0 Gecko/20100101 Firefox/120.0",
        "Mozilla/5.0 Chrome/131.0.0.0 Safari/537.36", "Mozilla/5.0 Chrome/131.0.0.0 Safari/537.36",
        NULL,                                         "Mozilla/5.0 Chrome/99.0.0.0 Safari/537.36"};
    for (int i = 0; rc == 0 && i < 6; i++) {
        struct store_beacon_ctx ctx = {"127.0.0.1", uas[i], 1764000001000, NULL, 1.0};
        char body[160], reason[96];
        int w = snprintf(body, sizeof body,
                         "{\"v\":1,\"vid\":\"browser%03d\",\"url\":\"/b\",\"t0\":1764000000000,"
                         "\"m\":[{\"n\":\"LCP\",\"id\":\"l\",\"v\":1}]}",
                         i);
        rc = w > 0 && (size_t)w < sizeof body
                 ? store_ingest_beacon(s, body, strlen(body), &ctx, reason, sizeof reason)
                 : -1;
    }
    rc = rc ? rc : store_sync(s);
    store_free(s);
    char *got = rc == 0 ? qtext(p, "SELECT group_concat(coalesce(browser, '-') || "
                                   "coalesce(browser_major, ''), ',') FROM "
                                   "(SELECT * FROM views ORDER BY id)")
                        : NULL;
    TAP_OK(got && strcmp(got, "Chrome131,Firefox120,Chrome131,Chrome131,other,Chrome99") == 0,
           "store/browser_per_view: %s", got ? got : "(error)");
    free(got);
}

/* Retention with the writer's foreign keys off: a view's metrics, resources and navigation go
 * with it, also over several prune chunks (PRUNE_CHUNK views each) and with views that share a
 * start time, and the rows of the views kept stay; no row is left without its view. */
static void test_prune_chunks(void)
{
    char p[128], err[256];
    struct store *s = NULL;
    path_of(p, sizeof p, "prune_chunks.db");
    int rc = open_keep(&s, p, NULL, err, sizeof err);
    TAP_OK(rc == 0, "store/prune_chunks_open: %s", err);
    if (rc)
        return;
    const int old = 1100;
    for (int i = 0; i < old + 3 && rc == 0; i++) {
        char body[768];
        /* old views in pairs with one start time: 1 and 2, ..., 499 and 500 (across the first
         * chunk's end), ... */
        long long t0 = i < old ? 1760000000000LL + (i + 1) / 2 : vp_now_ms() - 1000 * i;
        int w = snprintf(body, sizeof body,
                         "{\"v\":1,\"vid\":\"prune%05d\",\"url\":\"/p/%d\",\"t0\":%lld,"
                         "\"m\":[{\"n\":\"LCP\",\"id\":\"l%d\",\"v\":%d},"
                         "{\"n\":\"CLS\",\"id\":\"c%d\",\"v\":0.1}],"
                         "\"nt\":{\"u\":\"/p/%d\",\"d\":10,\"ty\":\"navigate\"},"
                         "\"res\":[{\"u\":\"/a.js\"},{\"u\":\"/b.css\"}]}",
                         i, i, t0, i, 100 + i, i, i);
        if (w < 0 || (size_t)w >= sizeof body)
            rc = -1;
        while (rc == 0 && (rc = ingest(s, body)) == VP_ERR_FULL) {
            rc = 0;
            usleep(1000);
        }
    }
    rc = rc ? rc : store_sync(s);
    TAP_OK(rc == 0 && db_q1(p, "SELECT count(*) FROM views") == old + 3 &&
               db_q1(p, "SELECT count(*) FROM metrics") == 2 * (old + 3) &&
               db_q1(p, "SELECT count(*) FROM resources") == 2 * (old + 3) &&
               db_q1(p, "SELECT count(*) FROM navigation") == old + 3,
           "store/prune_chunks_ingested (%lld navigation rows)",
           db_q1(p, "SELECT count(*) FROM navigation"));
    /* Up to a cutoff of 540 ms after the first: views 0 .. 1078 go (1,079, three chunks). */
    rc = store_prune_at(s, 1760000000000LL + 30LL * 86400000 + 540, 30);
    rc = rc ? rc : store_sync(s);
    long long left = db_q1(p, "SELECT count(*) FROM views");
    TAP_OK(rc == 0 && left == 21 + 3 && db_q1(p, "SELECT count(*) FROM metrics") == 2 * left &&
               db_q1(p, "SELECT count(*) FROM resources") == 2 * left &&
               db_q1(p, "SELECT count(*) FROM navigation") == left,
           "store/prune_chunks_children_go_with_views (%lld views left)", left);
    rc = store_prune_at(s, 1760000000000LL + 40LL * 86400000, 30);
    rc = rc ? rc : store_sync(s);
    store_free(s);
    TAP_OK(rc == 0 && db_q1(p, "SELECT count(*) FROM views") == 3 &&
               db_q1(p, "SELECT count(*) FROM metrics") == 6 &&
               db_q1(p, "SELECT count(*) FROM resources") == 6 &&
               db_q1(p, "SELECT count(*) FROM navigation") == 3 &&
               db_q1(p, "SELECT count(*) FROM views WHERE id LIKE 'prune011%'") == 3,
           "store/prune_chunks_recent_kept");
    TAP_OK(db_q1(p, "SELECT count(*) FROM metrics WHERE view_seq NOT IN (SELECT seq FROM views)") ==
                   0 &&
               db_q1(p, "SELECT count(*) FROM resources WHERE view_seq NOT IN "
                        "(SELECT seq FROM views)") == 0 &&
               db_q1(p, "SELECT count(*) FROM navigation WHERE view_id NOT IN "
                        "(SELECT id FROM views)") == 0 &&
               db_q1(p, "SELECT count(*) FROM pragma_foreign_key_check") == 0,
           "store/prune_chunks_no_orphans");
}

/* Every reader's answer over all of a database's data, as one JSON text: the summary, the view
 * list, each view (metrics, attribution, waterfall) and its HAR, the targets, findings, samples
 * and labels. NULL on an error. */
static char *view_answers(const char *p)
{
    struct store_reader *r = NULL;
    char err[256];
    if (store_reader_open(&r, p, err, sizeof err) != 0)
        return NULL;
    struct query_filter f = {0};
    json_t *all = json_array(), *views = NULL;
    bool ok = all != NULL && query_views(r, &f, &views) == 0;
    if (ok)
        json_array_append_new(all, views);
    json_t *o = NULL;
    ok = ok && query_summary(r, &f, &o) == 0 && json_array_append_new(all, o) == 0;
    ok = ok && query_targets(r, &f, 10, &o) == 0 && json_array_append_new(all, o) == 0;
    ok = ok && query_findings(r, &f, "/", &o) == 0 && json_array_append_new(all, o) == 0;
    ok = ok && query_samples(r, &f, "/", &o) == 0 && json_array_append_new(all, o) == 0;
    ok = ok && query_labels(r, &o) == 0 && json_array_append_new(all, o) == 0;
    size_t i;
    json_t *v;
    json_array_foreach(ok ? json_object_get(views, "views") : NULL, i, v)
    {
        const char *id = json_string_value(json_object_get(v, "id"));
        ok = ok && id && query_view(r, id, &o) == 0 && json_array_append_new(all, o) == 0;
        ok = ok && query_view_har(r, id, &o) == 0 && json_array_append_new(all, o) == 0;
    }
    store_reader_free(r);
    char *out = ok ? json_dumps(all, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(all);
    return out;
}

/* A schema-5 database written by a schema-5 build (tests/unit/fixtures/store_v5.sql, made by
 * tests/unit/fixtures/make_store_v3.py with VP_SCHEMA=5: an injected page, two claimed
 * sub-resources, beacons for three views, a soft navigation) is upgraded in place to schema 6:
 * views get their seq key (the rowids they had), metrics and resources are keyed by it, every
 * row of every
 * table is kept with its values, and every reader answers exactly as it did on the schema-5 file
 * (read through the older-schema view of store_reader_open). The writer then goes on: a re-sent
 * metric id on an old view (the last value wins), a new view keyed after the old ones, and the
 * prune removes every view's metrics. */
static void test_migrate_v5_fixture(void)
{
    char p[128], err[256];
    struct store *s = NULL;
    path_of(p, sizeof p, "fixture_v5.db");
    char *sql = read_text(SRCDIR "/tests/unit/fixtures/store_v5.sql");
    sqlite3 *h = NULL;
    int rc = sql ? sqlite3_open(p, &h) : SQLITE_ERROR;
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(h, sql, NULL, NULL, NULL);
    sqlite3_close(h);
    free(sql);
    TAP_OK(rc == SQLITE_OK && db_q1(p, "PRAGMA user_version") == 5 &&
               db_q1(p, "SELECT count(*) FROM pragma_table_info('metrics') WHERE "
                        "name = 'view_id'") == 1,
           "store/fixture_v5_loaded");
    static const char *const counts[7] = {
        "SELECT count(*) FROM views",      "SELECT count(*) FROM metrics",
        "SELECT count(*) FROM resources",  "SELECT count(*) FROM navigation",
        "SELECT count(*) FROM requests",   "SELECT count(*) FROM request_marks",
        "SELECT count(*) FROM rejections"};
    long long before[7];
    for (int i = 0; i < 7; i++)
        before[i] = db_q1(p, counts[i]);
    TAP_OK(before[0] == 3 && before[1] == 11 && before[2] == 2 && before[3] == 1 &&
               before[4] == 3,
           "store/fixture_v5_fixture_rows");
    char *views0 = qtext(p, "SELECT group_concat(rowid || id || started_at || received_at || "
                            "coalesce(url, '') || coalesce(route, '') || coalesce(parent_id, '') "
                            "|| coalesce(navigation_type, '') || coalesce(device, '') || "
                            "coalesce(device_memory, '') || coalesce(label, ''), '|') FROM "
                            "(SELECT rowid, * FROM views ORDER BY rowid)");
    char *sum0 = qtext(p, "SELECT group_concat(view_id || name || metric_id || value || "
                          "coalesce(delta, '') || coalesce(rating, '') || "
                          "coalesce(attribution, '') || updated_at, '|') FROM "
                          "(SELECT * FROM metrics ORDER BY view_id, metric_id)");
    static const char res_sum5[] =
        "SELECT group_concat(view_id || idx || coalesce(url, '') || coalesce(start_ms, '') || "
        "coalesce(transfer_size, '') || coalesce(protocol, '') || coalesce(status, ''), '|') "
        "FROM (SELECT * FROM resources ORDER BY view_id, idx)";
    char *res0 = qtext(p, res_sum5);
    char *answers5 = view_answers(p);
    TAP_OK(answers5 && strstr(answers5, "fixture-view-b") && strstr(answers5, "\"LCP\""),
           "store/fixture_v5_read_as_v5");

    rc = open_keep(&s, p, NULL, err, sizeof err);
    TAP_OK(rc == 0, "store/fixture_v5_migrates_to_v6: %s", err);
    store_free(s);
    s = NULL;
    TAP_OK(rc == 0 && db_q1(p, "PRAGMA user_version") == STORE_SCHEMA_VERSION &&
               db_q1(p, "SELECT count(*) FROM pragma_table_info('views') WHERE name = 'seq' AND "
                        "pk = 1") == 1 &&
               db_q1(p, "SELECT count(*) FROM pragma_index_list('metrics') WHERE origin = 'pk'") ==
                   1 &&
               db_q1(p, "SELECT count(*) FROM sqlite_master WHERE name='metrics' AND "
                        "sql LIKE '%view_seq%WITHOUT ROWID%'") == 1 &&
               db_q1(p, "SELECT count(*) FROM sqlite_master WHERE name='resources' AND "
                        "sql LIKE '%view_seq%WITHOUT ROWID%'") == 1 &&
               db_q1(p, "SELECT count(*) FROM sqlite_master WHERE name LIKE '%_v6'") == 0 &&
               db_q1(p, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name IN "
                        "('views_route_time', 'views_time', 'views_path_time')") == 3,
           "store/fixture_v6_shape");
    bool kept = true;
    for (int i = 0; i < 7; i++)
        kept = kept && db_q1(p, counts[i]) == before[i];
    TAP_OK(kept, "store/fixture_v6_rows_kept");
    char *views1 = qtext(p, "SELECT group_concat(rowid || id || started_at || received_at || "
                            "coalesce(url, '') || coalesce(route, '') || coalesce(parent_id, '') "
                            "|| coalesce(navigation_type, '') || coalesce(device, '') || "
                            "coalesce(device_memory, '') || coalesce(label, ''), '|') FROM "
                            "(SELECT seq AS rowid, * FROM views ORDER BY seq)");
    char *sum1 = qtext(p, "SELECT group_concat(view_id || name || metric_id || value || "
                          "coalesce(delta, '') || coalesce(rating, '') || "
                          "coalesce(attribution, '') || updated_at, '|') FROM "
                          "(SELECT v.id AS view_id, m.* FROM metrics m JOIN views v ON "
                          "v.seq = m.view_seq ORDER BY view_id, metric_id)");
    TAP_OK(views0 && views1 && strcmp(views0, views1) == 0, "store/fixture_v6_views_kept");
    TAP_OK(sum0 && sum1 && strcmp(sum0, sum1) == 0, "store/fixture_v6_metric_values_kept");
    char *res1 = qtext(p, "SELECT group_concat(view_id || idx || coalesce(url, '') || "
                          "coalesce(start_ms, '') || coalesce(transfer_size, '') || "
                          "coalesce(protocol, '') || coalesce(status, ''), '|') FROM "
                          "(SELECT v.id AS view_id, r.* FROM resources r JOIN views v ON "
                          "v.seq = r.view_seq ORDER BY view_id, idx)");
    TAP_OK(res0 && res1 && strcmp(res0, res1) == 0 && strstr(res0, "/static/app.js"),
           "store/fixture_v6_resource_values_kept");
    free(res0);
    free(res1);
    char *answers6 = view_answers(p);
    TAP_OK(answers5 && answers6 && strcmp(answers5, answers6) == 0,
           "store/fixture_v6_answers_kept: %s", answers6 ? answers6 : "(error)");
    free(views0);
    free(views1);
    free(sum0);
    free(sum1);
    free(answers5);
    free(answers6);

    /* The writer on the migrated file. */
    long long top = db_q1(p, "SELECT max(seq) FROM views");
    rc = open_keep(&s, p, NULL, err, sizeof err);
    if (rc == 0)
        rc = ingest(s, "{\"v\":1,\"vid\":\"fixture-view-b\",\"url\":\"/checkout\","
                       "\"t0\":1795611420359,\"m\":[{\"n\":\"LCP\",\"id\":\"b-LCP\",\"v\":1234},"
                       "{\"n\":\"CLS\",\"id\":\"b-CLS2\",\"v\":0.5}]}");
    if (rc == 0)
        rc = ingest(s, "{\"v\":1,\"vid\":\"after-v6\",\"url\":\"/x\",\"t0\":1795611430000,"
                       "\"m\":[{\"n\":\"LCP\",\"id\":\"a6\",\"v\":10},{\"n\":\"LCP\",\"id\":\"a6\","
                       "\"v\":20}]}");
    if (rc == 0)
        rc = store_sync(s);
    store_free(s);
    s = NULL;
    TAP_OK(rc == 0 &&
               db_q1(p, "SELECT value FROM metrics WHERE metric_id = 'b-LCP' AND view_seq = "
                        "(SELECT seq FROM views WHERE id = 'fixture-view-b')") == 1234 &&
               db_q1(p, "SELECT count(*) FROM metrics") == before[1] + 2 &&
               db_q1(p, "SELECT value FROM metrics WHERE metric_id = 'a6'") == 20 &&
               db_q1(p, "SELECT seq FROM views WHERE id = 'after-v6'") > top &&
               db_q1(p, "SELECT count(*) FROM metrics WHERE view_seq = "
                        "(SELECT seq FROM views WHERE id = 'after-v6')") == 1,
           "store/fixture_v6_writer_goes_on");
    char *ic = qtext(p, "PRAGMA integrity_check");
    TAP_OK(ic && strcmp(ic, "ok") == 0 &&
               db_q1(p, "SELECT count(*) FROM pragma_foreign_key_check") == 0,
           "store/fixture_v6_integrity");
    free(ic);
    rc = open_keep(&s, p, NULL, err, sizeof err);
    if (rc == 0)
        rc = store_prune_at(s, vp_now_ms() + 86400000LL, 0);
    if (rc == 0)
        rc = store_sync(s);
    store_free(s);
    s = NULL;
    TAP_OK(rc == 0 && db_q1(p, "SELECT count(*) FROM views") == 0 &&
               db_q1(p, "SELECT count(*) FROM metrics") == 0 &&
               db_q1(p, "SELECT count(*) FROM resources") == 0 &&
               db_q1(p, "SELECT count(*) FROM navigation") == 0,
           "store/fixture_v6_prune_removes_children");
}

/* A schema-3 database written by a schema-3 build (tests/unit/fixtures/store_v3.sql, made by
 * make_store_v3.py: an injected page with two claimed sub-resources, its beacons with a re-sent
 * metric id, navigation timing and resources, a soft navigation, a rejection) is upgraded in
 * place to schema 4: metrics clustered on its key (WITHOUT ROWID), metrics_name_view gone, every
 * row and value kept. Afterwards the migrated table keeps the rules: the last value per metric
 * id wins, a new view's metrics land, pruning cascades from views; integrity and foreign keys
 * check. A database one version newer than this build is refused and left untouched. */
static void test_migrate_v3_fixture(void)
{
    char p[128], err[256];
    struct store *s = NULL;
    path_of(p, sizeof p, "fixture_v3.db");
    char *sql = read_text(SRCDIR "/tests/unit/fixtures/store_v3.sql");
    sqlite3 *h = NULL;
    int rc = sql ? sqlite3_open(p, &h) : SQLITE_ERROR;
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(h, sql, NULL, NULL, NULL);
    sqlite3_close(h);
    free(sql);
    TAP_OK(rc == SQLITE_OK && db_q1(p, "PRAGMA user_version") == 3, "store/fixture_v3_loaded");
    TAP_OK(db_q1(p, "SELECT count(*) FROM sqlite_master WHERE name='metrics_name_view'") == 1 &&
               db_q1(p, "SELECT count(*) FROM sqlite_master WHERE name='metrics' AND "
                     "sql LIKE '%WITHOUT ROWID%'") == 0,
           "store/fixture_v3_shape");
    long long before[6];
    static const char *const counts[6] = {
        "SELECT count(*) FROM views",     "SELECT count(*) FROM metrics",
        "SELECT count(*) FROM resources", "SELECT count(*) FROM navigation",
        "SELECT count(*) FROM requests",  "SELECT count FROM rejections"};
    for (int i = 0; i < 6; i++)
        before[i] = db_q1(p, counts[i]);
    TAP_OK(before[0] == 3 && before[1] == 11 && before[2] == 2 && before[3] == 1 &&
               before[4] == 3 && before[5] == 1,
           "store/fixture_v3_rows");
    char *vid = qtext(p, "SELECT view_id FROM requests WHERE injected = 1");
    char *sum0 = qtext(p, "SELECT group_concat(view_id || name || metric_id || value || "
                          "coalesce(delta, '') || coalesce(rating, '') || "
                          "coalesce(attribution, '') || updated_at, '|') FROM "
                          "(SELECT * FROM metrics ORDER BY view_id, metric_id)");

    rc = open_keep(&s, p, NULL, err, sizeof err);
    TAP_OK(rc == 0, "store/fixture_v3_migrates: %s", err);
    if (rc != 0) {
        free(vid);
        free(sum0);
        return;
    }
    store_free(s);
    s = NULL;
    TAP_OK(db_q1(p, "PRAGMA user_version") == STORE_SCHEMA_VERSION, "store/fixture_v4_version");
    TAP_OK(db_q1(p, "SELECT count(*) FROM sqlite_master WHERE name='metrics' AND "
                 "sql LIKE '%WITHOUT ROWID%'") == 1 &&
               db_q1(p, "SELECT count(*) FROM sqlite_master WHERE name='metrics_name_view'") == 0 &&
               db_q1(p, "SELECT count(*) FROM sqlite_master WHERE name LIKE 'metrics_v%'") == 0,
           "store/fixture_v4_metrics_clustered");
    bool kept = true;
    for (int i = 0; i < 6; i++)
        kept = kept && db_q1(p, counts[i]) == before[i];
    TAP_OK(kept, "store/fixture_v4_rows_kept");
    char *sum1 = qtext(p, "SELECT group_concat(view_id || name || metric_id || value || "
                          "coalesce(delta, '') || coalesce(rating, '') || "
                          "coalesce(attribution, '') || updated_at, '|') FROM "
                          "(SELECT v.id AS view_id, m.* FROM metrics m JOIN views v ON "
                          "v.seq = m.view_seq ORDER BY view_id, metric_id)");
    TAP_OK(sum0 && sum1 && strcmp(sum0, sum1) == 0, "store/fixture_v4_values_kept");
    free(sum0);
    free(sum1);
    char want[256];
    int w =
        snprintf(want, sizeof want,
                 "SELECT value FROM metrics WHERE view_seq = "
                 "(SELECT seq FROM views WHERE id = '%s') AND name = 'LCP'", vid ? vid : "");
    TAP_OK(vid && w > 0 && (size_t)w < sizeof want && db_q1(p, want) == 2600,
           "store/fixture_v4_last_value_kept");
    w = snprintf(want, sizeof want, "SELECT count(*) FROM requests WHERE view_id = '%s'",
                 vid ? vid : "");
    TAP_OK(w > 0 && (size_t)w < sizeof want && db_q1(p, want) == 3, "store/fixture_v4_claims_kept");

    /* The migrated table under the writer: a re-sent id (smaller: the last value still wins),
     * a new id on an old view, a new view. */
    rc = open_keep(&s, p, NULL, err, sizeof err);
    char body[512];
    w = snprintf(body, sizeof body,
                 "{\"v\":1,\"vid\":\"%s\",\"url\":\"/products/42\",\"t0\":1764000000000,"
                 "\"m\":[{\"n\":\"LCP\",\"id\":\"%s-LCP\",\"v\":1234},"
                 "{\"n\":\"CLS\",\"id\":\"%s-CLS2\",\"v\":0.5}]}",
                 vid ? vid : "", vid ? vid : "", vid ? vid : "");
    if (rc == 0 && w > 0 && (size_t)w < sizeof body)
        rc = ingest(s, body);
    if (rc == 0)
        rc = ingest(s, "{\"v\":1,\"vid\":\"after-v4\",\"url\":\"/x\",\"t0\":1764000000000,"
                       "\"m\":[{\"n\":\"LCP\",\"id\":\"a4\",\"v\":10},{\"n\":\"LCP\",\"id\":\"a4\","
                       "\"v\":20}]}");
    if (rc == 0)
        rc = store_sync(s);
    TAP_OK(rc == 0, "store/fixture_v4_ingest");
    store_free(s);
    s = NULL;
    w = snprintf(want, sizeof want, "SELECT value FROM metrics WHERE metric_id = '%s-LCP'",
                 vid ? vid : "");
    TAP_OK(w > 0 && (size_t)w < sizeof want && db_q1(p, want) == 1234 &&
               db_q1(p, "SELECT count(*) FROM metrics") == before[1] + 2 &&
               db_q1(p, "SELECT value FROM metrics WHERE metric_id = 'a4'") == 20,
           "store/fixture_v4_last_value_wins");
    char *ic = qtext(p, "PRAGMA integrity_check");
    TAP_OK(ic && strcmp(ic, "ok") == 0 &&
               db_q1(p, "SELECT count(*) FROM pragma_foreign_key_check") == 0,
           "store/fixture_v4_integrity");
    free(ic);

    /* Retention on the migrated table: every view is older than now + 1 day's cutoff. */
    rc = open_keep(&s, p, NULL, err, sizeof err);
    if (rc == 0)
        rc = store_prune_at(s, vp_now_ms() + 86400000LL, 0);
    if (rc == 0)
        rc = store_sync(s);
    store_free(s);
    s = NULL;
    TAP_OK(rc == 0 && db_q1(p, "SELECT count(*) FROM views") == 0 &&
               db_q1(p, "SELECT count(*) FROM metrics") == 0 &&
               db_q1(p, "SELECT count(*) FROM resources") == 0 &&
               db_q1(p, "SELECT count(*) FROM navigation") == 0,
           "store/fixture_v4_prune_cascades");
    free(vid);

    /* One version newer than this build: refused, file untouched. */
    path_of(p, sizeof p, "newer_by_one.db");
    h = NULL;
    sqlite3_open(p, &h);
    char ver[64];
    w = snprintf(ver, sizeof ver, "CREATE TABLE views(id); PRAGMA user_version=%d;",
                 STORE_SCHEMA_VERSION + 1);
    sqlite3_exec(h, ver, NULL, NULL, NULL);
    sqlite3_close(h);
    struct stat st0;
    stat(p, &st0);
    char *bytes = malloc((size_t)st0.st_size);
    FILE *f = fopen(p, "rb");
    size_t got = f && bytes ? fread(bytes, 1, (size_t)st0.st_size, f) : 0;
    if (f)
        fclose(f);
    rc = store_open(&s, p, NULL, err, sizeof err);
    TAP_OK(rc == VP_ERR_VERSION && s == NULL && strstr(err, "newer"),
           "store/newer_by_one_refused: %s", err);
    TAP_OK(w > 0 && got == (size_t)st0.st_size && same_file(p, bytes, got) &&
               db_q1(p, "PRAGMA user_version") == STORE_SCHEMA_VERSION + 1,
           "store/newer_by_one_untouched");
    free(bytes);
}

/* The writer skips the claim UPDATE of an injected page accepted, or a new view started, after
 * every claimable row; the bound covers rows of an earlier run (read at open) and rows recorded
 * in this one. */
static void test_claim_bound(void)
{
    char p[128], err[256];
    struct store *s = NULL;
    path_of(p, sizeof p, "claim.db");
    const int64_t T = 1764000000000LL * 1000;
    struct store_request_rec sub = {.status = 200, .method = "GET"};
    struct store_request_rec inj = {.status = 200, .method = "GET", .injected = true};
    if (open_keep(&s, p, NULL, err, sizeof err) != 0) {
        TAP_OK(0, "store/claim_bound_open: %s", err);
        return;
    }
    sub.accept_us = T + 500;
    sub.url = "/q.js";
    sub.referer = "http://x/q";
    int rc0 = store_record_request(s, &sub);
    sub.accept_us = T + 300;
    sub.url = "/v.js";
    sub.referer = "http://x/v";
    rc0 |= store_record_request(s, &sub);
    TAP_OK(rc0 == 0 && store_sync(s) == 0, "store/claim_bound_run1");
    store_free(s);
    s = NULL;
    if (open_keep(&s, p, NULL, err, sizeof err) != 0) {
        TAP_OK(0, "store/claim_bound_reopen: %s", err);
        return;
    }
    int rc = 0;
    inj.accept_us = T;
    inj.url = "/q";
    inj.view_id = "claimq";
    rc |= store_record_request(s, &inj); /* claims /q.js of the earlier run */
    /* a new view (beacon) claims /v.js of the earlier run; one that started after every
     * claimable row claims nothing */
    rc |= ingest(s, "{\"v\":1,\"vid\":\"claimview01\",\"url\":\"/v\",\"t0\":1764000000000}");
    rc |= ingest(s, "{\"v\":1,\"vid\":\"claimview02\",\"url\":\"/v\",\"t0\":1764000009000}");
    inj.accept_us = T + 2000000;
    inj.url = "/r";
    inj.view_id = "claimr";
    rc |= store_record_request(s, &inj); /* after every claimable row: no claim needed */
    sub.accept_us = T + 2100000;
    sub.url = "/r.js";
    sub.referer = "http://x/r";
    rc |= store_record_request(s, &sub); /* resolved at insert */
    sub.accept_us = T + 3000000;
    sub.url = "/s.js";
    sub.referer = "http://x/s";
    rc |= store_record_request(s, &sub); /* unassigned: raises the bound */
    inj.accept_us = T + 2900000;
    inj.url = "/s";
    inj.view_id = "claims";
    rc |= store_record_request(s, &inj); /* claims /s.js */
    sub.accept_us = T + 4000000;
    sub.url = "/t.js";
    sub.referer = "http://x/t";
    rc |= store_record_request(s, &sub);
    inj.accept_us = T + 4500000;
    inj.url = "/t";
    inj.view_id = "claimt";
    rc |= store_record_request(s, &inj); /* accepted after /t.js: no claim */
    TAP_OK(rc == 0 && store_sync(s) == 0, "store/claim_bound_recorded");
    store_free(s);
    TAP_OK(db_q1(p, "SELECT count(*) FROM requests WHERE url='/q.js' AND view_id='claimq'") == 1,
           "store/claim_bound_earlier_run");
    TAP_OK(db_q1(p, "SELECT count(*) FROM requests WHERE url='/v.js' AND view_id='claimview01'") ==
                   1 &&
               db_q1(p, "SELECT count(*) FROM requests WHERE view_id='claimview02'") == 0,
           "store/claim_bound_view_earlier_run");
    TAP_OK(db_q1(p, "SELECT count(*) FROM requests WHERE url='/r.js' AND view_id='claimr'") == 1,
           "store/claim_bound_resolved");
    TAP_OK(db_q1(p, "SELECT count(*) FROM requests WHERE url='/s.js' AND view_id='claims'") == 1,
           "store/claim_bound_same_run");
    TAP_OK(db_q1(p, "SELECT count(*) FROM requests WHERE url='/t.js' AND view_id IS NULL") == 1,
           "store/claim_bound_window");
}

/* The claim bounds are per Referer path: an unassigned sub-resource of one page does not make
 * the injected pages and new views of other pages run their claim UPDATE (each walks every row
 * of its path in its 60 s window, so with one bound for all paths a single unassigned request
 * made every page pay for its path's whole window); the page it belongs to still claims it. */
static void test_claim_per_path(void)
{
    char p[128], err[256];
    struct store *s = NULL;
    path_of(p, sizeof p, "claimpath.db");
    const int64_t T = 1764000000000LL * 1000;
    if (open_keep(&s, p, NULL, err, sizeof err) != 0) {
        TAP_OK(0, "store/claim_per_path_open: %s", err);
        return;
    }
    struct store_request_rec sub = {.status = 200,
                                    .method = "GET",
                                    .url = "/a.js",
                                    .referer = "https://elsewhere.example/a",
                                    .accept_us = T + 5000000};
    int rc = store_record_request(s, &sub); /* unassigned, claimable by a page /a */
    struct store_stats st0, st1, st2;
    rc |= store_sync(s);
    store_get_stats(s, &st0);
    struct store_request_rec inj = {.status = 200, .method = "GET", .injected = true};
    char url[32], vid[32], body[160];
    for (int i = 0; i < 8; i++) {
        snprintf(url, sizeof url, "/other/%d", i);
        snprintf(vid, sizeof vid, "otherview%02d", i);
        inj.url = url;
        inj.view_id = vid;
        inj.accept_us = T + 1000000 + i; /* before /a.js, but another path */
        rc |= store_record_request(s, &inj);
        snprintf(body, sizeof body,
                 "{\"v\":1,\"vid\":\"beaconview%02d\",\"url\":\"/page/%d\",\"t0\":%lld}", i, i,
                 (long long)(T / 1000 + 1000));
        rc |= ingest(s, body); /* a new view of another path, started before /a.js */
    }
    rc |= store_sync(s);
    store_get_stats(s, &st1);
    inj.url = "/a";
    inj.view_id = "pageaview";
    inj.accept_us = T + 4000000;
    rc |= store_record_request(s, &inj);
    rc |= store_sync(s);
    store_get_stats(s, &st2);
    store_free(s);
    TAP_OK(rc == 0, "store/claim_per_path_recorded");
    TAP_OK(st1.claims_run == st0.claims_run,
           "store/claim_per_path_others_skip (%llu claim UPDATEs for 16 pages of other paths)",
           (unsigned long long)(st1.claims_run - st0.claims_run));
    TAP_OK(st2.claims_run == st1.claims_run + 1 &&
               db_q1(p, "SELECT count(*) FROM requests WHERE url='/a.js' AND "
                        "view_id='pageaview'") == 1,
           "store/claim_per_path_own_page_claims");
}

/* Request records of one batch go in multi-row INSERTs of 16 (the rest one by one): every row
 * and column as recorded, ids in arrival order (bytes_in carries the sequence number here), and
 * the view resolution and claims of the rows around injected pages as with one statement per
 * row, injected pages grouped too. A long batch_ms makes the whole run one batch (store_sync
 * ends the coalescing). */
static void test_request_groups(void)
{
    char p[128], err[256];
    struct store *s = NULL;
    path_of(p, sizeof p, "groups.db");
    struct store_options opt;
    store_options_default(&opt);
    opt.batch_ms = 60000;
    if (open_keep(&s, p, &opt, err, sizeof err) != 0) {
        TAP_OK(0, "store/req_groups_open: %s", err);
        return;
    }
    const int64_t T = 1764000000000LL * 1000;
    char url[64];
    int rc = 0;
    uint64_t seq = 0;
    struct store_request_rec r = {.status = 200, .method = "GET", .protocol = "h1"};
    /* 0..16: plain records (one group of 16, then one pending) */
    for (int i = 0; i < 17; i++) {
        snprintf(url, sizeof url, "/items/%d?q=%d", 1000 + i, i);
        r.url = url;
        r.accept_us = T + i;
        r.bytes_out = (uint64_t)(100 + i);
        r.content_type = i % 2 ? "text/css" : NULL;
        r.bytes_in = seq++;
        rc |= store_record_request(s, &r);
    }
    /* 17: a sub-resource of /g recorded before its page: claimable */
    r.url = "/g.js";
    r.referer = "http://localhost:8080/g?x=1";
    r.accept_us = T + 1000;
    r.bytes_in = seq++;
    rc |= store_record_request(s, &r);
    /* 18: the injected page /g, accepted before it: claims row 17 */
    struct store_request_rec inj = {.status = 200,
                                    .method = "GET",
                                    .injected = true,
                                    .url = "/g",
                                    .view_id = "groupview1",
                                    .accept_us = T + 500};
    inj.bytes_in = seq++;
    rc |= store_record_request(s, &inj);
    /* 19..50: sub-resources of /g, resolved to its view at insert (two full groups) */
    for (int i = 19; i < 51; i++) {
        snprintf(url, sizeof url, "/static/%d.js", i);
        r.url = url;
        r.accept_us = T + 2000 + i;
        r.bytes_in = seq++;
        rc |= store_record_request(s, &r);
    }
    /* 51: a sub-resource of /p/3 before its page (claimable); 52..67: sixteen injected pages in
     * the same group as it, the fourth claims it */
    r.url = "/sub.js";
    r.referer = "http://localhost:8080/p/3";
    r.accept_us = T + 100000;
    r.bytes_in = seq++;
    rc |= store_record_request(s, &r);
    char vids[16][16], purl[16][16];
    for (int i = 0; i < 16; i++) {
        snprintf(vids[i], sizeof vids[i], "pview%02d", i);
        snprintf(purl[i], sizeof purl[i], "/p/%d", i);
        inj.url = purl[i];
        inj.view_id = vids[i];
        inj.accept_us = T + 90000 + i;
        inj.bytes_in = seq++;
        rc |= store_record_request(s, &inj);
    }
    /* 68, 69: two loads of /d in the same group; 70: a sub-resource after both resolves to the
     * later one at insert (a claim would give it to the first) */
    inj.url = "/d";
    inj.view_id = "dview1";
    inj.accept_us = T + 200000;
    inj.bytes_in = seq++;
    rc |= store_record_request(s, &inj);
    inj.view_id = "dview2";
    inj.accept_us = T + 300000;
    inj.bytes_in = seq++;
    rc |= store_record_request(s, &inj);
    r.url = "/d.js";
    r.referer = "http://localhost:8080/d";
    r.accept_us = T + 300100;
    r.bytes_in = seq++;
    rc |= store_record_request(s, &r);
    TAP_OK(rc == 0 && store_sync(s) == 0, "store/req_groups_recorded");
    struct store_stats st;
    store_get_stats(s, &st);
    TAP_OK(st.requests_grouped == 64 && st.write_errors == 0,
           "store/req_groups_multi_row (grouped %llu, errors %llu)",
           (unsigned long long)st.requests_grouped, (unsigned long long)st.write_errors);
    store_free(s);
    s = NULL;
    TAP_OK(db_q1(p, "SELECT count(*) FROM requests") == 71, "store/req_groups_count");
    /* arrival order: ids follow the order of store_record_request */
    TAP_OK(
        db_q1(p, "SELECT count(*) FROM requests a JOIN requests b ON b.id = a.id + 1 "
              "WHERE b.bytes_in != a.bytes_in + 1") == 0 &&
            db_q1(p, "SELECT min(id) = (SELECT id FROM requests WHERE bytes_in = 0) FROM requests") ==
                1,
        "store/req_groups_order");
    char *v = qtext(p, "SELECT group_concat(route || '|' || path || '|' || bytes_out || '|' || "
                       "coalesce(content_type, '-') || '|' || coalesce(view_id, '-'), ';') "
                       "FROM (SELECT * FROM requests WHERE url LIKE '/items/100%' ORDER BY id)");
    TAP_OK(v && strcmp(v,
                       "/items/[id]|/items/1000|100|-|-;/items/[id]|/items/1001|101|text/css|-;"
                       "/items/[id]|/items/1002|102|-|-;/items/[id]|/items/1003|103|text/css|-;"
                       "/items/[id]|/items/1004|104|-|-;/items/[id]|/items/1005|105|text/css|-;"
                       "/items/[id]|/items/1006|106|-|-;/items/[id]|/items/1007|107|text/css|-;"
                       "/items/[id]|/items/1008|108|-|-;/items/[id]|/items/1009|109|text/css|-") ==
                    0,
           "store/req_groups_columns: %s", v ? v : "(null)");
    free(v);
    TAP_OK(db_q1(p, "SELECT count(*) FROM requests WHERE url='/g.js' AND view_id='groupview1'") == 1,
           "store/req_groups_claim");
    TAP_OK(db_q1(p, "SELECT count(*) FROM requests WHERE url LIKE '/static/%' AND "
                 "view_id='groupview1' AND referer_path='/g' AND protocol='h1'") == 32,
           "store/req_groups_resolved");
    TAP_OK(db_q1(p, "SELECT count(*) FROM requests WHERE view_id IS NULL") == 17,
           "store/req_groups_plain");
    TAP_OK(db_q1(p, "SELECT count(*) FROM requests WHERE url='/sub.js' AND view_id='pview03'") == 1 &&
               db_q1(p, "SELECT count(*) FROM requests WHERE injected=1 AND view_id LIKE 'pview%'") ==
                   16,
           "store/req_groups_injected_claim");
    TAP_OK(db_q1(p, "SELECT count(*) FROM requests WHERE url='/d.js' AND view_id='dview2'") == 1,
           "store/req_groups_latest_page");

    /* A row the database refuses (a trigger here) fails alone: its group is written row by row. */
    sqlite3 *h = NULL;
    rc = sqlite3_open(p, &h) != SQLITE_OK ||
         sqlite3_exec(h,
                      "CREATE TRIGGER refuse BEFORE INSERT ON requests WHEN new.url = '/bad' "
                      "BEGIN SELECT RAISE(ABORT, 'refused'); END",
                      NULL, NULL, NULL) != SQLITE_OK;
    sqlite3_close(h);
    TAP_OK(rc == 0, "store/req_groups_trigger");
    if (open_keep(&s, p, &opt, err, sizeof err) != 0) {
        TAP_OK(0, "store/req_groups_reopen: %s", err);
        return;
    }
    struct store_request_rec b = {.status = 200, .method = "GET"};
    for (int i = 0; i < 16; i++) {
        snprintf(url, sizeof url, "/after/%d", i);
        b.url = i == 7 ? "/bad" : url;
        b.accept_us = T + 9000 + i;
        rc |= store_record_request(s, &b);
    }
    TAP_OK(rc == 0 && store_sync(s) == 0, "store/req_groups_bad_recorded");
    store_get_stats(s, &st);
    TAP_OK(st.write_errors == 1 && st.requests_grouped == 0, "store/req_groups_bad_counted");
    store_free(s);
    TAP_OK(db_q1(p, "SELECT count(*) FROM requests WHERE url LIKE '/after/%'") == 15 &&
               db_q1(p, "SELECT count(*) FROM requests WHERE url = '/bad'") == 0,
           "store/req_groups_bad_alone");
}

/* The request INSERTs keep their parameters bound from one step to the next and bind again only
 * what changed (store.c, bind_request): 300 records whose columns repeat, change, turn NULL and
 * back at different periods (within a group of 16, between groups, between batches), with texts
 * longer than the writer keeps copies of, committed in batches of uneven sizes (so both the
 * multi-row and the single-row statement run, after the records of the previous batch were
 * freed). Every column of every row must read back as recorded. */
#define REBIND_N 300
static void rebind_rec(int i, struct store_request_rec *r, char *url, char *ua, char *ref,
                       size_t cap)
{
    static const char *const cc[3] = {"no-store", "max-age=60", NULL};
    const int64_t T = 1764000000000LL * 1000;
    memset(r, 0, sizeof *r);
    r->accept_us = T + i * 10;
    r->head_done_us = r->accept_us + 1;
    r->reused = i % 2 == 1;
    r->connect_start_us = r->reused ? 0 : r->accept_us + 2;
    r->connect_end_us = r->reused ? 0 : r->accept_us + 3;
    r->sent_us = r->accept_us + 4;
    r->first_byte_us = r->accept_us + 5;
    r->last_byte_us = r->accept_us + 6;
    r->bytes_in = i % 17 ? 40 : (uint64_t)(40 + i);
    r->bytes_out = i % 6 ? 1300 : (uint64_t)(1300 + i);
    r->upstream_bytes = (i / 16) % 2 ? 1024 : 0;
    r->status = i % 9 ? 200 : 404;
    r->method = (i / 7) % 3 ? "GET" : "POST";
    if (i % 5 == 0)
        snprintf(url, cap, "/about");
    else
        snprintf(url, cap, "/items/%d?x=%d", i % 13 + 100, i);
    r->url = i % 37 == 36 ? NULL : url;
    r->host = i % 11 == 0 ? NULL : (i / 20) % 2 ? "a.example:8080" : "b.example";
    r->protocol = (i / 3) % 2 ? "h2" : "h1";
    r->tls_version = i % 4 == 0 ? "TLSv1.3" : NULL;
    if ((i / 10) % 3 == 0) { /* longer than the writer's copies: never kept */
        memset(ua, 'a' + (i / 30) % 26, 600);
        ua[600] = '\0';
        r->user_agent = ua;
    } else {
        r->user_agent = (i / 10) % 3 == 1 ? "wrk" : NULL;
    }
    if (i % 8 == 0) {
        snprintf(ref, cap, "http://h.example/ref/%d?y=1", i % 3);
        r->referer = ref;
    }
    r->content_type = i % 5 ? "text/html" : "text/css";
    r->content_encoding = (i / 4) % 2 ? "gzip" : NULL;
    r->cache_control = cc[i % 3];
    r->error = i % 50 == 49 ? "upstream timeout" : NULL;
    r->label = (i / 30) % 2 ? "run-b" : i % 31 == 0 ? NULL : "run-a";
}

static void test_request_rebinding(void)
{
    char p[128], err[256];
    struct store *s = NULL;
    path_of(p, sizeof p, "rebind.db");
    struct store_options opt;
    store_options_default(&opt);
    opt.batch_ms = 60000;
    if (open_keep(&s, p, &opt, err, sizeof err) != 0) {
        TAP_OK(0, "store/req_rebind_open: %s", err);
        return;
    }
    static const int sizes[] = {1, 16, 17, 5, 32, 40, 3, 16, 48, 2, 33, 15, 72};
    int rc = 0, i = 0;
    for (size_t b = 0; i < REBIND_N; b = (b + 1) % (sizeof sizes / sizeof sizes[0])) {
        for (int k = 0; k < sizes[b] && i < REBIND_N; k++, i++) {
            char url[64], ua[608], ref[64];
            struct store_request_rec r;
            rebind_rec(i, &r, url, ua, ref, sizeof url);
            rc |= store_record_request(s, &r);
        }
        rc |= store_sync(s);
    }
    struct store_stats st;
    store_get_stats(s, &st);
    TAP_OK(rc == 0 && st.write_errors == 0 && st.requests_grouped > 0 &&
               st.requests_grouped < REBIND_N,
           "store/req_rebind_recorded (grouped %llu)", (unsigned long long)st.requests_grouped);
    store_free(s);

    sqlite3 *h = NULL;
    sqlite3_stmt *q = NULL;
    int bad = -1, rows = 0;
    if (sqlite3_open_v2(p, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(h,
                           "SELECT accept_us, head_done_us, connect_start_us, connect_end_us, "
                           "sent_us, first_byte_us, last_byte_us, bytes_in, bytes_out, "
                           "upstream_bytes, status, injected, reused, method, url, path, route, "
                           "host, protocol, tls_version, referer, referer_path, user_agent, "
                           "content_type, content_encoding, cache_control, error, label, view_id "
                           "FROM requests ORDER BY id",
                           -1, &q, NULL) == SQLITE_OK) {
        bad = 0;
        while (sqlite3_step(q) == SQLITE_ROW && bad == 0) {
            char url[64], ua[608], ref[64], route[128];
            struct store_request_rec r;
            rebind_rec(rows, &r, url, ua, ref, sizeof url);
            size_t plen = 0, rplen = 0;
            const char *path = r.url ? store_path_span(r.url, &plen) : NULL;
            const char *rpath = r.referer ? store_path_span(r.referer, &rplen) : NULL;
            int rl = r.url ? store_route_of(r.url, strlen(r.url), route, sizeof route) : -1;
            const int64_t nums[13] = {r.accept_us,
                                      r.head_done_us,
                                      r.connect_start_us,
                                      r.connect_end_us,
                                      r.sent_us,
                                      r.first_byte_us,
                                      r.last_byte_us,
                                      (int64_t)r.bytes_in,
                                      (int64_t)r.bytes_out,
                                      (int64_t)r.upstream_bytes,
                                      r.status,
                                      r.injected,
                                      r.reused};
            for (int c = 0; c < 13; c++)
                if (sqlite3_column_type(q, c) != SQLITE_INTEGER ||
                    sqlite3_column_int64(q, c) != nums[c])
                    bad = 1 + c;
            const char *texts[16] = {
                r.method,        r.url,        path,           rl >= 0 ? route : NULL,
                r.host,          r.protocol,   r.tls_version,  r.referer,
                rpath,           r.user_agent, r.content_type, r.content_encoding,
                r.cache_control, r.error,      r.label,        NULL};
            const size_t lens[16] = {0, 0, plen, rl > 0 ? (size_t)rl : 0, 0, 0, 0, 0, rplen};
            for (int c = 0; c < 16; c++) {
                const char *got = (const char *)sqlite3_column_text(q, 13 + c);
                size_t n =
                    texts[c] ? (lens[c] || c == 2 || c == 3 || c == 8 ? lens[c] : strlen(texts[c]))
                             : 0;
                if (!texts[c] ? got != NULL
                              : !got || (size_t)sqlite3_column_bytes(q, 13 + c) != n ||
                                    memcmp(got, texts[c], n) != 0)
                    bad = 100 + c;
            }
            if (bad)
                printf("# row %d: column %d differs\n", rows, bad);
            rows++;
        }
    }
    sqlite3_finalize(q);
    sqlite3_close(h);
    TAP_OK(bad == 0 && rows == REBIND_N, "store/req_rebind_columns (rows %d)", rows);
}

/* Record i of the checkpoint tests: about 4 KB, a 1,900-byte URL and User-Agent that differ
 * from one record to the next, at T + i. Fills *r; the strings are static and rewritten by the
 * next call. */
static const struct store_request_rec *big_record(struct store_request_rec *r, int i, int64_t T)
{
    static char url[1901], ua[1901];
    for (size_t k = 0; k + 1 < sizeof url; k++) {
        url[k] = (char)('a' + (unsigned)(i * 7 + (int)k * 13) % 26);
        ua[k] = (char)('A' + (unsigned)(i * 11 + (int)k * 3) % 26);
    }
    url[0] = '/';
    *r = (struct store_request_rec){0};
    r->accept_us = T + i;
    r->last_byte_us = T + i + 10;
    r->status = 200;
    r->method = "GET";
    r->url = url;
    r->user_agent = ua;
    return r;
}

/* The checkpointer thread copies the WAL into the database and lets it restart: after about
 * 25 MB of commits the WAL holds fewer pages than the checkpoint threshold (2,000) and its
 * file is within journal_size_limit (16 MiB). A checkpointer connection that never read the
 * database did nothing (SQLite needs the WAL opened first), so the WAL grew to 128 MiB. */
static void test_checkpointer(void)
{
    char p[128], wal[140], err[256];
    struct store *s = NULL;
    path_of(p, sizeof p, "ckpt.db");
    snprintf(wal, sizeof wal, "%s-wal", p);
    if (open_keep(&s, p, NULL, err, sizeof err) != 0) {
        TAP_OK(0, "store/ckpt_open: %s", err);
        return;
    }
    const int64_t T = 1764000000000LL * 1000;
    struct store_request_rec r;
    int rc = 0;
    for (int i = 0; i < 6000 && rc == 0; i++) {
        while ((rc = store_record_request(s, big_record(&r, i, T))) == VP_ERR_FULL)
            usleep(1000);
        if (i % 500 == 499)
            rc |= store_sync(s);
    }
    TAP_OK(rc == 0 && store_sync(s) == 0, "store/ckpt_written");
    /* The checkpointer runs on its own thread: on a busy machine the last checkpoint may still
     * be running when the next batch starts, and that batch cannot restart the WAL. One more
     * row at a time until one does (at once, normally). */
    struct store_stats st;
    int more = 0;
    bool restarted = false;
    while (more < 100 && !restarted) {
        struct store_request_rec one = {0};
        one.accept_us = T + 10000 + more;
        one.status = 200;
        one.method = "GET";
        one.url = "/after";
        if (store_record_request(s, &one) != 0 || store_sync(s) != 0)
            break;
        more++;
        store_get_stats(s, &st);
        restarted = st.wal_frames > 0 && st.wal_frames < 2000;
        if (!restarted)
            usleep(50000);
    }
    store_get_stats(s, &st);
    TAP_OK(st.checkpoints >= 1, "store/ckpt_completed: %llu", (unsigned long long)st.checkpoints);
    TAP_OK(restarted, "store/ckpt_wal_restarted: %llu pages after %d more rows",
           (unsigned long long)st.wal_frames, more);
    struct stat sb;
    TAP_OK(stat(wal, &sb) == 0 && sb.st_size <= 16 * 1024 * 1024,
           "store/ckpt_wal_file_bounded: %lld bytes", (long long)sb.st_size);
    store_free(s);
    char *n = qtext(p, "SELECT count(*) FROM requests");
    char want[16];
    snprintf(want, sizeof want, "%d", 6000 + more);
    TAP_OK(n && strcmp(n, want) == 0, "store/ckpt_rows_kept: %s of %s", n ? n : "(null)", want);
    free(n);
}

/* Under sustained load the WAL stays bounded: records of about 4 KB each are queued as fast as
 * the store admits them, with no sync (the writer always has work), about 70,000 WAL pages in
 * all. The WAL must start over at least once and never hold much more than the writer's hard
 * limit (32,768 pages) plus a batch (about 2,000 pages here). The checkpointer's next pass,
 * started by every commit past 2,000 pages, used to be running whenever the writer tried its
 * own checkpoint at the hard limit, which then failed: the WAL grew to 56,000 pages. */
static void test_ckpt_sustained(void)
{
    char p[128], err[256];
    struct store *s = NULL;
    path_of(p, sizeof p, "ckpt_sustained.db");
    if (open_keep(&s, p, NULL, err, sizeof err) != 0) {
        TAP_OK(0, "store/ckpt_sustained_open: %s", err);
        return;
    }
    const int64_t T = 1764000000000LL * 1000;
    struct store_request_rec r;
    const int n = 40000;
    int rc = 0, restarts = 0;
    uint64_t max_frames = 0, last = 0, written = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        while ((rc = store_record_request(s, big_record(&r, i, T))) == VP_ERR_FULL)
            usleep(200);
        struct store_stats st;
        store_get_stats(s, &st);
        if (st.wal_frames < last)
            restarts++;
        else
            written += st.wal_frames - last;
        last = st.wal_frames;
        if (st.wal_frames > max_frames)
            max_frames = st.wal_frames;
    }
    TAP_OK(rc == 0 && store_sync(s) == 0, "store/ckpt_sustained_written: %d records", n);
    TAP_OK(restarts >= 1 && max_frames < 32768 + 4096,
           "store/ckpt_sustained_restarts: %d restarts, at most %llu pages, %llu pages seen "
           "committed",
           restarts, (unsigned long long)max_frames, (unsigned long long)written);
    store_free(s);
    char *cnt = qtext(p, "SELECT count(*) FROM requests");
    TAP_OK(cnt && strcmp(cnt, "40000") == 0, "store/ckpt_sustained_rows: %s", cnt ? cnt : "(null)");
    free(cnt);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/vp_test_store.XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_open_and_refusals();
    test_ingest();
    test_requests();
    test_full_and_drain();
    test_concurrent();
    test_typed_columns();
    test_admission_age();
    test_migrate_v3();
    test_migrate_v3_fixture();
    test_migrate_v4_fixture();
    test_migrate_v5_fixture();
    test_prune_chunks();
    test_browser_per_view();
    test_claim_bound();
    test_claim_per_path();
    test_request_groups();
    test_request_rebinding();
    test_checkpointer();
    test_ckpt_sustained();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
    TAP_DONE();
}
