/* store/: acknowledged items a full disk keeps out of the database at shutdown. The file size
 * limit (RLIMIT_FSIZE, SIGXFSZ ignored) stands in for the full disk, as in
 * test_store_unwritable. store_close retries for close_grace_ms, then writes the side file
 * DB-pending; the next store_open writes its items into the database and deletes it. A side
 * file that is truncated, altered or malformed is refused as a whole and left in place, without
 * a crash; every prefix of a valid file is refused by the reader. */
#include "config.h"

#include "store/store.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/vp_buf.h"
#include "common/vp_err.h"
#include "db_test_util.h"
#include "store/pending.h"
#include "store/store_internal.h"
#include "tap.h"

static char dir[] = "/tmp/vp_pending_XXXXXX";
static char db[128], side[160];
static struct rlimit unlimited;

static int beacon(struct store *s, const char *vid, int pad)
{
    char body[4000], p[2001];
    if (pad > 2000)
        pad = 2000;
    memset(p, 'x', (size_t)pad);
    p[pad] = '\0';
    int w = snprintf(body, sizeof body,
                     "{\"v\":1,\"vid\":\"%s\",\"url\":\"/p/%s\",\"nav\":\"navigate\","
                     "\"t0\":1764000000000,\"dev\":\"desktop\",\"m\":[{\"n\":\"LCP\",\"id\":\"l\","
                     "\"v\":1000}]}",
                     vid, p);
    if (w < 0 || (size_t)w >= sizeof body)
        abort();
    struct store_beacon_ctx ctx = {"127.0.0.1", "Mozilla/5.0 Test", 1764000001000, "run-a", 0.5};
    char reason[160];
    return store_ingest_beacon(s, body, (size_t)w, &ctx, reason, sizeof reason);
}

static int request(struct store *s, int i)
{
    char url[64];
    snprintf(url, sizeof url, "/rq/%d", i);
    struct store_request_rec r = {.accept_us = 1764000000000000 + i,
                                  .last_byte_us = 1764000000100000 + i,
                                  .bytes_out = 1234,
                                  .status = 200,
                                  .method = "GET",
                                  .url = url,
                                  .host = "localhost:8080",
                                  .protocol = "h1",
                                  .user_agent = "curl/8"};
    return store_record_request(s, &r);
}

static off_t size_of(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? st.st_size : 0;
}

static bool exists(const char *p)
{
    return access(p, F_OK) == 0;
}

static void limit_to_current(void)
{
    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", db);
    off_t biggest = size_of(db) > size_of(wal) ? size_of(db) : size_of(wal);
    struct rlimit lim = {(rlim_t)biggest + 4096, unlimited.rlim_max};
    if (setrlimit(RLIMIT_FSIZE, &lim) != 0)
        abort();
}

static void lift_limit(void)
{
    if (setrlimit(RLIMIT_FSIZE, &unlimited) != 0)
        abort();
}

static void fresh(void)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -f %s %s-wal %s-shm %s %s.tmp", db, db, db, side, side);
    if (system(cmd) != 0)
        abort();
}

/* Fills the "disk" and acknowledges what the store still takes: beacon ids vid_prefix + n into
 * acked (count returned), plus request records /rq/N (count in *nreq). Ends with a batch the
 * database refused. */
static int fill_and_ack(struct store *s, const char *prefix, char acked[][32], int max, int *nreq)
{
    char vid[32];
    snprintf(vid, sizeof vid, "%sfirst000", prefix);
    if (beacon(s, vid, 10) != 0 || store_sync(s) != 0)
        abort();
    limit_to_current();
    int n = 0, refused = 0;
    *nreq = 0;
    for (int i = 0; i < 2000 && refused == 0 && n < max; i++) {
        snprintf(vid, sizeof vid, "%s%08d", prefix, i);
        int rc = beacon(s, vid, 1500);
        if (rc == 0)
            memcpy(acked[n++], vid, sizeof vid);
        else if (rc == VP_ERR_IO)
            refused++;
        if (request(s, i) == 0)
            (*nreq)++;
        if (i % 20 == 19)
            (void)store_sync(s);
    }
    store_count_rejection(s, "test-reason");
    (void)store_sync(s);
    return refused ? n : -1;
}

