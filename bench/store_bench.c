/* Ingestion throughput of the store: N payloads through store_ingest_beacon (validation + queue)
 * and the writer thread, timed until store_free has committed everything. Two payload shapes:
 * metrics-only (5 metrics) and realistic (5 metrics + 60 resources). For each shape it also
 * measures, on the same schema, the bare-SQLite ceiling (the same rows inserted by one thread
 * with prepared statements, 1,000 payloads per transaction, no JSON, no queue) and the
 * validation-only rate (beacon_parse alone), so the store's figure can be read against what is
 * possible. Each figure is the median of 3 runs; the p99 of the acknowledged ingest calls (what
 * the caller's thread pays per accepted beacon) is the worst of the 3; the CPU time of the process
 * (all threads) per payload is the noise-resistant figure. Prints payloads/s and the views found
 * afterwards (must equal what was acknowledged).
 * Usage: store_bench [N] [DIR] [metrics|realistic]   (the third argument runs one shape only)
 * STORE_BENCH_RUNS=1..3 sets the number of runs (1 under callgrind: bench/ingest_cost.sh);
 * STORE_BENCH_STORE_ONLY=1 skips the bare-SQLite and validation-only figures;
 * STORE_BENCH_SEED=DB starts each store run from a copy of DB (a large database: steady state);
 * STORE_BENCH_FULL_BATCHES=1 makes the writer commit full batches only (batch_rows items; the last
 * one at close), so that batch sizes do not depend on thread timing;
 * STORE_BENCH_IDS=time gives time-ordered view ids as the proxy makes them (default: random ids).
 * STORE_BENCH_RATE=R offers the payloads at R per second (a clock schedule, as beacons arrive at
 * an event loop) instead of as fast as possible, and adds the store's threads' CPU per payload
 * (the writer's, the checkpointer's) and the batches' mean size: what the writer's batching
 * makes of a given arrival rate (default batch_ms; not with STORE_BENCH_FULL_BATCHES).
 * "written" is the bytes the process passed to write(2) per payload (/proc/self/io wchar): WAL
 * frames and the checkpoints' copies. */
#include "config.h"

#include "bench/beacon_body.h"

#include "store/store.h"

#include <dirent.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "common/vp_buf.h"
#include "common/vp_err.h"
#include "store/beacon.h"

#define RUNS 3

static uint64_t mix(int i)
{
    uint64_t z = (uint64_t)i * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL;
    uint64_t a = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    a = (a ^ (a >> 27)) * 0x94d049bb133111ebULL;
    return a ^ (a >> 31);
}

/* STORE_BENCH_IDS=time: ids as the proxy gives them (proxy/conn_h1.c view_id_new), 12 hex
 * digits of the view's start in ms then 20 random ones, for views that started up to 10 s before
 * their beacon arrives (in random order within that window). */
static bool time_ids;
static int64_t time_base_ms;

/* View id i: 32 hex digits. By default wholly random (splitmix64, distinct for distinct i), so
 * that views arrive in random key order, every b-tree keyed by view id taking a random insert:
 * the writer's harder case. */
static void view_id(char out[33], int i)
{
    uint64_t a = mix(i);
    if (time_ids) {
        uint64_t ms = (uint64_t)(time_base_ms + i / 5) - a % 10000;
        snprintf(out, 33, "%012llx%04x%016llx", (unsigned long long)ms & 0xffffffffffffULL,
                 (unsigned)(a >> 48), (unsigned long long)a);
        return;
    }
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)a,
             (unsigned long long)(a * 0x9e3779b97f4a7c15ULL));
}

/* Bytes this process has passed to write(2) so far (/proc/self/io wchar): the WAL frames, the
 * checkpoints' copies into the database file, the side files. -1 when unreadable. */
