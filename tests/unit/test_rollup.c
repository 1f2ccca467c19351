/* store/rollup + query_summary: the summary from the hourly rollups equals the summary computed
 * from the raw rows (store_summary_raw), byte for byte, under every filter the API accepts, at
 * every stage of a rollup's life: nothing sealed, everything sealed, dirty hours after late
 * updates (last value wins per metric id, the largest value per view, a new view in a sealed
 * hour, dims filled in later), retention, and a schema 1 database upgraded in place. A control
 * case changes raw rows behind the rollups' back and expects a difference, so the comparison is
 * known to see the rollups. */
#include "config.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/vp_buf.h"
#include "common/vp_err.h"
#include "store/query.h"
#include "store/rollup.h"
#include "store/store.h"
#include "store/store_internal.h"
#include "db_test_util.h"
#include "tap.h"

#define H ROLLUP_HOUR_MS

static char path[256];
static int64_t now_ms, base; /* base: an hour boundary three days back */
static uint64_t rng = 7;

static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

static const char *const routes[] = {"/", "/cart", "/p/1", "/blog/2", "/docs", "/search"};
static const char *const devs[] = {"mobile", "tablet", "desktop", NULL};
static const char *const ects[] = {"4g", "3g", "2g", "slow-2g", NULL};
static const char *const uas[] = {"Mozilla/5.0 Chrome/131.0.0.0 Safari/537.36",
                                  "Mozilla/5.0 Firefox/133.0", NULL};
static const char *const labels[] = {NULL, NULL, "a", "b"};
static const char *const mnames[] = {"LCP", "CLS", "INP", "FCP", "TTFB"};

static int ingest(struct store *s, const char *body, const char *ua, const char *label)
{
    struct store_beacon_ctx ctx = {"127.0.0.1", ua, now_ms, label, 1.0};
    char reason[96];
    int rc = store_ingest_beacon(s, body, strlen(body), &ctx, reason, sizeof reason);
    if (rc)
        printf("# ingest: %s (%s)\n", vp_strerror(rc), reason);
    return rc;
}

/* A value with many ties (a small set) or a spread, per metric. */
static void value_of(int k, char *out, size_t cap)
{
    int w;
    if (k == 1)
        w = snprintf(out, cap, "%.4f", (double)rnd(40) * 0.01);
    else if (rnd(3) == 0)
        w = snprintf(out, cap, "%d", 100 * (int)rnd(50));
    else
        w = snprintf(out, cap, "%.1f", (double)rnd(60000) / 10.0);
    if (w < 0 || (size_t)w >= cap)
        out[0] = '\0';
}

/* One view: a random route, dims and metrics; some metrics reported twice under one id (last
 * value wins) or under a second id (the largest counts). */
static int add_view(struct store *s, int i, int64_t t0)
{
    char body[4096], m[2048] = "", v[32];
    size_t at = 0;
    int nm = 0;
    for (int k = 0; k < 5; k++) {
        if (rnd(6) == 0)
            continue;
        value_of(k, v, sizeof v);
        int w = snprintf(m + at, sizeof m - at, "%s{\"n\":\"%s\",\"id\":\"v%05d-%s\",\"v\":%s}",
                         nm ? "," : "", mnames[k], i, mnames[k], v);
        if (w < 0 || (size_t)w >= sizeof m - at)
            return -1;
        at += (size_t)w;
        nm++;
        if (rnd(8) == 0) { /* a second id for the same metric */
            value_of(k, v, sizeof v);
            w = snprintf(m + at, sizeof m - at, ",{\"n\":\"%s\",\"id\":\"v%05d-%s-2\",\"v\":%s}",
                         mnames[k], i, mnames[k], v);
            if (w < 0 || (size_t)w >= sizeof m - at)
                return -1;
            at += (size_t)w;
        }
    }
    const char *dev = devs[rnd(4)], *ect = ects[rnd(5)];
    char extra[96] = "";
    int w = snprintf(extra, sizeof extra, "%s%s%s%s%s%s", dev ? ",\"dev\":\"" : "", dev ? dev : "",
                     dev ? "\"" : "", ect ? ",\"ect\":\"" : "", ect ? ect : "", ect ? "\"" : "");
    if (w < 0 || (size_t)w >= sizeof extra)
        return -1;
    w = snprintf(body, sizeof body,
                 "{\"v\":1,\"vid\":\"view%05d\",\"url\":\"%s\",\"t0\":%lld,\"nav\":\"navigate\"%s,"
                 "\"m\":[%s]}",
                 i, routes[rnd(6)], (long long)t0, extra, m);
    if (w < 0 || (size_t)w >= sizeof body)
        return -1;
    return ingest(s, body, uas[rnd(3)], labels[rnd(4)]);
}