static long long count_acked(char acked[][32], int n)
{
    long long found = 0;
    for (int i = 0; i < n; i++) {
        char q[128];
        snprintf(q, sizeof q, "SELECT count(*) FROM views WHERE id = '%s'", acked[i]);
        found += db_q1(db, q) == 1;
    }
    return found;
}

static struct store *open_store(unsigned grace_ms, char *err, size_t cap)
{
    struct store_options opt;
    store_options_default(&opt);
    opt.retention_days = 0;
    opt.close_grace_ms = grace_ms;
    struct store *s = NULL;
    if (store_open(&s, db, &opt, err, cap) != 0)
        return NULL;
    return s;
}

static void *lift_later(void *arg)
{
    usleep((useconds_t)(intptr_t)arg * 1000);
    lift_limit();
    return NULL;
}

/* Full disk through the shutdown: the side file, then the replay. */
static void case_spill_and_replay(void)
{
    fresh();
    char err[256], msg[1024];
    struct store *s = open_store(400, err, sizeof err);
    TAP_OK(s != NULL, "pending/open (%s)", s ? "" : err);
    if (!s)
        return;
    static char acked[400][32];
    int nreq = 0;
    int n = fill_and_ack(s, "spill", acked, 400, &nreq);
    TAP_OK(n > 0, "pending/acknowledged_then_refused (%d acknowledged, %d request records)", n,
           nreq);
    long long before = db_q1(db, "SELECT count(*) FROM views WHERE id LIKE 'spill0%'");
    int64_t t0 = vp_mono_us();
    store_close(s, msg, sizeof msg);
    double took = (double)(vp_mono_us() - t0) / 1e6;
    lift_limit();
    TAP_OK(strstr(msg, "saved to") && strstr(msg, side) && strstr(msg, "could not be written"),
           "pending/close_message: %s", msg);
    TAP_OK(took >= 0.35 && took < 5, "pending/close_retried_for_the_grace (%.2f s)", took);
    TAP_OK(exists(side), "pending/side_file_written");
    TAP_OK(before < n, "pending/not_all_in_db_before_replay (%lld of %d)", before, n);
    TAP_OK(!strchr(msg, '\n'), "pending/close_message_one_line");

    s = open_store(400, err, sizeof err);
    TAP_OK(s != NULL, "pending/reopen (%s)", s ? "" : err);
    if (!s)
        return;
    const char *note = store_open_notice(s);
    TAP_OK(strstr(note, "written into it") && strstr(note, side) && !strchr(note, '\n'),
           "pending/replay_notice: %s", note);
    TAP_OK(!exists(side), "pending/side_file_deleted");
    TAP_OK(count_acked(acked, n) == n, "pending/every_acknowledged_beacon_stored (%lld of %d)",
           count_acked(acked, n), n);
    TAP_OK(db_q1(db, "SELECT count(*) FROM views WHERE id LIKE 'spill0%' AND label = 'run-a' "
                     "AND sample_rate = 0.5 AND browser IS NOT NULL") == n,
           "pending/beacon_context_kept");
    TAP_OK(db_q1(db, "SELECT count(*) FROM requests WHERE url LIKE '/rq/%'") == nreq,
           "pending/every_acknowledged_request_stored (%lld of %d)",
           db_q1(db, "SELECT count(*) FROM requests WHERE url LIKE '/rq/%'"), nreq);
    TAP_OK(db_q1(db, "SELECT count(*) FROM requests WHERE url = '/rq/0' AND status = 200 AND "
                     "bytes_out = 1234 AND host = 'localhost:8080' AND user_agent = 'curl/8' "
                     "AND referer IS NULL") == 1,
           "pending/request_fields_kept");
    TAP_OK(beacon(s, "afterreplay00001", 10) == 0 && store_sync(s) == 0 &&
               db_q1(db, "SELECT count(*) FROM views WHERE id = 'afterreplay00001'") == 1,
           "pending/accepts_after_replay");
    store_close(s, msg, sizeof msg);
    TAP_OK(msg[0] == '\0', "pending/quiet_close_when_nothing_refused (%s)", msg);
}

