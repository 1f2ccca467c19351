/* Cost of the proxy's request records in the store: a producer thread paces RATE records per
 * second (the shape the proxy records for a plain GET of a 1 KiB page) into store_record_request
 * for SECS seconds, then store_free commits the rest. Reports what the writer side costs per
 * record in CPU time (process CPU minus the producer thread's own), the commits and rows per
 * commit, the WAL bytes written per record, and the producer's cost per call. The count in the
 * database must equal the acknowledged records. CPU per record is the figure to compare between
 * builds: it does not depend on how busy the machine is the way wall-clock rates do.
 * The share of rows written by multi-row INSERTs is printed too. KIND "injected" records injected
 * HTML pages instead (a fresh view id each, as bench/inject.sh's requests).
 * The producer's cost is timed per pacing tick (all the calls due at once), less the measured cost
 * of reading the thread's CPU clock, a system call of about 0.3 us that timing each call alone
 * added to the figure twice.
 * With "probe", every thread runs on one CPU, with a probe thread that stands for an event loop
 * sharing its CPU with the writer: it sleeps 200 us at a time and records how late it wakes
 * (cyclictest's measure); the p99 and maximum lateness show how long the writer keeps a waiting
 * thread off the CPU, the cause of the proxy's one-connection p99 (README, bench/p99.py).
 * With RECORD_BENCH_BATCH=N in the environment there is no pacing: the records go in bursts of N,
 * each committed as one batch (store_sync) before the next, with no admission limit, so that the
 * work per record is the same on every run and under callgrind (bench/record_cost.sh counts the
 * writer's instructions per record that way).
 * Usage: record_bench [RATE] [SECS] [DIR] [plain|injected] [probe] (defaults 12000, 5, /tmp,
 * plain). */
#include "config.h"

#include "store/store.h"

#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/vp_buf.h"
#include "common/vp_err.h"
#include "store/store_internal.h"

static int64_t cpu_us(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t proc_cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec +
           ru.ru_stime.tv_usec;
}

/* The cost of one cpu_us(CLOCK_THREAD_CPUTIME_ID) reading, as a timed call sees it. */
static double clock_cost_us(void)
{
    int64_t c0 = cpu_us(CLOCK_THREAD_CPUTIME_ID);
    for (int i = 0; i < 10000; i++)
        (void)cpu_us(CLOCK_THREAD_CPUTIME_ID);
    return (double)(cpu_us(CLOCK_THREAD_CPUTIME_ID) - c0) / 10001.0;
}

/* Bytes this process passed to write(2) and friends so far (/proc/self/io wchar): the WAL
 * frames and the checkpoints' copies into the database file. */
static int64_t written_bytes(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    if (!f)
        return -1;
    char line[128];
    long long v = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "wchar: %lld", &v) == 1)
            break;
    fclose(f);
    return v;
}

#define PROBE_SLEEP_US 200
#define PROBE_MAX 200000

struct probe {
    pthread_t thread;
    volatile int stop;
    size_t n;
    int64_t cpu_us; /* the probe's own CPU, not the writer's */
    int64_t late_us[PROBE_MAX];
};

