/* Read-only queries for the report, the JSON API and the CLI. Each store_reader owns one
 * read-only connection (WAL lets it read while the writer commits). Every filter value is a bound
 * parameter: the SQL texts below are constants, and optional filters use the "(?N IS NULL OR
 * col = ?N)" form so one statement serves every combination.
 *
 * Definitions (documented in query.h):
 *   - A view's value for a metric is the largest value reported for it under any metric id
 *     (the beacon re-reports growing CLS/INP/LCP; the final value is the largest).
 *   - Percentiles use the nearest-rank method: p-th percentile of n sorted values is the value
 *     at 1-based rank ceil(p/100 * n). Always an observed value; p100 = max, p0 = min.
 *   - Ratings: good when value <= good threshold, ni when <= poor threshold, else poor
 *     (boundaries inclusive for the better bucket, as web-vitals rates). */
#include "config.h"

#include "store/query.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/vp_err.h"
#include "store/beacon.h"
#include "store/store_internal.h"

struct store_reader {
    sqlite3 *db;
    bool metrics_by_id; /* a file before schema 6: metrics keyed by the view's text id */
};

static void set_err(char *err, size_t errlen, const char *a, const char *b)
{
    if (errlen == 0)
        return;
    int w = snprintf(err, errlen, "%s%s%s", a, b ? ": " : "", b ? b : "");
    if (w < 0)
        err[0] = '\0';
}

/* Whether sql (a probe of the schema) yields a row. */
static bool has_row(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    bool row = sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
               sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return row;
}

int store_reader_open(struct store_reader **out, const char *path, char *err, size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    struct store_reader *r = calloc(1, sizeof *r);
    if (!r)
        return VP_ERR_NOMEM;
    int rc = sqlite3_open_v2(path, &r->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        set_err(err, errlen, path, r->db ? sqlite3_errmsg(r->db) : "cannot open");
        sqlite3_close(r->db);
        free(r);
        return rc == SQLITE_NOMEM ? VP_ERR_NOMEM : VP_ERR_IO;
    }
    sqlite3_busy_timeout(r->db, 5000);
    /* Reads through a mapping (no copy per page; SQLite caps the size at its compile-time
     * maximum) with a 16 MiB cache: the summary reads tens of MiB of rollup rows. */
    sqlite3_exec(r->db, "PRAGMA mmap_size=17179869184; PRAGMA cache_size=-16384", NULL, NULL,
                 NULL);
    if ((rc = store_schema_check(r->db, err, errlen)) != 0) {
        sqlite3_close(r->db);
        free(r);
        return rc;
    }
    /* A database before schema 5 has no request marks (it has requests_time instead): an empty
     * table of this connection's own stands in, so the same queries read every row by time. */
    if (!has_row(r->db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                        "name = 'request_marks'") &&
        sqlite3_exec(r->db,
                     "CREATE TEMP TABLE request_marks(minute INTEGER PRIMARY KEY, "
                     "first_id INTEGER NOT NULL)",
                     NULL, NULL, NULL) != SQLITE_OK)
        goto older_schema;
    /* Before schema 6, metrics and resources were keyed by the view's text id: views of this
     * connection's own give them the integer key (the view's rowid) that the queries join on. SQLite
     * flattens it into the joins that views drive (CROSS JOIN); the summary's LEFT JOIN, which
     * it would not flatten, reads the table itself (store_reader_metrics_by_id). */
    r->metrics_by_id = !has_row(r->db, "SELECT 1 FROM pragma_table_info('metrics', 'main') WHERE "
                                       "name = 'view_seq'");
    if (r->metrics_by_id &&
        sqlite3_exec(r->db,
                     "CREATE TEMP VIEW metrics AS SELECT v.rowid AS view_seq, m.name, "
                     "m.metric_id, m.value, m.delta, m.rating, m.attribution, "
                     "m.updated_at FROM main.metrics m JOIN main.views v ON "
                     "v.id = m.view_id; "
                     "CREATE TEMP VIEW resources AS SELECT v.rowid AS view_seq, r.idx, "
                     STORE_RES_COLS_R " FROM main.resources r "
                     "JOIN main.views v ON v.id = r.view_id",
                     NULL, NULL, NULL) != SQLITE_OK)
        goto older_schema;
    *out = r;
    return 0;

older_schema:
    set_err(err, errlen, "preparing a read of an older schema", sqlite3_errmsg(r->db));
    sqlite3_close(r->db);
    free(r);
    return VP_ERR_DB;
}

void store_reader_free(struct store_reader *r)
{
    if (!r)
        return;
    sqlite3_close(r->db);
    free(r);
}

/* ---- helpers ---- */

static const struct {
    const char *name;
    double good, poor;
} thresholds[] = {
    {"LCP", 2500, 4000}, {"CLS", 0.1, 0.25}, {"INP", 200, 500},
    {"FCP", 1800, 3000}, {"TTFB", 800, 1800},
};

int query_thresholds(const char *metric, double *good, double *poor)
{
    for (size_t i = 0; i < sizeof thresholds / sizeof thresholds[0]; i++)
        if (strcmp(metric, thresholds[i].name) == 0) {
            *good = thresholds[i].good;
            *poor = thresholds[i].poor;
            return 0;
        }
    return VP_ERR_NOTFOUND;
}

