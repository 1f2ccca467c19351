/* store/: a database that cannot be written (the disk fills up). The file size limit
 * (RLIMIT_FSIZE, with SIGXFSZ ignored) makes every write past the current size fail as a full
 * disk would. Beacons must then be refused with VP_ERR_IO and a reason naming the SQLite error,
 * not acknowledged and lost; when space returns, one beacon per second tries again and the
 * store accepts and commits as before. */
#include "config.h"

#include "store/store.h"

#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/vp_err.h"
#include "store/store_internal.h"
#include "db_test_util.h"
#include "tap.h"

/* One beacon for view vid with a long URL (so that a few fill a page); its return code and
 * the reason. */
static int ingest(struct store *s, int i, char *reason, size_t cap)
{
    char body[3000], pad[1501];
    memset(pad, 'x', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    int w = snprintf(body, sizeof body,
                     "{\"v\":1,\"vid\":\"full%08d\",\"url\":\"/p/%d/%s\",\"nav\":\"navigate\","
                     "\"t0\":1764000000000,\"dev\":\"desktop\",\"m\":[{\"n\":\"LCP\",\"id\":\"l\","
                     "\"v\":1000}]}",
                     i, i, pad);
    if (w < 0 || (size_t)w >= sizeof body)
        abort();
    struct store_beacon_ctx ctx = {"127.0.0.1", "Mozilla/5.0", 1764000001000, NULL, 1.0};
    reason[0] = '\0';
    return store_ingest_beacon(s, body, (size_t)w, &ctx, reason, cap);
}

static off_t size_of(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? st.st_size : 0;
}

int main(void)
{
    char dir[] = "/tmp/vp_unwritable_XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char p[128], wal[140];
    snprintf(p, sizeof p, "%s/v.db", dir);
    snprintf(wal, sizeof wal, "%s/v.db-wal", dir);
    signal(SIGXFSZ, SIG_IGN);
    struct store_options opt;
    store_options_default(&opt);
    opt.retention_days = 0;
    struct store *s = NULL;
    char err[256], reason[160];
    TAP_OK(store_open(&s, p, &opt, err, sizeof err) == 0, "unwritable/open");
    if (!s)
        TAP_DONE();
    TAP_OK(ingest(s, 0, reason, sizeof reason) == 0 && store_sync(s) == 0, "unwritable/first_ok");

    /* The disk is full: no file may grow past its current size (plus a little). */
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    off_t biggest = size_of(p) > size_of(wal) ? size_of(p) : size_of(wal);
    lim.rlim_cur = (rlim_t)biggest + 4096;
    lim.rlim_max = old.rlim_max;
    TAP_OK(setrlimit(RLIMIT_FSIZE, &lim) == 0, "unwritable/limit_set");
    int acked = 0, refused = 0, other = 0;
    bool named = false;
    for (int i = 1; i <= 400; i++) {
        int rc = ingest(s, i, reason, sizeof reason);
        if (rc == 0)
            acked++;
        else if (rc == VP_ERR_IO) {
            refused++;
            named |= strstr(reason, "database cannot be written") != NULL;
        } else {
            other++;
        }
        if (i % 50 == 0)
            (void)store_sync(s); /* the batch is written (and fails) before the next ones */
    }
    (void)store_sync(s);
    TAP_OK(refused > 0 && named, "unwritable/refused_with_reason (%d refused: %s)", refused,
           reason);
    /* Only the first batch that met the full disk was acknowledged, not every beacon sent while
     * it stays full. */
    TAP_OK(acked <= 50, "unwritable/few_acknowledged (%d)", acked);
    TAP_OK(other == 0, "unwritable/no_other_errors (%d)", other);
    struct store_stats st;
    store_get_stats(s, &st);
    TAP_OK(st.write_failing && st.write_errors > 0, "unwritable/stats_show_failing");

    /* Space is back: after the retry interval a beacon is accepted and committed. */
    TAP_OK(setrlimit(RLIMIT_FSIZE, &old) == 0, "unwritable/limit_lifted");
    usleep(1100 * 1000);
    int ok = -1;
    for (int i = 0; i < 20 && ok != 0; i++) {
        ok = ingest(s, 1000 + i, reason, sizeof reason);
        (void)store_sync(s);
        if (ok != 0)
            usleep(200 * 1000);
    }
    TAP_OK(ok == 0, "unwritable/accepts_again");
    /* Nothing acknowledged was lost: the refused batch was written once there was room. */
    long long stored = db_q1(p, "SELECT count(*) FROM views WHERE id LIKE 'full00000%'");
    TAP_OK(stored == 1 + acked, "unwritable/acknowledged_all_stored (%lld of %d)", stored - 1,
           acked);
    TAP_OK(ingest(s, 2000, reason, sizeof reason) == 0 && store_sync(s) == 0,
           "unwritable/next_accepted");
    TAP_OK(db_q1(p, "SELECT count(*) FROM views WHERE id LIKE 'full00002000'") == 1,
           "unwritable/committed_again");
    store_get_stats(s, &st);
    TAP_OK(!st.write_failing, "unwritable/stats_show_recovered");
    store_free(s);
    TAP_OK(db_q1(p, "SELECT count(*) FROM views") == stored + 2, "unwritable/all_committed_at_close");

    /* Not a regular file: refused before SQLite opens it (a FIFO would block the open; a
     * device would get a -journal created beside it). */
    char fifo[140], fifo_journal[160];
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    snprintf(fifo_journal, sizeof fifo_journal, "%s/fifo-journal", dir);
    TAP_OK(mkfifo(fifo, 0600) == 0, "unwritable/fifo_made");
    const char *bad[] = {fifo, dir, "/dev/null"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct store *b = NULL;
        err[0] = '\0';
        int rc = store_open(&b, bad[i], &opt, err, sizeof err);
        TAP_OK(rc == VP_ERR_IO && !b && (strstr(err, "not a regular file") ||
                                         strstr(err, "a directory")),
               "unwritable/refused_not_regular %s (%d: %s)", bad[i], rc, err);
    }
    TAP_OK(access(fifo_journal, F_OK) != 0, "unwritable/no_journal_beside_fifo");
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    TAP_DONE();
}