static long long written_bytes(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    long long v = -1;
    char line[128];
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "wchar: %lld", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

static int build(char *b, size_t cap, int i, bool resources)
{
    char vid[33];
    view_id(vid, i);
    return beacon_body(b, cap, vid, (long long)vp_now_ms(), i, resources);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* p99 (us) of the acknowledged store_ingest_beacon calls of the last run: what the event loop
 * pays per accepted beacon (validation + compact form + enqueue). */
static double last_p99_us;

/* Process CPU time (all threads: the caller, the writer, the checkpointer) of the last run per
 * payload, in us: the noise-resistant figure on a shared machine (time not spent waiting for a
 * core is not counted). */
static double last_cpu_us;

/* CPU time of the calling thread in the acknowledged ingest calls of the last run, per payload,
 * in us: what the event loop pays per beacon (parse, checks, compact form, enqueue). */
static double last_call_cpu_us;

/* Bytes written (WAL, checkpoints) per payload in the last run. */
static double last_written;

/* STORE_BENCH_RATE: payloads offered per second (0: as fast as admitted). */
static double offer_rate;

/* The last run's CPU of the writer and checkpointer threads per payload (us), and the mean
 * items per committed batch. */
static double last_writer_us, last_ckpt_us, last_batch_mean;

/* CPU time (us) of this process's threads named name (/proc/self/task/TID/comm). */
static int64_t task_cpu_us(const char *name)
{
    char path[320], comm[32];
    int64_t sum = 0;
    long tick = sysconf(_SC_CLK_TCK);
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        int w = snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = w > 0 && (size_t)w < sizeof path ? fopen(path, "r") : NULL;
        bool match = f && fgets(comm, sizeof comm, f) && strncmp(comm, name, strlen(name)) == 0 &&
                     comm[strlen(name)] == '\n';
        if (f)
            fclose(f);
        if (!match)
            continue;
        w = snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
        f = w > 0 && (size_t)w < sizeof path ? fopen(path, "r") : NULL;
        char buf[1024];
        size_t nr = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f)
            fclose(f);
        buf[nr] = '\0';
        char *r = strrchr(buf, ')');
        unsigned long long ut = 0, st = 0;
        if (r &&
            sscanf(r + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) == 2)
            sum += (int64_t)(ut + st) * 1000000 / tick;
    }
    if (d)
        closedir(d);
    return sum;
}

static int64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t cpu_us(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec +
           ru.ru_stime.tv_usec;
}

