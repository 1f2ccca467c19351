/* The bare-SQLite ceiling of bench/ingest.sh: the rows that the proxy stored for the first N
 * views of a benchmark database (each view with its metrics, navigation entry and resources, in
 * the order the proxy committed the views) are read into memory, then inserted again into a
 * fresh database of the same schema by one thread in a plain loop: prepared statements, the
 * writer's connection settings (WAL, synchronous=NORMAL, foreign keys off), one transaction per
 * 1,000 views (the writer's batch_rows). No HTTP, no JSON, no queue: what SQLite alone costs for
 * exactly these rows. The figure is the median of 3 runs.
 * Usage: ingest_bare SRC_DB DST_DB [MAX_VIEWS]   (DST_DB is replaced)
 * Prints: views=N rows=N views_per_s=X rows_per_s=X (and the three runs on stderr). */
#include "config.h"

#include "store/store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/vp_buf.h"

#define RUNS 3
#define TXN_VIEWS 1000

struct table {
    const char *name;
    int key; /* the column of views that column 0 of this table refers to */
    int ncols;
    size_t nrows;
    sqlite3_value **v; /* nrows * ncols */
};

static void die(const char *what, sqlite3 *db)
{
    fprintf(stderr, "ingest_bare: %s%s%s\n", what, db ? ": " : "", db ? sqlite3_errmsg(db) : "");
    exit(1);
}

/* Loads the rows of sql (bound ?1 = max views) into t. */
static void load(sqlite3 *db, struct table *t, const char *sql, int max_views)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        die(sql, db);
    sqlite3_bind_int(st, 1, max_views);
    t->ncols = sqlite3_column_count(st);
    size_t cap = 1024;
    t->v = malloc(cap * (size_t)t->ncols * sizeof *t->v);
    if (!t->v)
        die("out of memory", NULL);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (t->nrows == cap) {
            cap *= 2;
            sqlite3_value **nv = realloc(t->v, cap * (size_t)t->ncols * sizeof *t->v);
            if (!nv)
                die("out of memory", NULL);
            t->v = nv;
        }
        for (int c = 0; c < t->ncols; c++) {
            sqlite3_value *d = sqlite3_value_dup(sqlite3_column_value(st, c));
            if (!d)
                die("out of memory", NULL);
            t->v[t->nrows * (size_t)t->ncols + (size_t)c] = d;
        }
        t->nrows++;
    }
    if (rc != SQLITE_DONE)
        die(sql, db);
    sqlite3_finalize(st);
}

/* Compares a child row's view reference with a view's key: an integer (metrics.view_seq ->
 * views.seq) or a text id (resources, navigation -> views.id). */
static int cmp_key(sqlite3_value *a, sqlite3_value *b)
{
    if (sqlite3_value_type(b) == SQLITE_INTEGER) {
        sqlite3_int64 x = sqlite3_value_int64(a), y = sqlite3_value_int64(b);
        return x < y ? -1 : x > y;
    }
    const char *x = (const char *)sqlite3_value_text(a), *y = (const char *)sqlite3_value_text(b);
    return strcmp(x ? x : "", y ? y : "");
}