double query_percentile(const double *sorted, size_t n, double p)
{
    if (n == 0)
        return NAN;
    double r = ceil(p / 100.0 * (double)n);
    size_t rank = r < 1 ? 1 : (size_t)r;
    if (rank > n)
        rank = n;
    return sorted[rank - 1];
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Growable array of doubles, used while streaming sorted rows. */
struct dvec {
    double *v;
    size_t n, cap;
};

static int dvec_push(struct dvec *d, double x)
{
    if (d->n == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 64;
        double *nv = realloc(d->v, nc * sizeof *nv);
        if (!nv)
            return VP_ERR_NOMEM;
        d->v = nv;
        d->cap = nc;
    }
    d->v[d->n++] = x;
    return 0;
}

/* json_real, or null for the infinities and NaN a hand-edited database may hold. */
static json_t *json_finite(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static int iso_time(int64_t ms, char *out, size_t cap)
{
    /* Floor division without overflow: a hostile database may hold INT64_MIN. */
    int64_t q = ms / 1000, r = ms % 1000;
    if (r < 0) {
        q--;
        r += 1000;
    }
    time_t sec = (time_t)q;
    int msec = (int)r;
    struct tm tm;
    if (!gmtime_r(&sec, &tm))
        return VP_ERR_INVALID;
    char base[32];
    if (strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        return VP_ERR_INVALID;
    int w = snprintf(out, cap, "%s.%03dZ", base, msec);
    return w < 0 || (size_t)w >= cap ? VP_ERR_LIMIT : 0;
}

static json_t *json_iso(int64_t ms)
{
    char buf[48];
    return iso_time(ms, buf, sizeof buf) == 0 ? json_string(buf) : json_null();
}

/* Sets key to the column's value (integer, real, text; JSON text for *json columns). NULL
 * columns are skipped. */
static int set_col(json_t *o, const char *key, sqlite3_stmt *st, int i, bool is_json)
{
    json_t *v = NULL;
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_NULL:
        return 0;
    case SQLITE_INTEGER:
        v = json_integer(sqlite3_column_int64(st, i));
        break;
    case SQLITE_FLOAT:
        /* A database edited by hand may hold infinities, which JSON cannot carry. */
        if (!isfinite(sqlite3_column_double(st, i)))
            return 0;
        v = json_real(sqlite3_column_double(st, i));
        break;
    default: {
        const char *t = (const char *)sqlite3_column_text(st, i);
        int n = sqlite3_column_bytes(st, i);
        if (is_json) {
            v = json_loadb(t, (size_t)n, 0, NULL);
            if (!v)
                return 0;
        } else {
            v = json_stringn(t ? t : "", (size_t)n);
            if (!v) /* not UTF-8: cannot come from a validated beacon; skip */
                return 0;
        }
    }
    }
    if (!v || json_object_set_new(o, key, v) != 0)
        return VP_ERR_NOMEM;
    return 0;
}

/* Whole row as an object keyed by column names. */
static int row_object(sqlite3_stmt *st, json_t **out)
{
    json_t *o = json_object();
    if (!o)
        return VP_ERR_NOMEM;
    for (int i = 0; i < sqlite3_column_count(st); i++) {
        const char *name = sqlite3_column_name(st, i);
        bool js = strcmp(name, "server_timing") == 0 || strcmp(name, "attribution") == 0;
        if (set_col(o, name, st, i, js)) {
            json_decref(o);
            return VP_ERR_NOMEM;
        }
    }
    *out = o;
    return 0;
}

static int prep(struct store_reader *r, const char *sql, sqlite3_stmt **st)
{
    return sqlite3_prepare_v2(r->db, sql, -1, st, NULL) == SQLITE_OK ? 0 : VP_ERR_DB;
}

/* The shared view filter, parameters ?1..?7 (see bind_filter). The time bounds are plain range
 * comparisons (an absent bound is bound as 0 / VIEW_UNTIL_NONE) so that SQLite can range-scan
 * views_time instead of reading every view. */
#define VIEW_UNTIL_NONE INT64_MAX
#define VIEW_FILTER                                                                               \
    " v.started_at >= ?1 AND v.started_at < ?2"                                                  \
    " AND (?3 IS NULL OR v.route = ?3) AND (?4 IS NULL OR v.device = ?4)"                         \
    " AND (?5 IS NULL OR v.browser = ?5) AND (?6 IS NULL OR v.ect = ?6)"                          \
    " AND (?7 IS NULL OR v.label = ?7) "

static void bind_opt(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

static void bind_filter(sqlite3_stmt *st, const struct query_filter *f)
{
    static const struct query_filter none = {0};
    if (!f)
        f = &none;
    sqlite3_bind_int64(st, 1, f->since_ms > 0 ? f->since_ms : 0);
    sqlite3_bind_int64(st, 2, f->until_ms > 0 ? f->until_ms : VIEW_UNTIL_NONE);
    bind_opt(st, 3, f->route);
    bind_opt(st, 4, f->device);
    bind_opt(st, 5, f->browser);
    bind_opt(st, 6, f->ect);
    bind_opt(st, 7, f->label);
}

static int limit_of(const struct query_filter *f)
{
    int n = f ? f->limit : 0;
    if (n <= 0)
        return 50;
    return n > 1000 ? 1000 : n;
}

static int step_done(int rc)
{
    return rc == SQLITE_DONE ? 0 : VP_ERR_DB;
}

/* Adds {n,p50,p75,p95,p99,good,ni,poor} for metric name over vals (sorted in place). */
static int metric_stats(json_t *metrics, const char *name, struct dvec *vals)
{
    if (vals->n == 0)
        return 0;
    qsort(vals->v, vals->n, sizeof vals->v[0], cmp_double);
    double good = 0, poor = 0;
    if (query_thresholds(name, &good, &poor))
        return 0;
    size_t ng = 0, nn = 0, np = 0;
    for (size_t i = 0; i < vals->n; i++) {
        if (vals->v[i] <= good)
            ng++;
        else if (vals->v[i] <= poor)
            nn++;
        else
            np++;
    }
    double n = (double)vals->n;
    json_t *o = json_pack("{s:I,s:f,s:f,s:f,s:f,s:f,s:f,s:f}", "n", (json_int_t)vals->n, "p50",
                          query_percentile(vals->v, vals->n, 50), "p75",
                          query_percentile(vals->v, vals->n, 75), "p95",
                          query_percentile(vals->v, vals->n, 95), "p99",
                          query_percentile(vals->v, vals->n, 99), "good", (double)ng / n, "ni",
                          (double)nn / n, "poor", (double)np / n);
    if (!o || json_object_set_new(metrics, name, o) != 0)
        return VP_ERR_NOMEM;
    return 0;
}

static void free_acc(struct dvec *acc, size_t n)
{
    for (size_t i = 0; acc && i < n; i++)
        free(acc[i].v);
    free(acc);
}

int store_summary_raw(struct store_reader *r, const struct query_filter *f, json_t **out)
{
    int rc = VP_ERR_NOMEM;
    sqlite3_stmt *st = NULL;
    struct dvec *acc = NULL;
    json_t *routes = json_array(), *by_route = json_object();
    if (!routes || !by_route)
        goto fail;
    if ((rc = prep(r, "SELECT v.route, count(*) FROM views v WHERE" VIEW_FILTER
                      "GROUP BY v.route ORDER BY count(*) DESC, v.route",
                   &st)))
        goto fail;
    bind_filter(st, f);
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        const char *route = (const char *)sqlite3_column_text(st, 0);
        json_t *metrics = json_object();
        json_t *ro = json_pack("{s:s?,s:I,s:o}", "route", route, "views",
                               (json_int_t)sqlite3_column_int64(st, 1), "metrics", metrics);
        if (!ro || json_array_append_new(routes, ro) != 0 ||
            json_object_set(by_route, route ? route : "", metrics) != 0) {
            rc = VP_ERR_NOMEM;
            goto fail;
        }
    }
    if ((rc = step_done(s)))
        goto fail;
    sqlite3_finalize(st);
    st = NULL;

    /* Second pass: one row per stored metric, views driving the join (CROSS JOIN fixes the
     * order), so a view's rows arrive together and its per-metric maximum is taken here while
     * streaming -- no GROUP BY / ORDER BY temp B-trees (5x fewer CPU seconds at 1M rows).
     * Values go to one vector per (route, metric); metric objects are added in name order. */
    if ((rc = prep(r, "SELECT v.id, v.route, m.name, m.value FROM views v CROSS JOIN metrics m "
                      "ON m.view_seq = v.rowid WHERE" VIEW_FILTER,
                   &st)))
        goto fail;
    bind_filter(st, f);
    static const char *const names[] = {"CLS", "FCP", "INP", "LCP", "TTFB"};
    size_t nroutes = json_array_size(routes);
    acc = calloc(nroutes ? nroutes * 5 : 1, sizeof *acc);
    if (!acc) {
        rc = VP_ERR_NOMEM;
        goto fail;
    }
    for (size_t i = 0; i < nroutes; i++) { /* route -> its index, for the accumulators */
        const char *rt = json_string_value(json_object_get(json_array_get(routes, i), "route"));
        if (json_object_set_new(by_route, rt ? rt : "", json_integer((json_int_t)i)) != 0) {
            rc = VP_ERR_NOMEM;
            goto fail;
        }
    }
    char cur_id[128] = "";
    size_t cur_route = 0;
    double cur_max[5];
    bool have[5] = {false, false, false, false, false}, any = false;
    for (;;) {
        s = sqlite3_step(st);
        const char *id = s == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
        if (s == SQLITE_ROW && !id)
            continue;
        if (any && (s != SQLITE_ROW || strcmp(id, cur_id) != 0)) { /* flush the last view */
            for (int k = 0; k < 5; k++)
                if (have[k] && (rc = dvec_push(&acc[cur_route * 5 + (size_t)k], cur_max[k])))
                    goto fail;
            memset(have, 0, sizeof have);
            any = false;
        }
        if (s != SQLITE_ROW)
            break;
        const char *route = (const char *)sqlite3_column_text(st, 1);
        const char *name = (const char *)sqlite3_column_text(st, 2);
        int k = 0;
        while (name && k < 5 && strcmp(name, names[k]) != 0)
            k++;
        const json_t *ri = json_object_get(by_route, route ? route : "");
        if (!name || k == 5 || !ri || strlen(id) >= sizeof cur_id)
            continue;
        if (!any) {
            memcpy(cur_id, id, strlen(id) + 1);
            cur_route = (size_t)json_integer_value(ri);
            any = true;
        }
        double v = sqlite3_column_double(st, 3);
        if (!isfinite(v))
            continue; /* a hand-edited database: no infinities in the percentiles */
        if (!have[k] || v > cur_max[k])
            cur_max[k] = v;
        have[k] = true;
    }
    if ((rc = step_done(s)))
        goto fail;
    for (size_t i = 0; i < nroutes; i++) {
        json_t *metrics = json_object_get(json_array_get(routes, i), "metrics");
        for (int k = 0; k < 5; k++)
            if ((rc = metric_stats(metrics, names[k], &acc[i * 5 + (size_t)k])))
                goto fail;
    }
    sqlite3_finalize(st);
    free_acc(acc, json_array_size(routes) * 5);
    json_decref(by_route);
    *out = json_pack("{s:o}", "routes", routes);
    return *out ? 0 : VP_ERR_NOMEM;
fail:
    sqlite3_finalize(st);
    free_acc(acc, json_array_size(routes) * 5);
    json_decref(routes);
    json_decref(by_route);
    return rc;
}

/* metrics:{NAME:value} and ratings:{NAME:rating} of one view. */
static int view_metrics(sqlite3_stmt *mst, const char *id, json_t *view)
{
    json_t *metrics = json_object(), *ratings = json_object();
    if (!metrics || !ratings) {
        json_decref(metrics);
        json_decref(ratings);
        return VP_ERR_NOMEM;
    }
    sqlite3_bind_text(mst, 1, id, -1, SQLITE_TRANSIENT);
    int s, rc = 0;
    while ((s = sqlite3_step(mst)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(mst, 0);
        if (!name)
            continue;
        if (json_object_set_new(metrics, name, json_finite(sqlite3_column_double(mst, 1))) ||
            set_col(ratings, name, mst, 2, false)) {
            rc = VP_ERR_NOMEM;
            break;
        }
    }
    if (!rc)
        rc = step_done(s);
    sqlite3_reset(mst);
    if (!rc && (json_object_set_new(view, "metrics", metrics) ||
                json_object_set_new(view, "ratings", ratings)))
        return VP_ERR_NOMEM;
    if (rc) {
        json_decref(metrics);
        json_decref(ratings);
    }
    return rc;
}

#define VIEW_COLUMNS                                                                              \
    "v.id, v.started_at, v.url, v.route, v.navigation_type, v.device, v.browser, "               \
    "v.browser_major, v.ect, v.device_memory, v.label, v.parent_id, v.sample_rate"

/* One views-list object from a row of VIEW_COLUMNS. */
static int view_object(sqlite3_stmt *st, json_t **out)
{
    static const char *const keys[] = {"id",     "started_at", "url",           "route",
                                       "navigation_type", "device", "browser", "browser_major",
                                       "ect",    "device_memory", "label",      "parent_id",
                                       "sample_rate"};
    json_t *o = json_object();
    if (!o)
        return VP_ERR_NOMEM;
    for (int i = 0; i < (int)(sizeof keys / sizeof keys[0]); i++) {
        int rc;
        if (i == 1)
            rc = json_object_set_new(o, "started_at", json_iso(sqlite3_column_int64(st, 1))) ||
                         json_object_set_new(o, "started_at_ms",
                                             json_integer(sqlite3_column_int64(st, 1)))
                     ? VP_ERR_NOMEM
                     : 0;
        else
            rc = set_col(o, keys[i], st, i, false);
        if (rc) {
            json_decref(o);
            return rc;
        }
    }
    *out = o;
    return 0;
}

static const char metrics_of_view_sql[] =
    "SELECT name, max(value), rating FROM metrics WHERE view_seq = "
    "(SELECT rowid FROM views WHERE id = ?1) GROUP BY name";

int query_views(struct store_reader *r, const struct query_filter *f, json_t **out)
{
    int rc;
    sqlite3_stmt *st = NULL, *mst = NULL;
    json_t *views = json_array();
    if (!views)
        return VP_ERR_NOMEM;
    if ((rc = prep(r, "SELECT " VIEW_COLUMNS " FROM views v WHERE" VIEW_FILTER
                      "ORDER BY v.started_at DESC, v.id LIMIT ?8",
                   &st)) ||
        (rc = prep(r, metrics_of_view_sql, &mst)))
        goto fail;
    bind_filter(st, f);
    sqlite3_bind_int(st, 8, limit_of(f));
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *v = NULL;
        if ((rc = view_object(st, &v)))
            goto fail;
        if (json_array_append_new(views, v) != 0) {
            rc = VP_ERR_NOMEM;
            goto fail;
        }
        if ((rc = view_metrics(mst, (const char *)sqlite3_column_text(st, 0), v)))
            goto fail;
    }
    if ((rc = step_done(s)))
        goto fail;
    sqlite3_finalize(st);
    sqlite3_finalize(mst);
    *out = json_pack("{s:o}", "views", views);
    return *out ? 0 : VP_ERR_NOMEM;
fail:
    sqlite3_finalize(st);
    sqlite3_finalize(mst);
    json_decref(views);
    return rc;
}

/* Runs sql (one ?1 = view id) and appends each row as an object to arr. */
static int rows_into(struct store_reader *r, const char *sql, const char *id, json_t *arr)
{
    sqlite3_stmt *st = NULL;
    int rc = prep(r, sql, &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *o = NULL;
        if ((rc = row_object(st, &o)) || json_array_append_new(arr, o) != 0) {
            rc = rc ? rc : VP_ERR_NOMEM;
            break;
        }
    }
    if (!rc)
        rc = step_done(s);
    sqlite3_finalize(st);
    return rc;
}

static const char requests_of_view_sql[] =
    "SELECT id, method, url, route, host, status, protocol, tls_version, injected, reused, "
    "accept_us, head_done_us, connect_start_us, connect_end_us, sent_us, first_byte_us, "
    "last_byte_us, bytes_in, bytes_out, upstream_bytes, content_type, content_encoding, "
    "cache_control, error FROM requests WHERE view_id = ?1 ORDER BY accept_us, id";

/* Loads the full view object (views-list fields + attribution, navigation, resources,
 * requests). */
static int load_view(struct store_reader *r, const char *id, json_t **out)
{
    int rc;
    sqlite3_stmt *st = NULL, *mst = NULL;
    json_t *v = NULL;
    if ((rc = prep(r, "SELECT " VIEW_COLUMNS " FROM views v WHERE v.id = ?1", &st)))
        return rc;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    int s = sqlite3_step(st);
    if (s != SQLITE_ROW) {
        sqlite3_finalize(st);
        return s == SQLITE_DONE ? VP_ERR_NOTFOUND : VP_ERR_DB;
    }
    if ((rc = view_object(st, &v)))
        goto fail;
    if ((rc = prep(r, metrics_of_view_sql, &mst)) || (rc = view_metrics(mst, id, v)))
        goto fail;
    sqlite3_finalize(st);
    st = NULL;

    /* attribution of the row holding each metric's final (largest) value */
    json_t *attr = json_object();
    if (!attr || json_object_set_new(v, "attribution", attr)) {
        rc = VP_ERR_NOMEM;
        goto fail;
    }
    if ((rc = prep(r,
                   "SELECT name, max(value), attribution, metric_id, delta FROM metrics "
                   "WHERE view_seq = (SELECT rowid FROM views WHERE id = ?1) GROUP BY name",
                   &st)))
        goto fail;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        if (name && (rc = set_col(attr, name, st, 2, true)))
            goto fail;
    }
    if ((rc = step_done(s)))
        goto fail;
    sqlite3_finalize(st);
    st = NULL;

    json_t *navs = json_array(), *res = json_array(), *reqs = json_array();
    if (!navs || !res || !reqs || json_object_set_new(v, "resources", res) ||
        json_object_set_new(v, "requests", reqs)) {
        json_decref(navs);
        rc = VP_ERR_NOMEM;
        goto fail;
    }
    rc = rows_into(r, "SELECT * FROM navigation WHERE view_id = ?1", id, navs);
    if (!rc && json_array_size(navs) > 0) {
        json_t *nav = json_array_get(navs, 0);
        json_object_del(nav, "view_id");
        rc = json_object_set(v, "navigation", nav) ? VP_ERR_NOMEM : 0;
    }
    json_decref(navs);
    if (rc)
        goto fail;
    if ((rc = rows_into(r,
                        "SELECT * FROM resources WHERE view_seq = "
                        "(SELECT rowid FROM views WHERE id = ?1) ORDER BY idx",
                        id, res)) ||
        (rc = rows_into(r, requests_of_view_sql, id, reqs)))
        goto fail;
    size_t i;
    json_t *e;
    json_array_foreach(res, i, e) json_object_del(e, "view_seq");
    sqlite3_finalize(mst);
    *out = v;
    return 0;
fail:
    sqlite3_finalize(st);
    sqlite3_finalize(mst);
    json_decref(v);
    return rc;
}

int query_view(struct store_reader *r, const char *id, json_t **out)
{
    if (!id || !beacon_valid_view_id(id))
        return VP_ERR_NOTFOUND;
    return load_view(r, id, out);
}

int query_last_view_id(struct store_reader *r, char *out, size_t cap)
{
    sqlite3_stmt *st = NULL;
    int rc = prep(r, "SELECT id FROM views ORDER BY started_at DESC, id LIMIT 1", &st);
    if (rc)
        return rc;
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        size_t n = id ? strlen(id) : 0;
        if (n + 1 > cap)
            rc = VP_ERR_LIMIT;
        else {
            memcpy(out, id ? id : "", n + 1);
            rc = 0;
        }
    } else {
        rc = s == SQLITE_DONE ? VP_ERR_NOTFOUND : VP_ERR_DB;
    }
    sqlite3_finalize(st);
    return rc;
}

