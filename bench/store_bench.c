/* Ingestion throughput of the store: N payloads through store_ingest_beacon (validation + queue)
 * and the writer thread, timed until store_free has committed everything. Two payload shapes:
 * metrics-only (5 metrics) and realistic (5 metrics + 60 resources). Prints payloads/s and the
 * rows found afterwards (must equal what was acknowledged). Usage: store_bench [N] [DIR] */
#include "config.h"

#include "store/store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/vp_buf.h"
#include "common/vp_err.h"

static int build(char *b, size_t cap, int i, bool resources)
{
    int o = snprintf(b, cap,
                     "{\"v\":1,\"vid\":\"bench_%08d\",\"url\":\"/products/%d\",\"t0\":%lld,"
                     "\"nav\":\"navigate\",\"dev\":\"desktop\",\"ect\":\"4g\",\"m\":["
                     "{\"n\":\"LCP\",\"id\":\"l%d\",\"v\":%d.5,\"d\":1,\"r\":\"good\",\"a\":{\"target\":\"img.hero\",\"url\":\"/hero.jpg\",\"ttfb\":100}},"
                     "{\"n\":\"CLS\",\"id\":\"c%d\",\"v\":0.0%d,\"d\":0.01,\"r\":\"good\"},"
                     "{\"n\":\"INP\",\"id\":\"i%d\",\"v\":%d,\"d\":1,\"r\":\"good\"},"
                     "{\"n\":\"FCP\",\"id\":\"f%d\",\"v\":900,\"d\":900,\"r\":\"good\"},"
                     "{\"n\":\"TTFB\",\"id\":\"t%d\",\"v\":120,\"d\":120,\"r\":\"good\"}]",
                     i, i % 1000, (long long)vp_now_ms(), i, 1000 + i % 3000, i, i % 10, i, 50 + i % 400,
                     i, i);
    if (resources) {
        o += snprintf(b + o, cap - (size_t)o, ",\"ri\":0,\"res\":[");
        for (int r = 0; r < 60; r++)
            o += snprintf(b + o, cap - (size_t)o,
                          "%s{\"u\":\"/_next/static/chunks/%d-%08x.js\",\"i\":\"script\",\"s\":%d.1,"
                          "\"d\":40.2,\"fs\":%d,\"rqs\":%d,\"rps\":%d,\"rpe\":%d,\"ts\":12000,"
                          "\"eb\":11700,\"db\":40000,\"p\":\"h2\",\"rb\":\"non-blocking\",\"st\":200}",
                          r ? "," : "", r, (unsigned)(i * 7919 + r), 100 + r, 100 + r, 110 + r,
                          130 + r, 140 + r);
        o += snprintf(b + o, cap - (size_t)o, "]");
    }
    o += snprintf(b + o, cap - (size_t)o, "}");
    return o;
}

static double run(const char *dir, int n, bool resources, long long *rows)
{
    char path[256], err[256];
    snprintf(path, sizeof path, "%s/bench_%s.db", dir, resources ? "res" : "metrics");
    unlink(path);
    struct store_options opt;
    store_options_default(&opt);
    opt.retention_days = 0;
    struct store *s = NULL;
    if (store_open(&s, path, &opt, err, sizeof err) != 0) {
        fprintf(stderr, "store_bench: %s\n", err);
        exit(1);
    }
    static char body[64 * 1024];
    struct store_beacon_ctx ctx = {"127.0.0.1", "Mozilla/5.0 Chrome/131.0.0.0 Safari/537.36", 0,
                                   NULL, 1.0};
    char reason[96];
    int64_t t0 = vp_mono_us();
    for (int i = 0; i < n; i++) {
        int len = build(body, sizeof body, i, resources);
        int rc;
        while ((rc = store_ingest_beacon(s, body, (size_t)len, &ctx, reason, sizeof reason)) ==
               VP_ERR_FULL)
            usleep(100);
        if (rc) {
            fprintf(stderr, "store_bench: rejected: %s\n", reason);
            exit(1);
        }
    }
    store_free(s);
    double secs = (double)(vp_mono_us() - t0) / 1e6;
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    *rows = -1;
    if (sqlite3_open(path, &h) == SQLITE_OK &&
        sqlite3_prepare_v2(h, "SELECT count(*) FROM views", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        *rows = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return (double)n / secs;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 20000;
    const char *dir = argc > 2 ? argv[2] : "/tmp";
    if (n <= 0)
        n = 20000;
    long long rows;
    double r1 = run(dir, n, false, &rows);
    printf("metrics-only (5 metrics):      %d payloads, %.0f payloads/s, %lld views stored\n", n,
           r1, rows);
    double r2 = run(dir, n / 4, true, &rows);
    printf("realistic (5 metrics + 60 res): %d payloads, %.0f payloads/s, %lld views stored\n",
           n / 4, r2, rows);
    return 0;
}