/* First row of t (sorted by column 0, its view reference) whose reference is >= key. */
static size_t lower_bound(const struct table *t, sqlite3_value *key)
{
    size_t lo = 0, hi = t->nrows;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp_key(t->v[mid * (size_t)t->ncols], key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static sqlite3_stmt *prepare_insert(sqlite3 *db, const struct table *t)
{
    char sql[1024];
    int o = snprintf(sql, sizeof sql, "INSERT INTO %s VALUES(?", t->name);
    for (int c = 1; c < t->ncols && o > 0 && (size_t)o < sizeof sql; c++)
        o += snprintf(sql + o, sizeof sql - (size_t)o, ",?");
    if (o < 0 || (size_t)o + 2 >= sizeof sql)
        die("statement too long", NULL);
    memcpy(sql + o, ")", 2);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
        die(sql, db);
    return st;
}

static void insert_row(sqlite3 *db, sqlite3_stmt *st, const struct table *t, size_t r)
{
    for (int c = 0; c < t->ncols; c++)
        sqlite3_bind_value(st, c + 1, t->v[r * (size_t)t->ncols + (size_t)c]);
    if (sqlite3_step(st) != SQLITE_DONE)
        die("insert", db);
    sqlite3_reset(st);
}

static double one_run(const char *dst, struct table *views, struct table *kids, int nkids,
                      size_t **first, long long *rows)
{
    char err[256];
    unlink(dst);
    struct store_options opt;
    store_options_default(&opt);
    opt.retention_days = 0;
    struct store *s = NULL;
    if (store_open(&s, dst, &opt, err, sizeof err) != 0) { /* the current schema */
        fprintf(stderr, "ingest_bare: %s\n", err);
        exit(1);
    }
    store_free(s);
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(dst, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=OFF;"
                     "PRAGMA cache_size=-32768; PRAGMA temp_store=MEMORY;"
                     "PRAGMA mmap_size=268435456; PRAGMA wal_autocheckpoint=4096;",
                     NULL, NULL, NULL) != SQLITE_OK)
        die(dst, db);
    sqlite3_stmt *vst = prepare_insert(db, views);
    sqlite3_stmt *kst[8];
    for (int k = 0; k < nkids; k++)
        kst[k] = prepare_insert(db, &kids[k]);
    *rows = 0;
    int64_t t0 = vp_mono_us();
    for (size_t i = 0; i < views->nrows; i++) {
        if (i % TXN_VIEWS == 0 && sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
            die("begin", db);
        insert_row(db, vst, views, i);
        (*rows)++;
        for (int k = 0; k < nkids; k++) {
            const struct table *t = &kids[k];
            sqlite3_value *key = views->v[i * (size_t)views->ncols + (size_t)t->key];
            for (size_t r = first[k][i];
                 r < t->nrows && cmp_key(t->v[r * (size_t)t->ncols], key) == 0; r++) {
                insert_row(db, kst[k], t, r);
                (*rows)++;
            }
        }
        if ((i % TXN_VIEWS == TXN_VIEWS - 1 || i + 1 == views->nrows) &&
            sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            die("commit", db);
    }
    double secs = (double)(vp_mono_us() - t0) / 1e6;
    sqlite3_finalize(vst);
    for (int k = 0; k < nkids; k++)
        sqlite3_finalize(kst[k]);
    sqlite3_close(db);
    return secs;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: ingest_bare SRC_DB DST_DB [MAX_VIEWS]\n");
        return 2;
    }
    int max = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 20000;
    if (max <= 0)
        max = 20000;
    sqlite3 *src = NULL;
    if (sqlite3_open_v2(argv[1], &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        die(argv[1], src);
    struct table views = {.name = "views"};
    /* views: seq (column 0), id (column 1), ... (schema 6) */
    struct table kids[3] = {
        {.name = "metrics", .key = 0},
        {.name = "navigation", .key = 1},
        {.name = "resources", .key = 0}};
    load(src, &views, "SELECT * FROM views ORDER BY rowid LIMIT ?1", max);
    load(src, &kids[0],
         "SELECT * FROM metrics WHERE view_seq IN (SELECT seq FROM views ORDER BY rowid LIMIT ?1) "
         "ORDER BY view_seq, metric_id", max);
    load(src, &kids[1],
         "SELECT * FROM navigation WHERE view_id IN (SELECT id FROM views ORDER BY rowid "
         "LIMIT ?1) ORDER BY view_id", max);
    load(src, &kids[2],
         "SELECT * FROM resources WHERE view_seq IN (SELECT seq FROM views ORDER BY rowid "
         "LIMIT ?1) ORDER BY view_seq, idx", max);
    sqlite3_close(src);
    if (views.nrows == 0) {
        fprintf(stderr, "ingest_bare: %s holds no views\n", argv[1]);
        return 1;
    }
    /* Each view's first child row per table, found before the clock starts. */
    size_t *first[3];
    for (int k = 0; k < 3; k++) {
        if (!(first[k] = malloc(views.nrows * sizeof *first[k])))
            die("out of memory", NULL);
        for (size_t i = 0; i < views.nrows; i++)
            first[k][i] =
                lower_bound(&kids[k], views.v[i * (size_t)views.ncols + (size_t)kids[k].key]);
    }
    double secs[RUNS];
    long long rows = 0;
    for (int r = 0; r < RUNS; r++) {
        secs[r] = one_run(argv[2], &views, kids, 3, first, &rows);
        fprintf(stderr, "ingest_bare: run %d: %zu views, %lld rows in %.3f s\n", r + 1,
                views.nrows, rows, secs[r]);
    }
    qsort(secs, RUNS, sizeof secs[0], cmp_d);
    double med = secs[RUNS / 2];
    printf("views=%zu rows=%lld views_per_s=%.0f rows_per_s=%.0f\n", views.nrows, rows,
           (double)views.nrows / med, (double)rows / med);
    return 0;
}
