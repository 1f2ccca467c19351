/* Report query latency on a large database: creates one with the store's schema (store_open),
 * fills N views with 5 metrics each straight through SQL (a recursive CTE: minutes of beacons
 * in seconds; 50 routes, values spread over the rating buckets, started_at over 30 days), then
 * times query_summary (all data, last 24 h, one route), query_views and query_initial_js.
 * Usage: report_bench [N (default 1000000)] [DIR (default /tmp)]. Prints one line per query:
 * name, rows, best and median of 5 runs in ms; KEEP_DB=1 keeps the file. Not a test: timing lives here, not in make check. */
#include "config.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/vp_buf.h"
#include "common/vp_err.h"
#include "store/query.h"
#include "store/query_report.h"
#include "store/store.h"

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int fill(const char *path, long n, int64_t now)
{
    sqlite3 *db = NULL;
    char sql[2048];
    if (sqlite3_open(path, &db) != SQLITE_OK)
        return -1;
    int w = snprintf(sql, sizeof sql,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; BEGIN;"
                     "WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < %ld)"
                     " INSERT INTO views(id, started_at, received_at, url, path, route,"
                     " navigation_type, device, ect, browser, label, sample_rate)"
                     " SELECT printf('bench%%08d', i), %lld - (i * 2591) %% 2592000000, %lld,"
                     " printf('/r%%d/%%d', i %% 50, i), printf('/r%%d/%%d', i %% 50, i),"
                     " printf('/r%%d/[id]', i %% 50), 'navigate',"
                     " CASE i %% 3 WHEN 0 THEN 'mobile' WHEN 1 THEN 'desktop' ELSE 'tablet' END,"
                     " '4g', 'Chrome', NULL, 1.0 FROM c;"
                     "INSERT INTO metrics(view_id, name, metric_id, value, updated_at)"
                     " SELECT v.id, m.name, m.name || v.id, (abs(random()) %% 1000) * m.scale, 0"
                     " FROM views v, (SELECT 'LCP' AS name, 6.0 AS scale UNION ALL"
                     " SELECT 'CLS', 0.0005 UNION ALL SELECT 'INP', 0.8 UNION ALL"
                     " SELECT 'FCP', 4.0 UNION ALL SELECT 'TTFB', 2.5) m;"
                     "COMMIT; PRAGMA optimize;",
                     n - 1, (long long)now, (long long)now);
    int rc = (w > 0 && (size_t)w < sizeof sql) ? sqlite3_exec(db, sql, NULL, NULL, NULL) : -1;
    if (rc != SQLITE_OK)
        fprintf(stderr, "fill: %s\n", sqlite3_errmsg(db));
    sqlite3_close(db);
    return rc == SQLITE_OK ? 0 : -1;
}

static void timeit(struct store_reader *r, const char *name, const struct query_filter *f,
                   int which)
{
    int64_t t[5];
    size_t rows = 0;
    for (int k = 0; k < 5; k++) {
        json_t *j = NULL;
        int64_t t0 = vp_mono_us();
        int rc = which == 0   ? query_summary(r, f, &j)
                 : which == 1 ? query_views(r, f, &j)
                              : query_initial_js(r, f, 0, &j);
        t[k] = vp_mono_us() - t0;
        if (rc) {
            printf("%-28s error %s\n", name, vp_strerror(rc));
            return;
        }
        rows = json_array_size(json_object_get(j, which == 1 ? "views" : "routes"));
        json_decref(j);
    }
    qsort(t, 5, sizeof t[0], cmp_i64);
    printf("%-28s rows %-5zu best %8.1f ms  median %8.1f ms\n", name, rows, t[0] / 1000.0,
           t[2] / 1000.0);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 1000000;
    const char *dir = argc > 2 ? argv[2] : "/tmp";
    char path[512], err[256];
    if (n < 1 || n > 100000000 ||
        snprintf(path, sizeof path, "%s/report_bench_%ld.db", dir, (long)getpid()) >= (int)sizeof path)
        return 2;
    struct store *s = NULL;
    struct store_options opt;
    store_options_default(&opt);
    opt.retention_days = 0;
    if (store_open(&s, path, &opt, err, sizeof err) != 0) {
        fprintf(stderr, "store_open: %s\n", err);
        return 1;
    }
    store_free(s);
    int64_t now = vp_now_ms(), t0 = vp_mono_us();
    if (fill(path, n, now) != 0)
        return 1;
    printf("filled %ld views (%ld metric rows) in %.1f s\n", n, 5 * n,
           (vp_mono_us() - t0) / 1e6);
    struct store_reader *r = NULL;
    if (store_reader_open(&r, path, err, sizeof err) != 0) {
        fprintf(stderr, "reader: %s\n", err);
        return 1;
    }
    struct query_filter all = {0}, day = {.since_ms = now - 86400000}, route = {.route = "/r7/[id]"};
    timeit(r, "summary (all data)", &all, 0);
    timeit(r, "summary (since 24h)", &day, 0);
    timeit(r, "summary (one route)", &route, 0);
    timeit(r, "views (newest 50)", &all, 1);
    timeit(r, "initial_js (since 24h)", &day, 2);
    store_reader_free(r);
    if (getenv("KEEP_DB")) {
        printf("kept %s\n", path);
        return 0;
    }
    char wal[600];
    unlink(path);
    if (snprintf(wal, sizeof wal, "%s-wal", path) > 0)
        unlink(wal);
    if (snprintf(wal, sizeof wal, "%s-shm", path) > 0)
        unlink(wal);
    return 0;
}