struct fcase {
    const char *name;
    struct query_filter f;
};

static struct fcase cases[40];
static size_t ncases;

static void add_case(const char *name, struct query_filter f)
{
    if (ncases < sizeof cases / sizeof cases[0])
        cases[ncases++] = (struct fcase){name, f};
}

static void make_cases(void)
{
    int64_t b = base + 30 * H; /* an hour boundary inside the data */
    add_case("all", (struct query_filter){0});
    add_case("since_24h", (struct query_filter){.since_ms = now_ms - 86400000});
    add_case("since_7d", (struct query_filter){.since_ms = now_ms - 7 * 86400000LL});
    add_case("since_boundary", (struct query_filter){.since_ms = b});
    add_case("since_boundary_plus1", (struct query_filter){.since_ms = b + 1});
    add_case("since_boundary_minus1", (struct query_filter){.since_ms = b - 1});
    add_case("until_boundary", (struct query_filter){.until_ms = b});
    add_case("until_boundary_plus1", (struct query_filter){.until_ms = b + 1});
    add_case("range_hours", (struct query_filter){.since_ms = b - 5 * H, .until_ms = b + 7 * H});
    add_case("range_inside_hour",
             (struct query_filter){.since_ms = b + 60000, .until_ms = b + 1800000});
    add_case("range_day_edges",
             (struct query_filter){.since_ms = b - 86400000 + 1, .until_ms = b - 1});
    add_case("until_before_data", (struct query_filter){.until_ms = base - 7 * 86400000LL});
    add_case("since_future", (struct query_filter){.since_ms = now_ms + 86400000});
    add_case("route", (struct query_filter){.route = "/cart"});
    add_case("route_template", (struct query_filter){.route = "/p/[id]"});
    add_case("route_missing", (struct query_filter){.route = "/nope"});
    add_case("device", (struct query_filter){.device = "mobile"});
    add_case("browser", (struct query_filter){.browser = "Firefox"});
    add_case("ect", (struct query_filter){.ect = "3g"});
    add_case("label", (struct query_filter){.label = "a"});
    add_case("label_missing", (struct query_filter){.label = "zzz"});
    add_case("device_browser_ect",
             (struct query_filter){.device = "desktop", .browser = "Chrome", .ect = "4g"});
    add_case("since_route_device",
             (struct query_filter){.since_ms = b + 1234, .route = "/", .device = "tablet"});
    add_case("range_label_ect",
             (struct query_filter){
                 .since_ms = b - 10 * H, .until_ms = b + 3 * H + 5, .label = "b", .ect = "4g"});
}

