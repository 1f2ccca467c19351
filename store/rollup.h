/* store/rollup: hourly rollups of the page views and their final metric values, kept by the
 * writer thread so that the summary reads one row per (hour, route) instead of every metric row.
 * Internal to store/ (store.c writes them, query_summary.c reads them, tests and bench check
 * them); not for other modules.
 *
 * Tables (schema version 2, store/schema.c):
 *   rollup(hour, route, views, m0..m4, vcodes, c0..c4): one row per hour (started_at /
 *     ROLLUP_HOUR_MS, UTC) and route (NULL allowed) with at least one view. views = number of
 *     views; vcodes = their dims ids (uint32 each). Metric k (ROLLUP_METRICS order): mk = the
 *     final values (a view's largest value of that metric) of the views that have one, as
 *     IEEE-754 doubles sorted ascending, ck = the dims id of each value (uint32, same order).
 *     Numbers are little-endian.
 *   rollup_dims(id, device, browser, ect, label): one id per combination of the filterable view
 *     attributes (NULLs kept as NULL).
 *   rollup_dirty(hour): sealed hours whose raw rows changed after they were rolled up.
 *   meta 'rollup_until_hour': hours below it are sealed: each has its rollup rows (or no views),
 *     unless it is listed in rollup_dirty. Readers use the rollup rows of sealed, clean hours and
 *     the raw rows for everything else, in one read transaction, so a result never depends on
 *     how far the rollups have got.
 * Invariant kept by the writer: any write to a view, or to its metrics, whose started_at lies
 * in a sealed hour marks that hour dirty in the same transaction (store.c, rollup_mark_dirty);
 * rollup_step rebuilds dirty hours and seals new ones, one hour per call. */
#ifndef VP_ROLLUP_H
#define VP_ROLLUP_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define ROLLUP_HOUR_MS 3600000LL
/* An hour is sealed once it ended this long ago: most of a view's updates (final CLS and INP at
 * page hide) arrive within it; later ones mark the hour dirty. */
#define ROLLUP_SEAL_LAG_MS 3600000LL
#define ROLLUP_NMETRICS 5
#define ROLLUP_META_KEY "rollup_until_hour"
/* The largest watermark taken as stored (hour 2^40, far past any clock); see rollup_until. */
#define ROLLUP_UNTIL_MAX (INT64_C(1) << 40)

/* CLS FCP INP LCP TTFB: the summary's metric names, in name order. */
extern const char *const rollup_metrics[ROLLUP_NMETRICS];

/* The metric's index in rollup_metrics, or -1. */
int rollup_metric_index(const char *name);

/* floor(ms / ROLLUP_HOUR_MS) */
static inline int64_t rollup_hour_of(int64_t ms)
{
    return ms >= 0 ? ms / ROLLUP_HOUR_MS : -((-ms + ROLLUP_HOUR_MS - 1) / ROLLUP_HOUR_MS);
}

/* Little-endian loads from a rollup blob (on a little-endian host, one unaligned load). */
static inline double rollup_get_f64(const unsigned char *p)
{
    double d;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(&d, p, sizeof d);
#else
    uint64_t u = 0;
    for (int i = 7; i >= 0; i--)
        u = (u << 8) | p[i];
    memcpy(&d, &u, sizeof d);
#endif
    return d;
}

static inline uint32_t rollup_get_u32(const unsigned char *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint32_t u;
    memcpy(&u, p, sizeof u);
    return u;
#else
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
#endif
}

/* The sealed-hours watermark of db into *hour (0 when the stored value is negative or above
 * ROLLUP_UNTIL_MAX). 0, VP_ERR_NOTFOUND (no rollups: a schema 1 database opened read-only),
 * VP_ERR_DB. */
int rollup_until(sqlite3 *db, int64_t *hour) __attribute__((warn_unused_result));

/* One unit of rollup work in its own transaction (db is the writer's connection, outside any
 * transaction): rebuilds the oldest dirty hour, or else seals the next hour that has views and
 * ended ROLLUP_SEAL_LAG_MS before now_ms (skipping empty hours at once). *until receives the
 * watermark after the call; *more is true when there may be more to do. 0, VP_ERR_DB (rolled
 * back: nothing changed), VP_ERR_NOMEM. */
int rollup_step(sqlite3 *db, int64_t now_ms, int64_t *until, bool *more)
    __attribute__((warn_unused_result));

/* rollup_step until nothing is left (bench and tests). 0 or its error. */
int rollup_catch_up(sqlite3 *db, int64_t now_ms) __attribute__((warn_unused_result));

/* Marks the hour of started_at_ms dirty when it is sealed (below until). Inside the caller's
 * transaction; st is a prepared "INSERT OR IGNORE INTO rollup_dirty(hour) VALUES(?1)"
 * (borrowed). 0 or VP_ERR_DB. */
int rollup_mark_dirty(sqlite3_stmt *st, int64_t until, int64_t started_at_ms)
    __attribute__((warn_unused_result));

/* Interned byte strings (a NULL key is distinct from every string) -> dense indexes 0..n-1, for
 * grouping by route or by dims. Zero-initialise; rollup_keys_dispose frees. */
struct rollup_key {
    char *bytes; /* NUL-terminated copy, NULL for the NULL key */
    size_t len;
    uint64_t hash;
};
struct rollup_keys {
    struct rollup_key *v;
    size_t n, cap;
    uint32_t *slots; /* open addressing: index + 1, 0 = empty */
    size_t nslots;
};

/* The index of key (bytes/len, or NULL), adding it when new. 0 or VP_ERR_NOMEM. */
int rollup_keys_intern(struct rollup_keys *k, const void *bytes, size_t len, uint32_t *idx)
    __attribute__((warn_unused_result));
void rollup_keys_dispose(struct rollup_keys *k);

/* Nearest-rank p50, p75, p95 and p99 (query_percentile's definition) of v[0..n), n >= 1, no
 * NaN, made of nruns ascending runs, run k ending at run_end[k] (the last one at n; runs of one
 * value are fine). By selection: v is reordered. (store/query_summary.c) */
void rollup_percentiles(double *v, size_t n, const size_t *run_end, size_t nruns, double out[4]);

/* Decodes a rollup metric blob pair (values n * 8 bytes, codes n * 4 bytes). false when the
 * lengths disagree (a damaged row). */
static inline bool rollup_blob_ok(int vbytes, int cbytes, size_t *n)
{
    if (vbytes < 0 || cbytes < 0 || vbytes % 8 != 0 || cbytes % 4 != 0 || vbytes / 8 != cbytes / 4)
        return false;
    *n = (size_t)vbytes / 8;
    return true;
}

#endif