/* ---- HAR 1.2 ---- */

static double num_of(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : 0;
}

static double span(double a, double b)
{
    return a > 0 && b >= a ? b - a : -1;
}

static const char *http_version(const char *p)
{
    if (!p || !*p)
        return "";
    if (strcmp(p, "h2") == 0)
        return "HTTP/2";
    if (strcmp(p, "h3") == 0)
        return "HTTP/3";
    if (strcmp(p, "http/1.1") == 0)
        return "HTTP/1.1";
    if (strcmp(p, "http/1.0") == 0)
        return "HTTP/1.0";
    return p;
}

/* The proxy's timing of a request, as _proxy. */
static json_t *proxy_timing(const json_t *req)
{
    double accept = num_of(req, "accept_us"), head = num_of(req, "head_done_us"),
           cs = num_of(req, "connect_start_us"), ce = num_of(req, "connect_end_us"),
           sent = num_of(req, "sent_us"), fb = num_of(req, "first_byte_us"),
           lb = num_of(req, "last_byte_us");
    json_t *o = json_pack("{s:f,s:f,s:f,s:f}", "connect", span(cs, ce) >= 0 ? span(cs, ce) / 1000 : -1,
                          "upstream_wait", span(sent, fb) >= 0 ? span(sent, fb) / 1000 : -1,
                          "total", span(head > 0 ? head : accept, lb) >= 0
                                       ? span(head > 0 ? head : accept, lb) / 1000
                                       : -1,
                          "transfer", span(fb, lb) >= 0 ? span(fb, lb) / 1000 : -1);
    if (!o)
        return NULL;
    const char *copy[] = {"status", "reused", "injected", "upstream_bytes", "bytes_out",
                          "content_encoding", "cache_control", "protocol", "error"};
    for (size_t i = 0; i < sizeof copy / sizeof copy[0]; i++) {
        json_t *v = json_object_get(req, copy[i]);
        if (v && json_object_set(o, copy[i], v)) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* Finds the proxy request whose path (request target) equals the entry URL's path. */
static const json_t *match_request(const json_t *reqs, const char *url)
{
    size_t ulen;
    const char *up = store_path_span(url, &ulen);
    size_t i;
    const json_t *q;
    json_array_foreach(reqs, i, q) {
        size_t qlen;
        const char *qp = store_path_span(json_string_value(json_object_get(q, "url")), &qlen);
        if (qlen == ulen && qlen > 0 && memcmp(qp, up, ulen) == 0)
            return q;
    }
    return NULL;
}

static int har_entry(json_t *entries, const json_t *e, const char *url, int64_t t0_ms,
                     const char *page_id, const json_t *reqs, const char *base)
{
    double fs = num_of(e, "fetch_start"), start = num_of(e, "start_ms");
    double dls = num_of(e, "dns_start"), dle = num_of(e, "dns_end");
    double cs = num_of(e, "connect_start"), ce = num_of(e, "connect_end");
    double scs = num_of(e, "secure_start"), rqs = num_of(e, "request_start");
    double rps = num_of(e, "response_start"), rpe = num_of(e, "response_end");
    double first = dls > 0 ? dls : cs > 0 ? cs : rqs;
    double from = fs > 0 ? fs : start;
    double blocked = first > 0 && first >= from ? first - from : -1;
    double dns = span(dls, dle), connect = span(cs, ce), ssl = span(scs, ce);
    double wait = rqs > 0 && rps >= rqs ? rps - rqs : 0;
    double receive = rps > 0 && rpe >= rps ? rpe - rps : 0;
    double total = wait + receive + (blocked > 0 ? blocked : 0) + (dns > 0 ? dns : 0) +
                   (connect > 0 ? connect : 0);
    if (total <= 0)
        total = num_of(e, "duration_ms");
    char when[48];
    /* Offsets from a hostile database: out of range or non-finite starts count as 0, and the
     * sum may not overflow. */
    int64_t at = t0_ms;
    if (isfinite(start) && fabs(start) < 1e12 &&
        __builtin_add_overflow(t0_ms, (int64_t)llround(start), &at))
        at = t0_ms;
    if (iso_time(at, when, sizeof when))
        return VP_ERR_INVALID;
    const char *proto = json_string_value(json_object_get(e, "protocol"));
    char full[BEACON_MAX_URL * 2 + 16];
    const char *u = url ? url : "";
    if (base && u[0] == '/') {
        int w = snprintf(full, sizeof full, "%s%s", base, u);
        if (w > 0 && (size_t)w < sizeof full)
            u = full;
    }
    const json_t *req = match_request(reqs, url);
    const char *mime = req ? json_string_value(json_object_get(req, "content_type")) : NULL;
    json_int_t status = json_integer_value(json_object_get(e, "status"));
    if (status == 0 && req)
        status = json_integer_value(json_object_get(req, "status"));
    const char *method = req ? json_string_value(json_object_get(req, "method")) : NULL;
    double eb = num_of(e, "encoded_size"), db = num_of(e, "decoded_size");
    json_t *ent = json_pack(
        "{s:s,s:s,s:f,"
        "s:{s:s,s:s,s:s,s:[],s:[],s:[],s:i,s:i},"
        "s:{s:I,s:s,s:s,s:[],s:[],s:{s:I,s:s},s:s,s:i,s:I,s:I},"
        "s:{},s:{s:f,s:f,s:f,s:f,s:f,s:f,s:f}}",
        "pageref", page_id, "startedDateTime", when, "time", total,
        "request", "method", method ? method : "GET", "url", u, "httpVersion", http_version(proto),
        "cookies", "headers", "queryString", "headersSize", -1, "bodySize", -1,
        "response", "status", status, "statusText", "", "httpVersion", http_version(proto),
        "cookies", "headers", "content", "size", (json_int_t)db, "mimeType", mime ? mime : "",
        "redirectURL", "", "headersSize", -1, "bodySize", (json_int_t)(eb > 0 ? eb : -1),
        "_transferSize", (json_int_t)num_of(e, "transfer_size"),
        "cache", "timings", "blocked", blocked, "dns", dns, "connect", connect, "ssl", ssl,
        "send", 0.0, "wait", wait, "receive", receive);
    if (!ent)
        return VP_ERR_NOMEM;
    json_t *sv = json_object_get(e, "server_timing");
    json_t *ini = json_object_get(e, "initiator"), *rb = json_object_get(e, "render_blocking");
    if ((sv && json_object_set(ent, "_serverTiming", sv)) ||
        (ini && json_object_set(ent, "_initiator", ini)) ||
        (rb && json_object_set(ent, "_renderBlocking", rb))) {
        json_decref(ent);
        return VP_ERR_NOMEM;
    }
    if (req) {
        json_t *pt = proxy_timing(req);
        if (!pt || json_object_set_new(ent, "_proxy", pt)) {
            json_decref(ent);
            return VP_ERR_NOMEM;
        }
    }
    return json_array_append_new(entries, ent) ? VP_ERR_NOMEM : 0;
}

int query_view_har(struct store_reader *r, const char *id, json_t **out)
{
    json_t *v = NULL;
    int rc = query_view(r, id, &v);
    if (rc)
        return rc;
    int64_t t0 = json_integer_value(json_object_get(v, "started_at_ms"));
    const char *url = json_string_value(json_object_get(v, "url"));
    const json_t *nav = json_object_get(v, "navigation");
    const json_t *reqs = json_object_get(v, "requests");
    /* Absolute URLs from the Host the proxy saw for this view, when it saw one. */
    char base[300];
    const char *basep = NULL;
    size_t i;
    const json_t *q;
    json_array_foreach(reqs, i, q) {
        const char *host = json_string_value(json_object_get(q, "host"));
        if (host && json_integer_value(json_object_get(q, "injected"))) {
            const char *tls = json_string_value(json_object_get(q, "tls_version"));
            int w = snprintf(base, sizeof base, "%s://%s", tls ? "https" : "http", host);
            if (w > 0 && (size_t)w < sizeof base)
                basep = base;
            break;
        }
    }
    double dcl = num_of(nav, "dcl_start"), onload = num_of(nav, "load_start");
    json_t *entries = json_array();
    json_t *har = json_pack(
        "{s:{s:s,s:{s:s,s:s},s:[{s:o,s:s,s:s,s:{s:f,s:f}}],s:o}}", "log", "version", "1.2",
        "creator", "name", "vitals-proxy", "version", PACKAGE_VERSION, "pages", "startedDateTime",
        json_iso(t0), "id", id, "title", url ? url : "", "pageTimings", "onContentLoad",
        dcl > 0 ? dcl : -1.0, "onLoad", onload > 0 ? onload : -1.0, "entries", entries);
    if (!har) {
        json_decref(v);
        return VP_ERR_NOMEM;
    }
    if (json_is_object(nav)) {
        const char *nurl = json_string_value(json_object_get(nav, "url"));
        rc = har_entry(entries, nav, nurl ? nurl : url, t0, id, reqs, basep);
    }
    const json_t *e;
    json_array_foreach(json_object_get(v, "resources"), i, e) {
        if (rc)
            break;
        rc = har_entry(entries, e, json_string_value(json_object_get(e, "url")), t0, id, reqs,
                       basep);
    }
    json_decref(v);
    if (rc) {
        json_decref(har);
        return rc;
    }
    *out = har;
    return 0;
}

/* ---- proxy-side latency and health ---- */

static int flush_api(json_t *routes, const char *method, const char *route, struct dvec *d,
                     json_int_t errors)
{
    if (d->n == 0)
        return 0;
    json_t *o = json_pack("{s:s,s:s,s:I,s:f,s:f,s:f,s:I}", "route", route, "method", method, "n",
                          (json_int_t)d->n, "p50", query_percentile(d->v, d->n, 50), "p95",
                          query_percentile(d->v, d->n, 95), "p99",
                          query_percentile(d->v, d->n, 99), "errors", errors);
    return !o || json_array_append_new(routes, o) ? VP_ERR_NOMEM : 0;
}

int query_api_latency(struct store_reader *r, const struct query_filter *f, const char *prefix,
                      json_t **out)
{
    static const struct query_filter none = {0};
    if (!f)
        f = &none;
    sqlite3_stmt *st = NULL;
    struct dvec d = {0};
    json_t *routes = json_array();
    if (!routes)
        return VP_ERR_NOMEM;
    int rc = prep(r,
                  "SELECT coalesce(method,''), coalesce(route,''), (last_byte_us - CASE WHEN "
                  "head_done_us > 0 THEN head_done_us ELSE accept_us END) / 1000.0 AS ms, "
                  "status, error FROM requests WHERE path IS NOT NULL AND "
                  "substr(path, 1, length(?1)) = ?1 AND last_byte_us > 0 AND accept_us > 0 AND "
                  "(?2 = 0 OR accept_us >= ?2 * 1000) AND (?3 = 0 OR accept_us < ?3 * 1000) AND "
                  "id >= coalesce((SELECT first_id FROM request_marks WHERE minute <= ?2 / 60000 "
                  "ORDER BY minute DESC LIMIT 1), 0) AND "
                  "(?4 IS NULL OR route = ?4) AND (?5 IS NULL OR label = ?5) "
                  "ORDER BY 1, 2, 3",
                  &st);
    if (rc)
        goto fail;
    sqlite3_bind_text(st, 1, prefix ? prefix : "/", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, f->since_ms);
    sqlite3_bind_int64(st, 3, f->until_ms);
    bind_opt(st, 4, f->route);
    bind_opt(st, 5, f->label);
    char method[32] = "", route[BEACON_MAX_URL + 16] = "";
    json_int_t errors = 0;
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        const char *m = (const char *)sqlite3_column_text(st, 0);
        const char *ro = (const char *)sqlite3_column_text(st, 1);
        if (!m || !ro || strlen(m) >= sizeof method || strlen(ro) >= sizeof route)
            continue;
        if (d.n && (strcmp(m, method) || strcmp(ro, route))) {
            if ((rc = flush_api(routes, method, route, &d, errors)))
                goto fail;
            d.n = 0;
            errors = 0;
        }
        memcpy(method, m, strlen(m) + 1);
        memcpy(route, ro, strlen(ro) + 1);
        int status = sqlite3_column_int(st, 3);
        if (status >= 500 || status == 0 || sqlite3_column_type(st, 4) != SQLITE_NULL)
            errors++;
        if ((rc = dvec_push(&d, sqlite3_column_double(st, 2))))
            goto fail;
    }
    if ((rc = step_done(s)) || (rc = flush_api(routes, method, route, &d, errors)))
        goto fail;
    sqlite3_finalize(st);
    free(d.v);
    *out = json_pack("{s:o}", "routes", routes);
    return *out ? 0 : VP_ERR_NOMEM;
fail:
    sqlite3_finalize(st);
    free(d.v);
    json_decref(routes);
    return rc;
}

static int scalar_i64(struct store_reader *r, const char *sql, int64_t *v, bool *isnull)
{
    sqlite3_stmt *st = NULL;
    int rc = prep(r, sql, &st);
    if (rc)
        return rc;
    if (sqlite3_step(st) == SQLITE_ROW) {
        if (isnull)
            *isnull = sqlite3_column_type(st, 0) == SQLITE_NULL;
        *v = sqlite3_column_int64(st, 0);
    } else {
        rc = VP_ERR_DB;
    }
    sqlite3_finalize(st);
    return rc;
}

int query_health(struct store_reader *r, json_t **out)
{
    int64_t accepted = 0, views = 0, requests = 0, oldest = 0, newest = 0, pages = 0, psize = 0;
    bool no_old = true, no_new = true;
    int rc;
    if ((rc = scalar_i64(r, "SELECT coalesce(CAST(value AS INTEGER),0) FROM meta WHERE "
                            "key='beacons_accepted' UNION ALL SELECT 0 LIMIT 1",
                         &accepted, NULL)) ||
        (rc = scalar_i64(r, "SELECT count(*) FROM views", &views, NULL)) ||
        (rc = scalar_i64(r, "SELECT count(*) FROM requests", &requests, NULL)) ||
        (rc = scalar_i64(r, "SELECT min(started_at) FROM views", &oldest, &no_old)) ||
        (rc = scalar_i64(r, "SELECT max(started_at) FROM views", &newest, &no_new)) ||
        (rc = scalar_i64(r, "PRAGMA page_count", &pages, NULL)) ||
        (rc = scalar_i64(r, "PRAGMA page_size", &psize, NULL)))
        return rc;
    json_t *rej = json_object();
    sqlite3_stmt *st = NULL;
    if (!rej)
        return VP_ERR_NOMEM;
    if ((rc = prep(r, "SELECT reason, count FROM rejections ORDER BY count DESC", &st))) {
        json_decref(rej);
        return rc;
    }
    int64_t rejected = 0;
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        const char *reason = (const char *)sqlite3_column_text(st, 0);
        int64_t c = sqlite3_column_int64(st, 1);
        rejected += c;
        if (reason && json_object_set_new(rej, reason, json_integer(c))) {
            rc = VP_ERR_NOMEM;
            break;
        }
    }
    if (!rc)
        rc = step_done(s);
    sqlite3_finalize(st);
    if (rc) {
        json_decref(rej);
        return rc;
    }
    *out = json_pack("{s:I,s:I,s:o,s:I,s:I,s:o,s:o,s:I}", "beacons_accepted",
                     (json_int_t)accepted, "beacons_rejected", (json_int_t)rejected,
                     "rejections", rej, "views", (json_int_t)views, "requests",
                     (json_int_t)requests, "oldest", no_old ? json_null() : json_iso(oldest),
                     "newest", no_new ? json_null() : json_iso(newest), "db_bytes",
                     (json_int_t)(pages * psize));
    return *out ? 0 : VP_ERR_NOMEM;
}

bool store_reader_metrics_by_id(const struct store_reader *r)
{
    return r->metrics_by_id;
}

sqlite3 *store_reader_sqlite(struct store_reader *r)
{
    return r->db;
}