static double run(const char *dir, int n, bool resources, long long *rows)
{
    char path[256], err[256];
    snprintf(path, sizeof path, "%s/bench_%s.db", dir, resources ? "res" : "metrics");
    unlink(path);
    const char *seed = getenv("STORE_BENCH_SEED");
    if (seed) {
        /* Start from a copy of an existing database (e.g. bench/gen_db's): steady-state cost,
         * with b-trees much larger than the page cache. */
        char cmd[1024];
        int w = snprintf(cmd, sizeof cmd, "cp '%s' '%s' && rm -f '%s-wal' '%s-shm'", seed, path,
                         path, path);
        if (w < 0 || (size_t)w >= sizeof cmd || system(cmd) != 0) {
            fprintf(stderr, "store_bench: cannot copy %s\n", seed);
            exit(1);
        }
    }
    struct store_options opt;
    store_options_default(&opt);
    opt.retention_days = 0;
    if (getenv("STORE_BENCH_FULL_BATCHES")) {
        /* Deterministic batches of batch_rows items (instruction counts comparable run to run). */
        opt.batch_ms = 60000;
        opt.max_lag_ms = 600000;
    }
    struct store *s = NULL;
    if (store_open(&s, path, &opt, err, sizeof err) != 0) {
        fprintf(stderr, "store_bench: %s\n", err);
        exit(1);
    }
    /* Bodies are built before the clock starts: the figure is the store's, not snprintf's. */
    static char body[64 * 1024];
    char **bodies = calloc((size_t)n, sizeof *bodies);
    int *lens = calloc((size_t)n, sizeof *lens);
    if (!bodies || !lens)
        exit(1);
    for (int i = 0; i < n; i++) {
        lens[i] = build(body, sizeof body, i, resources);
        if (!(bodies[i] = malloc((size_t)lens[i])))
            exit(1);
        memcpy(bodies[i], body, (size_t)lens[i]);
    }
    struct store_beacon_ctx ctx = {"127.0.0.1", "Mozilla/5.0 Chrome/131.0.0.0 Safari/537.36", 0,
                                   NULL, 1.0};
    char reason[96];
    int64_t *lat = calloc((size_t)n, sizeof *lat);
    if (!lat)
        exit(1);
    long long w0 = written_bytes();
    int64_t wr0 = task_cpu_us("vp-writer"), ck0 = task_cpu_us("vp-ckpt");
    int64_t t0 = vp_mono_us(), cpu0 = cpu_us(), call_ns = 0;
    for (int i = 0; i < n; i++) {
        if (offer_rate > 0) {
            int64_t due = t0 + (int64_t)((double)i * 1e6 / offer_rate), now = vp_mono_us();
            if (due > now)
                usleep((useconds_t)(due - now));
        }
        int rc;
        int64_t c0, tc0;
        while ((c0 = vp_mono_us(), tc0 = thread_cpu_ns(),
                rc = store_ingest_beacon(s, bodies[i], (size_t)lens[i], &ctx, reason,
                                         sizeof reason)) == VP_ERR_FULL)
            usleep(100);
        call_ns += thread_cpu_ns() - tc0;
        lat[i] = vp_mono_us() - c0;
        if (rc) {
            fprintf(stderr, "store_bench: rejected: %s\n", reason);
            exit(1);
        }
    }
    struct store_stats ss;
    store_get_stats(s, &ss);
    /* Before store_free joins them: the threads' CPU so far (the last batch is left out). */
    last_writer_us = (double)(task_cpu_us("vp-writer") - wr0) / n;
    last_ckpt_us = (double)(task_cpu_us("vp-ckpt") - ck0) / n;
    last_batch_mean = ss.batches ? (double)ss.beacons_accepted / (double)ss.batches : 0;
    store_free(s);
    double secs = (double)(vp_mono_us() - t0) / 1e6;
    long long w1 = written_bytes();
    last_written = w0 >= 0 && w1 >= w0 ? (double)(w1 - w0) / n : -1;
    last_cpu_us = (double)(cpu_us() - cpu0) / n;
    last_call_cpu_us = (double)call_ns / 1000.0 / n;
    qsort(lat, (size_t)n, sizeof *lat, cmp_i64);
    last_p99_us = (double)lat[(size_t)n * 99 / 100];
    free(lat);
    for (int i = 0; i < n; i++)
        free(bodies[i]);
    free(bodies);
    free(lens);
    if (getenv("STORE_BENCH_VERBOSE"))
        fprintf(stderr, "  batches %llu, rows/batch %.0f, refused %llu, row cost %llu ns, max lag %.1f ms\n",
                (unsigned long long)ss.batches,
                ss.batches ? (double)ss.committed_rows / (double)ss.batches : 0.0,
                (unsigned long long)ss.dropped_full, (unsigned long long)ss.row_cost_ns,
                (double)ss.lag_max_us / 1000.0);
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

/* The bare-SQLite ceiling: the rows one payload becomes (1 view, 5 metrics, 60 resources of 13
 * fields), inserted with prepared statements and one transaction per 1,000 payloads. */
static double bare(const char *dir, int n, bool resources)
{
    char path[256], err[256];
    snprintf(path, sizeof path, "%s/bench_bare.db", dir);
    unlink(path);
    struct store_options opt;
    store_options_default(&opt);
    opt.retention_days = 0;
    struct store *s = NULL;
    if (store_open(&s, path, &opt, err, sizeof err) != 0) { /* creates the schema */
        fprintf(stderr, "store_bench: %s\n", err);
        exit(1);
    }
    store_free(s);
    sqlite3 *h = NULL;
    sqlite3_stmt *v = NULL, *m = NULL, *r = NULL;
    if (sqlite3_open(path, &h) != SQLITE_OK ||
        sqlite3_exec(h, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                        "PRAGMA foreign_keys=OFF;"
                        "PRAGMA cache_size=-32768; PRAGMA wal_autocheckpoint=4096;",
                     NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(h,
                           "INSERT INTO views(id,started_at,received_at,url,path,route,"
                           "navigation_type,device,ect,browser,browser_major,sample_rate) "
                           "VALUES(?,?,?,?,?,?,'navigate','desktop','4g','Chrome',131,1)",
                           -1, &v, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(h,
                           "INSERT INTO metrics(view_seq,name,metric_id,value,delta,rating,"
                           "attribution,updated_at) VALUES(?,?,?,?,?,'good',?,?)",
                           -1, &m, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(h,
                           "INSERT INTO resources(view_seq,idx,url,initiator,start_ms,"
                           "duration_ms,fetch_start,request_start,response_start,response_end,"
                           "transfer_size,encoded_size,decoded_size,protocol,render_blocking,"
                           "status) VALUES(?,?,?,'script',?,40.2,?,?,?,?,12000,11700,40000,"
                           "'h2','non-blocking',200)",
                           -1, &r, NULL) != SQLITE_OK) {
        fprintf(stderr, "store_bench: bare: %s\n", sqlite3_errmsg(h));
        exit(1);
    }
    static const char *const names[5] = {"LCP", "CLS", "INP", "FCP", "TTFB"};
    int64_t now = vp_now_ms(), t0 = vp_mono_us();
    char vid[33], mid[16], url[64], rurl[64];
    for (int i = 0; i < n; i++) {
        if (i % 1000 == 0)
            sqlite3_exec(h, "BEGIN", NULL, NULL, NULL);
        view_id(vid, i);
        snprintf(url, sizeof url, "/products/%d", i % 1000);
        sqlite3_bind_text(v, 1, vid, -1, SQLITE_STATIC);
        sqlite3_bind_int64(v, 2, now);
        sqlite3_bind_int64(v, 3, now);
        sqlite3_bind_text(v, 4, url, -1, SQLITE_STATIC);
        sqlite3_bind_text(v, 5, url, -1, SQLITE_STATIC);
        sqlite3_bind_text(v, 6, "/products/[id]", -1, SQLITE_STATIC);
        sqlite3_step(v);
        sqlite3_reset(v);
        sqlite3_int64 seq = sqlite3_last_insert_rowid(h); /* metrics' key (schema 6) */
        for (int k = 0; k < 5; k++) {
            snprintf(mid, sizeof mid, "%c%d", names[k][0], i);
            sqlite3_bind_int64(m, 1, seq);
            sqlite3_bind_text(m, 2, names[k], -1, SQLITE_STATIC);
            sqlite3_bind_text(m, 3, mid, -1, SQLITE_STATIC);
            sqlite3_bind_double(m, 4, 1000.5 + k);
            sqlite3_bind_double(m, 5, 1);
            if (k == 0)
                sqlite3_bind_text(m, 6, "{\"target\":\"img.hero\",\"url\":\"/hero.jpg\",\"ttfb\":100}",
                                  -1, SQLITE_STATIC);
            else
                sqlite3_bind_null(m, 6);
            sqlite3_bind_int64(m, 7, now);
            sqlite3_step(m);
            sqlite3_reset(m);
        }
        for (int k = 0; resources && k < 60; k++) {
            snprintf(rurl, sizeof rurl, "/_next/static/chunks/%d-%08x.js", k,
                     (unsigned)(i * 7919 + k));
            sqlite3_bind_int64(r, 1, seq);
            sqlite3_bind_int(r, 2, k);
            sqlite3_bind_text(r, 3, rurl, -1, SQLITE_STATIC);
            sqlite3_bind_double(r, 4, 100.1 + k);
            sqlite3_bind_double(r, 5, 100 + k);
            sqlite3_bind_double(r, 6, 110 + k);
            sqlite3_bind_double(r, 7, 130 + k);
            sqlite3_bind_double(r, 8, 140 + k);
            sqlite3_step(r);
            sqlite3_reset(r);
        }
        if (i % 1000 == 999 || i == n - 1)
            sqlite3_exec(h, "COMMIT", NULL, NULL, NULL);
    }
    double secs = (double)(vp_mono_us() - t0) / 1e6;
    sqlite3_finalize(v);
    sqlite3_finalize(m);
    sqlite3_finalize(r);
    sqlite3_close(h);
    return (double)n / secs;
}

/* Validation alone: beacon_parse (beacon_check, then a filtered jansson copy) + json_decref, one
 * thread: an upper bound of what the event loop pays (it calls beacon_check only). */
static double parse_only(int n, bool resources)
{
    static char body[64 * 1024];
    char reason[96];
    int64_t spent = 0;
    for (int i = 0; i < n; i++) {
        int len = build(body, sizeof body, i, resources);
        int64_t t = vp_mono_us();
        json_t *p = NULL;
        if (beacon_parse(body, (size_t)len, &p, reason, sizeof reason) != 0) {
            fprintf(stderr, "store_bench: parse: %s\n", reason);
            exit(1);
        }
        json_decref(p);
        spent += vp_mono_us() - t;
    }
    return (double)n / ((double)spent / 1e6);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double a[RUNS], int runs)
{
    qsort(a, (size_t)runs, sizeof a[0], cmp_d);
    return a[runs / 2];
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 20000;
    const char *dir = argc > 2 ? argv[2] : "/tmp";
    if (n <= 0)
        n = 20000;
    const char *only = argc > 3 ? argv[3] : NULL;
    if (only && strcmp(only, "metrics") != 0 && strcmp(only, "realistic") != 0) {
        fprintf(stderr, "store_bench: shape must be metrics or realistic\n");
        return 2;
    }
    const char *re = getenv("STORE_BENCH_RUNS");
    int runs = re ? (int)strtol(re, NULL, 10) : RUNS;
    if (runs < 1 || runs > RUNS)
        runs = RUNS;
    bool store_only = getenv("STORE_BENCH_STORE_ONLY") != NULL;
    const char *ids = getenv("STORE_BENCH_IDS");
    time_ids = ids && strcmp(ids, "time") == 0;
    const char *rate = getenv("STORE_BENCH_RATE");
    offer_rate = rate ? strtod(rate, NULL) : 0;
    if (!(offer_rate >= 0 && offer_rate <= 1e7)) {
        fprintf(stderr, "store_bench: STORE_BENCH_RATE must be 0..10000000\n");
        return 2;
    }
    time_base_ms = vp_now_ms();
    for (int shape = 0; shape < 2; shape++) {
        bool res = shape == 1;
        if (only && strcmp(only, res ? "realistic" : "metrics") != 0)
            continue;
        int cnt = res ? n / 4 : n;
        double st[RUNS], ce[RUNS] = {0}, pa[RUNS] = {0}, cpu[RUNS], call[RUNS], wr[RUNS],
                         wcpu[RUNS], kcpu[RUNS], bm[RUNS];
        long long rows = -1, minrows = -1;
        double p99 = 0;
        for (int k = 0; k < runs; k++) {
            st[k] = run(dir, cnt, res, &rows);
            cpu[k] = last_cpu_us;
            call[k] = last_call_cpu_us;
            wr[k] = last_written;
            wcpu[k] = last_writer_us;
            kcpu[k] = last_ckpt_us;
            bm[k] = last_batch_mean;
            if (last_p99_us > p99)
                p99 = last_p99_us;
            if (minrows < 0 || rows < minrows)
                minrows = rows;
            if (!store_only) {
                ce[k] = bare(dir, cnt, res);
                pa[k] = parse_only(cnt, res);
            }
        }
        double a = median(st, runs), b = median(ce, runs), c = median(pa, runs),
               u = median(cpu, runs), cc = median(call, runs), wb = median(wr, runs);
        printf("%-30s %6d payloads: store %7.0f/s, CPU %.1f us/payload, ingest call CPU %.1f us "
               "(ingest call p99 %.0f us, worst of %d), written %.0f B/payload | "
               "bare SQLite %7.0f/s (%3.0f%%) | validation only %7.0f/s | views stored %lld "
               "(min of %d runs)\n",
               res ? "realistic (5 metrics + 60 res)" : "metrics-only (5 metrics)", cnt, a, u, cc, p99,
               runs, wb, b, b > 0 ? 100.0 * a / b : 0.0, c, minrows, runs);
        if (offer_rate > 0)
            printf("%-30s offered %.0f/s: writer CPU %.1f us/payload, checkpointer %.1f, "
                   "%.0f payloads per batch (medians of %d runs)\n",
                   "", offer_rate, median(wcpu, runs), median(kcpu, runs), median(bm, runs), runs);
    }
    return 0;
}