/* The disk frees up within the grace: everything is committed at close, no side file. */
static void case_grace_recovers(void)
{
    fresh();
    char err[256], msg[1024];
    struct store *s = open_store(4000, err, sizeof err);
    TAP_OK(s != NULL, "pending/grace_open");
    if (!s)
        return;
    static char acked[400][32];
    int nreq = 0;
    int n = fill_and_ack(s, "grace", acked, 400, &nreq);
    TAP_OK(n > 0, "pending/grace_acknowledged (%d)", n);
    pthread_t t;
    pthread_create(&t, NULL, lift_later, (void *)(intptr_t)600);
    store_close(s, msg, sizeof msg);
    pthread_join(t, NULL);
    TAP_OK(strstr(msg, "nothing lost") != NULL, "pending/grace_message: %s", msg);
    TAP_OK(!exists(side), "pending/grace_no_side_file");
    TAP_OK(count_acked(acked, n) == n, "pending/grace_all_committed (%lld of %d)",
           count_acked(acked, n), n);
}

static int write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(p, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

static char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *b = malloc(1 << 20);
    *n = b ? fread(b, 1, 1 << 20, f) : 0;
    fclose(f);
    return b;
}

/* A block in the documented format, made here byte by byte (not with pending_out). */
static size_t literal_block(char *out, size_t cap, const char *records, unsigned count)
{
    size_t n = (size_t)snprintf(out, cap, "vitals-pending 1\n%s", records);
    int w =
        snprintf(out + n, cap - n, "end %u %016llx\n", count, (unsigned long long)vp_fnv1a(out, n));
    return n + (size_t)w;
}

/* store_open on a hostile side file: opens, says why, leaves the file as it was, adds nothing. */
static void refused_at_open(const char *name, const void *content, size_t len)
{
    fresh();
    if (write_file(side, content, len) != 0)
        abort();
    char err[256];
    struct store *s = open_store(100, err, sizeof err);
    TAP_OK(s != NULL, "pending/hostile_%s_opens (%s)", name, s ? "" : err);
    if (!s)
        return;
    const char *note = store_open_notice(s);
    TAP_OK(strstr(note, "not replayed, left in place") && strstr(note, side) && !strchr(note, '\n'),
           "pending/hostile_%s_refused: %s", name, note);
    store_free(s);
    size_t n = 0;
    char *now = read_all(side, &n);
    TAP_OK(now && n == len && memcmp(now, content, len) == 0, "pending/hostile_%s_kept", name);
    free(now);
    TAP_OK(db_q1(db, "SELECT count(*) FROM views") == 0 &&
               db_q1(db, "SELECT count(*) FROM requests") == 0,
           "pending/hostile_%s_nothing_written", name);
}

