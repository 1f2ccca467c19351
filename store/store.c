/* The write side of the store: a bounded FIFO (mutex + condvars) filled by the event loop and
 * drained by one writer thread that owns the only read-write SQLite connection.
 *
 * Invariants:
 *   - store_ingest_beacon / store_record_request / store_count_rejection never touch SQLite:
 *     they validate (store/beacon.c), copy and enqueue, or fail fast with VP_ERR_FULL.
 *   - The writer commits one transaction per batch. It takes the queue once its oldest item
 *     has waited batch_ms (or batch_rows items are queued, a sync is requested or the store is
 *     closing); when items queued up while it wrote the previous batch, that wait is shortened
 *     by the previous batch's write time, to nothing when that took batch_ms or more (group
 *     commit: the writer never sleeps while it cannot keep up), and it ends once the queued
 *     rows would take half the write time admission control allows (below). So under load an
 *     item waits about batch_ms from enqueue to commit, and batches grow with the arrival rate.
 *     Each batch is up to batch_rows items, prepared statements, one transaction.
 *   - Admission control makes "acknowledged more than max_lag_ms ago => committed" true by
 *     construction: every item carries its enqueue time and a row weight; enqueue refuses
 *     (VP_ERR_FULL, never blocking) while the oldest uncommitted item, queued or in the batch
 *     being written, is older than max_lag_ms, or while the uncommitted rows, at the writer's
 *     measured cost per row, would take longer than max_lag_ms - batch_ms to commit. So an
 *     accepted item waits at most batch_ms to be taken plus the bounded backlog's write time.
 *     Refusals are counted in the stats and, by the writer, in the rejections table ("store
 *     busy", "request record dropped") that the health section reads.
 *   - WAL + synchronous=NORMAL: a committed batch survives a kill -9 of the process.
 *   - Checkpoints (copying the WAL into the database file, with its fsyncs) run on a third
 *     thread with its own connection, PASSIVE, one pass at a time, started by the writer
 *     between batches once the WAL holds CKPT_FRAMES frames; they never stall a batch. When a
 *     pass has copied every frame it saw, the writer copies the few committed since (at most
 *     CKPT_CATCHUP_FRAMES) itself between batches, so that its next transaction starts the
 *     WAL file over. If the WAL still grows past CKPT_HARD_FRAMES (the checkpointer cannot
 *     keep up, or a reader pins old frames), the writer waits for a running pass to end and
 *     runs one passive checkpoint itself, so the file stays bounded.
 *   - store_free drains: everything queued before it is committed.
 *   - A batch the database refuses as a whole (full disk, I/O error: write_refused) is queued
 *     again at the head and retried every STORE_WRITE_RETRY_US; meanwhile beacons are refused
 *     with VP_ERR_IO (one per interval tries again) instead of acknowledged. At store_close it
 *     is retried for close_grace_ms more; what the database still refuses then (beacons, request
 *     records, rejection counts) is written to the side file DB-pending (store/pending.h), which
 *     the next store_open writes into the database before the writer starts, then deletes. A
 *     beacon item keeps its validated body for that (the compact form is not serialisable);
 *     the replay validates it again like any beacon.
 *   - Sub-resource requests are tied to a view here, in the writer: the most recent injected
 *     HTML request or view whose path equals the Referer's path and that started within the 60 s
 *     before the request. Because records arrive in completion order (a streamed HTML page
 *     completes after its sub-resources), a new injected request or a new view also claims the
 *     still-unassigned requests that follow it within 60 s.
 *   - Retention runs hourly in the writer in small transactions (PRUNE_CHUNK rows), between
 *     batches, so ingestion never waits on a large delete. */
#include "config.h"

#include "store/store.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/vp_buf.h"
#include "common/vp_err.h"
#include "store/beacon.h"
#include "store/pending.h"
#include "store/rollup.h"
#include "store/store_internal.h"

#define PRUNE_CHUNK 500
/* Column col of the oldest views before ?1, at most ?2 of them: one prune chunk. */
#define PRUNE_CHUNK_OF(col)                                                                        \
    "SELECT " col " FROM views INDEXED BY views_time WHERE started_at < ?1 ORDER BY started_at, "  \
    "seq LIMIT ?2"
#define CKPT_FRAMES 2000        /* ~8 MiB of WAL: wake the checkpointer */
#define CKPT_HARD_FRAMES 32768  /* ~128 MiB: the writer checkpoints itself */
/* The most frames the writer copies itself to finish a checkpointer's pass (~8 MiB). */
#define CKPT_CATCHUP_FRAMES CKPT_FRAMES
#define PRUNE_INTERVAL_MS (3600 * 1000)
#define VIEW_WINDOW_MS 60000
#define CLAIM_SLOTS 1024 /* claim bounds, by hash of the Referer path (struct store) */
#define REASON_MAX 64
/* Resources per multi-row INSERT: one statement step per RES_MULTI rows instead of per row
 * (the per-statement work, not the per-row b-tree work, is what a batch saves). */
#define RES_MULTI 10
/* Request items are made with room for REQ_ITEM_STR bytes of strings when theirs fit (most
 * records: a browser's request takes about 300), so that the writer can hand them back for
 * reuse; it keeps at most REQ_SPARE_MAX (see store_record_request). */
#define REQ_ITEM_STR 384
/* The strings of a request item, in the order of struct store_request_rec (and of the side
 * file's records): their lengths travel with the item (struct item), measured once when it is
 * made. */
enum {
    RS_METHOD,
    RS_URL,
    RS_HOST,
    RS_PROTOCOL,
    RS_TLS,
    RS_VIEW,
    RS_REFERER,
    RS_UA,
    RS_CTYPE,
    RS_CENC,
    RS_CACHE,
    RS_ERROR,
    RS_LABEL,
    REQ_NSTR
};
#define REQ_SPARE_MAX 1024
/* Request records per multi-row INSERT (see flush_requests). */
#define REQ_MULTI 16
#define REQ_NCOLS 30
#define REQ_COLS                                                                                   \
    "id,view_id,accept_us,head_done_us,connect_start_us,connect_end_us,sent_us,first_byte_us,"     \
    "last_byte_us,bytes_in,bytes_out,upstream_bytes,status,injected,reused,method,url,path,"       \
    "route,host,protocol,tls_version,referer,referer_path,user_agent,content_type,"                \
    "content_encoding,cache_control,error,label"
/* Metrics per multi-row upsert: the five of a payload in one statement. */
#define METRIC_MULTI 5
#define METRIC_UPSERT                                                                            \
    " ON CONFLICT(view_seq,metric_id) DO UPDATE SET name=excluded.name,value=excluded.value,"    \
    "delta=excluded.delta,rating=excluded.rating,"                                               \
    "attribution=coalesce(excluded.attribution,attribution),updated_at=excluded.updated_at"

enum item_kind { IT_BEACON, IT_REQUEST, IT_REJECT, IT_PRUNE, IT_SYNC };

struct sync_marker {
    bool done;
};

/* A chunked arena: the compact beacon and its strings (see "the compact form" below). */
struct ablock {
    struct ablock *next;
    size_t used, cap;
    _Alignas(16) char data[];
};

struct arena {
    struct ablock *head;
};

static void arena_free(struct arena *a)
{
    for (struct ablock *b = a->head, *n; b; b = n) {
        n = b->next;
        free(b);
    }
    a->head = NULL;
}

struct item {
    struct item *next;
    enum item_kind kind;
    uint32_t rows;           /* admission weight: rows this item writes (>= 1) */
    uint32_t spare_cap;      /* a request item of REQ_ITEM_STR string bytes, recycled; else 0 */
    uint32_t slen[REQ_NSTR]; /* a request item: its strings' lengths (0 when NULL) */
    int64_t enq_us; /* monotonic enqueue time */
    union {
        struct {
            struct cbeacon *c; /* inside arena */
            struct arena arena; /* owns c, ua and label */
            int64_t now_ms;
            double sample_rate;
            const char *ua; /* may be NULL */
            const char *label;
            const char *body; /* the validated body as received (the side file keeps it) */
            size_t body_len;
        } b;
        struct store_request_rec req; /* strings point into the same allocation */
        char reason[REASON_MAX];
        struct {
            int64_t now_ms;
            int days;
        } prune;
        struct sync_marker *sync; /* owned by the waiter */
    } u;
};

enum stmt_id {
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_VIEW_INSERT,
    S_VIEW_UPDATE,
    S_VIEW_CLAIM,
    S_METRIC,
    S_METRIC_MULTI,
    S_NAV,
    S_RES,
    S_RES_MULTI,
    S_REQ_INSERT,
    S_REQ_INSERT_MULTI,
    S_REQ_FIND_INJECTED,
    S_REQ_FIND_VIEW,
    S_REQ_CLAIM,
    S_REJECT,
    S_ACCEPTED,
    S_PRUNE_METRICS,
    S_PRUNE_RESOURCES,
    S_PRUNE_NAVIGATION,
    S_PRUNE_VIEWS,
    S_PRUNE_REQUESTS,
    S_ROLLUP_DIRTY,
    S_REQ_MARK,
    S_PRUNE_MARKS,
    S_COUNT
};

/* The column values of one request record that the writer derives before binding. */
struct req_vals {
    int64_t id;
    const char *path, *rpath, *view;
    size_t plen, rplen;
    int rl; /* route length, -1 when none */
    char route[BEACON_MAX_URL + 8];
    char vbuf[72];
};

/* What one parameter of a request INSERT holds (see bind_request): a statement keeps its
 * bindings from one step to the next, so a parameter that would be bound to what it already holds
 * is left alone. REQ_BOUND_ANY (zero) holds nothing reusable: the text of a record, freed after
 * its batch. */
enum req_bound_kind { REQ_BOUND_ANY = 0, REQ_BOUND_NULL, REQ_BOUND_INT, REQ_BOUND_INTERN };

struct req_bound {
    int64_t v; /* REQ_BOUND_INT: the value; REQ_BOUND_INTERN: the intern's generation */
    enum req_bound_kind kind;
};

/* The columns whose values repeat from record to record (method, route, host, protocol, TLS
 * version, User-Agent, response content type, encoding and cache control, error, label): the
 * writer keeps a copy of each one's last distinct value, and a parameter bound to that copy stays
 * bound while the records repeat it. A copy changes only between steps (req_interns_update), and
 * takes a new generation then, so a parameter still bound to its old bytes is bound again. */
enum {
    REQ_IN_METHOD,
    REQ_IN_ROUTE,
    REQ_IN_HOST,
    REQ_IN_PROTOCOL,
    REQ_IN_TLS,
    REQ_IN_UA,
    REQ_IN_CTYPE,
    REQ_IN_CENC,
    REQ_IN_CACHE,
    REQ_IN_ERROR,
    REQ_IN_LABEL,
    REQ_NINTERN
};
#define REQ_INTERN_MAX 512

struct req_intern {
    uint64_t gen;
    size_t len;
    bool set;
    const char *next; /* the value to take after the step (bound from the record until then) */
    size_t next_len;
    char buf[REQ_INTERN_MAX];
};

/* The browser of the last User-Agent the writer saw (most beacons of a run repeat one). */
struct ua_memo {
    bool set;
    size_t len;
    char ua[512];
    char fam[32];
    int major;
};

struct store {
    sqlite3 *db;
    sqlite3_stmt *st[S_COUNT];
    struct store_options opt;
    struct ua_memo ua_memo; /* writer thread only */

    pthread_mutex_t mu;
    pthread_cond_t cv_item; /* writer waits: items, stop, sync */
    pthread_cond_t cv_done; /* sync waiters */
    struct item *head, *tail;
    size_t qlen;
    uint64_t qrows; /* the rows (admission weights) of the queued items */
    unsigned sync_pending;
    bool stop;
    pthread_t thread;

    /* checkpointer (see the file comment); flags under mu */
    sqlite3 *ckdb;
    pthread_t ckthread;
    pthread_cond_t cv_ck;
    bool ck_started, ck_wanted, ck_stop;
    bool ck_running; /* a pass was asked for and has not ended */
    int wal_frames;  /* writer-only: WAL size after the last commit */
    /* The frames the checkpointer's last pass copied into the database file when it copied
     * every frame it saw, -1 when it did not, 0 when taken by the writer (ckpt_after_batch). */
    int ck_backfilled;

    /* stats, under mu */
    struct store_stats stats;

    /* admission control, under mu (see the file comment) */
    uint64_t pending_rows;      /* rows of queued and in-flight items */
    int64_t inflight_oldest_us; /* enqueue time of the batch being written, 0 when none */
    uint64_t row_cost_ns;       /* moving average of the writer's cost per row */
    uint64_t unlogged_busy;     /* refusals not yet counted in the rejections table */
    uint64_t unlogged_req_drops;
    /* The last batch could not be committed (disk full, read-only file, I/O error): beacons are
     * refused (503 with the reason), except one per STORE_WRITE_RETRY_US that tries again; the
     * refused batch itself is queued again (writer_main). A batch that commits a beacon clears
     * it. Under mu. */
    int64_t write_fail_until_us;
    char write_error[128];
    /* store_close: the end of the retries (monotonic us, under mu), whether the database refused
     * a batch while closing, and what it still refused at the end (writer-only until joined). */
    int64_t close_deadline_us;
    bool close_refused;
    struct item *spill, *spill_tail;
    /* Request items the writer is done with, for the next store_record_request calls (see
     * there); under mu. */
    struct item *req_spare;
    unsigned nreq_spare;
    char *db_path;      /* the database's path, and in the same allocation: */
    char *pending_path; /* "DB-pending" */
    char notice[512];   /* the start-up replay's one line (store_open_notice) */
    /* The database file as opened (device and inode), checked by the writer before and after
     * each batch: a file removed or replaced under the running proxy would take commits into an
     * unlinked inode, lost at exit, while every beacon was acknowledged. */
    dev_t db_dev;
    ino_t db_ino;
    bool db_id_known, db_gone;

