/* Hourly rollups (see rollup.h for the tables and the sealing invariant).
 *
 * Building one hour reads its views with their metric rows (views_time range, each view's rows
 * together because views drive a LEFT JOIN), takes each view's final value per metric (the
 * largest under any metric id, the summary's definition), groups the views by route and writes
 * one row per route: the values sorted, each with the dims id of its view, so that a reader can
 * filter by device / browser / connection / label without the raw rows. Rebuilding replaces the
 * hour's rows; an hour with no views left has none. All of an hour is written in one
 * transaction together with the watermark or the removal of its dirty mark. */
#include "config.h"

#include "store/rollup.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/vp_err.h"

const char *const rollup_metrics[ROLLUP_NMETRICS] = {"CLS", "FCP", "INP", "LCP", "TTFB"};

int rollup_metric_index(const char *name)
{
    if (!name)
        return -1;
    for (int k = 0; k < ROLLUP_NMETRICS; k++)
        if (strcmp(name, rollup_metrics[k]) == 0)
            return k;
    return -1;
}

/* ---- interned keys ---- */

static uint64_t hash_bytes(const void *p, size_t len, bool null)
{
    uint64_t h = null ? 0x9e3779b97f4a7c15ULL : 0xcbf29ce484222325ULL;
    const unsigned char *b = p;
    for (size_t i = 0; i < len; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h ^ (h >> 29);
}

static int keys_grow(struct rollup_keys *k)
{
    size_t ns = k->nslots ? k->nslots * 2 : 64;
    uint32_t *slots = calloc(ns, sizeof *slots);
    if (!slots)
        return VP_ERR_NOMEM;
    for (size_t i = 0; i < k->n; i++) {
        size_t j = (size_t)k->v[i].hash & (ns - 1);
        while (slots[j])
            j = (j + 1) & (ns - 1);
        slots[j] = (uint32_t)i + 1;
    }
    free(k->slots);
    k->slots = slots;
    k->nslots = ns;
    return 0;
}

int rollup_keys_intern(struct rollup_keys *k, const void *bytes, size_t len, uint32_t *idx)
{
    bool null = bytes == NULL;
    uint64_t h = hash_bytes(bytes, null ? 0 : len, null);
    if (k->nslots) {
        for (size_t j = (size_t)h & (k->nslots - 1);; j = (j + 1) & (k->nslots - 1)) {
            uint32_t s = k->slots[j];
            if (!s)
                break;
            const struct rollup_key *e = &k->v[s - 1];
            if (e->hash == h && (e->bytes == NULL) == null &&
                (null || (e->len == len && memcmp(e->bytes, bytes, len) == 0))) {
                *idx = s - 1;
                return 0;
            }
        }
    }
    if (k->n >= UINT32_MAX - 1)
        return VP_ERR_NOMEM;
    if ((k->n + 1) * 2 > k->nslots && keys_grow(k))
        return VP_ERR_NOMEM;
    if (k->n == k->cap) {
        size_t nc = k->cap ? k->cap * 2 : 32;
        struct rollup_key *nv = realloc(k->v, nc * sizeof *nv);
        if (!nv)
            return VP_ERR_NOMEM;
        k->v = nv;
        k->cap = nc;
    }
    struct rollup_key *e = &k->v[k->n];
    e->bytes = NULL;
    e->len = null ? 0 : len;
    e->hash = h;
    if (!null) {
        if (!(e->bytes = malloc(len + 1)))
            return VP_ERR_NOMEM;
        if (len)
            memcpy(e->bytes, bytes, len);
        e->bytes[len] = '\0';
    }
    size_t j = (size_t)h & (k->nslots - 1);
    while (k->slots[j])
        j = (j + 1) & (k->nslots - 1);
    k->slots[j] = (uint32_t)k->n + 1;
    *idx = (uint32_t)k->n++;
    return 0;
}

void rollup_keys_dispose(struct rollup_keys *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->v[i].bytes);
    free(k->v);
    free(k->slots);
    memset(k, 0, sizeof *k);
}

/* ---- watermark and dirty marks ---- */

