/* kill -9 durability under overload: a child process ingests beacons as fast as it can (no
 * throttling: the store's admission control is what keeps acknowledgements honest), also
 * records a proxy request per beacon, and reports each acknowledgement (index, monotonic time,
 * refusals so far) through a pipe. The parent SIGKILLs it mid-stream, drains the pipe, then
 * opens the database: PRAGMA integrity_check must say ok and every beacon acknowledged more than
 * max_lag (2 x batch interval) plus a scheduling slack before the kill must be present, with its
 * metric and resources. Repeated several times on the same file, killing at different points. */
#include "config.h"

#include "store/store.h"

#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/vp_buf.h"
#include "common/vp_err.h"
#include "tap.h"

#define BATCH_MS 50
#define LAG_MS (2 * BATCH_MS) /* the store's default max_lag_ms */
/* Scheduling slack on a shared 2-core machine (the writer may be descheduled mid-batch). The
 * admission control measures the writer's real cost, so slower sanitizer builds are admitted
 * less, not acknowledged later; they get more slack only for their slower scheduling. */
#if defined(__SANITIZE_ADDRESS__)
#define SLACK_MS 400
#else
#define SLACK_MS 200
#endif
#define MAX_ACKS 400000
#define ROUNDS 4

struct ack {
    int idx;
    int full; /* VP_ERR_FULL answers so far */
    int64_t at_us;
};

static void child(const char *path, int fd, int round)
{
    struct store_options opt;
    store_options_default(&opt);
    opt.batch_ms = BATCH_MS;
    opt.retention_days = 0; /* queue_max and max_lag_ms: defaults */
    struct store *s = NULL;
    char err[256];
    if (store_open(&s, path, &opt, err, sizeof err) != 0)
        _exit(3);
    struct store_beacon_ctx ctx = {"127.0.0.1", "Firefox/133.0", 0, NULL, 1.0};
    char body[512], reason[64];
    int full = 0;
    for (int i = 0; i < 99999999; i++) { /* until killed */
        int n = snprintf(body, sizeof body,
                         "{\"v\":1,\"vid\":\"r%d_%08d\",\"url\":\"/d/%d\",\"t0\":1764000000000,"
                         "\"m\":[{\"n\":\"LCP\",\"id\":\"x\",\"v\":%d}],"
                         "\"res\":[{\"u\":\"/a.js\",\"s\":1},{\"u\":\"/b.css\",\"s\":2}]}",
                         round, i, i, i % 4000);
        int rc = store_ingest_beacon(s, body, (size_t)n, &ctx, reason, sizeof reason);
        if (rc == 0) {
            struct ack a = {i, full, vp_mono_us()};
            if (write(fd, &a, sizeof a) != (ssize_t)sizeof a)
                _exit(4);
        } else if (rc == VP_ERR_FULL) {
            full++;
        } else {
            _exit(5);
        }
        struct store_request_rec rec = {0};
        rec.accept_us = vp_now_ms() * 1000;
        rec.status = 200;
        rec.method = "GET";
        rec.url = "/d/x.js";
        rec.protocol = "h1";
        rec.referer = "http://localhost/d/1";
        if (store_record_request(s, &rec) != 0 && store_record_request(s, &rec) == VP_ERR_NOMEM)
            _exit(6);
    }
    _exit(0);
}

static long long count_round(const char *path, int round, int upto, char *ic, size_t iccap)
{
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    long long n = -1;
    ic[0] = '\0';
    if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        goto out;
    if (sqlite3_prepare_v2(h, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        snprintf(ic, iccap, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    st = NULL;
    char lo[32], hi[32];
    snprintf(lo, sizeof lo, "r%d_%08d", round, 0);
    snprintf(hi, sizeof hi, "r%d_%08d", round, upto);
    if (sqlite3_prepare_v2(h,
                           "SELECT count(*) FROM views v JOIN metrics m ON m.view_seq = v.seq "
                           "WHERE v.id >= ?1 AND v.id <= ?2 AND "
                           "(SELECT count(*) FROM resources r WHERE r.view_seq = v.seq) = 2",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, lo, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, hi, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
    }
out:
    sqlite3_finalize(st);
    sqlite3_close(h);
    return n;
}

int main(void)
{
    char dir[] = "/tmp/vp_test_durab.XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char path[128];
    snprintf(path, sizeof path, "%s/d.db", dir);
    for (int round = 0; round < ROUNDS; round++) {
        int fds[2];
        if (pipe(fds) != 0)
            return 1;
        pid_t pid = fork();
        if (pid == 0) {
            close(fds[0]);
            child(path, fds[1], round);
        }
        close(fds[1]);
        struct ack a;
        int last_idx = -1, safe_idx = -1, acks = 0;
        int64_t start = vp_mono_us(), run_us = (600 + round * 230) * 1000;
        /* Collect acks for run_us, then kill; acks are read in order of acknowledgement. */
        static struct ack seen[MAX_ACKS];
        while (vp_mono_us() - start < run_us && read(fds[0], &a, sizeof a) == (ssize_t)sizeof a)
            if (acks < MAX_ACKS)
                seen[acks++] = a;
        kill(pid, SIGKILL);
        int64_t kill_us = vp_mono_us();
        int status = 0;
        waitpid(pid, &status, 0);
        /* The acks still in the pipe were made before the kill too. */
        while (read(fds[0], &a, sizeof a) == (ssize_t)sizeof a)
            if (acks < MAX_ACKS)
                seen[acks++] = a;
        close(fds[0]);
        int refused = 0;
        for (int i = 0; i < acks; i++) {
            last_idx = seen[i].idx;
            refused = seen[i].full;
            if (seen[i].at_us < kill_us - (LAG_MS + SLACK_MS) * 1000)
                safe_idx = seen[i].idx;
        }
        /* indexes ack'ed are consecutive unless the queue was full; count those <= safe_idx */
        int expect = 0;
        for (int i = 0; i < acks; i++)
            if (seen[i].idx <= safe_idx)
                expect++;
        char ic[64];
        long long have = count_round(path, round, safe_idx < 0 ? 0 : safe_idx, ic, sizeof ic);
        TAP_OK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "durability/%d: child killed",
               round);
        TAP_OK(strcmp(ic, "ok") == 0, "durability/%d: integrity_check %s", round, ic);
        TAP_OK(safe_idx > 0 && have >= expect,
               "durability/%d: %lld of %d acks older than %d ms present (%d acks, last %d, "
               "%d refused with 503 under load)",
               round, have, expect, LAG_MS + SLACK_MS, acks, last_idx, refused);
    }
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
    TAP_DONE();
}