    /* writer-only state */
    int64_t next_prune_ms;
    bool prune_active;
    /* rollups (store/rollup.h): hours below rollup_until are sealed */
    bool rollup_on;        /* the schema has them */
    bool rollup_more;      /* a step may find work now (backfill, dirty hours) */
    int64_t rollup_until;  /* the watermark, as committed */
    int64_t next_rollup_ms; /* when the next hour becomes sealable (or a retry after an error) */
    int64_t last_rollup_ms;
    /* Upper bounds of accept_us over the rows a claim can take (view_id NULL, injected=0, a
     * Referer path), one per hash slot of the Referer path: an injected request accepted after
     * the bound of its path's slot, or a new view that started after it, has nothing to claim,
     * and skips the UPDATE (about 4,600 instructions per injected page). Per path, because the
     * UPDATE walks every row of its path in its 60 s window, claimed or not: with one bound for
     * all paths, a single unassigned request of any page (a Referer from another site, a page
     * that is not injected) made every page's claim walk its whole window, a cost that grows
     * with the traffic of the page. Paths sharing a slot share the larger bound, which only
     * costs a needless UPDATE. Only the writer inserts requests. */
    int64_t claimable_max_us[CLAIM_SLOTS];
    uint64_t claims_run; /* writer-only: claim UPDATEs run; published in stats after a batch */
    /* writer-only: request records waiting for a multi-row INSERT (write_batch) */
    struct item *req_grp[REQ_MULTI];
    struct req_vals req_vals[REQ_MULTI];
    size_t req_ngrp;
    /* writer-only: what the parameters of the multi-row statement (rows 0 .. REQ_MULTI - 1) and
     * of the single-row one (row REQ_MULTI) hold, and the repeated values they may point to */
    struct req_bound req_bound[REQ_MULTI + 1][REQ_NCOLS];
    struct req_intern req_intern[REQ_NINTERN];
    uint64_t req_grouped;  /* rows of this batch written by the multi-row statement */
    bool req_grp_injected; /* the pending group holds an injected page */
    /* Request ids and time marks (schema v5, store/schema.c): the writer assigns every request
     * row its id, next_req_id, which only grows; at open it starts above every row's id and every
     * mark's first id, so new rows keep every mark's rule. The first batch of each minute that
     * inserts requests records the minute's mark (minute, first id of the batch) unless a row
     * already stored was accepted in that minute or later (max_accept_us: a record dated ahead of
     * the writer's clock): then the minute gets no mark, and readers use an earlier one.
     * Writer-only. */
    int64_t next_req_id;
    int64_t max_accept_us; /* an upper bound of accept_us over every stored row */
    int64_t mark_minute;   /* the last minute a mark was considered for */
    int64_t batch_now_us;  /* wall clock at the start of the batch, never going back */
    bool batch_marked;     /* this batch has considered its mark */
};

/* The claim bound of a Referer path's slot (FNV-1a of its bytes). */
static int64_t *claim_bound(struct store *s, const char *path, size_t len)
{
    return &s->claimable_max_us[vp_fnv1a(path, len) % CLAIM_SLOTS];
}

void store_options_default(struct store_options *opt)
{
    opt->queue_max = 100000;
    opt->batch_ms = 50;
    opt->batch_rows = 1000;
    opt->retention_days = 30;
    opt->keep_query = false;
    opt->max_lag_ms = 0;
    opt->close_grace_ms = 3000;
}

/* Until the first large batch is measured: a conservative 20 us per row. */
#define ROW_COST_PRIOR_NS 20000
/* Batches smaller than this do not update the cost (their commit overhead dominates). */
#define ROW_COST_MIN_ROWS 64

static void set_err(char *err, size_t errlen, const char *a, const char *b)
{
    if (errlen == 0)
        return;
    int w = snprintf(err, errlen, "%s%s%s", a, b ? ": " : "", b ? b : "");
    if (w < 0)
        err[0] = '\0';
}

static void free_list(struct item *it);

static void item_free(struct item *it)
{
    if (!it)
        return;
    if (it->kind == IT_BEACON) {
        arena_free(&it->u.b.arena);
    }
    free(it);
}

/* ---- SQL text built from the field tables (one source for columns and wire keys) ---- */

/* "VERB INTO table(first_col, a's columns, b's columns) VALUES(?,..)[,(?,..) x rows-1] tail". */
static int build_insert(char *buf, size_t cap, const char *verb, const char *table,
                        const char *first_col, const struct beacon_field *a,
                        const struct beacon_field *b, unsigned rows, const char *tail)
{
    size_t o = 0;
    unsigned n = 1;
    for (const char *c = first_col; *c; c++)
        n += *c == ',';
    int w = snprintf(buf, cap, "%s INTO %s(%s", verb, table, first_col);
    if (w < 0 || (size_t)w >= cap)
        return VP_ERR_LIMIT;
    o = (size_t)w;
    const struct beacon_field *lists[2] = {a, b};
    for (int l = 0; l < 2; l++)
        for (const struct beacon_field *f = lists[l]; f && f->key; f++) {
            w = snprintf(buf + o, cap - o, ",%s", f->column);
            if (w < 0 || (size_t)w >= cap - o)
                return VP_ERR_LIMIT;
            o += (size_t)w;
            n++;
        }
    w = snprintf(buf + o, cap - o, ") VALUES");
    if (w < 0 || (size_t)w >= cap - o)
        return VP_ERR_LIMIT;
    o += (size_t)w;
    for (unsigned r = 0; r < rows; r++) {
        for (unsigned i = 0; i < n; i++) {
            w = snprintf(buf + o, cap - o, "%s?", i ? "," : r ? "),(" : "(");
            if (w < 0 || (size_t)w >= cap - o)
                return VP_ERR_LIMIT;
            o += (size_t)w;
        }
    }
    w = snprintf(buf + o, cap - o, ")%s", tail);
    if (w < 0 || (size_t)w >= cap - o)
        return VP_ERR_LIMIT;
    return 0;
}

/* "INSERT INTO requests(...) VALUES(?,..),(?,..)..." with rows rows. */
static int build_req_insert(char *buf, size_t cap, unsigned rows)
{
    int w = snprintf(buf, cap, "INSERT INTO requests(" REQ_COLS ") VALUES");
    if (w < 0 || (size_t)w >= cap)
        return VP_ERR_LIMIT;
    size_t o = (size_t)w;
    for (unsigned r = 0; r < rows; r++) {
        if (o + 2 * REQ_NCOLS + 3 >= cap)
            return VP_ERR_LIMIT;
        buf[o++] = r ? ',' : ' ';
        buf[o++] = '(';
        for (unsigned i = 0; i < REQ_NCOLS; i++) {
            if (i)
                buf[o++] = ',';
            buf[o++] = '?';
        }
        buf[o++] = ')';
    }
    buf[o] = '\0';
    return 0;
}

static int prepare_all(struct store *s, char *err, size_t errlen)
{
    char rbuf[2048], nbuf[2048], rmbuf[8192], qmbuf[2048];
    if (build_req_insert(qmbuf, sizeof qmbuf, REQ_MULTI))
        return VP_ERR_LIMIT;
    if (build_insert(rbuf, sizeof rbuf, "INSERT", "resources", "view_seq,idx", beacon_res_fields,
                     NULL, 1, " ON CONFLICT(view_seq, idx) DO NOTHING") ||
        build_insert(rmbuf, sizeof rmbuf, "INSERT", "resources", "view_seq,idx",
                     beacon_res_fields, NULL, RES_MULTI, " ON CONFLICT(view_seq, idx) DO NOTHING") ||
        build_insert(nbuf, sizeof nbuf, "INSERT OR REPLACE", "navigation", "view_id",
                     beacon_res_fields, beacon_nav_fields, 1, ""))
        return VP_ERR_LIMIT;
    const char *sql[S_COUNT] = {
        [S_BEGIN] = "BEGIN IMMEDIATE",
        [S_COMMIT] = "COMMIT",
        [S_ROLLBACK] = "ROLLBACK",
        [S_VIEW_INSERT] =
            "INSERT INTO views(id,started_at,received_at,url,path,route,parent_id,"
            "navigation_type,device,ect,device_memory,browser,browser_major,label,sample_rate) "
            "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO NOTHING",
        [S_VIEW_UPDATE] = "UPDATE views SET parent_id=coalesce(parent_id,?2),"
                          "navigation_type=coalesce(navigation_type,?3),device=coalesce(device,?4),"
                          "ect=coalesce(ect,?5),device_memory=coalesce(device_memory,?6),"
                          "browser=coalesce(browser,?7),browser_major=coalesce(browser_major,?8),"
                          "label=coalesce(label,?9) WHERE id=?1 RETURNING started_at, seq",
        [S_VIEW_CLAIM] = "UPDATE requests SET view_id=?1 WHERE view_id IS NULL AND injected=0 "
                         "AND referer_path=?2 AND accept_us BETWEEN ?3 AND ?4",
        [S_METRIC] = "INSERT INTO metrics(view_seq,name,metric_id,value,delta,rating,attribution,"
                     "updated_at) VALUES(?,?,?,?,?,?,?,?)" METRIC_UPSERT,
        /* SQLite applies the upsert row by row, so a metric id sent twice in one payload
         * still ends with its last value. */
        [S_METRIC_MULTI] =
            "INSERT INTO metrics(view_seq,name,metric_id,value,delta,rating,attribution,"
            "updated_at) VALUES(?,?,?,?,?,?,?,?),(?,?,?,?,?,?,?,?),(?,?,?,?,?,?,?,?),"
            "(?,?,?,?,?,?,?,?),(?,?,?,?,?,?,?,?)" METRIC_UPSERT,
        [S_NAV] = nbuf,
        [S_RES] = rbuf,
        [S_RES_MULTI] = rmbuf,
        [S_REQ_INSERT] = "INSERT INTO requests(" REQ_COLS ") VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,"
                         "?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [S_REQ_INSERT_MULTI] = qmbuf,
        [S_REQ_FIND_INJECTED] =
            "SELECT view_id, accept_us / 1000 FROM requests WHERE path=?1 AND injected=1 AND "
            "view_id IS NOT NULL AND accept_us BETWEEN ?2 - 60000000 AND ?2 "
            "ORDER BY accept_us DESC LIMIT 1",
        [S_REQ_FIND_VIEW] = "SELECT id, started_at FROM views WHERE path=?1 AND started_at "
                            "BETWEEN ?2 / 1000 - 60000 AND ?2 / 1000 "
                            "ORDER BY started_at DESC LIMIT 1",
        [S_REQ_CLAIM] = "UPDATE requests SET view_id=?1 WHERE view_id IS NULL AND injected=0 "
                        "AND referer_path=?2 AND accept_us BETWEEN ?3 AND ?3 + 60000000",
        [S_REJECT] = "INSERT INTO rejections(reason,count) VALUES(?1,?2) "
                     "ON CONFLICT(reason) DO UPDATE SET count=count+?2",
        [S_ACCEPTED] = "UPDATE meta SET value = CAST(value AS INTEGER) + ?1 "
                       "WHERE key='beacons_accepted'",
        /* The writer runs with foreign_keys off (see store_open), so a pruned view's rows are
         * deleted here, before the view: the same chunk (the oldest views by views_time, then
         * rowid: one plan, one transaction) four times. */
        [S_PRUNE_METRICS] = "DELETE FROM metrics WHERE view_seq IN (" PRUNE_CHUNK_OF("seq") ")",
        [S_PRUNE_RESOURCES] =
            "DELETE FROM resources WHERE view_seq IN (" PRUNE_CHUNK_OF("seq") ")",
        [S_PRUNE_NAVIGATION] =
            "DELETE FROM navigation WHERE view_id IN (" PRUNE_CHUNK_OF("id") ")",
        [S_PRUNE_VIEWS] =
            "DELETE FROM views WHERE seq IN (" PRUNE_CHUNK_OF("seq") ") RETURNING started_at",
        /* Only rows committed before the first mark at or after the cutoff can have been
         * accepted before it, unless they took longer than that: the scan stops there, and a
         * request that was committed after that mark goes in a later pass, once the cutoff
         * has passed the mark (see schema_v5). */
        [S_PRUNE_REQUESTS] =
            "DELETE FROM requests WHERE id IN (SELECT id FROM requests WHERE id < "
            "coalesce((SELECT first_id FROM request_marks WHERE minute >= (?1 * 1000 + 59999999) "
            "/ 60000000 ORDER BY minute LIMIT 1), 9223372036854775807) AND accept_us < ?1 * 1000 "
            "LIMIT ?2)",
        [S_ROLLUP_DIRTY] = "INSERT OR IGNORE INTO rollup_dirty(hour) VALUES(?1)",
        [S_REQ_MARK] = "INSERT OR IGNORE INTO request_marks(minute, first_id) VALUES(?1, ?2)",
        /* Marks before the last one at or before the cutoff serve no reader that the rows
         * left could answer. */
        [S_PRUNE_MARKS] = "DELETE FROM request_marks WHERE minute < (SELECT max(minute) FROM "
                          "request_marks WHERE minute <= ?1 * 1000 / 60000000)",
    };
    for (int i = 0; i < S_COUNT; i++) {
        if (sqlite3_prepare_v3(s->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL) !=
            SQLITE_OK) {
            set_err(err, errlen, "preparing statements", sqlite3_errmsg(s->db));
            return VP_ERR_DB;
        }
    }
    return 0;
}

/* ---- binding helpers ---- */

static int64_t clamp_i64(uint64_t v) { return v > INT64_MAX ? INT64_MAX : (int64_t)v; }

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* ---- the compact form of a validated beacon ----
 * store_ingest_beacon parses and checks the body once (beacon_check: store/jtree's parser builds
 * its arena tree) and converts that tree, on the caller's thread, into a struct cbeacon
 * whose values are already in their column types (strings NUL-terminated, except the attribution
 * text, bound by length) inside a chunked arena owned by the item, then frees the tree there.
 * The writer only binds values (SQLITE_STATIC: the arena outlives the statement step) and never
 * touches jansson. */

enum cv_kind { CV_NULL, CV_REAL, CV_INT, CV_TEXT };

struct cval {
    union {
        double d;
        int64_t i;
        const char *t;
    } u;
    uint32_t len; /* CV_TEXT: bytes, without the NUL */
    uint8_t kind;
};

struct cmetric {
    struct cval name, id, value, delta, rating, attribution;
};

#define N_RES_FIELDS 23
#define N_NAV_FIELDS 8

struct cbeacon {
    struct cval vid, url, pvid, nav, dev, ect, mem;
    int64_t t0, ri;
    size_t nmetrics, nres;
    bool has_nt;
    struct cmetric *m;
    struct cval *nt;  /* N_RES_FIELDS + N_NAV_FIELDS when has_nt */
    struct cval *res; /* nres * N_RES_FIELDS */
};