static char *dump(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

/* Compares query_summary with store_summary_raw for every case; one TAP line per case. With
 * expect_equal false (the control), passes when at least one case differs. */
static void compare_all(const char *phase, bool expect_equal)
{
    char err[256];
    struct store_reader *r = NULL;
    if (store_reader_open(&r, path, err, sizeof err) != 0) {
        TAP_OK(0, "rollup/%s/reader_open (%s)", phase, err);
        return;
    }
    size_t differ = 0;
    for (size_t i = 0; i < ncases; i++) {
        json_t *a = NULL, *b = NULL;
        int ra = query_summary(r, &cases[i].f, &a);
        int rb = store_summary_raw(r, &cases[i].f, &b);
        char *sa = ra ? NULL : dump(a), *sb = rb ? NULL : dump(b);
        bool same = sa && sb && strcmp(sa, sb) == 0;
        if (expect_equal) {
            TAP_OK(same, "rollup/%s/%s", phase, cases[i].name);
            if (!same)
                printf("# rollup: %s\n# raw:    %s\n", sa ? sa : "(error)", sb ? sb : "(error)");
        }
        differ += !same;
        free(sa);
        free(sb);
    }
    if (!expect_equal)
        TAP_OK(differ > 0, "rollup/%s/control_detects_stale_rollups (%zu cases differ)", phase,
               differ);
    store_reader_free(r);
}

static int64_t q1(const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_open(path, &db) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static int exec_sql(const char *sql)
{
    sqlite3 *db = NULL;
    char *msg = NULL;
    int rc = sqlite3_open(path, &db) == SQLITE_OK ? sqlite3_exec(db, sql, NULL, NULL, &msg) : -1;
    if (rc != SQLITE_OK)
        printf("# sql: %s\n", msg ? msg : "open failed");
    sqlite3_free(msg);
    sqlite3_close(db);
    return rc;
}

static int catch_up(void)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open(path, &db) == SQLITE_OK ? rollup_catch_up(db, now_ms) : VP_ERR_DB;
    sqlite3_close(db);
    return rc;
}

static struct store *open_store(void)
{
    struct store *s = NULL;
    struct store_options opt;
    store_options_default(&opt);
    opt.retention_days = 0;
    opt.max_lag_ms = 60000;
    char err[256];
    if (store_open(&s, path, &opt, err, sizeof err) != 0) {
        printf("# store_open: %s\n", err);
        return NULL;
    }
    return s;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The summary's percentile selection against a sorted copy: small arrays (quickselect) and
 * large ones (the sampled brackets), with wide values, few distinct values, sorted runs (as the
 * rollup blobs concatenate), descending order and all-equal values. */
static void test_select(void)
{
    int bad = 0;
    for (int round = 0; round < 260 && !bad; round++) {
        size_t n = round < 100 ? 1 + rnd(40) : round < 200 ? 1 + rnd(5000) : 4096 + rnd(60000);
        int shape = round % 5;
        double *v = malloc(n * sizeof *v), *sorted = malloc(n * sizeof *sorted);
        if (!v || !sorted) {
            free(v);
            free(sorted);
            bad = 1;
            break;
        }
        for (size_t i = 0; i < n; i++) {
            switch (shape) {
            case 0:
                v[i] = (double)rnd(1000000) / 7.0;
                break;
            case 1:
                v[i] = (double)rnd(7);
                break;
            case 2: /* sorted runs of 28 */
                v[i] = (double)(i % 28) * 10.0 + (double)rnd(10);
                break;
            case 3:
                v[i] = (double)(n - i);
                break;
            default:
                v[i] = 0.25;
            }
            sorted[i] = v[i];
        }
        qsort(sorted, n, sizeof *sorted, cmp_dbl);
        /* runs: single values (any order), or sorted runs of random lengths as the summary
         * builds them from rollup rows */
        size_t *ends = malloc(n * sizeof *ends), nr = 0;
        if (!ends) {
            free(v);
            free(sorted);
            bad = 1;
            break;
        }
        for (size_t at = 0; at < n;) {
            size_t len = round % 2 ? 1 : 1 + rnd(300);
            if (len > n - at)
                len = n - at;
            qsort(v + at, len, sizeof *v, cmp_dbl);
            at += len;
            ends[nr++] = at;
        }
        double out[4];
        rollup_percentiles(v, n, ends, nr, out);
        free(ends);
        static const double ps[4] = {50, 75, 95, 99};
        for (int k = 0; k < 4; k++)
            if (out[k] != query_percentile(sorted, n, ps[k])) {
                printf("# select: n %zu shape %d p%g: %g != %g\n", n, shape, ps[k], out[k],
                       query_percentile(sorted, n, ps[k]));
                bad = 1;
            }
        free(v);
        free(sorted);
    }
    TAP_OK(!bad, "rollup/select_matches_sorted");
}

int main(void)
{
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    if (snprintf(path, sizeof path, "%s/vp_test_rollup_%d.db", tmp, (int)getpid()) >=
        (int)sizeof path)
        return 1;
    now_ms = vp_now_ms();
    base = (now_ms / H - 72) * H;
    make_cases();
    test_select();

    /* 1. 700 views from three days back to now (the last hours unsealed), 20 of them exactly on
     * an hour boundary or 1 ms before one. */
    struct store *s = open_store();
    int rc = s ? 0 : -1;
    for (int i = 0; s && i < 700; i++) {
        int64_t t0 =
            i < 20 ? base + (int64_t)(i / 2 * 5) * H - (i % 2)
                   : base + (int64_t)rnd((uint32_t)((now_ms - base) / 1000)) * 1000 + rnd(1000);
        rc |= add_view(s, i, t0);
    }
    rc |= s ? store_sync(s) : -1;
    store_free(s);
    TAP_OK(rc == 0, "rollup/ingest");
    compare_all("as_ingested", true);

    /* 2. Everything sealable rolled up. */
    TAP_OK(catch_up() == 0, "rollup/catch_up");
    int64_t until = q1("SELECT CAST(value AS INTEGER) FROM meta WHERE key='rollup_until_hour'");
    TAP_OK(until == rollup_hour_of(now_ms - ROLLUP_SEAL_LAG_MS) &&
               q1("SELECT count(*) FROM rollup") > 50 &&
               q1("SELECT count(*) FROM rollup_dirty") == 0,
           "rollup/sealed_until_lag (until %lld, %lld rows)", (long long)until,
           (long long)q1("SELECT count(*) FROM rollup"));
    TAP_OK(q1("SELECT sum(views) FROM rollup") ==
               q1("SELECT count(*) FROM views WHERE started_at < "
                  "(SELECT CAST(value AS INTEGER) * 3600000 FROM meta "
                  "WHERE key='rollup_until_hour')"),
           "rollup/every_sealed_view_counted_once");
    compare_all("sealed", true);

    /* 3. Control: raw rows changed without a dirty mark: the rollups must show the old
     * numbers, so the comparison differs. Then the dirty mark makes the hour raw again. */
    char sql[512];
    int64_t hot = q1("SELECT hour FROM rollup GROUP BY hour ORDER BY sum(views) DESC LIMIT 1");
    int w = snprintf(sql, sizeof sql,
                     "UPDATE metrics SET value = value + 100000 WHERE view_seq IN (SELECT seq "
                     "FROM views WHERE started_at >= %lld AND started_at < %lld)",
                     (long long)(hot * H), (long long)((hot + 1) * H));
    TAP_OK(w > 0 && (size_t)w < sizeof sql && exec_sql(sql) == 0, "rollup/control_update");
    compare_all("stale", false);
    w = snprintf(sql, sizeof sql, "INSERT INTO rollup_dirty(hour) VALUES(%lld)", (long long)hot);
    TAP_OK(w > 0 && (size_t)w < sizeof sql && exec_sql(sql) == 0, "rollup/control_mark_dirty");
    compare_all("dirty_marked", true);
    TAP_OK(catch_up() == 0 && q1("SELECT count(*) FROM rollup_dirty") == 0, "rollup/rebuilt");
    compare_all("rebuilt", true);

    /* 4. Late updates through the store into sealed hours: a metric id resent with a smaller
     * value (last value wins), a second id with a larger one, dims filled in (coalesce), a new
     * view in a sealed hour. Compared whether or not the writer has rebuilt yet, then after. */
    s = open_store();
    rc = s ? 0 : -1;
    for (int i = 20; s && i < 120; i += 3) {
        char body[1024];
        /* t0 of an existing view is not changed by a resend: now - 1 s is ignored. */
        w = snprintf(body, sizeof body,
                     "{\"v\":1,\"vid\":\"view%05d\",\"url\":\"/ignored\",\"t0\":%lld,"
                     "\"dev\":\"mobile\",\"ect\":\"2g\",\"m\":[{\"n\":\"LCP\",\"id\":\"v%05d-LCP\","
                     "\"v\":1.5},{\"n\":\"INP\",\"id\":\"v%05d-INP-late\",\"v\":%d}]}",
                     i, (long long)(now_ms - 1000), i, i, 900 + i);
        if (w < 0 || (size_t)w >= sizeof body)
            rc = -1;
        else
            rc |= ingest(s, body, uas[0], "late");
    }
    for (int i = 0; s && i < 5; i++)
        rc |= add_view(s, 900 + i, base + 40 * H + i * 7919);
    rc |= s ? store_sync(s) : -1;
    TAP_OK(rc == 0, "rollup/late_ingest");
    compare_all("late_live", true);
    store_free(s);
    compare_all("late", true);
    TAP_OK(catch_up() == 0 && q1("SELECT count(*) FROM rollup_dirty") == 0, "rollup/late_rebuilt");
    compare_all("late_rebuilt", true);
    TAP_OK(q1("SELECT count(*) FROM metrics WHERE metric_id = 'v00020-LCP' AND value = 1.5") == 1,
           "rollup/last_value_wins_stored");

    /* 5. Retention: views before now - 2 days go; their hours are dirty until rebuilt. */
    s = open_store();
    rc = s ? store_prune_at(s, now_ms, 2) : -1;
    rc |= s ? store_sync(s) : -1;
    store_free(s);
    TAP_OK(rc == 0 && q1("SELECT count(*) FROM views") > 0, "rollup/prune");
    compare_all("pruned", true);
    TAP_OK(catch_up() == 0, "rollup/prune_rebuilt");
    w = snprintf(sql, sizeof sql, "SELECT count(*) FROM rollup WHERE hour < %lld",
                 (long long)rollup_hour_of(now_ms - 2 * 86400000LL));
    TAP_OK(w > 0 && (size_t)w < sizeof sql && q1(sql) == 0, "rollup/pruned_hours_gone");
    compare_all("pruned_rebuilt", true);

    /* 5b. A hand-edited watermark (beyond any hour, at the int64 limit, negative) seals nothing:
     * the reader answers from the raw rows, the store's writer runs its rollup steps on it
     * without overflowing the next step's time (UBSan), and a catch-up writes a real one. */
    static const char *const bad_marks[] = {"99999999999999999999", "9223372036854775806", "-5"};
    for (size_t i = 0; i < sizeof bad_marks / sizeof bad_marks[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "bad_watermark_%zu", i);
        w = snprintf(sql, sizeof sql, "UPDATE meta SET value='%s' WHERE key='rollup_until_hour'",
                     bad_marks[i]);
        TAP_OK(w > 0 && (size_t)w < sizeof sql && exec_sql(sql) == 0, "rollup/%s_set", name);
        sqlite3 *db = NULL;
        int64_t h = -1;
        TAP_OK(sqlite3_open(path, &db) == SQLITE_OK && rollup_until(db, &h) == 0 && h == 0,
               "rollup/%s_reads_as_0 (%lld)", name, (long long)h);
        sqlite3_close(db);
        compare_all(name, true);
        s = open_store();
        TAP_OK(s && store_sync(s) == 0, "rollup/%s_store_runs", name);
        usleep(200000); /* the writer's first rollup steps */
        store_free(s);
        /* (the writer's clock may have passed an hour boundary since now_ms) */
        int64_t mark = catch_up() == 0 ? q1("SELECT CAST(value AS INTEGER) FROM meta WHERE "
                                            "key='rollup_until_hour'")
                                       : -1;
        TAP_OK(mark >= rollup_hour_of(now_ms - ROLLUP_SEAL_LAG_MS) &&
                   mark <= rollup_hour_of(vp_now_ms() - ROLLUP_SEAL_LAG_MS),
               "rollup/%s_repaired (%lld)", name, (long long)mark);
        compare_all(name, true);
    }
    /* Dirty marks no writer can have made (hours at the int64 limits) are dropped, not built:
     * an hour's time range would overflow. */
    TAP_OK(exec_sql("INSERT INTO rollup_dirty(hour) VALUES (9223372036854775807), "
                    "(-9223372036854775807 - 1), (1099511627777)") == 0,
           "rollup/bad_dirty_set");
    s = open_store();
    TAP_OK(s && store_sync(s) == 0, "rollup/bad_dirty_store_runs");
    usleep(200000);
    store_free(s);
    TAP_OK(catch_up() == 0 && q1("SELECT count(*) FROM rollup_dirty") == 0,
           "rollup/bad_dirty_dropped");
    compare_all("bad_dirty", true);

    /* 6. A schema 1 database: read-only it is summarised from the raw rows; store_open upgrades
     * it in place and the rollups are backfilled. */
    TAP_OK(exec_sql("DROP TABLE rollup; DROP TABLE rollup_dims; DROP TABLE rollup_dirty; "
                    "DELETE FROM meta WHERE key='rollup_until_hour'; "
                    DB_TEST_TEXT_KEYED_CHILDREN "PRAGMA user_version=1;") == 0,
           "rollup/downgrade_to_v1");
    compare_all("v1", true);
    s = open_store();
    TAP_OK(s && q1("PRAGMA user_version") == STORE_SCHEMA_VERSION, "rollup/migrated_v2");
    store_free(s);
    compare_all("migrated", true);
    TAP_OK(catch_up() == 0 && q1("SELECT count(*) FROM rollup") > 20, "rollup/backfilled");
    compare_all("backfilled", true);

    char aux[300];
    unlink(path);
    if (snprintf(aux, sizeof aux, "%s-wal", path) < (int)sizeof aux)
        unlink(aux);
    if (snprintf(aux, sizeof aux, "%s-shm", path) < (int)sizeof aux)
        unlink(aux);
    TAP_DONE();
}