static void case_hostile(void)
{
    /* A valid file by hand: one beacon, one request record, one rejection. */
    const char *bj = "{\"v\":1,\"vid\":\"literal000000001\",\"url\":\"/lit\",\"nav\":\"navigate\","
                     "\"t0\":1764000000000,\"dev\":\"desktop\",\"m\":[{\"n\":\"CLS\",\"id\":\"c\","
                     "\"v\":0.05}]}";
    char recs[4096];
    snprintf(recs, sizeof recs,
             "B13:1764000001000,1:1,2:UA,-,%zu:%s,\n"
             "R1:1,1:2,1:0,1:0,1:3,1:4,1:5,1:6,1:7,1:8,3:404,1:0,1:0,"
             "3:GET,4:/lit,-,2:h2,-,-,-,-,-,-,-,-,-,\n"
             "J7:why-not,\n",
             strlen(bj), bj);
    static char good[8192];
    size_t gl = literal_block(good, sizeof good, recs, 3);

    /* The reader refuses every proper prefix of a valid file, and a valid one twice over. */
    char path[200];
    snprintf(path, sizeof path, "%s/prefix", dir);
    int refused = 0;
    for (size_t cut = 0; cut < gl; cut++) {
        if (write_file(path, good, cut) != 0)
            abort();
        char *b = NULL;
        size_t bl, nrec;
        char err[200];
        int rc = pending_read(path, &b, &bl, &nrec, err, sizeof err);
        refused += rc != 0 && b == NULL;
        free(b);
    }
    TAP_OK(refused == (int)gl, "pending/reader_refuses_every_prefix (%d of %zu)", refused, gl);
    static char twice[16384];
    memcpy(twice, good, gl);
    memcpy(twice + gl, good, gl);
    if (write_file(path, twice, 2 * gl) != 0)
        abort();
    {
        char *b = NULL;
        size_t bl, nrec;
        char err[200];
        TAP_OK(pending_read(path, &b, &bl, &nrec, err, sizeof err) == 0 && nrec == 6,
               "pending/reader_two_blocks");
        free(b);
    }
    /* Every single flipped byte is caught (framing, count or checksum). */
    int caught = 0;
    for (size_t i = 0; i < gl; i++) {
        char c[8192];
        memcpy(c, good, gl);
        c[i] ^= 0x20;
        if (write_file(path, c, gl) != 0)
            abort();
        char *b = NULL;
        size_t bl, nrec;
        char err[200];
        caught += pending_read(path, &b, &bl, &nrec, err, sizeof err) != 0;
        free(b);
    }
    TAP_OK(caught == (int)gl, "pending/reader_catches_every_flipped_byte (%d of %zu)", caught, gl);

    refused_at_open("truncated", good, gl - 7);
    refused_at_open("garbage",
                    "\x7f"
                    "ELF\x02\x01\x01 not a side file at all",
                    31);
    refused_at_open("empty", "", 0);
    char c[8192];
    memcpy(c, good, gl);
    c[40] ^= 1;
    refused_at_open("flipped", c, gl);
    char blk[1024];
    size_t bl;
    bl = literal_block(blk, sizeof blk, "J999999999:x,\n", 1);
    refused_at_open("length_past_end", blk, bl);
    bl = literal_block(blk, sizeof blk, "J3:abc,\n", 2);
    refused_at_open("wrong_count", blk, bl);
    bl = literal_block(blk, sizeof blk, "Q3:abc,\n", 1);
    refused_at_open("unknown_kind", blk, bl);
    bl = literal_block(blk, sizeof blk, "J3:abc,3:def,\n", 1);
    refused_at_open("field_count", blk, bl);
    bl = literal_block(blk, sizeof blk, "B13:1764000001000,1:1,-,-,8:not json,\n", 1);
    refused_at_open("beacon_not_json", blk, bl);
    bl = literal_block(blk, sizeof blk, "B13:1764000001000,3:nan,-,-,2:{},\n", 1);
    refused_at_open("beacon_bad_rate", blk, bl);
    bl = literal_block(blk, sizeof blk, "B2:-5,1:1,-,-,2:{},\n", 1);
    refused_at_open("beacon_bad_time", blk, bl);
    /* A NUL inside a string field (built by hand: snprintf stops at a NUL). */
    {
        char r2[600];
        size_t k = 0;
        const char *a = "R1:1,1:2,1:0,1:0,1:3,1:4,1:5,1:6,1:7,1:8,3:404,1:0,1:0,3:G";
        memcpy(r2 + k, a, strlen(a));
        k += strlen(a);
        r2[k++] = '\0';
        const char *z = "T,4:/lit,-,2:h2,-,-,-,-,-,-,-,-,-,\n";
        memcpy(r2 + k, z, strlen(z));
        k += strlen(z);
        size_t n = (size_t)snprintf(blk, sizeof blk, "vitals-pending 1\n");
        memcpy(blk + n, r2, k);
        n += k;
        int w = snprintf(blk + n, sizeof blk - n, "end 1 %016llx\n",
                         (unsigned long long)vp_fnv1a(blk, n));
        refused_at_open("request_nul_in_string", blk, n + (size_t)w);
    }
    bl = literal_block(blk, sizeof blk,
                       "R1:1,1:2,1:0,1:0,1:3,1:4,1:5,1:6,1:7,1:8,4:1000,1:0,1:0,"
                       "3:GET,4:/lit,-,2:h2,-,-,-,-,-,-,-,-,-,\n",
                       1);
    refused_at_open("request_bad_status", blk, bl);
    bl = literal_block(blk, sizeof blk,
                       "R1:1,1:2,1:0,1:0,1:3,1:4,1:5,20:99999999999999999999,1:7,1:8,3:404,1:0,"
                       "1:0,3:GET,4:/lit,-,2:h2,-,-,-,-,-,-,-,-,-,\n",
                       1);
    refused_at_open("request_number_overflow", blk, bl);
    bl = literal_block(blk, sizeof blk, "J01:a,\n", 1);
    refused_at_open("leading_zero_length", blk, bl);
    /* A valid block followed by a damaged one: nothing of either is written. */
    memcpy(twice, good, gl);
    memcpy(twice + gl, good, gl);
    twice[2 * gl - 3] ^= 1;
    refused_at_open("second_block_damaged", twice, 2 * gl);
    /* Not a regular file. */
    fresh();
    if (mkdir(side, 0700) != 0)
        abort();
    char err[256];
    struct store *s = open_store(100, err, sizeof err);
    TAP_OK(s && strstr(store_open_notice(s), "not a regular file"),
           "pending/hostile_directory_refused: %s", s ? store_open_notice(s) : err);
    store_free(s);
    TAP_OK(rmdir(side) == 0, "pending/hostile_directory_kept");

    /* The literal valid file is replayed: its beacon, request and rejection are written. */
    fresh();
    if (write_file(side, good, gl) != 0)
        abort();
    s = open_store(100, err, sizeof err);
    TAP_OK(s && strstr(store_open_notice(s), "3 items") && !exists(side),
           "pending/literal_file_replayed: %s", s ? store_open_notice(s) : err);
    store_free(s);
    TAP_OK(db_q1(db, "SELECT count(*) FROM views WHERE id = 'literal000000001' AND "
                     "started_at = 1764000000000") == 1 &&
               db_q1(db, "SELECT count(*) FROM metrics WHERE view_seq = "
                         "(SELECT seq FROM views WHERE id = 'literal000000001')") == 1,
           "pending/literal_beacon_stored");
    TAP_OK(db_q1(db, "SELECT count(*) FROM requests WHERE url = '/lit' AND status = 404 AND "
                     "protocol = 'h2' AND host IS NULL") == 1,
           "pending/literal_request_stored");
    TAP_OK(db_q1(db, "SELECT count(*) FROM rejections WHERE reason = 'why-not'") == 1,
           "pending/literal_rejection_stored");

    /* pending_write keeps an earlier side file: its bytes, then the new block. */
    fresh();
    if (write_file(side, good, gl) != 0)
        abort();
    struct pending_out o;
    pending_out_init(&o);
    pending_block_begin(&o);
    pending_record_begin(&o, 'J');
    pending_field(&o, "later", 5);
    pending_record_end(&o);
    pending_block_end(&o);
    TAP_OK(pending_write(side, &o, err, sizeof err) == 0, "pending/write_appends (%s)", err);
    pending_out_dispose(&o);
    size_t n = 0;
    char *b = read_all(side, &n);
    TAP_OK(b && n > gl && memcmp(b, good, gl) == 0, "pending/write_keeps_earlier_bytes");
    free(b);
    b = NULL;
    size_t nrec = 0;
    TAP_OK(pending_read(side, &b, &n, &nrec, err, sizeof err) == 0 && nrec == 4,
           "pending/write_appended_block_reads (%zu records)", nrec);
    free(b);
    snprintf(path, sizeof path, "%s.tmp", side);
    TAP_OK(!exists(path), "pending/write_leaves_no_tmp");
}

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    snprintf(db, sizeof db, "%s/v.db", dir);
    snprintf(side, sizeof side, "%s-pending", db);
    signal(SIGXFSZ, SIG_IGN);
    getrlimit(RLIMIT_FSIZE, &unlimited);
    case_spill_and_replay();
    lift_limit();
    case_grace_recovers();
    lift_limit();
    case_hostile();
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    TAP_DONE();
}