static void *arena_alloc(struct arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    struct ablock *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 16384 ? n : 16384;
        b = malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

static int cv_text(struct arena *a, struct cval *out, const char *s, size_t len)
{
    if (len > UINT32_MAX)
        return VP_ERR_LIMIT;
    char *p = arena_alloc(a, len + 1);
    if (!p)
        return VP_ERR_NOMEM;
    memcpy(p, s, len);
    p[len] = '\0';
    out->kind = CV_TEXT;
    out->u.t = p;
    out->len = (uint32_t)len;
    return 0;
}

static int cv_jstr(struct arena *a, struct cval *out, const struct jtree *v)
{
    out->kind = CV_NULL;
    return jtree_is_string(v) ? cv_text(a, out, v->u.s, v->n) : 0;
}

static void cv_jnum(struct cval *out, const struct jtree *v)
{
    out->kind = jtree_is_number(v) ? CV_REAL : CV_NULL;
    if (out->kind == CV_REAL)
        out->u.d = jtree_number(v);
}

/* v as compact JSON text (server timing). */
static int cv_json(struct arena *a, struct cval *out, const struct jtree *v)
{
    out->kind = CV_NULL;
    size_t max = jtree_dump_max(v);
    char *txt = max < UINT32_MAX ? arena_alloc(a, max + 1) : NULL;
    if (!txt)
        return VP_ERR_NOMEM;
    size_t n = jtree_dump(v, txt);
    txt[n] = '\0';
    out->kind = CV_TEXT;
    out->u.t = txt;
    out->len = (uint32_t)n;
    return 0;
}

/* One value per beacon_field of fs, typed as the column. */
static int cv_fields(struct arena *a, struct cval *out, const struct jtree *obj,
                     const struct beacon_field *fs)
{
    const struct jtree *slots[BEACON_MAX_FIELDS];
    beacon_field_slots(obj, fs, slots);
    size_t idx = 0;
    for (const struct beacon_field *f = fs; f->key; f++, out++) {
        const struct jtree *v = slots[idx++];
        out->kind = CV_NULL;
        if (!v || v->type == JTREE_NULL)
            continue;
        int rc = 0;
        switch (f->kind) {
        case BEACON_K_TIME:
            out->kind = CV_REAL;
            out->u.d = jtree_number(v);
            break;
        case BEACON_K_SIZE:
        case BEACON_K_STATUS:
        case BEACON_K_COUNT:
            out->kind = CV_INT;
            out->u.i = v->type == JTREE_INT ? v->u.i : (int64_t)llround(v->u.d);
            break;
        case BEACON_K_URL:
        case BEACON_K_TOKEN:
            rc = cv_jstr(a, out, v);
            break;
        case BEACON_K_SV:
            rc = cv_json(a, out, v);
            break;
        }
        if (rc)
            return rc;
    }
    return 0;
}

static size_t count_fields(const struct beacon_field *fs)
{
    size_t n = 0;
    while (fs[n].key)
        n++;
    return n;
}

/* Converts a checked payload (beacon_check: the guarantees of beacon.h, with "r" and "a" as
 * sent) into *out inside a. */
static int compact_beacon(struct arena *a, const struct jtree *p, struct cbeacon **out)
{
    struct cbeacon *c = arena_alloc(a, sizeof *c);
    if (!c)
        return VP_ERR_NOMEM;
    memset(c, 0, sizeof *c);
    int rc;
    if ((rc = cv_jstr(a, &c->vid, jtree_get(p, "vid"))) ||
        (rc = cv_jstr(a, &c->url, jtree_get(p, "url"))) ||
        (rc = cv_jstr(a, &c->pvid, jtree_get(p, "pvid"))) ||
        (rc = cv_jstr(a, &c->nav, jtree_get(p, "nav"))) ||
        (rc = cv_jstr(a, &c->dev, jtree_get(p, "dev"))) ||
        (rc = cv_jstr(a, &c->ect, jtree_get(p, "ect"))))
        return rc;
    cv_jnum(&c->mem, jtree_get(p, "mem"));
    c->t0 = (int64_t)llround(jtree_number(jtree_get(p, "t0")));
    const struct jtree *ri = jtree_get(p, "ri");
    c->ri = ri && ri->type == JTREE_INT ? ri->u.i : 0;

    const struct jtree *m = jtree_get(p, "m");
    c->nmetrics = m && m->type == JTREE_ARRAY ? m->n : 0;
    if (c->nmetrics) {
        c->m = arena_alloc(a, c->nmetrics * sizeof *c->m);
        if (!c->m)
            return VP_ERR_NOMEM;
        for (size_t i = 0; i < c->nmetrics; i++) {
            const struct jtree *e = &m->u.items[i];
            struct cmetric *cm = &c->m[i];
            if ((rc = cv_jstr(a, &cm->name, jtree_get(e, "n"))) ||
                (rc = cv_jstr(a, &cm->id, jtree_get(e, "id"))))
                return rc;
            cv_jnum(&cm->value, jtree_get(e, "v"));
            cv_jnum(&cm->delta, jtree_get(e, "d"));
            /* beacon_check left "r" and "a" as sent: the rating is derived here and only the
             * known attribution keys are written. */
            const char *rating = beacon_rating_of(cm->name.u.t, cm->value.u.d);
            cm->rating.kind = CV_NULL;
            if (rating) {
                cm->rating.kind = CV_TEXT;
                cm->rating.u.t = rating; /* static */
                cm->rating.len = (uint32_t)strlen(rating);
            }
            const struct jtree *at = jtree_get(e, "a");
            cm->attribution.kind = CV_NULL;
            if (at && at->type == JTREE_OBJECT) {
                size_t max = beacon_attr_json_max(at, cm->name.u.t);
                char *txt = max <= UINT32_MAX ? arena_alloc(a, max) : NULL;
                if (!txt)
                    return VP_ERR_NOMEM;
                cm->attribution.kind = CV_TEXT;
                cm->attribution.u.t = txt;
                cm->attribution.len = (uint32_t)beacon_attr_json(at, cm->name.u.t, txt);
            }
        }
    }

    const struct jtree *nt = jtree_get(p, "nt");
    if (nt && nt->type == JTREE_OBJECT) {
        c->has_nt = true;
        c->nt = arena_alloc(a, (N_RES_FIELDS + N_NAV_FIELDS) * sizeof *c->nt);
        if (!c->nt)
            return VP_ERR_NOMEM;
        if ((rc = cv_fields(a, c->nt, nt, beacon_res_fields)) ||
            (rc = cv_fields(a, c->nt + N_RES_FIELDS, nt, beacon_nav_fields)))
            return rc;
    }

    const struct jtree *res = jtree_get(p, "res");
    c->nres = res && res->type == JTREE_ARRAY ? res->n : 0;
    if (c->nres) {
        c->res = arena_alloc(a, c->nres * N_RES_FIELDS * sizeof *c->res);
        if (!c->res)
            return VP_ERR_NOMEM;
        for (size_t i = 0; i < c->nres; i++)
            if ((rc = cv_fields(a, c->res + i * N_RES_FIELDS, &res->u.items[i],
                                beacon_res_fields)))
                return rc;
    }
    *out = c;
    return 0;
}

static void bind_cval(sqlite3_stmt *st, int i, const struct cval *v)
{
    switch (v->kind) {
    case CV_REAL:
        sqlite3_bind_double(st, i, v->u.d);
        break;
    case CV_INT:
        sqlite3_bind_int64(st, i, (sqlite3_int64)v->u.i);
        break;
    case CV_TEXT:
        sqlite3_bind_text(st, i, v->u.t, (int)v->len, SQLITE_STATIC);
        break;
    default:
        sqlite3_bind_null(st, i);
        break;
    }
}

/* Runs a bound statement to completion and resets it. */
static int run(struct store *s, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    (void)s;
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : VP_ERR_DB;
}

/* Runs a statement whose parameters are all bound anew for every use, and resets it. */
static int step(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : VP_ERR_DB;
}

/* Binds metric m of view seq at parameters base + 1 .. base + 8. */
static void bind_metric(sqlite3_stmt *st, int base, int64_t seq, const struct cmetric *m,
                        int64_t now_ms)
{
    sqlite3_bind_int64(st, base + 1, seq);
    bind_cval(st, base + 2, &m->name);
    bind_cval(st, base + 3, &m->id);
    bind_cval(st, base + 4, &m->value);
    bind_cval(st, base + 5, &m->delta);
    bind_cval(st, base + 6, &m->rating);
    bind_cval(st, base + 7, &m->attribution);
    sqlite3_bind_int64(st, base + 8, now_ms);
}

/* Binds resource i of c (view seq) at parameters base + 1 .. base + 2 + N_RES_FIELDS. */
static void bind_res(sqlite3_stmt *st, int base, int64_t seq, const struct cbeacon *c, size_t i)
{
    sqlite3_bind_int64(st, base + 1, seq);
    sqlite3_bind_int64(st, base + 2, (sqlite3_int64)c->ri + (sqlite3_int64)i);
    const struct cval *f = c->res + i * N_RES_FIELDS;
    for (int k = 0; k < N_RES_FIELDS; k++)
        bind_cval(st, base + 3 + k, &f[k]);
}

/* ---- writing one item ---- */

/* beacon_browser_of, remembered for the last User-Agent (about 1,800 instructions a beacon,
 * bench/ingest_cost.sh, for the same answer every time). Writer thread only. */
static void browser_of(struct store *s, const char *ua, char fam[32], int *major)
{
    struct ua_memo *m = &s->ua_memo;
    size_t len = ua ? strlen(ua) : 0;
    if (ua && m->set && m->len == len && memcmp(m->ua, ua, len) == 0) {
        memcpy(fam, m->fam, sizeof m->fam);
        *major = m->major;
        return;
    }
    beacon_browser_of(ua, fam, 32, major);
    m->set = ua && len < sizeof m->ua;
    if (m->set) {
        memcpy(m->ua, ua, len);
        m->len = len;
        memcpy(m->fam, fam, sizeof m->fam);
        m->major = *major;
    }
}

/* A write touched a view that started at started_at_ms: a sealed hour becomes dirty (see
 * store/rollup.h), in the same transaction. */
static int touch_view(struct store *s, int64_t started_at_ms)
{
    if (!s->rollup_on || started_at_ms < 0 || rollup_hour_of(started_at_ms) >= s->rollup_until)
        return 0;
    s->rollup_more = true;
    return rollup_mark_dirty(s->st[S_ROLLUP_DIRTY], s->rollup_until, started_at_ms);
}

static int write_beacon(struct store *s, struct item *it)
{
    const struct cbeacon *c = it->u.b.c;
    const char *url = c->url.u.t;
    int64_t t0 = c->t0;
    size_t plen;
    const char *path = store_path_span(url, &plen);
    char route[BEACON_MAX_URL + 8];
    int rl = store_route_of(url, c->url.len, route, sizeof route);
    char fam[32];
    int major = 0;
    browser_of(s, it->u.b.ua, fam, &major);

    sqlite3_stmt *st = s->st[S_VIEW_INSERT];
    bind_cval(st, 1, &c->vid);
    sqlite3_bind_int64(st, 2, t0);
    sqlite3_bind_int64(st, 3, it->u.b.now_ms);
    bind_cval(st, 4, &c->url);
    sqlite3_bind_text(st, 5, path, (int)plen, SQLITE_STATIC);
    if (rl >= 0)
        sqlite3_bind_text(st, 6, route, rl, SQLITE_STATIC);
    bind_cval(st, 7, &c->pvid);
    bind_cval(st, 8, &c->nav);
    bind_cval(st, 9, &c->dev);
    bind_cval(st, 10, &c->ect);
    bind_cval(st, 11, &c->mem);
    sqlite3_bind_text(st, 12, fam, -1, SQLITE_STATIC);
    if (major > 0)
        sqlite3_bind_int(st, 13, major);
    bind_text(st, 14, it->u.b.label);
    sqlite3_bind_double(st, 15, it->u.b.sample_rate);
    if (run(s, st))
        return VP_ERR_DB;
    int64_t seq; /* the view's key in metrics (schema v6) */
    if (sqlite3_changes(s->db) == 1) {
        seq = sqlite3_last_insert_rowid(s->db);
        if (touch_view(s, t0))
            return VP_ERR_DB;
        /* A new view claims the unassigned sub-resource requests that followed it; none can
         * exist when every claimable row was accepted before the view started (beacon-only
         * traffic, or a view reported long after its page's requests were claimed). */
        if (t0 * 1000 <= *claim_bound(s, path, plen)) { /* t0: years 2000..2100 */
            st = s->st[S_VIEW_CLAIM];
            s->claims_run++;
            bind_cval(st, 1, &c->vid);
            sqlite3_bind_text(st, 2, path, (int)plen, SQLITE_STATIC);
            sqlite3_bind_int64(st, 3, t0 * 1000);
            sqlite3_bind_int64(st, 4, (t0 + VIEW_WINDOW_MS) * 1000);
            if (run(s, st))
                return VP_ERR_DB;
        }
    } else {
        st = s->st[S_VIEW_UPDATE];
        bind_cval(st, 1, &c->vid);
        bind_cval(st, 2, &c->pvid);
        bind_cval(st, 3, &c->nav);
        bind_cval(st, 4, &c->dev);
        bind_cval(st, 5, &c->ect);
        bind_cval(st, 6, &c->mem);
        sqlite3_bind_text(st, 7, fam, -1, SQLITE_STATIC);
        if (major > 0)
            sqlite3_bind_int(st, 8, major);
        bind_text(st, 9, it->u.b.label);
        /* RETURNING: the stored start, which the rollups file the view under, and the view's
         * key (the UPDATE is complete after the first step). The view exists: its id conflicted
         * in this transaction. */
        int sr = sqlite3_step(st);
        int64_t started = sr == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
        seq = sr == SQLITE_ROW ? sqlite3_column_int64(st, 1) : 0;
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        if (sr != SQLITE_ROW || touch_view(s, started))
            return VP_ERR_DB;
    }

    size_t mi = 0;
    for (; c->nmetrics - mi >= METRIC_MULTI; mi += METRIC_MULTI) {
        st = s->st[S_METRIC_MULTI];
        for (size_t r = 0; r < METRIC_MULTI; r++)
            bind_metric(st, (int)r * 8, seq, &c->m[mi + r], it->u.b.now_ms);
        if (step(st))
            return VP_ERR_DB;
    }
    for (; mi < c->nmetrics; mi++) {
        st = s->st[S_METRIC];
        bind_metric(st, 0, seq, &c->m[mi], it->u.b.now_ms);
        if (step(st))
            return VP_ERR_DB;
    }

    if (c->has_nt) {
        st = s->st[S_NAV];
        bind_cval(st, 1, &c->vid);
        for (int k = 0; k < N_RES_FIELDS + N_NAV_FIELDS; k++)
            bind_cval(st, 2 + k, &c->nt[k]);
        if (run(s, st))
            return VP_ERR_DB;
    }

    /* Every parameter is bound for every row (NULL included), so no clear_bindings is needed. */
    size_t i = 0;
    for (; c->nres - i >= RES_MULTI; i += RES_MULTI) {
        st = s->st[S_RES_MULTI];
        for (size_t r = 0; r < RES_MULTI; r++)
            bind_res(st, (int)(r * (2 + N_RES_FIELDS)), seq, c, i + r);
        if (step(st))
            return VP_ERR_DB;
    }
    for (; i < c->nres; i++) {
        st = s->st[S_RES];
        bind_res(st, 0, seq, c, i);
        if (step(st))
            return VP_ERR_DB;
    }
    return 0;
}

/* The view a sub-resource request belongs to (see the file comment), copied into out. */
static bool resolve_view(struct store *s, const char *rpath, size_t rlen, int64_t at_us,
                         char *out, size_t cap)
{
    int64_t best_ms = INT64_MIN;
    bool found = false;
    enum stmt_id ids[2] = {S_REQ_FIND_INJECTED, S_REQ_FIND_VIEW};
    for (int k = 0; k < 2; k++) {
        sqlite3_stmt *st = s->st[ids[k]];
        sqlite3_bind_text(st, 1, rpath, (int)rlen, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, at_us);
        if (sqlite3_step(st) == SQLITE_ROW) {
            const char *id = (const char *)sqlite3_column_text(st, 0);
            int64_t t = sqlite3_column_int64(st, 1);
            if (id && t > best_ms && strlen(id) < cap) {
                memcpy(out, id, strlen(id) + 1);
                best_ms = t;
                found = true;
            }
        }
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    return found;
}

/* Derives what a record's row needs besides the record itself: the path, route and Referer
 * path, and the view (the record's own, or the page its Referer points to). */
static void prep_request(struct store *s, const struct store_request_rec *r, struct req_vals *v)
{
    v->id = s->next_req_id++;
    if (r->accept_us > s->max_accept_us)
        s->max_accept_us = r->accept_us;
    v->plen = v->rplen = 0;
    v->path = store_path_span(r->url, &v->plen);
    v->rpath = r->referer ? store_path_span(r->referer, &v->rplen) : NULL;
    v->rl = r->url ? store_route_of(r->url, strlen(r->url), v->route, sizeof v->route) : -1;
    v->view = r->view_id;
    if (!v->view && v->rpath && r->accept_us > 0 &&
        resolve_view(s, v->rpath, v->rplen, r->accept_us, v->vbuf, sizeof v->vbuf))
        v->view = v->vbuf;
    if (!v->view && !r->injected && v->rpath) {
        int64_t *bound = claim_bound(s, v->rpath, v->rplen);
        if (r->accept_us > *bound)
            *bound = r->accept_us;
    }
}

static void bind_req_null(sqlite3_stmt *st, struct req_bound *b, int i)
{
    if (b->kind == REQ_BOUND_NULL)
        return;
    sqlite3_bind_null(st, i);
    b->kind = REQ_BOUND_NULL;
}

static void bind_req_int(sqlite3_stmt *st, struct req_bound *b, int i, int64_t v)
{
    if (b->kind == REQ_BOUND_INT && b->v == v)
        return;
    sqlite3_bind_int64(st, i, v);
    b->kind = REQ_BOUND_INT;
    b->v = v;
}

/* A text of the record (n bytes at v, which lives until the step), or NULL when !set. */
static void bind_req_text(sqlite3_stmt *st, struct req_bound *b, int i, const char *v, size_t n,
                          bool set)
{
    if (!set) {
        bind_req_null(st, b, i);
        return;
    }
    sqlite3_bind_text(st, i, v, (int)n, SQLITE_STATIC);
    b->kind = REQ_BOUND_ANY;
}

/* A text of a repeating column (see struct req_intern): bound to the column's copy when it holds
 * the same bytes (and left alone when it is bound to it already), else to the record's bytes,
 * which the copy takes after the step. */
static void bind_req_interned(sqlite3_stmt *st, struct req_bound *b, int i, struct req_intern *in,
                              const char *v, size_t n, bool set)
{
    if (!set) {
        bind_req_null(st, b, i);
        return;
    }
    if (in->set && in->len == n && memcmp(in->buf, v, n) == 0) {
        if (b->kind == REQ_BOUND_INTERN && b->v == (int64_t)in->gen)
            return;
        sqlite3_bind_text(st, i, in->buf, (int)n, SQLITE_STATIC);
        b->kind = REQ_BOUND_INTERN;
        b->v = (int64_t)in->gen;
        return;
    }
    sqlite3_bind_text(st, i, v, (int)n, SQLITE_STATIC);
    b->kind = REQ_BOUND_ANY;
    if (n <= sizeof in->buf) {
        in->next = v;
        in->next_len = n;
    }
}

/* After a step of a request INSERT (the records' bytes are still alive): the copies take the
 * values that differed from them. */
static void req_interns_update(struct store *s)
{
    for (size_t k = 0; k < REQ_NINTERN; k++) {
        struct req_intern *in = &s->req_intern[k];
        if (!in->next)
            continue;
        memcpy(in->buf, in->next, in->next_len);
        in->len = in->next_len;
        in->set = true;
        in->gen++;
        in->next = NULL;
    }
}

static size_t len_or_0(const char *v)
{
    return v ? strlen(v) : 0;
}

/* Binds the REQ_NCOLS values of one row from parameter i on, through b (the REQ_NCOLS states of
 * the row's parameters): every parameter ends up set, most of a repeated record's by what the
 * previous step left there (no clearing between uses). */
static void bind_request(struct store *s, sqlite3_stmt *st, struct req_bound *b, int i,
                         const struct item *it, const struct req_vals *v)
{
    struct req_intern *in = s->req_intern;
    const struct store_request_rec *r = &it->u.req;
    const uint32_t *n = it->slen;
    bind_req_int(st, b++, i++, v->id);
    bind_req_text(st, b++, i++, v->view, len_or_0(v->view), v->view != NULL);
    bind_req_int(st, b++, i++, r->accept_us);
    bind_req_int(st, b++, i++, r->head_done_us);
    bind_req_int(st, b++, i++, r->connect_start_us);
    bind_req_int(st, b++, i++, r->connect_end_us);
    bind_req_int(st, b++, i++, r->sent_us);
    bind_req_int(st, b++, i++, r->first_byte_us);
    bind_req_int(st, b++, i++, r->last_byte_us);
    bind_req_int(st, b++, i++, clamp_i64(r->bytes_in));
    bind_req_int(st, b++, i++, clamp_i64(r->bytes_out));
    bind_req_int(st, b++, i++, clamp_i64(r->upstream_bytes));
    bind_req_int(st, b++, i++, r->status);
    bind_req_int(st, b++, i++, r->injected ? 1 : 0);
    bind_req_int(st, b++, i++, r->reused ? 1 : 0);
    bind_req_interned(st, b++, i++, &in[REQ_IN_METHOD], r->method, n[RS_METHOD], r->method != NULL);
    bind_req_text(st, b++, i++, r->url, n[RS_URL], r->url != NULL);
    bind_req_text(st, b++, i++, v->path, v->plen, r->url != NULL);
    bind_req_interned(st, b++, i++, &in[REQ_IN_ROUTE], v->route, (size_t)(v->rl > 0 ? v->rl : 0),
                      v->rl >= 0);
    bind_req_interned(st, b++, i++, &in[REQ_IN_HOST], r->host, n[RS_HOST], r->host != NULL);
    bind_req_interned(st, b++, i++, &in[REQ_IN_PROTOCOL], r->protocol, n[RS_PROTOCOL],
                      r->protocol != NULL);
    bind_req_interned(st, b++, i++, &in[REQ_IN_TLS], r->tls_version, n[RS_TLS],
                      r->tls_version != NULL);
    bind_req_text(st, b++, i++, r->referer, n[RS_REFERER], r->referer != NULL);
    bind_req_text(st, b++, i++, v->rpath, v->rplen, v->rpath != NULL);
    bind_req_interned(st, b++, i++, &in[REQ_IN_UA], r->user_agent, n[RS_UA], r->user_agent != NULL);
    bind_req_interned(st, b++, i++, &in[REQ_IN_CTYPE], r->content_type, n[RS_CTYPE],
                      r->content_type != NULL);
    bind_req_interned(st, b++, i++, &in[REQ_IN_CENC], r->content_encoding, n[RS_CENC],
                      r->content_encoding != NULL);
    bind_req_interned(st, b++, i++, &in[REQ_IN_CACHE], r->cache_control, n[RS_CACHE],
                      r->cache_control != NULL);
    bind_req_interned(st, b++, i++, &in[REQ_IN_ERROR], r->error, n[RS_ERROR], r->error != NULL);
    bind_req_interned(st, b, i, &in[REQ_IN_LABEL], r->label, n[RS_LABEL], r->label != NULL);
}

/* One row with the single-row statement (v already prepared). */
static int insert_request(struct store *s, const struct item *it, const struct req_vals *v)
{
    sqlite3_stmt *st = s->st[S_REQ_INSERT];
    bind_request(s, st, s->req_bound[REQ_MULTI], 1, it, v);
    int rc = step(st);
    req_interns_update(s);
    return rc;
}

/* The claim of an injected page: the rows of its sub-resources recorded before it (no view yet,
 * a Referer with its path) take its view. Skipped when no such row was accepted after it. */
static int claim_rows(struct store *s, const struct store_request_rec *r, const struct req_vals *v)
{
    if (!r->injected || !r->view_id || !r->url || r->accept_us <= 0 ||
        r->accept_us > *claim_bound(s, v->path, v->plen))
        return 0;
    sqlite3_stmt *st = s->st[S_REQ_CLAIM];
    s->claims_run++;
    sqlite3_bind_text(st, 1, r->view_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, v->path, (int)v->plen, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, r->accept_us);
    return run(s, st);
}

/* Request records are written in groups (write_batch): REQ_MULTI rows per statement step, then
 * the claims of the injected pages among them. The order the writer's queries see is arrival
 * order: a record that resolves its view by its Referer (the only query that reads requests, for
 * injected pages) is taken after the group is written when the group holds an injected page, and
 * every other item of the batch is written after the group. A claim made after the rest of its
 * group is inserted finds what it would have found right after its own row: the rows after it
 * in the group have a view already or no Referer, and are never claimable. */
static bool needs_resolve(const struct store_request_rec *r)
{
    return r->referer && !r->view_id;
}

/* Writes the pending group: REQ_MULTI rows with one statement step, fewer one by one, and the
 * rows one by one again when the multi-row statement fails (one bad row must not cost the
 * others); then the claims. Returns the number of records that failed. */
static uint64_t flush_requests(struct store *s)
{
    size_t n = s->req_ngrp;
    uint64_t errors = 0;
    bool ok[REQ_MULTI];
    s->req_ngrp = 0;
    s->req_grp_injected = false;
    bool done = false;
    if (n == REQ_MULTI) {
        sqlite3_stmt *st = s->st[S_REQ_INSERT_MULTI];
        for (size_t k = 0; k < n; k++)
            bind_request(s, st, s->req_bound[k], 1 + (int)k * REQ_NCOLS, s->req_grp[k],
                         &s->req_vals[k]);
        int rc = step(st);
        req_interns_update(s);
        if (rc == 0) {
            s->req_grouped += n;
            for (size_t k = 0; k < n; k++)
                ok[k] = true;
            done = true;
        }
    }
    for (size_t k = 0; k < n && !done; k++)
        ok[k] = insert_request(s, s->req_grp[k], &s->req_vals[k]) == 0;
    for (size_t k = 0; k < n; k++)
        if (!ok[k] || claim_rows(s, &s->req_grp[k]->u.req, &s->req_vals[k]) != 0)
            errors++;
    return errors;
}

/* The mark of the batch's minute, before its first request row (see struct store). */
static uint64_t mark_minute(struct store *s)
{
    s->batch_marked = true;
    int64_t minute = s->batch_now_us / 60000000;
    if (minute <= s->mark_minute)
        return 0;
    s->mark_minute = minute;
    if (s->max_accept_us >= minute * 60000000)
        return 0;
    sqlite3_stmt *st = s->st[S_REQ_MARK];
    sqlite3_bind_int64(st, 1, minute);
    sqlite3_bind_int64(st, 2, s->next_req_id);
    return step(st) ? 1 : 0;
}

static uint64_t add_request(struct store *s, struct item *it)
{
    uint64_t errors = 0;
    if (!s->batch_marked)
        errors += mark_minute(s);
    if (s->req_grp_injected && needs_resolve(&it->u.req))
        errors += flush_requests(s);
    prep_request(s, &it->u.req, &s->req_vals[s->req_ngrp]);
    s->req_grp_injected |= it->u.req.injected;
    s->req_grp[s->req_ngrp++] = it;
    if (s->req_ngrp == REQ_MULTI)
        errors += flush_requests(s);
    return errors;
}

/* Deletes up to limit old views (with their rows, by cascade) and old requests. Returns the
 * number of rows deleted, or a negative error. */
static int prune_chunk(struct store *s, int64_t cutoff_ms, int limit)
{
    int total = 0;
    sqlite3_stmt *st;
    for (int k = S_PRUNE_METRICS; k <= S_PRUNE_NAVIGATION; k++) {
        st = s->st[k];
        sqlite3_bind_int64(st, 1, cutoff_ms);
        sqlite3_bind_int(st, 2, limit);
        if (run(s, st))
            return VP_ERR_DB;
    }
    /* Views: every deleted view's sealed hour becomes dirty (RETURNING started_at). */
    st = s->st[S_PRUNE_VIEWS];
    sqlite3_bind_int64(st, 1, cutoff_ms);
    sqlite3_bind_int(st, 2, limit);
    int sr;
    int64_t last_hour = INT64_MIN;
    while ((sr = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t at = sqlite3_column_int64(st, 0);
        total++;
        if (at >= 0 && rollup_hour_of(at) != last_hour) {
            last_hour = rollup_hour_of(at);
            if (touch_view(s, at)) {
                sr = SQLITE_ERROR;
                break;
            }
        }
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (sr != SQLITE_DONE)
        return VP_ERR_DB;
    st = s->st[S_PRUNE_REQUESTS];
    sqlite3_bind_int64(st, 1, cutoff_ms);
    sqlite3_bind_int(st, 2, limit);
    if (run(s, st))
        return VP_ERR_DB;
    total += sqlite3_changes(s->db);
    st = s->st[S_PRUNE_MARKS];
    sqlite3_bind_int64(st, 1, cutoff_ms);
    if (run(s, st))
        return VP_ERR_DB;
    return total;
}

static int64_t cutoff_of(const struct store *s, int64_t now_ms)
{
    return now_ms - (int64_t)s->opt.retention_days * 86400 * 1000;
}

static int write_item(struct store *s, struct item *it, uint64_t *beacons)
{
    switch (it->kind) {
    case IT_BEACON:
        (*beacons)++;
        return write_beacon(s, it);
    case IT_REQUEST: /* write_batch groups them (add_request) */
        return 0;
    case IT_REJECT: {
        sqlite3_stmt *st = s->st[S_REJECT];
        sqlite3_bind_text(st, 1, it->u.reason, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, 1);
        return run(s, st);
    }
    case IT_PRUNE: {
        int64_t cutoff = it->u.prune.now_ms - (int64_t)it->u.prune.days * 86400 * 1000;
        int n;
        do {
            n = prune_chunk(s, cutoff, PRUNE_CHUNK);
        } while (n > 0);
        return n < 0 ? n : 0;
    }
    case IT_SYNC:
        return 0;
    }
    return 0;
}

/* Time between two attempts to write while the database cannot be written. */
#define STORE_WRITE_RETRY_US 1000000

/* After a failed write: true when the database itself refused (full disk, read-only file, I/O
 * error, damaged file) rather than one item's data. */
static bool write_refused(const struct store *s)
{
    switch (sqlite3_errcode(s->db) & 0xff) {
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_PERM:
        return true;
    default:
        return false;
    }
}

/* Keeps the first SQLite error message of a batch (writer only). */
static void note_write_error(const struct store *s, char *msg, size_t cap)
{
    if (msg[0])
        return;
    int w = snprintf(msg, cap, "%s", sqlite3_errmsg(s->db));
    if (w < 0)
        msg[0] = '\0';
}

/* Whether the database file was removed or replaced since store_open (one stat, about a
 * microsecond, per batch). Writer thread only. */
static bool db_file_gone(struct store *s, char *msg, size_t cap)
{
    if (!s->db_id_known)
        return false;
    struct stat st;
    int rc = stat(s->db_path, &st);
    s->db_gone = (rc != 0 && errno == ENOENT) ||
                 (rc == 0 && (st.st_dev != s->db_dev || st.st_ino != s->db_ino));
    if (s->db_gone &&
        snprintf(msg, cap, "the database file was removed or replaced; restart the proxy") < 0)
        msg[0] = '\0';
    return s->db_gone;
}

/* Writes one batch in one transaction. Items are freed (sync markers signalled) by the caller.
 * Returns true when the database refused the batch as a whole (full disk, I/O error): the caller
 * queues its items again instead of freeing them. */
static bool write_batch(struct store *s, struct item *batch, size_t n)
{
    uint64_t beacons = 0, errors = 0;
    bool cannot_write = false;
    char msg[sizeof s->write_error] = "";
    if (db_file_gone(s, msg, sizeof msg)) {
        errors = n;
        cannot_write = true;
        goto out;
    }
    /* Read after the batch was taken: every record in it was accepted before this time. */
    int64_t now_us = vp_now_ms() * 1000;
    if (now_us > s->batch_now_us)
        s->batch_now_us = now_us;
    s->batch_marked = false;
    if (run(s, s->st[S_BEGIN])) {
        errors = n;
        cannot_write = true;
        note_write_error(s, msg, sizeof msg);
        goto out;
    }
    for (struct item *it = batch; it; it = it->next) {
        uint64_t before = errors;
        /* The items were written on the event loop's CPU: fetch the next one (its head, record
         * and first strings) while this one is written. */
        if (it->next)
            for (size_t off = 0; off < 320; off += 64)
                __builtin_prefetch((const char *)it->next + off);
        if (it->kind == IT_REQUEST) {
            errors += add_request(s, it);
        } else {
            if (s->req_ngrp)
                errors += flush_requests(s);
            if (write_item(s, it, &beacons) != 0)
                errors++; /* one bad item must not cost the others */
        }
        if (errors != before && write_refused(s)) {
            cannot_write = true;
            note_write_error(s, msg, sizeof msg);
        }
    }
    if (s->req_ngrp) {
        uint64_t before = errors;
        errors += flush_requests(s);
        if (errors != before && write_refused(s)) {
            cannot_write = true;
            note_write_error(s, msg, sizeof msg);
        }
    }
    if (beacons > 0) {
        sqlite3_bind_int64(s->st[S_ACCEPTED], 1, (sqlite3_int64)beacons);
        if (run(s, s->st[S_ACCEPTED]))
            errors++;
    }
    pthread_mutex_lock(&s->mu);
    uint64_t busy = s->unlogged_busy, drops = s->unlogged_req_drops;
    s->unlogged_busy = s->unlogged_req_drops = 0;
    pthread_mutex_unlock(&s->mu);
    const char *why[2] = {"store busy", "request record dropped"};
    uint64_t cnt[2] = {busy, drops};
    for (int k = 0; k < 2; k++) {
        if (cnt[k] == 0)
            continue;
        sqlite3_bind_text(s->st[S_REJECT], 1, why[k], -1, SQLITE_STATIC);
        sqlite3_bind_int64(s->st[S_REJECT], 2, (sqlite3_int64)cnt[k]);
        if (run(s, s->st[S_REJECT]))
            errors++;
    }
    if (run(s, s->st[S_COMMIT])) {
        cannot_write = true;
        note_write_error(s, msg, sizeof msg);
        run(s, s->st[S_ROLLBACK]);
        errors = n;
        s->req_grouped = 0;
    } else if (db_file_gone(s, msg, sizeof msg)) {
        /* Committed into a file removed meanwhile: kept for the side file instead. */
        cannot_write = true;
        errors = n;
    }
out:
    pthread_mutex_lock(&s->mu);
    s->stats.requests_grouped += s->req_grouped;
    s->req_grouped = 0;
    if (cannot_write) {
        s->write_fail_until_us = vp_mono_us() + STORE_WRITE_RETRY_US;
        memcpy(s->write_error, msg, sizeof msg);
    } else if (beacons > 0) {
        /* Only a committed beacon clears it: a small batch (a count of refusals) may still fit
         * on a disk where the next beacons do not. */
        s->write_fail_until_us = 0;
    }
    s->stats.batches++;
    s->stats.committed_rows += n - (errors > n ? n : errors);
    s->stats.write_errors += errors;
    pthread_mutex_unlock(&s->mu);
    return cannot_write;
}

static void prune_step(struct store *s)
{
    int64_t now = vp_now_ms();
    if (!s->prune_active) {
        if (s->opt.retention_days <= 0 || now < s->next_prune_ms)
            return;
        s->prune_active = true;
    }
    int n = -1;
    if (run(s, s->st[S_BEGIN]) == 0) {
        n = prune_chunk(s, cutoff_of(s, now), PRUNE_CHUNK);
        if (run(s, s->st[S_COMMIT])) {
            run(s, s->st[S_ROLLBACK]);
            n = -1;
        }
    }
    if (n < PRUNE_CHUNK) { /* done (or failed: try again next interval) */
        s->prune_active = false;
        s->next_prune_ms = now + PRUNE_INTERVAL_MS;
    }
}

/* One unit of rollup work between batches (store/rollup.h): backfill and dirty hours as long
 * as the queue is empty, at most one step per ROLLUP_BUSY_GAP_MS while items are waiting (a
 * step delays the next batch by its duration, ~10-90 ms for an hour of 1,400 views, and that
 * counts against the admission lag budget), and the next hour once it becomes sealable. An
 * error rolls the step back and retries a minute later. */
#define ROLLUP_BUSY_GAP_MS 5000
#define ROLLUP_RETRY_MS 60000
static void rollup_tick(struct store *s, bool idle)
{
    if (!s->rollup_on)
        return;
    int64_t now = vp_now_ms();
    if (!s->rollup_more && now < s->next_rollup_ms)
        return;
    if (!idle && now - s->last_rollup_ms < ROLLUP_BUSY_GAP_MS)
        return;
    bool more = false;
    int64_t until = s->rollup_until;
    s->last_rollup_ms = now;
    if (rollup_step(s->db, now, &until, &more) != 0) {
        s->rollup_more = false;
        s->next_rollup_ms = now + ROLLUP_RETRY_MS;
        return;
    }
    s->rollup_until = until;
    s->rollup_more = more;
    s->next_rollup_ms = (until + 1) * ROLLUP_HOUR_MS + ROLLUP_SEAL_LAG_MS;
}

/* Milliseconds until the writer has timed work (retention, rollups); -1 = none. */
static int64_t timed_work_in(const struct store *s)
{
    int64_t now = vp_now_ms(), wait = -1;
    if (s->opt.retention_days > 0)
        wait = s->next_prune_ms - now;
    if (s->rollup_on) {
        int64_t w = s->rollup_more ? 0 : s->next_rollup_ms - now;
        if (wait < 0 || w < wait)
            wait = w;
    }
    return wait < 0 && (s->opt.retention_days > 0 || s->rollup_on) ? 0 : wait;
}

static void abs_deadline(struct timespec *ts, int64_t ms_from_now)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ms_from_now / 1000);
    ts->tv_nsec += (long)(ms_from_now % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* WAL hook: runs in the writer, inside COMMIT, after the frames are written. Replaces
 * wal_autocheckpoint (so the writer never checkpoints inline); writer_main decides, after each
 * batch, whether the checkpointer runs (ckpt_after_batch). */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    struct store *s = arg;
    (void)db;
    (void)name;
    s->wal_frames = frames;
    return SQLITE_OK;
}

static void *checkpointer_main(void *arg)
{
    struct store *s = arg;
    /* Named for per-thread CPU accounting (/proc/PID/task/TID/comm, bench/ingest.py, top -H). */
    (void)pthread_setname_np(pthread_self(), "vp-ckpt");
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->ck_wanted && !s->ck_stop)
            pthread_cond_wait(&s->cv_ck, &s->mu);
        if (s->ck_stop)
            break;
        s->ck_wanted = false;
        s->ck_running = true;
        pthread_mutex_unlock(&s->mu);
        /* Busy (another checkpoint, or a reader pinning old frames) is fine: next time. */
        int nlog = -1, nckpt = -1;
        (void)sqlite3_wal_checkpoint_v2(s->ckdb, NULL, SQLITE_CHECKPOINT_PASSIVE, &nlog, &nckpt);
        pthread_mutex_lock(&s->mu);
        if (nlog > 0 && nckpt == nlog)
            s->stats.checkpoints++;
        s->ck_backfilled = nlog > 0 && nckpt == nlog ? nckpt : -1;
        s->ck_running = false;
        pthread_cond_broadcast(&s->cv_ck); /* a writer at CKPT_HARD_FRAMES waits for this */
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Starts the checkpointer; without it (no connection or thread) the writer falls back to
 * SQLite's own autocheckpoint. */
static void checkpointer_start(struct store *s, const char *path)
{
    if (pthread_cond_init(&s->cv_ck, NULL) != 0)
        return;
    /* A connection checkpoints only once its pager has opened the WAL, which happens on its
     * first read: until then sqlite3_wal_checkpoint_v2 returns SQLITE_OK having done nothing
     * (log and checkpointed -1), and the WAL would grow to CKPT_HARD_FRAMES. */
    if (sqlite3_open_v2(path, &s->ckdb, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK ||
        sqlite3_busy_timeout(s->ckdb, 1000) != SQLITE_OK ||
        sqlite3_exec(s->ckdb, "SELECT 1 FROM sqlite_master LIMIT 1", NULL, NULL, NULL) !=
            SQLITE_OK ||
        pthread_create(&s->ckthread, NULL, checkpointer_main, s) != 0) {
        sqlite3_close(s->ckdb);
        s->ckdb = NULL;
        pthread_cond_destroy(&s->cv_ck);
        return;
    }
    s->ck_started = true;
    sqlite3_wal_hook(s->db, wal_hook, s);
}

static void checkpointer_stop(struct store *s)
{
    if (!s->ck_started)
        return;
    pthread_mutex_lock(&s->mu);
    s->ck_stop = true;
    pthread_cond_broadcast(&s->cv_ck);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->ckthread, NULL);
    sqlite3_close(s->ckdb);
    pthread_cond_destroy(&s->cv_ck);
    s->ck_started = false;
}

/* After each batch (writer thread): starts the checkpointer's next pass, or finishes its last.
 * SQLite starts the WAL file over only when a write transaction begins with every frame copied
 * into the database. Under sustained load the writer always appended a batch or two while the
 * checkpointer copied, so the WAL never started over: it grew to CKPT_HARD_FRAMES and beyond
 * (the writer's own checkpoint there found the checkpointer's next pass running, started by
 * each commit past CKPT_FRAMES). So the writer alone starts passes, one at a time, and when a
 * pass has copied every frame it saw, the writer copies the few committed since (at most
 * CKPT_CATCHUP_FRAMES, about one pass's worth) itself, with the checkpointer idle: its next
 * transaction starts the WAL over. A larger remainder gets another pass, which is shorter. */
static void ckpt_after_batch(struct store *s)
{
    bool inline_ckpt = s->wal_frames >= CKPT_HARD_FRAMES;
    if (s->ck_started) {
        pthread_mutex_lock(&s->mu);
        /* At the hard limit the writer waits for a running pass to end (its own checkpoint
         * would find the checkpoint lock taken) and then copies what is left. */
        while (inline_ckpt && (s->ck_running || s->ck_wanted) && !s->ck_stop)
            pthread_cond_wait(&s->cv_ck, &s->mu);
        int done = s->ck_backfilled;
        s->ck_backfilled = 0;
        bool idle = !s->ck_running && !s->ck_wanted;
        bool caught_up = false;
        if (idle && done > 0 && s->wal_frames >= done &&
            s->wal_frames - done <= CKPT_CATCHUP_FRAMES)
            inline_ckpt = caught_up = true;
        else if (idle && (done != 0 || s->wal_frames >= CKPT_FRAMES) && s->wal_frames > done) {
            s->ck_wanted = true; /* the first pass, or another after one that left frames */
            pthread_cond_signal(&s->cv_ck);
        }
        inline_ckpt = caught_up || (inline_ckpt && idle);
        pthread_mutex_unlock(&s->mu);
    }
    int nlog = -1, nckpt = -1;
    if (inline_ckpt &&
        sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &nlog, &nckpt) ==
            SQLITE_OK &&
        nlog >= 0 && nckpt == nlog)
        s->wal_frames = 0;
}

static bool backlog_half_full(const struct store *s);

static void *writer_main(void *arg)
{
    struct store *s = arg;
    (void)pthread_setname_np(pthread_self(), "vp-writer");
    pthread_mutex_lock(&s->mu);
    bool behind = false;       /* items queued up while the last batch was written */
    int64_t last_write_us = 0; /* how long the last batch took to write */
    for (;;) {
        while (!s->head && !s->stop && !s->prune_active) {
            int64_t wait = timed_work_in(s);
            if (wait == 0)
                break;
            if (wait > 0) {
                struct timespec ts;
                abs_deadline(&ts, wait);
                pthread_cond_timedwait(&s->cv_item, &s->mu, &ts);
            } else {
                pthread_cond_wait(&s->cv_item, &s->mu);
            }
        }
        if (s->head && !s->stop && !s->sync_pending && s->qlen < s->opt.batch_rows) {
            /* Coalesce until the oldest item has waited batch_ms. When items queued up during
             * the last batch, the next one is taken that much earlier as the last took to
             * write (at once when it took batch_ms or more: group commit), so an item waits
             * about batch_ms from its enqueue to its commit under load as from idle. Batches
             * thus grow with the arrival rate up to batch_rows instead of shrinking to what
             * arrived during one write: a view's entries in the time-keyed indexes (views_time,
             * and the route and path indexes) land on leaves spread over the last seconds of
             * views, and a commit writes each leaf it touched once, so a larger batch shares
             * its WAL frames among more beacons (bench/store_bench with STORE_BENCH_RATE). */
            int64_t wait_us = (int64_t)s->opt.batch_ms * 1000;
            if (behind)
                wait_us = last_write_us < wait_us ? wait_us - last_write_us : 0;
            int64_t due = s->head->enq_us + wait_us;
            struct timespec ts = {(time_t)(due / 1000000), (long)(due % 1000000) * 1000};
            while (!s->stop && !s->sync_pending && s->qlen < s->opt.batch_rows &&
                   !backlog_half_full(s))
                if (pthread_cond_timedwait(&s->cv_item, &s->mu, &ts) == ETIMEDOUT)
                    break;
        }
        struct item *batch = s->head, *last = NULL;
        size_t n = 0;
        uint64_t rows = 0;
        if (s->qlen <= s->opt.batch_rows) {
            /* The whole queue, without walking it under the lock: its items were written by
             * another CPU, and reading each one here cost a cache miss per item while enqueue
             * waited. */
            last = s->tail;
            n = s->qlen;
            rows = s->qrows;
        } else {
            for (struct item *it = s->head; it && n < s->opt.batch_rows; it = it->next) {
                last = it;
                n++;
                rows += it->rows;
            }
        }
        int64_t oldest = batch ? batch->enq_us : 0;
        s->inflight_oldest_us = oldest;
        if (last) {
            s->head = last->next;
            if (!s->head)
                s->tail = NULL;
            last->next = NULL;
            s->qlen -= n;
            s->qrows -= rows;
        } else {
            batch = NULL;
        }
        bool stopping = s->stop && !s->head;
        bool queue_empty = !s->head;
        pthread_mutex_unlock(&s->mu);

        int64_t t_start = vp_mono_us();
        bool batch_taken = batch != NULL;
        bool refused = batch && write_batch(s, batch, n);
        int64_t t_end = vp_mono_us();
        if (batch_taken)
            last_write_us = t_end - t_start;
        /* A written batch is sorted here, outside the lock: its items were written on another
         * CPU, and reading each one under the lock made the event loop's enqueue wait for a
         * cache miss per item. Sync markers are signalled under the lock, request items go to
         * the spares, the rest is freed. */
        struct item *syncs = NULL, *spares = NULL, *spares_last = NULL, *dead = NULL;
        unsigned nspares = 0;
        if (batch && !refused) {
            for (struct item *it = batch, *next; it; it = next) {
                next = it->next;
                struct item **to = it->kind == IT_SYNC ? &syncs : it->spare_cap ? &spares : &dead;
                if (to == &spares && !spares_last)
                    spares_last = it;
                nspares += to == &spares;
                it->next = *to;
                *to = it;
            }
            batch = NULL;
        }
        if (!stopping) {
            prune_step(s);
            rollup_tick(s, queue_empty);
        }
        ckpt_after_batch(s);

        pthread_mutex_lock(&s->mu);
        s->stats.wal_frames = s->wal_frames > 0 ? (uint64_t)s->wal_frames : 0;
        s->stats.claims_run = s->claims_run;
        if (batch_taken) {
            s->pending_rows -= rows;
            s->inflight_oldest_us = 0;
            if ((uint64_t)(t_end - oldest) > s->stats.lag_max_us)
                s->stats.lag_max_us = (uint64_t)(t_end - oldest);
            if (rows >= ROW_COST_MIN_ROWS) {
                uint64_t c = (uint64_t)(t_end - t_start) * 1000 / rows;
                s->row_cost_ns = (s->row_cost_ns * 3 + c) / 4;
            }
        }
        bool signal = false;
        /* A batch the database refused goes back to the head of the queue, in order, until the
         * store has been closing for close_grace_ms: what was acknowledged is written once the
         * disk has room. Its rows stay pending, so admission refuses new work meanwhile. After
         * the grace, its items go to the spill list (store_close writes the side file). */
        bool closing = s->stop;
        bool requeue = refused && (!closing || (vp_mono_us() < s->close_deadline_us &&
                                                !s->db_gone)); /* a removed file stays gone */
        bool spill = refused && !requeue;
        s->close_refused |= refused && closing;
        for (struct item *it = syncs, *next; it; it = next) {
            next = it->next;
            it->u.sync->done = true;
            s->sync_pending--;
            signal = true;
            free(it);
        }
        if (spares && s->nreq_spare + nspares <= REQ_SPARE_MAX) {
            spares_last->next = s->req_spare;
            s->req_spare = spares;
            s->nreq_spare += nspares;
        } else if (spares) {
            spares_last->next = dead;
            dead = spares;
        }
        /* What is left is a batch the database refused. */
        struct item *back = NULL, *back_last = NULL;
        size_t nback = 0;
        while (batch) {
            struct item *next = batch->next;
            if (batch->kind == IT_SYNC) {
                batch->u.sync->done = true;
                s->sync_pending--;
                signal = true;
                free(batch);
            } else if (requeue) {
                batch->next = NULL;
                if (back_last)
                    back_last->next = batch;
                else
                    back = batch;
                back_last = batch;
                nback++;
                s->pending_rows += batch->rows;
                s->qrows += batch->rows;
            } else if (spill && (batch->kind == IT_BEACON || batch->kind == IT_REQUEST ||
                                 batch->kind == IT_REJECT)) {
                batch->next = NULL;
                if (s->spill_tail)
                    s->spill_tail->next = batch;
                else
                    s->spill = batch;
                s->spill_tail = batch;
            } else if (batch->spare_cap && s->nreq_spare < REQ_SPARE_MAX) {
                batch->next = s->req_spare;
                s->req_spare = batch;
                s->nreq_spare++;
            } else {
                batch->next = dead; /* freed below, outside the lock */
                dead = batch;
            }
            batch = next;
        }
        if (back) {
            back_last->next = s->head;
            if (!s->head)
                s->tail = back_last;
            s->head = back;
            s->qlen += nback;
        }
        if (signal)
            pthread_cond_broadcast(&s->cv_done);
        if (requeue) {
            /* Wait before trying again (a store_close wakes it); while closing, at most until
             * the deadline, where the last try is made. */
            int64_t wait_ms = STORE_WRITE_RETRY_US / 1000;
            if (closing) {
                int64_t left = (s->close_deadline_us - vp_mono_us() + 999) / 1000;
                wait_ms = left < wait_ms ? (left > 0 ? left : 0) : wait_ms;
            }
            struct timespec ts;
            abs_deadline(&ts, wait_ms);
            while ((closing || !s->stop) &&
                   pthread_cond_timedwait(&s->cv_item, &s->mu, &ts) != ETIMEDOUT)
                ;
        }
        behind = batch_taken && s->head;
        if (dead) {
            /* The event loop's enqueue waits on mu: a batch's frees do not hold it. */
            pthread_mutex_unlock(&s->mu);
            free_list(dead);
            pthread_mutex_lock(&s->mu);
        }
        if (stopping && !s->head)
            break;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* The write time admission control allows the uncommitted rows (see the file comment). */
static int64_t work_budget_us(const struct store *s)
{
    int64_t lag_us = (int64_t)s->opt.max_lag_ms * 1000;
    int64_t work_us = lag_us - (int64_t)s->opt.batch_ms * 1000;
    return work_us < lag_us / 2 ? lag_us / 2 : work_us;
}

/* The writer's estimate of the time the uncommitted rows plus rows more take to write; under
 * mu. */
static double backlog_us(const struct store *s, uint32_t rows)
{
    return (double)(s->pending_rows + rows) * (double)s->row_cost_ns / 1000.0;
}

/* Admission control (see the file comment); under mu. */
static bool admit(const struct store *s, uint32_t rows, int64_t now_us)
{
    if (s->qlen >= s->opt.queue_max)
        return false;
    int64_t lag_us = (int64_t)s->opt.max_lag_ms * 1000;
    int64_t oldest = s->inflight_oldest_us ? s->inflight_oldest_us
                                           : s->head ? s->head->enq_us : 0;
    if (oldest && now_us - oldest > lag_us)
        return false;
    if (s->pending_rows == 0)
        return true; /* an idle writer takes anything */
    return backlog_us(s, rows) <= (double)work_budget_us(s);
}

/* The queue holds half the write time admission control allows: the writer stops coalescing
 * (writer_main), so that waiting for a larger batch never makes admission refuse; under mu. */
static bool backlog_half_full(const struct store *s)
{
    return backlog_us(s, 0) >= (double)work_budget_us(s) / 2;
}

/* Counts one VP_ERR_FULL answer; under mu. */
static void count_refusal(struct store *s, enum item_kind kind)
{
    s->stats.dropped_full++;
    if (kind == IT_REQUEST) {
        s->stats.requests_dropped++;
        s->unlogged_req_drops++;
    } else if (kind == IT_BEACON) {
        s->unlogged_busy++;
    }
}

/* Appends it; on VP_ERR_FULL the caller keeps ownership. force bypasses the bound (sync). */
/* The request items a thread recording requests has taken from a store's spares (enqueue), and
 * uses before allocating new ones (store_record_request). Per thread, so that taking one needs no
 * lock; freed when the thread exits. The items belong to no store. */
struct spare_list {
    struct item *head;
    bool keyed; /* spare_key holds it: freed at the thread's exit */
};
static _Thread_local struct spare_list tl_spare;
static pthread_key_t spare_key;
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;
static bool spare_key_ok;

static void spare_list_free(void *arg)
{
    struct spare_list *l = arg;
    free_list(l->head);
    l->head = NULL;
}

static void spare_key_init(void)
{
    spare_key_ok = pthread_key_create(&spare_key, spare_list_free) == 0;
}

/* Under mu: the store's spares become the calling thread's, when the thread can free them at
 * its exit. */
static void spare_take(struct store *s)
{
    pthread_once(&spare_once, spare_key_init);
    if (!tl_spare.keyed) {
        if (!spare_key_ok || pthread_setspecific(spare_key, &tl_spare) != 0)
            return;
        tl_spare.keyed = true;
    }
    tl_spare.head = s->req_spare;
    s->req_spare = NULL;
    s->nreq_spare = 0;
}

static int enqueue(struct store *s, struct item *it, bool force)
{
    it->next = NULL;
    if (it->rows == 0)
        it->rows = 1;
    it->enq_us = vp_mono_us();
    pthread_mutex_lock(&s->mu);
    if (s->stop || (!force && !admit(s, it->rows, it->enq_us))) {
        count_refusal(s, it->kind);
        pthread_mutex_unlock(&s->mu);
        return VP_ERR_FULL;
    }
    s->pending_rows += it->rows;
    if (s->tail)
        s->tail->next = it;
    else
        s->head = it;
    s->tail = it;
    s->qlen++;
    s->qrows += it->rows;
    if (it->kind == IT_SYNC)
        s->sync_pending++;
    else if (it->kind == IT_BEACON)
        s->stats.beacons_accepted++; /* counted under the same lock hold as the enqueue */
    if (s->qlen == 1 || s->qlen >= s->opt.batch_rows || it->kind == IT_SYNC || backlog_half_full(s))
        pthread_cond_signal(&s->cv_item);
    if (it->kind == IT_REQUEST && !tl_spare.head && s->req_spare)
        spare_take(s);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* ---- the side file (store/pending.h): what the database refused at shutdown ----
 * Records: 'B' a beacon (now_ms, sample_rate, user agent, label, body), 'R' a request record
 * (the ten times and sizes, status, injected, reused, then its thirteen strings in the order of
 * struct store_request_rec), 'J' a rejection count of one (reason). */

#define REQ_NNUM 13
#define SIDE_STR_MAX (1024 * 1024) /* a request string or user agent read back */

static int beacon_item_new(const char *body, size_t body_len, int64_t now_ms, double sample_rate,
                           const char *ua, size_t ua_len, const char *label, size_t label_len,
                           struct item **out, char *why, size_t whylen);

static void spill_record(struct pending_out *o, const struct item *it)
{
    switch (it->kind) {
    case IT_BEACON: {
        char sr[40];
        int w = snprintf(sr, sizeof sr, "%.17g", it->u.b.sample_rate);
        pending_record_begin(o, 'B');
        pending_field_i64(o, it->u.b.now_ms);
        pending_field(o, sr, w > 0 && (size_t)w < sizeof sr ? (size_t)w : 0);
        pending_field(o, it->u.b.ua, it->u.b.ua ? strlen(it->u.b.ua) : 0);
        pending_field(o, it->u.b.label, it->u.b.label ? strlen(it->u.b.label) : 0);
        pending_field(o, it->u.b.body, it->u.b.body_len);
        pending_record_end(o);
        return;
    }
    case IT_REQUEST: {
        const struct store_request_rec *r = &it->u.req;
        int64_t num[REQ_NNUM] = {r->accept_us,
                                 r->head_done_us,
                                 r->connect_start_us,
                                 r->connect_end_us,
                                 r->sent_us,
                                 r->first_byte_us,
                                 r->last_byte_us,
                                 clamp_i64(r->bytes_in),
                                 clamp_i64(r->bytes_out),
                                 clamp_i64(r->upstream_bytes),
                                 r->status,
                                 r->injected,
                                 r->reused};
        const char *str[REQ_NSTR] = {
            r->method,        r->url,     r->host,       r->protocol,     r->tls_version,
            r->view_id,       r->referer, r->user_agent, r->content_type, r->content_encoding,
            r->cache_control, r->error,   r->label};
        pending_record_begin(o, 'R');
        for (size_t i = 0; i < REQ_NNUM; i++)
            pending_field_i64(o, num[i]);
        for (size_t i = 0; i < REQ_NSTR; i++)
            pending_field(o, str[i], str[i] ? strlen(str[i]) : 0);
        pending_record_end(o);
        return;
    }
    case IT_REJECT:
        pending_record_begin(o, 'J');
        pending_field(o, it->u.reason, strlen(it->u.reason));
        pending_record_end(o);
        return;
    default:
        return;
    }
}

/* A text field read back: present, at most max bytes, no NUL (it becomes a C string). */
static bool side_text(const struct pending_field *f, size_t max)
{
    return f->p && f->len <= max && !memchr(f->p, '\0', f->len);
}

/* The item of one side-file record, checked as hostile input: 0, or VP_ERR_INVALID /
 * VP_ERR_NOMEM with the reason in why. */
static int side_item(char kind, const struct pending_field *f, size_t nf, struct item **out,
                     char *why, size_t whylen)
{
    *out = NULL;
    if (kind == 'B' && nf == 5) {
        int64_t now_ms;
        char sr[40];
        double rate = -1;
        if (f[1].p && f[1].len > 0 && f[1].len < sizeof sr && side_text(&f[1], sizeof sr)) {
            memcpy(sr, f[1].p, f[1].len);
            sr[f[1].len] = '\0';
            char *end;
            rate = strtod(sr, &end);
            if (*end)
                rate = -1;
        }
        if (!pending_i64(&f[0], &now_ms) || now_ms <= 0 || !(rate >= 0 && rate <= 1) ||
            (f[2].p && !side_text(&f[2], SIDE_STR_MAX)) || (f[3].p && !side_text(&f[3], 127)) ||
            !f[4].p) {
            set_err(why, whylen, "malformed beacon record", NULL);
            return VP_ERR_INVALID;
        }
        char bwhy[REASON_MAX];
        int rc = beacon_item_new(f[4].p, f[4].len, now_ms, rate, f[2].p, f[2].len, f[3].p, f[3].len,
                                 out, bwhy, sizeof bwhy);
        if (rc == VP_ERR_NOMEM)
            return rc;
        if (rc) {
            set_err(why, whylen, "invalid beacon", bwhy);
            return VP_ERR_INVALID;
        }
        return 0;
    }
    if (kind == 'R' && nf == REQ_NNUM + REQ_NSTR) {
        int64_t num[REQ_NNUM];
        size_t total = 0;
        bool ok = true;
        for (size_t i = 0; i < REQ_NNUM; i++)
            ok &= pending_i64(&f[i], &num[i]);
        ok = ok && num[7] >= 0 && num[8] >= 0 && num[9] >= 0 && num[10] >= 0 && num[10] <= 999 &&
             (num[11] | num[12]) >= 0 && num[11] <= 1 && num[12] <= 1;
        for (size_t i = REQ_NNUM; ok && i < nf; i++) {
            ok = !f[i].p || side_text(&f[i], SIDE_STR_MAX);
            total += f[i].p ? f[i].len + 1 : 0;
        }
        if (!ok) {
            set_err(why, whylen, "malformed request record", NULL);
            return VP_ERR_INVALID;
        }
        struct item *it = malloc(sizeof *it + total);
        if (!it)
            return VP_ERR_NOMEM;
        memset(it, 0, sizeof *it);
        it->kind = IT_REQUEST;
        it->rows = 2;
        struct store_request_rec *r = &it->u.req;
        r->accept_us = num[0];
        r->head_done_us = num[1];
        r->connect_start_us = num[2];
        r->connect_end_us = num[3];
        r->sent_us = num[4];
        r->first_byte_us = num[5];
        r->last_byte_us = num[6];
        r->bytes_in = (uint64_t)num[7];
        r->bytes_out = (uint64_t)num[8];
        r->upstream_bytes = (uint64_t)num[9];
        r->status = (int)num[10];
        r->injected = num[11] == 1;
        r->reused = num[12] == 1;
        const char **dst[REQ_NSTR] = {
            &r->method,        &r->url,     &r->host,       &r->protocol,     &r->tls_version,
            &r->view_id,       &r->referer, &r->user_agent, &r->content_type, &r->content_encoding,
            &r->cache_control, &r->error,   &r->label};
        char *p = (char *)(it + 1);
        for (size_t i = 0; i < REQ_NSTR; i++) {
            const struct pending_field *sf = &f[REQ_NNUM + i];
            if (!sf->p)
                continue;
            it->slen[i] = (uint32_t)sf->len; /* side_text: at most SIDE_STR_MAX, no NUL */
            memcpy(p, sf->p, sf->len);
            p[sf->len] = '\0';
            *dst[i] = p;
            p += sf->len + 1;
        }
        *out = it;
        return 0;
    }
    if (kind == 'J' && nf == 1) {
        if (!side_text(&f[0], REASON_MAX - 1) || f[0].len == 0) {
            set_err(why, whylen, "malformed rejection record", NULL);
            return VP_ERR_INVALID;
        }
        struct item *it = calloc(1, sizeof *it);
        if (!it)
            return VP_ERR_NOMEM;
        it->kind = IT_REJECT;
        it->rows = 1;
        memcpy(it->u.reason, f[0].p, f[0].len);
        *out = it;
        return 0;
    }
    set_err(why, whylen, "unknown record", NULL);
    return VP_ERR_INVALID;
}

static void free_list(struct item *it)
{
    for (struct item *n; it; it = n) {
        n = it->next;
        item_free(it);
    }
}

/* store_open, before the writer starts: writes the side file's items into the database in one
 * transaction and deletes it; a file that cannot be read or checked, or whose items the
 * database refuses, stays where it is. The outcome goes to s->notice. */
static void replay_side_file(struct store *s)
{
    char *buf = NULL;
    size_t len = 0, nrec = 0;
    char err[256] = "";
    int rc = pending_read(s->pending_path, &buf, &len, &nrec, err, sizeof err);
    if (rc == 1)
        return;
    if (rc != 0) {
        set_err(s->notice, sizeof s->notice, s->pending_path, err);
        size_t n = strlen(s->notice);
        set_err(s->notice + n, sizeof s->notice - n,
                ": not replayed, left in place (delete it to drop what it holds)", NULL);
        return;
    }
    struct item *head = NULL, *tail = NULL;
    size_t pos = 0, n = 0, nb = 0, nr = 0;
    char kind;
    struct pending_field f[PENDING_MAX_FIELDS];
    size_t nf;
    while (pending_next(buf, len, &pos, &kind, f, &nf)) {
        struct item *it = NULL;
        char why[160] = "";
        rc = side_item(kind, f, nf, &it, why, sizeof why);
        if (rc != 0) {
            char what[200];
            int w = snprintf(what, sizeof what, "record %zu: %s", n + 1,
                             rc == VP_ERR_NOMEM ? "out of memory" : why);
            if (w < 0)
                what[0] = '\0';
            set_err(s->notice, sizeof s->notice, s->pending_path, what);
            size_t nl = strlen(s->notice);
            set_err(s->notice + nl, sizeof s->notice - nl,
                    ": not replayed, left in place (delete it to drop what it holds)", NULL);
            free_list(head);
            free(buf);
            return;
        }
        nb += it->kind == IT_BEACON;
        nr += it->kind == IT_REQUEST;
        if (tail)
            tail->next = it;
        else
            head = it;
        tail = it;
        n++;
    }
    free(buf);
    uint64_t errors0 = s->stats.write_errors; /* no other thread yet */
    bool refused = n > 0 && write_batch(s, head, n);
    uint64_t failed = s->stats.write_errors - errors0;
    free_list(head);
    char what[300];
    int w;
    if (refused) {
        w = snprintf(what, sizeof what,
                     "%zu items not replayed, the database cannot be written "
                     "(%s): left in place for the next start",
                     n, s->write_error);
    } else if (unlink(s->pending_path) != 0) {
        w = snprintf(what, sizeof what,
                     "%zu items replayed (%zu beacons, %zu request records) "
                     "but the file cannot be deleted (%s): delete it, or they are replayed again",
                     n, nb, nr, strerror(errno));
    } else if (failed) {
        w = snprintf(what, sizeof what,
                     "%zu items the database had refused at the last "
                     "shutdown written into it (%zu beacons, %zu request records), %llu of them "
                     "failed (%s); file deleted",
                     n, nb, nr, (unsigned long long)failed, sqlite3_errmsg(s->db));
    } else {
        w = snprintf(what, sizeof what,
                     "%zu items the database had refused at the last "
                     "shutdown written into it (%zu beacons, %zu request records); file deleted",
                     n, nb, nr);
    }
    if (w < 0)
        what[0] = '\0';
    set_err(s->notice, sizeof s->notice, s->pending_path, what);
}

/* store_close, after the writer stopped: the side file for what it still could not write. */
static void write_side_file(struct store *s, char *msg, size_t cap)
{
    size_t n = 0, nb = 0, nr = 0;
    struct pending_out o;
    pending_out_init(&o);
    pending_block_begin(&o);
    for (struct item *it = s->spill; it; it = it->next) {
        spill_record(&o, it);
        n++;
        nb += it->kind == IT_BEACON;
        nr += it->kind == IT_REQUEST;
    }
    pending_block_end(&o);
    char err[300] = "";
    int rc = pending_write(s->pending_path, &o, err, sizeof err);
    pending_out_dispose(&o);
    if (!cap)
        return;
    int w = rc == 0
                ? snprintf(msg, cap,
                           "the database could not be written at shutdown (%s): %zu "
                           "acknowledged items (%zu beacons, %zu request records) saved to %s, "
                           "written into the database at the next start",
                           s->write_error, n, nb, nr, s->pending_path)
                : snprintf(msg, cap,
                           "the database could not be written at shutdown (%s) and "
                           "neither could the side file (%s): %zu acknowledged items (%zu beacons, "
                           "%zu request records) lost",
                           s->write_error, err, n, nb, nr);
    if (w < 0)
        msg[0] = '\0';
}

/* SQLite keeps memory statistics under a global mutex taken on every allocation (about twenty
 * per request record); nothing here reads them. They can only be turned off before SQLite
 * initialises, so the first store_open of the process does it (if SQLite is in use already, the
 * call fails harmlessly). */
static pthread_once_t sqlite_cfg_once = PTHREAD_ONCE_INIT;

static void sqlite_cfg(void)
{
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

/* Request ids stop here (2^62): a file whose ids reach it (edited by hand: the writer assigns
 * one per record) is refused rather than overflowing next_req_id. */
#define REQ_ID_MAX (INT64_C(1) << 62)

/* The first column of sql's first row (dflt when NULL); ?1, when sql has it, is bound to arg.
 * Clears *ok when the statement fails. */
static int64_t scalar_i64(sqlite3 *db, const char *sql, int64_t arg, int64_t dflt, bool *ok)
{
    sqlite3_stmt *st = NULL;
    int64_t v = dflt;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
        (sqlite3_bind_parameter_count(st) == 0 || sqlite3_bind_int64(st, 1, arg) == SQLITE_OK) &&
        sqlite3_step(st) == SQLITE_ROW) {
        if (sqlite3_column_type(st, 0) != SQLITE_NULL)
            v = sqlite3_column_int64(st, 0);
    } else {
        *ok = false;
    }
    sqlite3_finalize(st);
    return v;
}

/* The writer's id and mark state from the database (see struct store): the next id is above
 * every row's and every mark's; rows below the latest mark's first id were accepted before its
 * minute (the marks' rule), so only the rows from there on are read for the largest accept_us
 * (all rows when there is no mark). */
static int load_request_marks(struct store *s, char *err, size_t errlen)
{
    bool ok = true;
    int64_t max_id = scalar_i64(s->db, "SELECT max(id) FROM requests", 0, 0, &ok);
    int64_t mark_id = scalar_i64(s->db, "SELECT max(first_id) FROM request_marks", 0, 0, &ok);
    int64_t last = scalar_i64(s->db, "SELECT max(minute) FROM request_marks", 0, INT64_MIN, &ok);
    int64_t first = scalar_i64(
        s->db, "SELECT (SELECT first_id FROM request_marks ORDER BY minute DESC LIMIT 1)", 0, 0,
        &ok);
    int64_t max_accept =
        scalar_i64(s->db, "SELECT max(accept_us) FROM requests WHERE id >= ?1",
                   last == INT64_MIN ? INT64_MIN : first, INT64_MIN, &ok);
    if (!ok) {
        set_err(err, errlen, "reading request ids", sqlite3_errmsg(s->db));
        return VP_ERR_DB;
    }
    /* Values come from the file: a hand-edited one must not overflow the arithmetic. */
    if (last > INT64_MIN / 60000000 && last < INT64_MAX / 60000000 &&
        last * 60000000 - 1 > max_accept)
        max_accept = last * 60000000 - 1;
    int64_t top = max_id > 0 ? max_id : 0;
    if (mark_id > top)
        top = mark_id;
    if (top >= REQ_ID_MAX) {
        char n[32];
        int w = snprintf(n, sizeof n, "%" PRId64, top);
        set_err(err, errlen, "request ids exhausted (the largest is)",
                w > 0 && (size_t)w < sizeof n ? n : NULL);
        return VP_ERR_DB;
    }
    s->next_req_id = top + 1;
    s->max_accept_us = max_accept == INT64_MIN ? 0 : max_accept;
    s->mark_minute = last;
    return 0;
}

int store_open(struct store **out, const char *path, const struct store_options *opt, char *err,
               size_t errlen)
{
    int rc = VP_ERR_NOMEM;
    if (errlen)
        err[0] = '\0';
    struct store *s = calloc(1, sizeof *s);
    if (!s) {
        set_err(err, errlen, "out of memory", NULL);
        return VP_ERR_NOMEM;
    }
    if (opt)
        s->opt = *opt;
    else
        store_options_default(&s->opt);
    if (s->opt.queue_max == 0)
        s->opt.queue_max = 1;
    if (s->opt.batch_rows == 0)
        s->opt.batch_rows = 1;
    if (s->opt.max_lag_ms == 0)
        s->opt.max_lag_ms = s->opt.batch_ms > UINT_MAX / 2 ? UINT_MAX : 2 * s->opt.batch_ms;
    s->row_cost_ns = ROW_COST_PRIOR_NS;
    size_t pl = strlen(path);
    if (!(s->db_path = malloc(2 * pl + 1 + sizeof "-pending"))) {
        set_err(err, errlen, "out of memory", NULL);
        free(s);
        return VP_ERR_NOMEM;
    }
    memcpy(s->db_path, path, pl + 1);
    s->pending_path = s->db_path + pl + 1;
    memcpy(s->pending_path, path, pl);
    memcpy(s->pending_path + pl, "-pending", sizeof "-pending");

    /* Only a regular file, or a name not yet taken: SQLite would open a device (/dev/zero)
     * or a FIFO, and create its -journal beside it (in /dev, when run as root). */
    struct stat pst;
    if (stat(path, &pst) == 0 && !S_ISREG(pst.st_mode)) {
        set_err(err, errlen, S_ISDIR(pst.st_mode) ? "a directory, not a database file"
                                                  : "not a regular file", NULL);
        rc = VP_ERR_IO;
        goto fail_db;
    }
    pthread_once(&sqlite_cfg_once, sqlite_cfg);
    int orc = sqlite3_open_v2(path, &s->db,
                              SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                              NULL);
    if (orc != SQLITE_OK) {
        set_err(err, errlen, path, s->db ? sqlite3_errmsg(s->db) : "cannot open");
        rc = VP_ERR_IO;
        goto fail_db;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, 5000);
    /* Until the file is accepted, closing it must not checkpoint a WAL left beside it (by a
     * newer build, or by another program): a refused database stays untouched, -wal included. */
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)NULL);
    /* Version and foreign-file checks read only; WAL is switched on after them. */
    if ((rc = store_schema_migrate(s->db, err, errlen)) != 0)
        goto fail_db;
    char *msg = NULL;
    if (sqlite3_exec(s->db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=OFF;"
                     /* Foreign keys off: every child row (metrics, resources, navigation) is
                      * written right after its view's INSERT ... ON CONFLICT DO NOTHING in the
                      * same transaction, so checking each row's parent was a second lookup of
                      * the view per row (bench/ingest_cost.sh: 11,400 of the writer's 88,800
                      * instructions per metrics-only payload), and the prune deletes a view's
                      * rows itself (S_PRUNE_METRICS ...) instead of the cascade.
                      * Writer-connection tuning: 32 MiB page cache, temporary b-trees in
                      * memory, reads through a 256 MiB mapping, and a checkpoint every
                      * ~16 MiB of WAL instead of every 4 MiB when the checkpointer thread
                      * cannot start (with it, wal_hook replaces autocheckpointing), and a WAL
                      * file cut back to 16 MiB when it restarts after a burst grew it. */
                     "PRAGMA cache_size=-32768; PRAGMA temp_store=MEMORY;"
                     "PRAGMA mmap_size=268435456; PRAGMA wal_autocheckpoint=4096;"
                     "PRAGMA journal_size_limit=16777216;",
                     NULL, NULL, &msg) != SQLITE_OK) {
        set_err(err, errlen, "configuring database", msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        rc = VP_ERR_DB;
        goto fail_db;
    }
    if (stat(path, &pst) == 0) {
        s->db_dev = pst.st_dev;
        s->db_ino = pst.st_ino;
        s->db_id_known = true;
    }
    /* A file SQLite could only open read-only (no write permission on it, or on its -wal
     * file) would accept beacons that can never be stored: refused here. */
    int wrc = sqlite3_db_readonly(s->db, "main") == 1
                  ? SQLITE_READONLY
                  : sqlite3_exec(s->db, "BEGIN IMMEDIATE; ROLLBACK;", NULL, NULL, NULL);
    /* Busy or locked: another process is writing it, so it is writable. */
    if (wrc != SQLITE_OK && (wrc & 0xff) != SQLITE_BUSY && (wrc & 0xff) != SQLITE_LOCKED) {
        set_err(err, errlen, path,
                "cannot be written (read-only file, or no write permission on it or its -wal "
                "file)");
        rc = VP_ERR_IO;
        goto fail_db;
    }
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, (int *)NULL);
    if (count_fields(beacon_res_fields) != N_RES_FIELDS ||
        count_fields(beacon_nav_fields) != N_NAV_FIELDS) {
        set_err(err, errlen, "internal: beacon field tables and the compact form disagree", NULL);
        rc = VP_ERR_DB;
        goto fail_db;
    }
    if ((rc = prepare_all(s, err, errlen)) != 0)
        goto fail_db;
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        rc = VP_ERR_NOMEM;
        goto fail_db;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (pthread_cond_init(&s->cv_item, &ca) != 0) {
        pthread_condattr_destroy(&ca);
        rc = VP_ERR_NOMEM;
        goto fail_mu;
    }
    if (pthread_cond_init(&s->cv_done, &ca) != 0) {
        pthread_condattr_destroy(&ca);
        rc = VP_ERR_NOMEM;
        goto fail_cv;
    }
    pthread_condattr_destroy(&ca);
    if ((rc = load_request_marks(s, err, errlen)) != 0)
        goto fail_cv2;
    /* Rows of earlier runs: any of them may still be claimable. */
    for (size_t i = 0; i < CLAIM_SLOTS; i++)
        s->claimable_max_us[i] = s->max_accept_us;
    s->next_prune_ms = vp_now_ms(); /* prune once at start-up */
    /* Rollups: catch up (backfill after a migration, dirty hours) from the start. */
    s->rollup_on = rollup_until(s->db, &s->rollup_until) == 0;
    s->rollup_more = s->rollup_on;
    /* Acknowledged items a full disk kept out at the last shutdown, before anything new. */
    replay_side_file(s);
    checkpointer_start(s, path);
    if (pthread_create(&s->thread, NULL, writer_main, s) != 0) {
        set_err(err, errlen, "cannot start the writer thread", NULL);
        rc = VP_ERR_NOMEM;
        checkpointer_stop(s);
        goto fail_cv2;
    }
    *out = s;
    return 0;

fail_cv2:
    pthread_cond_destroy(&s->cv_done);
fail_cv:
    pthread_cond_destroy(&s->cv_item);
fail_mu:
    pthread_mutex_destroy(&s->mu);
fail_db:
    for (int i = 0; i < S_COUNT; i++)
        sqlite3_finalize(s->st[i]);
    sqlite3_close(s->db);
    free(s->db_path); /* pending_path too */
    free(s);
    if (errlen && !err[0])
        set_err(err, errlen, vp_strerror(rc), NULL);
    return rc;
}

const char *store_open_notice(const struct store *s)
{
    return s->notice;
}

void store_close(struct store *s, char *msg, size_t cap)
{
    if (cap)
        msg[0] = '\0';
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->close_deadline_us = vp_mono_us() + (int64_t)s->opt.close_grace_ms * 1000;
    s->stop = true;
    pthread_cond_signal(&s->cv_item);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    checkpointer_stop(s);
    if (s->spill) {
        write_side_file(s, msg, cap);
        free_list(s->spill);
        s->spill = s->spill_tail = NULL;
    } else if (s->close_refused && cap) {
        int w = snprintf(msg, cap,
                         "the database could not be written at shutdown (%s), then "
                         "could again within the %u ms grace: nothing lost",
                         s->write_error, s->opt.close_grace_ms);
        if (w < 0)
            msg[0] = '\0';
    }
    for (int i = 0; i < S_COUNT; i++)
        sqlite3_finalize(s->st[i]);
    sqlite3_close(s->db);
    pthread_cond_destroy(&s->cv_done);
    pthread_cond_destroy(&s->cv_item);
    pthread_mutex_destroy(&s->mu);
    free_list(s->req_spare);
    free(s->db_path); /* pending_path too */
    free(s);
}

void store_free(struct store *s)
{
    store_close(s, NULL, 0);
}

/* Checks a beacon body (beacon_check) and makes its item: the compact form, the body itself
 * (kept for the side file), the user agent and label (ua_len / label_len bytes, NULL when
 * absent) copied into the item's arena. 0; beacon_check's error with the reason in why (an
 * invalid beacon); VP_ERR_NOMEM. */
static int beacon_item_new(const char *body, size_t body_len, int64_t now_ms, double sample_rate,
                           const char *ua, size_t ua_len, const char *label, size_t label_len,
                           struct item **out, char *why, size_t whylen)
{
    struct jtree_doc *doc = NULL;
    const struct jtree *p = NULL;
    int rc = beacon_check(body, body_len, &doc, &p, why, whylen);
    if (rc)
        return rc;
    struct item *it = calloc(1, sizeof *it);
    if (!it) {
        jtree_doc_free(doc);
        return VP_ERR_NOMEM;
    }
    it->kind = IT_BEACON;
    const struct jtree *jm = jtree_get(p, "m"), *jres = jtree_get(p, "res");
    it->rows = 1 + (jm && jm->type == JTREE_ARRAY ? jm->n : 0u) +
               (jres && jres->type == JTREE_ARRAY ? jres->n : 0u) + (jtree_get(p, "nt") ? 1u : 0u);
    it->u.b.now_ms = now_ms;
    it->u.b.sample_rate = sample_rate;
    struct arena *a = &it->u.b.arena;
    struct cval cua = {.kind = CV_NULL}, clabel = {.kind = CV_NULL}, cbody = {.kind = CV_NULL};
    rc = compact_beacon(a, p, &it->u.b.c);
    jtree_doc_free(doc);
    if (rc == 0 && ua)
        rc = cv_text(a, &cua, ua, ua_len);
    if (rc == 0 && label)
        rc = cv_text(a, &clabel, label, label_len);
    if (rc == 0)
        rc = cv_text(a, &cbody, body, body_len);
    if (rc) {
        item_free(it);
        return VP_ERR_NOMEM;
    }
    it->u.b.ua = cua.kind == CV_TEXT ? cua.u.t : NULL;
    it->u.b.label = clabel.kind == CV_TEXT ? clabel.u.t : NULL;
    it->u.b.body = cbody.u.t;
    it->u.b.body_len = cbody.len;
    *out = it;
    return 0;
}

static void enqueue_rejection(struct store *s, const char *reason)
{
    pthread_mutex_lock(&s->mu);
    s->stats.beacons_rejected++;
    pthread_mutex_unlock(&s->mu);
    struct item *it = calloc(1, sizeof *it);
    if (!it)
        return;
    it->kind = IT_REJECT;
    int w = snprintf(it->u.reason, sizeof it->u.reason, "%s", reason && *reason ? reason : "?");
    if (w < 0 || enqueue(s, it, false) != 0)
        free(it);
}

void store_count_rejection(struct store *s, const char *reason)
{
    enqueue_rejection(s, reason);
}

int store_ingest_beacon(struct store *s, const char *body, size_t body_len,
                        const struct store_beacon_ctx *ctx, char *reason, size_t reasonlen)
{
    char why[REASON_MAX];
    /* Refuse before parsing when even a one-row item would be: under overload the caller's
     * thread (the event loop) must not spend the parse of a realistic body on work thrown away. */
    pthread_mutex_lock(&s->mu);
    int64_t now_us = vp_mono_us();
    if (s->write_fail_until_us && now_us >= s->write_fail_until_us)
        s->write_fail_until_us = now_us + STORE_WRITE_RETRY_US; /* this one tries again */
    else if (s->write_fail_until_us) {
        count_refusal(s, IT_BEACON);
        if (reasonlen) {
            int w = snprintf(reason, reasonlen, "database cannot be written: %s", s->write_error);
            if (w < 0)
                reason[0] = '\0';
        }
        pthread_mutex_unlock(&s->mu);
        return VP_ERR_IO;
    }
    bool open = !s->stop && admit(s, 1, now_us);
    if (!open)
        count_refusal(s, IT_BEACON);
    pthread_mutex_unlock(&s->mu);
    if (!open) {
        if (reasonlen) {
            int w = snprintf(reason, reasonlen, "store busy");
            if (w < 0)
                reason[0] = '\0';
        }
        return VP_ERR_FULL;
    }
    struct item *it = NULL;
    const char *ua = ctx ? ctx->user_agent : NULL, *label = ctx ? ctx->label : NULL;
    int rc = beacon_item_new(body, body_len, ctx && ctx->now_ms > 0 ? ctx->now_ms : vp_now_ms(),
                             ctx ? ctx->sample_rate : 1.0, ua, ua ? strlen(ua) : 0, label,
                             label ? strlen(label) : 0, &it, why, sizeof why);
    if (rc == VP_ERR_NOMEM)
        return rc;
    if (rc) {
        if (reasonlen) {
            int w = snprintf(reason, reasonlen, "%s", why);
            if (w < 0)
                reason[0] = '\0';
        }
        enqueue_rejection(s, why);
        return rc;
    }
    if ((rc = enqueue(s, it, false)) != 0) {
        item_free(it);
        if (reasonlen) {
            int w = snprintf(reason, reasonlen, "store busy");
            if (w < 0)
                reason[0] = '\0';
        }
        return rc;
    }
    return 0;
}

int store_record_request(struct store *s, const struct store_request_rec *rec)
{
    /* One allocation: the item, then the strings; each length measured once. The item is not
     * zeroed first: every field the writer reads is set here (the record is copied whole). */
    const char *const *src[] = {&rec->method,       &rec->url,          &rec->host,
                                &rec->protocol,     &rec->tls_version,  &rec->view_id,
                                &rec->referer,      &rec->user_agent,   &rec->content_type,
                                &rec->content_encoding, &rec->cache_control, &rec->error,
                                &rec->label};
    enum { NSTR = sizeof src / sizeof src[0] };
    _Static_assert((int)NSTR == (int)REQ_NSTR, "the strings of a request item");
    size_t len[NSTR], total = 0;
    for (size_t i = 0; i < NSTR; i++) {
        len[i] = *src[i] ? strlen(*src[i]) + 1 : 0;
        if (len[i] > UINT32_MAX)
            return VP_ERR_LIMIT;
        total += len[i];
    }
    struct item *it;
    if (total <= REQ_ITEM_STR && tl_spare.head) {
        it = tl_spare.head;
        tl_spare.head = it->next;
    } else {
        it = malloc(sizeof *it + (total <= REQ_ITEM_STR ? REQ_ITEM_STR : total));
        if (!it)
            return VP_ERR_NOMEM;
    }
    it->kind = IT_REQUEST;
    it->spare_cap = total <= REQ_ITEM_STR ? REQ_ITEM_STR : 0;
    it->rows = 2; /* the insert and the view lookup */
    it->u.req = *rec;
    const char **dst[] = {&it->u.req.method,       &it->u.req.url,
                          &it->u.req.host,         &it->u.req.protocol,
                          &it->u.req.tls_version,  &it->u.req.view_id,
                          &it->u.req.referer,      &it->u.req.user_agent,
                          &it->u.req.content_type, &it->u.req.content_encoding,
                          &it->u.req.cache_control, &it->u.req.error,
                          &it->u.req.label};
    char *p = (char *)(it + 1);
    for (size_t i = 0; i < NSTR; i++) {
        it->slen[i] = len[i] ? (uint32_t)(len[i] - 1) : 0;
        if (len[i]) {
            memcpy(p, *src[i], len[i]);
            *dst[i] = p;
            p += len[i];
        }
    }
    int rc = enqueue(s, it, false);
    if (rc) {
        if (it->spare_cap && tl_spare.keyed) {
            it->next = tl_spare.head;
            tl_spare.head = it;
        } else {
            free(it);
        }
    }
    return rc;
}

void store_get_stats(struct store *s, struct store_stats *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->stats;
    out->queued = s->qlen;
    out->row_cost_ns = s->row_cost_ns;
    out->write_failing = s->write_fail_until_us != 0;
    pthread_mutex_unlock(&s->mu);
}

int store_prune_at(struct store *s, int64_t now_ms, int days)
{
    struct item *it = calloc(1, sizeof *it);
    if (!it)
        return VP_ERR_NOMEM;
    it->kind = IT_PRUNE;
    it->u.prune.now_ms = now_ms;
    it->u.prune.days = days;
    int rc = enqueue(s, it, true);
    if (rc)
        free(it);
    return rc;
}

int store_sync(struct store *s)
{
    struct sync_marker m = {false};
    struct item *it = calloc(1, sizeof *it);
    if (!it)
        return VP_ERR_NOMEM;
    it->kind = IT_SYNC;
    it->u.sync = &m;
    int rc = enqueue(s, it, true);
    if (rc) {
        free(it);
        return rc;
    }
    pthread_mutex_lock(&s->mu);
    while (!m.done)
        pthread_cond_wait(&s->cv_done, &s->mu);
    pthread_mutex_unlock(&s->mu);
    return 0;
}