int rollup_until(sqlite3 *db, int64_t *hour)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?1", -1, &st,
                           NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return VP_ERR_DB;
    }
    sqlite3_bind_text(st, 1, ROLLUP_META_KEY, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    int rc = s == SQLITE_ROW ? 0 : s == SQLITE_DONE ? VP_ERR_NOTFOUND : VP_ERR_DB;
    if (s == SQLITE_ROW) {
        /* A watermark no writer can have stored (negative, or hours past any real time: a
         * hand-edited meta row) seals nothing. Readers then answer from the raw rows and the
         * writer rebuilds from the start, overwriting it; hour arithmetic cannot overflow. */
        int64_t h = sqlite3_column_int64(st, 0);
        *hour = h >= 0 && h <= ROLLUP_UNTIL_MAX ? h : 0;
    }
    sqlite3_finalize(st);
    return rc;
}

int rollup_mark_dirty(sqlite3_stmt *st, int64_t until, int64_t started_at_ms)
{
    if (started_at_ms < 0 || rollup_hour_of(started_at_ms) >= until)
        return 0;
    sqlite3_bind_int64(st, 1, rollup_hour_of(started_at_ms));
    int s = sqlite3_step(st);
    sqlite3_reset(st);
    return s == SQLITE_DONE ? 0 : VP_ERR_DB;
}

/* ---- building one hour ---- */

struct vrec {
    uint32_t route, code;
    uint8_t have; /* bit k: metric k present */
    double v[ROLLUP_NMETRICS];
};

struct pair {
    double v;
    uint32_t code;
};

static int cmp_pair(const void *a, const void *b)
{
    const struct pair *x = a, *y = b;
    if (x->v != y->v)
        return x->v < y->v ? -1 : 1;
    return (x->code > y->code) - (x->code < y->code);
}

static void put_f64(unsigned char *p, double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    for (int i = 0; i < 8; i++, u >>= 8)
        p[i] = (unsigned char)(u & 0xff);
}

static void put_u32(unsigned char *p, uint32_t u)
{
    for (int i = 0; i < 4; i++, u >>= 8)
        p[i] = (unsigned char)(u & 0xff);
}

/* Appends one length-prefixed nullable field to a dims key. */
static int key_add(char *buf, size_t cap, size_t *at, const unsigned char *t, int n)
{
    size_t need = 1 + 4 + (t ? (size_t)n : 0);
    if (*at + need > cap)
        return VP_ERR_LIMIT;
    buf[(*at)++] = t ? 1 : 0;
    uint32_t len = t ? (uint32_t)n : 0;
    memcpy(buf + *at, &len, 4);
    *at += 4;
    if (t && n > 0)
        memcpy(buf + *at, t, (size_t)n);
    *at += t ? (size_t)n : 0;
    return 0;
}

struct builder {
    sqlite3 *db;
    sqlite3_stmt *rows, *dims_find, *dims_add, *del, *ins;
    struct rollup_keys routes, dims;
    int64_t *dim_ids; /* per dims key: its rollup_dims id */
    size_t dim_cap;
    struct vrec *v;
    size_t nv, vcap;
};

static void builder_dispose(struct builder *b)
{
    sqlite3_finalize(b->rows);
    sqlite3_finalize(b->dims_find);
    sqlite3_finalize(b->dims_add);
    sqlite3_finalize(b->del);
    sqlite3_finalize(b->ins);
    rollup_keys_dispose(&b->routes);
    rollup_keys_dispose(&b->dims);
    free(b->dim_ids);
    free(b->v);
}

static int builder_init(struct builder *b, sqlite3 *db)
{
    memset(b, 0, sizeof *b);
    b->db = db;
    static const char *const sql[5] = {
        "SELECT v.rowid, v.route, v.device, v.browser, v.ect, v.label, m.name, m.value "
        "FROM views v LEFT JOIN metrics m ON m.view_seq = v.rowid "
        "WHERE v.started_at >= ?1 AND v.started_at < ?2",
        "SELECT id FROM rollup_dims WHERE device IS ?1 AND browser IS ?2 AND ect IS ?3 AND "
        "label IS ?4",
        "INSERT INTO rollup_dims(device, browser, ect, label) VALUES(?1, ?2, ?3, ?4)",
        "DELETE FROM rollup WHERE hour = ?1",
        "INSERT INTO rollup(hour, route, views, vcodes, m0, c0, m1, c1, m2, c2, m3, c3, m4, c4) "
        "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)",
    };
    sqlite3_stmt **out[5] = {&b->rows, &b->dims_find, &b->dims_add, &b->del, &b->ins};
    for (int i = 0; i < 5; i++)
        if (sqlite3_prepare_v2(db, sql[i], -1, out[i], NULL) != SQLITE_OK) {
            builder_dispose(b);
            return VP_ERR_DB;
        }
    return 0;
}

