/* Cost of the proxy's request records in the store: a producer thread paces RATE records per
 * second (the shape the proxy records for a plain GET of a 1 KiB page) into store_record_request
 * for SECS seconds, then store_free commits the rest. Reports what the writer side costs per
 * record in CPU time (process CPU minus the producer thread's own), the commits and rows per
 * commit, the WAL bytes written per record, and the producer's cost per call. The count in the
 * database must equal the acknowledged records. CPU per record is the figure to compare between
 * builds: it does not depend on how busy the machine is the way wall-clock rates do.
 * The share of rows written by multi-row INSERTs is printed too. KIND "injected" records injected
 * HTML pages instead (a fresh view id each, as bench/inject.sh's requests).
 * Usage: record_bench [RATE] [SECS] [DIR] [plain|injected] (defaults 12000, 5, /tmp, plain). */
#include "config.h"

#include "store/store.h"

#include <inttypes.h>
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

static int64_t cpu_us(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t proc_cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec +
           ru.ru_stime.tv_usec;
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
    if (rate <= 0 || rate > 10000000 || secs <= 0 || secs > 3600 ||
        (!injected && strcmp(kind, "plain") != 0)) {
        fprintf(stderr,
                "usage: record_bench [RATE 1..10000000] [SECS 1..3600] [DIR] [plain|injected]\n");
        return 2;
    }
    char path[512], wal[530];
    int w = snprintf(path, sizeof path, "%s/record_bench.%d.db", dir, (int)getpid());
    if (w < 0 || (size_t)w >= sizeof path)
        return 2;
    w = snprintf(wal, sizeof wal, "%s-wal", path);
    if (w < 0 || (size_t)w >= sizeof wal)
        return 2;
    struct store_options o;
    store_options_default(&o);
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
    int64_t cpu0 = proc_cpu_us(), self0 = cpu_us(CLOCK_THREAD_CPUTIME_ID);
    int64_t t0 = vp_mono_us(), call_us = 0;
    long total = rate * secs, sent = 0, acked = 0;
    /* Paced in 1 ms ticks, as an event loop finishing exchanges would be. */
    while (sent < total) {
        int64_t due = (int64_t)((double)sent * 1e6 / (double)rate);
        int64_t now = vp_mono_us() - t0;
        if (now < due) {
            struct timespec ts = {0, (long)((due - now) * 1000)};
            nanosleep(&ts, NULL);
            continue;
        }
        int64_t now_us = vp_now_ms() * 1000;
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
        int64_t c0 = cpu_us(CLOCK_THREAD_CPUTIME_ID);
        if (store_record_request(s, &r) == 0)
            acked++;
        call_us += cpu_us(CLOCK_THREAD_CPUTIME_ID) - c0;
        sent++;
    }
    struct store_stats st;
    store_get_stats(s, &st);
    struct stat sb;
    int64_t wal_bytes = stat(wal, &sb) == 0 ? (int64_t)sb.st_size : 0;
    int64_t self1 = cpu_us(CLOCK_THREAD_CPUTIME_ID);
    store_free(s);
    int64_t cpu1 = proc_cpu_us();
    int64_t writer_us = (cpu1 - cpu0) - (self1 - self0);
    int64_t rows = count_rows(path);
    double wall_s = (double)(vp_mono_us() - t0) / 1e6;
    printf("record_bench: %ld records at %ld/s in %.1f s: %ld acknowledged, %" PRId64
           " in the database\n",
           sent, rate, wall_s, acked, rows);
    printf("writer CPU per record: %.2f us; producer CPU per call: %.2f us\n",
           (double)writer_us / (double)(acked ? acked : 1),
           (double)call_us / (double)(sent ? sent : 1));
    printf("commits: %" PRIu64 " (%.1f records each); WAL file at the end of the load: %.1f MiB "
           "(%.0f bytes per record)\n",
           st.batches, st.batches ? (double)st.committed_rows / (double)st.batches : 0.0,
           (double)wal_bytes / 1048576.0, (double)wal_bytes / (double)(acked ? acked : 1));
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