static void *probe_main(void *arg)
{
    struct probe *p = arg;
    while (!p->stop && p->n < PROBE_MAX) {
        int64_t t0 = vp_mono_us();
        struct timespec ts = {0, PROBE_SLEEP_US * 1000};
        nanosleep(&ts, NULL);
        p->late_us[p->n++] = vp_mono_us() - t0 - PROBE_SLEEP_US;
    }
    p->cpu_us = cpu_us(CLOCK_THREAD_CPUTIME_ID);
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int64_t count_rows(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT count(*) FROM requests", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

int main(int argc, char **argv)
{
    long rate = argc > 1 ? strtol(argv[1], NULL, 10) : 12000;
    long secs = argc > 2 ? strtol(argv[2], NULL, 10) : 5;
    const char *dir = argc > 3 ? argv[3] : "/tmp";
    const char *kind = argc > 4 ? argv[4] : "plain";
    bool injected = strcmp(kind, "injected") == 0;
    bool probing = argc > 5 && strcmp(argv[5], "probe") == 0;
    if (rate <= 0 || rate > 10000000 || secs <= 0 || secs > 3600 ||
        (!injected && strcmp(kind, "plain") != 0) || (argc > 5 && !probing)) {
        fprintf(stderr, "usage: record_bench [RATE 1..10000000] [SECS 1..3600] [DIR] "
                        "[plain|injected] [probe]\n");
        return 2;
    }
    if (probing) {
        /* Before store_open: the writer and checkpointer threads inherit the mask. */
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(0, &one);
        if (sched_setaffinity(0, sizeof one, &one) != 0) {
            perror("record_bench: sched_setaffinity");
            return 1;
        }
    }
    double clock_us = clock_cost_us();
    char path[512], wal[530];
    int w = snprintf(path, sizeof path, "%s/record_bench.%d.db", dir, (int)getpid());
    if (w < 0 || (size_t)w >= sizeof path)
        return 2;
    w = snprintf(wal, sizeof wal, "%s-wal", path);
    if (w < 0 || (size_t)w >= sizeof wal)
        return 2;
    struct store_options o;
    store_options_default(&o);
    const char *burst_env = getenv("RECORD_BENCH_BATCH");
    long burst = burst_env ? strtol(burst_env, NULL, 10) : 0;
    if (burst_env && (burst <= 0 || burst > 100000)) {
        fprintf(stderr, "record_bench: RECORD_BENCH_BATCH must be 1..100000\n");
        return 2;
    }
    if (burst) {
        o.max_lag_ms = 3600000;
        o.batch_rows = (unsigned)burst + 1;
    }
    struct store *s = NULL;
    char err[256];
    if (store_open(&s, path, &o, err, sizeof err) != 0) {
        fprintf(stderr, "record_bench: %s\n", err);
        return 1;
    }
    struct store_request_rec r = {
        .status = 200,
        .method = "GET",
        .url = "/1KiB",
        .host = "127.0.0.1:8080",
        .protocol = "h1",
        .user_agent = "wrk",
        .content_type = "text/html",
        .reused = true,
        .injected = injected,
    };
    char vid[33];
    struct probe *pr = NULL;
    if (probing) {
        pr = calloc(1, sizeof *pr);
        if (!pr || pthread_create(&pr->thread, NULL, probe_main, pr) != 0) {
            fprintf(stderr, "record_bench: cannot start the probe\n");
            return 1;
        }
    }
    int64_t wchar0 = written_bytes();
    int64_t cpu0 = proc_cpu_us(), self0 = cpu_us(CLOCK_THREAD_CPUTIME_ID);
    int64_t t0 = vp_mono_us(), call_us = 0, ticks = 0;
    long total = rate * secs, sent = 0, acked = 0;
    /* Paced in 1 ms ticks, as an event loop finishing exchanges would be. */
    while (sent < total) {
        int64_t due = (int64_t)((double)sent * 1e6 / (double)rate);
        int64_t now = vp_mono_us() - t0;
        if (!burst && now < due) {
            struct timespec ts = {0, (long)((due - now) * 1000)};
            nanosleep(&ts, NULL);
            continue;
        }
        /* Every call due now, timed together. */
        long upto = burst ? sent + burst : (long)((double)now * (double)rate / 1e6) + 1;
        if (upto > total)
            upto = total;
        int64_t c0 = cpu_us(CLOCK_THREAD_CPUTIME_ID);
        for (; sent < upto; sent++) {
            /* Microseconds, as the proxy's timings: each record's times differ from the last
             * one's (the writer binds only what changed). */
            int64_t now_us = wall_us();
            r.accept_us = now_us - 300;
            r.head_done_us = now_us - 250;
            r.sent_us = now_us - 200;
            r.first_byte_us = now_us - 100;
            r.last_byte_us = now_us;
            r.bytes_in = 40;
            r.bytes_out = 1300;
            r.upstream_bytes = 1024;
            if (injected) {
                snprintf(vid, sizeof vid, "%032lx", sent);
                r.view_id = vid;
            }
            if (store_record_request(s, &r) == 0)
                acked++;
        }
        call_us += cpu_us(CLOCK_THREAD_CPUTIME_ID) - c0;
        ticks++;
        if (burst && store_sync(s) != 0) {
            fprintf(stderr, "record_bench: store_sync failed\n");
            return 1;
        }
    }
    struct store_stats st;
    store_get_stats(s, &st);
    struct stat sb;
    int64_t wal_bytes = stat(wal, &sb) == 0 ? (int64_t)sb.st_size : 0;
    int64_t self1 = cpu_us(CLOCK_THREAD_CPUTIME_ID);
    store_free(s);
    int64_t wchar1 = written_bytes();
    if (pr) {
        pr->stop = 1;
        pthread_join(pr->thread, NULL);
    }
    int64_t cpu1 = proc_cpu_us();
    int64_t writer_us = (cpu1 - cpu0) - (self1 - self0) - (pr ? pr->cpu_us : 0);
    int64_t rows = count_rows(path);
    double wall_s = (double)(vp_mono_us() - t0) / 1e6;
    printf("record_bench: %ld records at %ld/s in %.1f s: %ld acknowledged, %" PRId64
           " in the database\n",
           sent, rate, wall_s, acked, rows);
    printf("writer CPU per record: %.2f us; producer CPU per call: %.2f us\n",
           (double)writer_us / (double)(acked ? acked : 1),
           ((double)call_us - (double)ticks * clock_us) / (double)(sent ? sent : 1));
    printf("commits: %" PRIu64 " (%.1f records each); WAL file at the end of the load: %.1f MiB "
           "(%.0f bytes per record)\n",
           st.batches, st.batches ? (double)st.committed_rows / (double)st.batches : 0.0,
           (double)wal_bytes / 1048576.0, (double)wal_bytes / (double)(acked ? acked : 1));
    if (wchar0 >= 0 && wchar1 >= wchar0)
        printf("bytes written (WAL and checkpoints, until every record is committed): %.0f per "
               "record\n",
               (double)(wchar1 - wchar0) / (double)(acked ? acked : 1));
    if (pr && pr->n) {
        qsort(pr->late_us, pr->n, sizeof pr->late_us[0], cmp_i64);
        printf("probe on the writer's CPU (%zu wake-ups): late p50 %" PRId64 " us, p99 %" PRId64
               " us, p99.9 %" PRId64 " us, max %" PRId64 " us\n",
               pr->n, pr->late_us[pr->n / 2], pr->late_us[pr->n * 99 / 100],
               pr->late_us[pr->n * 999 / 1000], pr->late_us[pr->n - 1]);
    }
    free(pr);
    printf("rows written by multi-row INSERTs: %.1f %% (of those committed during the load)\n",
           st.committed_rows ? 100.0 * (double)st.requests_grouped / (double)st.committed_rows
                             : 0.0);
    unlink(path);
    unlink(wal);
    char shm[540];
    w = snprintf(shm, sizeof shm, "%s-shm", path);
    if (w > 0 && (size_t)w < sizeof shm)
        unlink(shm);
    return rows == acked ? 0 : 1;
}