/* The rollup_dims id of the current row's (device, browser, ect, label) (columns 2..5). */
static int dims_of(struct builder *b, uint32_t *code)
{
    char small[512], *key = small;
    size_t need = 0, at = 0;
    for (int c = 2; c <= 5; c++)
        need += 5 + (size_t)sqlite3_column_bytes(b->rows, c);
    if (need > sizeof small && !(key = malloc(need)))
        return VP_ERR_NOMEM;
    for (int c = 2; c <= 5; c++) {
        const unsigned char *t =
            sqlite3_column_type(b->rows, c) == SQLITE_NULL ? NULL : sqlite3_column_text(b->rows, c);
        int n = sqlite3_column_bytes(b->rows, c);
        (void)key_add(key, need, &at, t, n);
    }
    uint32_t k;
    size_t before = b->dims.n;
    int irc = rollup_keys_intern(&b->dims, key, at, &k);
    if (key != small)
        free(key);
    if (irc)
        return VP_ERR_NOMEM;
    if (b->dims.n == before) {
        *code = (uint32_t)b->dim_ids[k];
        return 0;
    }
    if (b->dims.n > b->dim_cap) {
        size_t nc = b->dim_cap ? b->dim_cap * 2 : 64;
        int64_t *ni = realloc(b->dim_ids, nc * sizeof *ni);
        if (!ni)
            return VP_ERR_NOMEM;
        b->dim_ids = ni;
        b->dim_cap = nc;
    }
    sqlite3_stmt *st = b->dims_find;
    for (int c = 2; c <= 5; c++) {
        if (sqlite3_column_type(b->rows, c) == SQLITE_NULL)
            sqlite3_bind_null(st, c - 1);
        else
            sqlite3_bind_text(st, c - 1, (const char *)sqlite3_column_text(b->rows, c),
                              sqlite3_column_bytes(b->rows, c), SQLITE_TRANSIENT);
    }
    int s = sqlite3_step(st);
    int64_t id = s == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (s != SQLITE_ROW && s != SQLITE_DONE)
        return VP_ERR_DB;
    if (s == SQLITE_DONE) {
        st = b->dims_add;
        for (int c = 2; c <= 5; c++) {
            if (sqlite3_column_type(b->rows, c) == SQLITE_NULL)
                sqlite3_bind_null(st, c - 1);
            else
                sqlite3_bind_text(st, c - 1, (const char *)sqlite3_column_text(b->rows, c),
                                  sqlite3_column_bytes(b->rows, c), SQLITE_TRANSIENT);
        }
        s = sqlite3_step(st);
        sqlite3_reset(st);
        if (s != SQLITE_DONE)
            return VP_ERR_DB;
        id = sqlite3_last_insert_rowid(b->db);
    }
    if (id < 0 || id > (int64_t)UINT32_MAX)
        return VP_ERR_DB;
    b->dim_ids[k] = id;
    *code = (uint32_t)id;
    return 0;
}

