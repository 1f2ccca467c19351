/* Report query latency on a large database made by bench/gen_db (or any vitals database).
 * Times every query the report page and the CLI run (the summary under each filter the API
 * accepts, the views list, the route drill-down, API latency, findings, health, budget inputs),
 * RUNS times each, through the public query functions on one read-only connection, and prints
 * one line per query: rows returned, p50 and p95 of the wall time and p50 of the thread's CPU
 * time in ms (the CPU time resists a shared machine's noise better). "now" for the since= filters
 * is the newest view's started_at + 1 ms, so a database generated earlier measures the same
 * windows. Not a test: timing lives here, not in make check.
 *
 * Usage: report_bench DB [RUNS (default 20)] [FILTER (substring of the query names to run)]
 * REPORT_BENCH_RAW=1 times the summary computed from the raw rows only (store_summary_raw, the
 * computation before the rollups) for a before/after on the same database. */
#include "config.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/vp_buf.h"
#include "common/vp_err.h"
#include "store/query.h"
#include "store/query_report.h"
#include "store/store_internal.h"

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

enum which { Q_SUMMARY, Q_VIEWS, Q_API, Q_FINDINGS, Q_HEALTH, Q_TARGETS, Q_JS, Q_LABELS };

static const char *list_key(enum which w)
{
    switch (w) {
    case Q_VIEWS:
        return "views";
    case Q_FINDINGS:
        return "findings";
    case Q_LABELS:
        return "labels";
    default:
        return "routes";
    }
}

static int64_t cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int timeit(struct store_reader *r, const char *name, const struct query_filter *f,
                  enum which which, int runs)
{
    int64_t *t = calloc((size_t)runs, sizeof *t), *c = calloc((size_t)runs, sizeof *c);
    if (!t || !c) {
        free(t);
        free(c);
        return 1;
    }
    size_t rows = 0;
    for (int k = 0; k < runs; k++) {
        json_t *j = NULL;
        int64_t t0 = vp_mono_us(), c0 = cpu_us();
        int rc;
        switch (which) {
        case Q_SUMMARY:
            rc = getenv("REPORT_BENCH_RAW") ? store_summary_raw(r, f, &j) : query_summary(r, f, &j);
            break;
        case Q_VIEWS:
            rc = query_views(r, f, &j);
            break;
        case Q_API:
            rc = query_api_latency(r, f, "/api/", &j);
            break;
        case Q_FINDINGS:
            rc = query_findings(r, f, "/api/", &j);
            break;
        case Q_HEALTH:
            rc = query_health(r, &j);
            break;
        case Q_TARGETS:
            rc = query_targets(r, f, 10, &j);
            break;
        case Q_JS:
            rc = query_initial_js(r, f, 200000, &j);
            break;
        default:
            rc = query_labels(r, &j);
            break;
        }
        t[k] = vp_mono_us() - t0;
        c[k] = cpu_us() - c0;
        if (rc) {
            printf("| %-34s | error %s |\n", name, vp_strerror(rc));
            free(t);
            free(c);
            return 1;
        }
        rows = which == Q_HEALTH    ? 1
               : which == Q_TARGETS ? json_array_size(json_object_get(j, "LCP"))
                                    : json_array_size(json_object_get(j, list_key(which)));
        json_decref(j);
    }
    qsort(t, (size_t)runs, sizeof t[0], cmp_i64);
    qsort(c, (size_t)runs, sizeof c[0], cmp_i64);
    size_t p95 = ((size_t)runs * 95 + 99) / 100;
    printf("| %-34s | %5zu | %9.1f | %9.1f | %9.1f |\n", name, rows,
           (double)t[(runs - 1) / 2] / 1000.0, (double)t[p95 - 1] / 1000.0,
           (double)c[(runs - 1) / 2] / 1000.0);
    fflush(stdout);
    free(t);
    free(c);
    return 0;
}

static int64_t newest_view(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = 0;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT max(started_at) FROM views", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: report_bench DB [RUNS] [FILTER]\n");
        return 2;
    }
    const char *path = argv[1];
    int runs = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 20;
    const char *only = argc > 3 ? argv[3] : NULL;
    if (runs < 1 || runs > 10000)
        return 2;
    char err[256];
    struct store_reader *r = NULL;
    if (store_reader_open(&r, path, err, sizeof err) != 0) {
        fprintf(stderr, "report_bench: %s\n", err);
        return 1;
    }
    int64_t now = newest_view(path) + 1;
    const int64_t day = 86400000;
    const struct {
        const char *name;
        struct query_filter f;
        enum which w;
    } qs[] = {
        {"summary all", {0}, Q_SUMMARY},
        {"summary since=24h", {.since_ms = now - day}, Q_SUMMARY},
        {"summary since=7d", {.since_ms = now - 7 * day}, Q_SUMMARY},
        {"summary since=1h", {.since_ms = now - 3600000}, Q_SUMMARY},
        {"summary since=48h until=24h",
         {.since_ms = now - 2 * day, .until_ms = now - day},
         Q_SUMMARY},
        {"summary route=/products/[id]", {.route = "/products/[id]"}, Q_SUMMARY},
        {"summary route=/checkout", {.route = "/checkout"}, Q_SUMMARY},
        {"summary device=mobile", {.device = "mobile"}, Q_SUMMARY},
        {"summary browser=Safari", {.browser = "Safari"}, Q_SUMMARY},
        {"summary ect=3g", {.ect = "3g"}, Q_SUMMARY},
        {"summary label=canary", {.label = "canary"}, Q_SUMMARY},
        {"summary 7d device browser ect",
         {.since_ms = now - 7 * day, .device = "desktop", .browser = "Chrome", .ect = "4g"},
         Q_SUMMARY},
        {"summary 24h route device",
         {.since_ms = now - day, .route = "/products/[id]", .device = "mobile"},
         Q_SUMMARY},
        {"views newest 50", {0}, Q_VIEWS},
        {"views route=/checkout 50", {.route = "/checkout"}, Q_VIEWS},
        {"views 24h device=tablet 50", {.since_ms = now - day, .device = "tablet"}, Q_VIEWS},
        {"views route=/checkout 1000", {.route = "/checkout", .limit = 1000}, Q_VIEWS},
        {"targets 24h", {.since_ms = now - day}, Q_TARGETS},
        {"targets route=/checkout 24h", {.since_ms = now - day, .route = "/checkout"}, Q_TARGETS},
        {"api latency 24h", {.since_ms = now - day}, Q_API},
        {"findings 24h", {.since_ms = now - day}, Q_FINDINGS},
        {"initial js 24h", {.since_ms = now - day}, Q_JS},
        {"labels", {0}, Q_LABELS},
        {"health", {0}, Q_HEALTH},
    };
    printf("| query | rows | p50 ms | p95 ms | CPU p50 ms |\n|---|---:|---:|---:|---:|\n");
    int bad = 0;
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++)
        if (!only || strstr(qs[i].name, only))
            bad |= timeit(r, qs[i].name, &qs[i].f, qs[i].w, runs);
    store_reader_free(r);
    return bad;
}