/* Reads the hour's views into b->v (one vrec per view). */
static int collect(struct builder *b, int64_t hour)
{
    sqlite3_stmt *st = b->rows;
    sqlite3_bind_int64(st, 1, hour * ROLLUP_HOUR_MS);
    sqlite3_bind_int64(st, 2, (hour + 1) * ROLLUP_HOUR_MS);
    int64_t cur = 0;
    bool any = false;
    int s, rc = 0;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t rowid = sqlite3_column_int64(st, 0);
        if (!any || rowid != cur) { /* a new view */
            cur = rowid;
            any = true;
            if (b->nv == b->vcap) {
                size_t nc = b->vcap ? b->vcap * 2 : 256;
                struct vrec *nvv = realloc(b->v, nc * sizeof *nvv);
                if (!nvv) {
                    rc = VP_ERR_NOMEM;
                    break;
                }
                b->v = nvv;
                b->vcap = nc;
            }
            struct vrec *r = &b->v[b->nv];
            memset(r, 0, sizeof *r);
            const void *rt =
                sqlite3_column_type(st, 1) == SQLITE_NULL ? NULL : sqlite3_column_text(st, 1);
            size_t rl = (size_t)sqlite3_column_bytes(st, 1);
            if ((rc = rollup_keys_intern(&b->routes, rt, rl, &r->route)))
                break;
            if ((rc = dims_of(b, &r->code)))
                break;
            b->nv++;
        }
        if (sqlite3_column_type(st, 6) == SQLITE_NULL)
            continue;
        int k = rollup_metric_index((const char *)sqlite3_column_text(st, 6));
        if (k < 0)
            continue;
        struct vrec *r = &b->v[b->nv - 1];
        double val = sqlite3_column_double(st, 7);
        if (!isfinite(val))
            continue; /* a hand-edited database: no infinities in the rollups */
        if (!(r->have & (1u << k)) || val > r->v[k])
            r->v[k] = val;
        r->have |= (uint8_t)(1u << k);
    }
    sqlite3_reset(st);
    if (rc)
        return rc;
    return s == SQLITE_DONE ? 0 : VP_ERR_DB;
}

static int cmp_vrec_route(const void *a, const void *b)
{
    const struct vrec *x = a, *y = b;
    return (x->route > y->route) - (x->route < y->route);
}

/* Writes one rollup row for b->v[from..to) (all of one route). */
static int write_route(struct builder *b, int64_t hour, size_t from, size_t to, struct pair *pairs,
                       unsigned char *buf)
{
    sqlite3_stmt *st = b->ins;
    const struct rollup_key *route = &b->routes.v[b->v[from].route];
    size_t n = to - from;
    sqlite3_bind_int64(st, 1, hour);
    if (route->bytes)
        sqlite3_bind_text(st, 2, route->bytes, (int)route->len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 2);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)n);
    unsigned char *vc = buf;
    for (size_t i = 0; i < n; i++)
        put_u32(vc + 4 * i, b->v[from + i].code);
    sqlite3_bind_blob(st, 4, vc, (int)(4 * n), SQLITE_TRANSIENT);
    for (int k = 0; k < ROLLUP_NMETRICS; k++) {
        size_t m = 0;
        for (size_t i = from; i < to; i++)
            if (b->v[i].have & (1u << k))
                pairs[m++] = (struct pair){b->v[i].v[k], b->v[i].code};
        qsort(pairs, m, sizeof *pairs, cmp_pair);
        unsigned char *vb = buf, *cb = buf + 8 * m;
        for (size_t i = 0; i < m; i++) {
            put_f64(vb + 8 * i, pairs[i].v);
            put_u32(cb + 4 * i, pairs[i].code);
        }
        sqlite3_bind_blob(st, 5 + 2 * k, vb, (int)(8 * m), SQLITE_TRANSIENT);
        sqlite3_bind_blob(st, 6 + 2 * k, cb, (int)(4 * m), SQLITE_TRANSIENT);
    }
    int s = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return s == SQLITE_DONE ? 0 : VP_ERR_DB;
}

/* Replaces the rollup rows of one hour (inside the caller's transaction). */
static int build_hour(struct builder *b, int64_t hour)
{
    b->nv = 0;
    int rc = collect(b, hour);
    if (rc)
        return rc;
    sqlite3_bind_int64(b->del, 1, hour);
    int s = sqlite3_step(b->del);
    sqlite3_reset(b->del);
    if (s != SQLITE_DONE)
        return VP_ERR_DB;
    if (b->nv == 0)
        return 0;
    if (b->nv > SIZE_MAX / 16 || b->nv * 12 > (size_t)INT32_MAX)
        return VP_ERR_LIMIT;
    qsort(b->v, b->nv, sizeof *b->v, cmp_vrec_route);
    struct pair *pairs = malloc(b->nv * sizeof *pairs);
    unsigned char *buf = malloc(b->nv * 12);
    if (!pairs || !buf) {
        free(pairs);
        free(buf);
        return VP_ERR_NOMEM;
    }
    for (size_t i = 0; i < b->nv && rc == 0;) {
        size_t j = i + 1;
        while (j < b->nv && b->v[j].route == b->v[i].route)
            j++;
        rc = write_route(b, hour, i, j, pairs, buf);
        i = j;
    }
    free(pairs);
    free(buf);
    return rc;
}

static int exec1(sqlite3 *db, const char *sql, int64_t a)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return VP_ERR_DB;
    }
    sqlite3_bind_int64(st, 1, a);
    int s = sqlite3_step(st);
    sqlite3_finalize(st);
    return s == SQLITE_DONE ? 0 : VP_ERR_DB;
}

/* One int64 from a query with up to two int64 parameters; VP_ERR_NOTFOUND when no row. */
static int query1(sqlite3 *db, const char *sql, int64_t a, int64_t b, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return VP_ERR_DB;
    }
    int np = sqlite3_bind_parameter_count(st);
    if (np >= 1)
        sqlite3_bind_int64(st, 1, a);
    if (np >= 2)
        sqlite3_bind_int64(st, 2, b);
    int s = sqlite3_step(st);
    int rc = s == SQLITE_ROW ? 0 : s == SQLITE_DONE ? VP_ERR_NOTFOUND : VP_ERR_DB;
    if (s == SQLITE_ROW) {
        if (sqlite3_column_type(st, 0) == SQLITE_NULL)
            rc = VP_ERR_NOTFOUND;
        else
            *out = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return rc;
}

int rollup_step(sqlite3 *db, int64_t now_ms, int64_t *until, bool *more)
{
    *more = false;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return VP_ERR_DB;
    struct builder b;
    int64_t w = 0, hour = 0, t = 0;
    int rc = rollup_until(db, &w);
    if (rc)
        goto fail;
    if ((rc = builder_init(&b, db)))
        goto fail;
    rc = query1(db, "SELECT hour FROM rollup_dirty ORDER BY hour LIMIT 1", 0, 0, &hour);
    if (rc == 0) { /* a sealed hour changed: rebuild it */
        /* A mark outside the hours a watermark can cover (hand-edited) holds no view to build,
         * and its time range would overflow: it is only dropped. */
        bool real = hour >= 0 && hour < ROLLUP_UNTIL_MAX;
        if (!real || (rc = build_hour(&b, hour)) == 0)
            rc = exec1(db, "DELETE FROM rollup_dirty WHERE hour = ?1", hour);
        *more = true;
    } else if (rc == VP_ERR_NOTFOUND) {
        int64_t limit = rollup_hour_of(now_ms - ROLLUP_SEAL_LAG_MS);
        int64_t next = w;
        rc = 0;
        if (w < limit) {
            int f = query1(db,
                           "SELECT started_at FROM views WHERE started_at >= ?1 AND "
                           "started_at < ?2 ORDER BY started_at LIMIT 1",
                           w * ROLLUP_HOUR_MS, limit * ROLLUP_HOUR_MS, &t);
            if (f == 0) {
                hour = rollup_hour_of(t);
                rc = build_hour(&b, hour);
                next = hour + 1;
                *more = next < limit;
            } else if (f == VP_ERR_NOTFOUND) {
                next = limit;
            } else {
                rc = f;
            }
        }
        if (rc == 0 && next != w) {
            sqlite3_stmt *st = NULL;
            if (sqlite3_prepare_v2(db, "UPDATE meta SET value = ?1 WHERE key = ?2", -1, &st,
                                   NULL) != SQLITE_OK)
                rc = VP_ERR_DB;
            else {
                sqlite3_bind_int64(st, 1, next);
                sqlite3_bind_text(st, 2, ROLLUP_META_KEY, -1, SQLITE_STATIC);
                rc = sqlite3_step(st) == SQLITE_DONE ? 0 : VP_ERR_DB;
            }
            sqlite3_finalize(st);
            w = next;
        }
    }
    builder_dispose(&b);
    if (rc)
        goto fail;
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        rc = VP_ERR_DB;
        goto fail;
    }
    *until = w;
    return 0;
fail:
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    *more = false;
    return rc == VP_ERR_NOTFOUND || rc == VP_ERR_LIMIT ? VP_ERR_DB : rc;
}

int rollup_catch_up(sqlite3 *db, int64_t now_ms)
{
    bool more = true;
    int64_t until = 0;
    while (more) {
        int rc = rollup_step(db, now_ms, &until, &more);
        if (rc)
            return rc;
    }
    return 0;
}
