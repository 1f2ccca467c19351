/* Report queries beyond store/query.c (see query_report.h).
 *
 * Same discipline as query.c: constant SQL texts, every filter a bound parameter in the
 * "(?N IS NULL OR col = ?N)" form, aggregation the database can do well (GROUP BY, sums) done
 * in SQL, percentiles and per-key grouping of the (bounded) result rows done in C. Rows are
 * streamed, never loaded whole; every list in the output is capped. */
#include "config.h"

#include "store/query_report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/vp_err.h"
#include "store/store_internal.h"

/* Time bounds are plain comparisons (no "?1 = 0 OR ..."), so SQLite can range-scan the
 * started_at / accept_us indexes: an absent bound is bound as 0 / UNTIL_NONE (prep_filter). */
#define VIEW_FILTER                                                                               \
    " v.started_at >= ?1 AND v.started_at < ?2"                                                  \
    " AND (?3 IS NULL OR v.route = ?3) AND (?4 IS NULL OR v.device = ?4)"                         \
    " AND (?5 IS NULL OR v.browser = ?5) AND (?6 IS NULL OR v.ect = ?6)"                          \
    " AND (?7 IS NULL OR v.label = ?7) "

/* Requests: time and label on the record, route through the view it belongs to. */
/* The id bound is the time bound's mark (store/schema.c, v5): rows are read by id from there. */
#define REQ_FILTER                                                                                 \
    " q.accept_us >= ?1 * 1000 AND q.accept_us < ?2 * 1000"                                        \
    " AND q.id >= coalesce((SELECT first_id FROM request_marks WHERE minute <= ?1 / 60000"         \
    " ORDER BY minute DESC LIMIT 1), 0)"                                                           \
    " AND (?3 IS NULL OR q.view_id IN (SELECT id FROM views WHERE route = ?3))"                    \
    " AND (?7 IS NULL OR q.label = ?7) "

/* Joins of views with metrics or resources are written "views v CROSS JOIN ..." so that views
 * drive them: the time and route filters then range-scan views_time / views_route_time and each
 * view's rows come by primary-key prefix. Left to the planner, an empty or small statistics
 * table made it scan all of resources (or every LCP row through metrics_name_view) first.
 * "GROUP BY +v.id": grouping by the bare column made the planner walk all of views in id order
 * (to skip a sort) instead of range-scanning the time index. */
#define UNTIL_NONE (INT64_MAX / 1000) /* ms; also safe once multiplied to us */
#define FINDINGS_PER_TYPE 20
#define JS_OVER_DEFAULT 200000.0

static void bind_opt(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

static int prep_filter(struct store_reader *r, const char *sql, const struct query_filter *f,
                       sqlite3_stmt **st)
{
    static const struct query_filter none = {0};
    if (!f)
        f = &none;
    if (sqlite3_prepare_v2(store_reader_sqlite(r), sql, -1, st, NULL) != SQLITE_OK)
        return VP_ERR_DB;
    sqlite3_bind_int64(*st, 1, f->since_ms > 0 ? f->since_ms : 0);
    sqlite3_bind_int64(*st, 2, f->until_ms > 0 ? f->until_ms : UNTIL_NONE);
    bind_opt(*st, 3, f->route);
    bind_opt(*st, 4, f->device);
    bind_opt(*st, 5, f->browser);
    bind_opt(*st, 6, f->ect);
    bind_opt(*st, 7, f->label);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A named group of samples (route, target, ...). */
struct group {
    char *key;
    double *v;
    size_t n, cap;
};

struct groups {
    struct group *g;
    size_t n, cap;
};

static void groups_dispose(struct groups *gs)
{
    for (size_t i = 0; i < gs->n; i++) {
        free(gs->g[i].key);
        free(gs->g[i].v);
    }
    free(gs->g);
    memset(gs, 0, sizeof *gs);
}

/* Adds x under key; rows arrive grouped by key in most queries, so the last group is tried
 * first. */
static int groups_add(struct groups *gs, const char *key, double x)
{
    struct group *g = NULL;
    if (gs->n && strcmp(gs->g[gs->n - 1].key, key) == 0)
        g = &gs->g[gs->n - 1];
    for (size_t i = 0; !g && i < gs->n; i++)
        if (strcmp(gs->g[i].key, key) == 0)
            g = &gs->g[i];
    if (!g) {
        if (gs->n == gs->cap) {
            size_t nc = gs->cap ? gs->cap * 2 : 16;
            struct group *ng = realloc(gs->g, nc * sizeof *ng);
            if (!ng)
                return VP_ERR_NOMEM;
            gs->g = ng;
            gs->cap = nc;
        }
        g = &gs->g[gs->n];
        memset(g, 0, sizeof *g);
        if (!(g->key = strdup(key)))
            return VP_ERR_NOMEM;
        gs->n++;
    }
    if (g->n == g->cap) {
        size_t nc = g->cap ? g->cap * 2 : 16;
        double *nv = realloc(g->v, nc * sizeof *nv);
        if (!nv)
            return VP_ERR_NOMEM;
        g->v = nv;
        g->cap = nc;
    }
    g->v[g->n++] = x;
    return 0;
}

static int cmp_group_count(const void *a, const void *b)
{
    const struct group *x = a, *y = b;
    if (x->n != y->n)
        return x->n < y->n ? 1 : -1;
    return strcmp(x->key, y->key);
}

struct over {
    char id[72];
    char *route;
    double bytes;
};

static int cmp_over(const void *a, const void *b)
{
    const struct over *x = a, *y = b;
    return (x->bytes < y->bytes) - (x->bytes > y->bytes);
}

int query_initial_js(struct store_reader *r, const struct query_filter *f, double over_bytes,
                     json_t **out)
{
    static const char sql[] =
        "SELECT v.id, coalesce(v.route, ''), sum(CASE WHEN (r.initiator = 'script' OR "
        "(r.initiator = 'link' AND (r.p LIKE '%.js' OR r.p LIKE '%.mjs'))) AND "
        "(n.load_start IS NULL OR n.load_start <= 0 OR coalesce(r.start_ms, 0) < n.load_start) "
        "THEN CASE WHEN r.transfer_size > 0 THEN r.transfer_size ELSE "
        "coalesce(r.encoded_size, 0) END ELSE 0 END) "
        "FROM views v CROSS JOIN (SELECT view_seq, initiator, start_ms, transfer_size, "
        "encoded_size, CASE WHEN instr(url, '?') > 0 THEN substr(url, 1, instr(url, '?') - 1) "
        "ELSE url END AS p FROM resources) r ON r.view_seq = v.rowid LEFT JOIN navigation n ON "
        "n.view_id = v.id "
        "WHERE" VIEW_FILTER "GROUP BY +v.id ORDER BY v.started_at DESC LIMIT 100000";
    sqlite3_stmt *st = NULL;
    struct groups gs = {0};
    struct over *ov = NULL;
    size_t nov = 0, cov = 0;
    json_t *routes = NULL, *overs = NULL;
    int rc = prep_filter(r, sql, f, &st);
    if (rc)
        return rc;
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        const char *route = (const char *)sqlite3_column_text(st, 1);
        double bytes = sqlite3_column_double(st, 2);
        if (!id || !route)
            continue;
        if ((rc = groups_add(&gs, route, bytes)))
            goto done;
        if (over_bytes > 0 && bytes > over_bytes) {
            if (nov == cov) {
                size_t nc = cov ? cov * 2 : 16;
                struct over *no = realloc(ov, nc * sizeof *no);
                if (!no) {
                    rc = VP_ERR_NOMEM;
                    goto done;
                }
                ov = no;
                cov = nc;
            }
            if (snprintf(ov[nov].id, sizeof ov[nov].id, "%s", id) < 0 ||
                !(ov[nov].route = strdup(route))) {
                rc = VP_ERR_NOMEM;
                goto done;
            }
            ov[nov++].bytes = bytes;
        }
    }
    if (s != SQLITE_DONE) {
        rc = VP_ERR_DB;
        goto done;
    }
    routes = json_array();
    overs = json_array();
    if (!routes || !overs) {
        rc = VP_ERR_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < gs.n; i++) {
        struct group *g = &gs.g[i];
        qsort(g->v, g->n, sizeof(double), cmp_double); /* n >= 1: a group exists once added to */
        json_t *o = json_pack("{s:s,s:I,s:f,s:f,s:f,s:f,s:f}", "route", g->key, "n",
                              (json_int_t)g->n, "p50", query_percentile(g->v, g->n, 50), "p75",
                              query_percentile(g->v, g->n, 75), "p95",
                              query_percentile(g->v, g->n, 95), "p99",
                              query_percentile(g->v, g->n, 99), "max", g->v[g->n - 1]);
        if (!o || json_array_append_new(routes, o)) {
            rc = VP_ERR_NOMEM;
            goto done;
        }
    }
    if (nov)
        qsort(ov, nov, sizeof *ov, cmp_over);
    for (size_t i = 0; i < nov && i < 50; i++) {
        json_t *o = json_pack("{s:s,s:s,s:f}", "id", ov[i].id, "route", ov[i].route, "bytes",
                              ov[i].bytes);
        if (!o || json_array_append_new(overs, o)) {
            rc = VP_ERR_NOMEM;
            goto done;
        }
    }
    *out = json_pack("{s:O,s:O}", "routes", routes, "over", overs);
    rc = *out ? 0 : VP_ERR_NOMEM;
done:
    sqlite3_finalize(st);
    groups_dispose(&gs);
    for (size_t i = 0; i < nov; i++)
        free(ov[i].route);
    free(ov);
    json_decref(routes);
    json_decref(overs);
    return rc;
}

int query_targets(struct store_reader *r, const struct query_filter *f, int top, json_t **out)
{
    static const char *const names[] = {"LCP", "CLS", "INP"};
    /* the bare json_extract takes its value from the row holding max(m.value) (SQLite); views
     * drive the join (CROSS JOIN fixes the order) so the time and route filters range-scan their
     * indexes instead of every LCP/CLS/INP row of the database (40 s -> under 1 s at 1M views) */
    static const char sql[] =
        "SELECT m.name, json_extract(m.attribution, '$.target'), max(m.value) FROM views v "
        "CROSS JOIN metrics m ON m.view_seq = v.rowid WHERE m.name IN ('LCP', 'CLS', 'INP') AND "
        "json_valid(m.attribution) AND" VIEW_FILTER "GROUP BY m.view_seq, m.name "
        "LIMIT 300000";
    if (top < 1)
        top = 1;
    if (top > 100)
        top = 100;
    struct groups gs[3] = {{0}, {0}, {0}};
    json_t *res = NULL;
    sqlite3_stmt *st = NULL;
    int rc = prep_filter(r, sql, f, &st);
    if (rc)
        return rc;
    int s;
    json_int_t views = 0;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        if (sqlite3_column_type(st, 1) != SQLITE_TEXT || !name)
            continue;
        const char *target = (const char *)sqlite3_column_text(st, 1);
        for (int m = 0; m < 3; m++) {
            if (strcmp(name, names[m]) == 0 && target && *target) {
                if ((rc = groups_add(&gs[m], target, sqlite3_column_double(st, 2))))
                    goto done;
                views++;
            }
        }
    }
    if (s != SQLITE_DONE) {
        rc = VP_ERR_DB;
        goto done;
    }
    if (!(res = json_pack("{s:I}", "samples", views))) {
        rc = VP_ERR_NOMEM;
        goto done;
    }
    for (int m = 0; m < 3; m++) {
        json_t *arr = json_array();
        if (!arr || json_object_set_new(res, names[m], arr)) {
            rc = VP_ERR_NOMEM;
            goto done;
        }
        if (gs[m].n) /* qsort must not get NULL, even for no elements */
            qsort(gs[m].g, gs[m].n, sizeof *gs[m].g, cmp_group_count);
        for (size_t i = 0; i < gs[m].n && i < (size_t)top; i++) {
            struct group *g = &gs[m].g[i];
            qsort(g->v, g->n, sizeof(double), cmp_double);
            json_t *o = json_pack("{s:s,s:I,s:f}", "target", g->key, "count", (json_int_t)g->n,
                                  "p75", query_percentile(g->v, g->n, 75));
            if (!o || json_array_append_new(arr, o)) {
                rc = VP_ERR_NOMEM;
                goto done;
            }
        }
    }
    *out = res;
    res = NULL;
done:
    sqlite3_finalize(st);
    for (int m = 0; m < 3; m++)
        groups_dispose(&gs[m]);
    json_decref(res);
    return rc;
}

/* Appends {"type","title","evidence","count"}. */
static int finding(json_t *arr, const char *type, const char *title, const char *evidence,
                   json_int_t count)
{
    json_t *o = json_pack("{s:s,s:s,s:s,s:I}", "type", type, "title", title, "evidence",
                          evidence, "count", count);
    if (!o || json_array_append_new(arr, o))
        return VP_ERR_NOMEM;
    return 0;
}

/* max-age (or s-maxage) in seconds of a Cache-Control value; -1 when absent or when no-store /
 * no-cache make it irrelevant. */
static long max_age(const char *cc)
{
    if (!cc)
        return -1;
    if (strstr(cc, "no-store") || strstr(cc, "no-cache"))
        return -1;
    const char *p = strstr(cc, "max-age=");
    if (!p)
        return -1;
    p += 8;
    if (*p == '"')
        p++;
    long v = 0;
    if (*p < '0' || *p > '9')
        return -1;
    while (*p >= '0' && *p <= '9' && v < 100000000L)
        v = v * 10 + (*p++ - '0');
    return v;
}

/* Runs a (key, count, detail) query and turns each row into a finding with evidence
 * "key (detail)". */
static int simple_findings(struct store_reader *r, const struct query_filter *f, const char *sql,
                           const char *type, const char *title, const char *prefix,
                           const char *unit, json_t *arr)
{
    sqlite3_stmt *st = NULL;
    int rc = prep_filter(r, sql, f, &st);
    if (rc)
        return rc;
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(st, 0);
        /* an optional fourth column: how many distinct URLs the row groups */
        long long urls = sqlite3_column_count(st) > 3 ? sqlite3_column_int64(st, 3) : 0;
        char ev[760], nurls[40] = "";
        if (urls > 1)
            snprintf(nurls, sizeof nurls, "%lld URLs, ", urls);
        if (snprintf(ev, sizeof ev, "%.600s (%s%s%lld%s)", key ? key : "?", nurls, prefix,
                     (long long)sqlite3_column_int64(st, 2), unit) < 0) {
            rc = VP_ERR_NOMEM;
            break;
        }
        if ((rc = finding(arr, type, title, ev, sqlite3_column_int64(st, 1))))
            break;
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = VP_ERR_DB;
    sqlite3_finalize(st);
    return rc;
}

static int cache_findings(struct store_reader *r, const struct query_filter *f, json_t *arr)
{
    static const char sql[] =
        "SELECT q.path, count(*), q.cache_control FROM requests q WHERE" REQ_FILTER
        "AND q.status = 200 AND q.path IS NOT NULL AND (q.content_type LIKE '%javascript%' OR "
        "q.content_type LIKE 'text/css%' OR q.content_type LIKE 'font/%' OR "
        "q.content_type LIKE 'image/%' OR q.content_type LIKE 'application/font%' OR "
        "q.content_type LIKE 'application/x-font%') GROUP BY q.path, q.cache_control "
        "ORDER BY count(*) DESC, q.path LIMIT 5000";
    sqlite3_stmt *st = NULL;
    int rc = prep_filter(r, sql, f, &st);
    if (rc)
        return rc;
    int s, n = 0;
    while ((s = sqlite3_step(st)) == SQLITE_ROW && n < FINDINGS_PER_TYPE) {
        const char *path = (const char *)sqlite3_column_text(st, 0);
        const char *cc = (const char *)sqlite3_column_text(st, 2);
        if (max_age(cc) >= 7 * 86400)
            continue;
        char ev[800];
        if (snprintf(ev, sizeof ev, "%.600s (Cache-Control: %.100s)", path ? path : "?",
                     cc ? cc : "none") < 0) {
            rc = VP_ERR_NOMEM;
            break;
        }
        if ((rc = finding(arr, "cache-policy", "Static asset without a long Cache-Control", ev,
                          sqlite3_column_int64(st, 1))))
            break;
        n++;
    }
    if (rc == 0 && s != SQLITE_DONE && s != SQLITE_ROW)
        rc = VP_ERR_DB;
    sqlite3_finalize(st);
    return rc;
}

static int nplus1_findings(struct store_reader *r, const struct query_filter *f,
                           const char *api_prefix, json_t *arr)
{
    static const char sql[] =
        "SELECT method, route, count(*), max(c) FROM (SELECT q.view_id, "
        "coalesce(q.method, '') AS method, coalesce(q.route, q.path) AS route, count(*) AS c "
        "FROM requests q WHERE" REQ_FILTER "AND +q.view_id IS NOT NULL AND q.path IS NOT NULL "
        "AND substr(q.path, 1, length(?8)) = ?8 GROUP BY q.view_id, q.method, 3 "
        "HAVING count(*) >= 10) GROUP BY method, route ORDER BY 3 DESC, 2 LIMIT 20";
    sqlite3_stmt *st = NULL;
    int rc = prep_filter(r, sql, f, &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 8, api_prefix ? api_prefix : "/api/", -1, SQLITE_TRANSIENT);
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        char ev[800];
        if (snprintf(ev, sizeof ev, "%.16s %.600s (up to %lld requests in one view)",
                     (const char *)sqlite3_column_text(st, 0),
                     (const char *)sqlite3_column_text(st, 1),
                     (long long)sqlite3_column_int64(st, 3)) < 0) {
            rc = VP_ERR_NOMEM;
            break;
        }
        if ((rc = finding(arr, "n-plus-one", "One view issuing 10 or more requests to one API",
                          ev, sqlite3_column_int64(st, 2))))
            break;
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = VP_ERR_DB;
    sqlite3_finalize(st);
    return rc;
}

static int js_findings(struct store_reader *r, const struct query_filter *f, json_t *arr)
{
    json_t *js = NULL;
    int rc = query_initial_js(r, f, JS_OVER_DEFAULT, &js);
    if (rc)
        return rc;
    /* one finding per route: how many views were over, the largest */
    struct groups gs = {0};
    size_t i;
    const json_t *o;
    json_array_foreach(json_object_get(js, "over"), i, o) {
        if ((rc = groups_add(&gs, json_string_value(json_object_get(o, "route")),
                             json_number_value(json_object_get(o, "bytes")))))
            break;
    }
    for (size_t k = 0; rc == 0 && k < gs.n; k++) {
        double mx = 0;
        for (size_t j = 0; j < gs.g[k].n; j++)
            mx = gs.g[k].v[j] > mx ? gs.g[k].v[j] : mx;
        char ev[700];
        if (snprintf(ev, sizeof ev, "%.600s (up to %.0f bytes)", gs.g[k].key, mx) < 0)
            rc = VP_ERR_NOMEM;
        else
            rc = finding(arr, "initial-js", "Initial JavaScript over 200 KB compressed", ev,
                         (json_int_t)gs.g[k].n);
    }
    groups_dispose(&gs);
    json_decref(js);
    return rc;
}

int query_findings(struct store_reader *r, const struct query_filter *f, const char *api_prefix,
                   json_t **out)
{
    json_t *arr = json_array();
    if (!arr)
        return VP_ERR_NOMEM;
    int rc = simple_findings(
        r, f,
        "SELECT coalesce(q.route, q.path), count(*), max(q.upstream_bytes), "
        "count(DISTINCT q.path) FROM requests q WHERE" REQ_FILTER
        "AND q.status BETWEEN 200 AND 299 AND q.upstream_bytes > 1024 AND q.path IS NOT NULL "
        "AND (q.content_encoding IS NULL OR q.content_encoding = '' OR "
        "lower(q.content_encoding) = 'identity') AND (q.content_type LIKE 'text/%' OR "
        "q.content_type LIKE '%javascript%' OR q.content_type LIKE '%json%' OR "
        "q.content_type LIKE '%xml%') GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20",
        "uncompressed-text", "Text response over 1 KiB sent uncompressed", "up to ", " bytes", arr);
    if (rc == 0)
        rc = cache_findings(r, f, arr);
    if (rc == 0)
        rc = simple_findings(
            r, f,
            "SELECT coalesce(q.route, q.path), count(*), max(q.upstream_bytes), "
            "count(DISTINCT q.path) FROM requests q WHERE" REQ_FILTER
            "AND q.content_type LIKE '%json%' AND q.upstream_bytes > 1048576 AND "
            "q.path IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20",
            "large-json", "JSON response over 1 MiB", "up to ", " bytes", arr);
    if (rc == 0)
        rc = nplus1_findings(r, f, api_prefix, arr);
    if (rc == 0)
        rc = js_findings(r, f, arr);
    if (rc == 0)
        rc = simple_findings(
            r, f,
            "SELECT r.url, count(DISTINCT r.view_seq), count(DISTINCT r.view_seq) FROM views v "
            "CROSS JOIN resources r ON r.view_seq = v.rowid WHERE" VIEW_FILTER "AND r.render_blocking = "
            "'blocking' AND r.url IS NOT NULL GROUP BY r.url ORDER BY 2 DESC, r.url LIMIT 20",
            "render-blocking", "Render-blocking resource on the critical path", "", " views", arr);
    if (rc) {
        json_decref(arr);
        return rc;
    }
    *out = json_pack("{s:o}", "findings", arr);
    return *out ? 0 : VP_ERR_NOMEM;
}

/* Adds value to obj[route][key], creating the route object (in routes, indexed by index) on
 * first use; lists stop growing at QUERY_SAMPLES_MAX. */
static int sample_add(json_t *routes, json_t *index, const char *route, const char *key,
                      double value)
{
    json_t *ro = json_object_get(index, route);
    if (!ro) {
        ro = json_pack("{s:s}", "route", route);
        if (!ro || json_array_append_new(routes, ro) || json_object_set(index, route, ro))
            return VP_ERR_NOMEM;
    }
    json_t *arr = json_object_get(ro, key);
    if (!arr) {
        arr = json_array();
        if (!arr || json_object_set_new(ro, key, arr))
            return VP_ERR_NOMEM;
    }
    if (json_array_size(arr) >= QUERY_SAMPLES_MAX || !isfinite(value))
        return 0;
    return json_array_append_new(arr, json_real(value)) ? VP_ERR_NOMEM : 0;
}

int query_samples(struct store_reader *r, const struct query_filter *f, const char *api_prefix,
                  json_t **out)
{
    static const char metrics_sql[] =
        "SELECT coalesce(v.route, ''), m.name, max(m.value) FROM views v CROSS JOIN metrics m ON "
        "m.view_seq = v.rowid WHERE m.name IN ('LCP', 'CLS', 'INP', 'FCP', 'TTFB') AND" VIEW_FILTER
        "GROUP BY +v.id, m.name ORDER BY v.started_at DESC LIMIT 1000000";
    static const char api_sql[] =
        "SELECT coalesce(q.method, ''), coalesce(q.route, ''), (q.last_byte_us - CASE WHEN "
        "q.head_done_us > 0 THEN q.head_done_us ELSE q.accept_us END) / 1000.0 FROM requests q "
        "WHERE" REQ_FILTER "AND q.path IS NOT NULL AND substr(q.path, 1, length(?8)) = ?8 AND "
        "q.last_byte_us > 0 AND q.accept_us > 0 ORDER BY q.accept_us DESC LIMIT 1000000";
    json_t *routes = json_array(), *index = json_object(), *api = json_array(),
           *api_index = json_object();
    sqlite3_stmt *st = NULL;
    int rc = VP_ERR_NOMEM, s;
    if (!routes || !index || !api || !api_index)
        goto done;
    if ((rc = prep_filter(r, metrics_sql, f, &st)))
        goto done;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        const char *route = (const char *)sqlite3_column_text(st, 0);
        const char *name = (const char *)sqlite3_column_text(st, 1);
        if (route && name &&
            (rc = sample_add(routes, index, route, name, sqlite3_column_double(st, 2))))
            goto done;
    }
    if (s != SQLITE_DONE) {
        rc = VP_ERR_DB;
        goto done;
    }
    sqlite3_finalize(st);
    st = NULL;
    /* initial JS per view, defined as in query_initial_js */
    static const char js_sql[] =
        "SELECT coalesce(v.route, ''), sum(CASE WHEN (r.initiator = 'script' OR "
        "(r.initiator = 'link' AND (r.p LIKE '%.js' OR r.p LIKE '%.mjs'))) AND "
        "(n.load_start IS NULL OR n.load_start <= 0 OR coalesce(r.start_ms, 0) < n.load_start) "
        "THEN CASE WHEN r.transfer_size > 0 THEN r.transfer_size ELSE "
        "coalesce(r.encoded_size, 0) END ELSE 0 END) "
        "FROM views v CROSS JOIN (SELECT view_seq, initiator, start_ms, transfer_size, "
        "encoded_size, CASE WHEN instr(url, '?') > 0 THEN substr(url, 1, instr(url, '?') - 1) "
        "ELSE url END AS p FROM resources) r ON r.view_seq = v.rowid LEFT JOIN navigation n ON "
        "n.view_id = v.id "
        "WHERE" VIEW_FILTER "GROUP BY +v.id ORDER BY v.started_at DESC LIMIT 100000";
    if ((rc = prep_filter(r, js_sql, f, &st)))
        goto done;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        const char *route = (const char *)sqlite3_column_text(st, 0);
        if (route && (rc = sample_add(routes, index, route, "JS", sqlite3_column_double(st, 1))))
            goto done;
    }
    if (s != SQLITE_DONE) {
        rc = VP_ERR_DB;
        goto done;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (api_prefix) {
        if ((rc = prep_filter(r, api_sql, f, &st)))
            goto done;
        sqlite3_bind_text(st, 8, api_prefix, -1, SQLITE_TRANSIENT);
        while ((s = sqlite3_step(st)) == SQLITE_ROW) {
            const char *method = (const char *)sqlite3_column_text(st, 0);
            const char *route = (const char *)sqlite3_column_text(st, 1);
            char key[700];
            if (!method || !route ||
                snprintf(key, sizeof key, "%.16s %.600s", method, route) < 0)
                continue;
            json_t *ao = json_object_get(api_index, key);
            if (!ao) {
                ao = json_pack("{s:s,s:s,s:[]}", "route", route, "method", method, "ms");
                if (!ao || json_array_append_new(api, ao) || json_object_set(api_index, key, ao)) {
                    rc = VP_ERR_NOMEM;
                    goto done;
                }
            }
            json_t *ms = json_object_get(ao, "ms");
            if (json_array_size(ms) < QUERY_SAMPLES_MAX && isfinite(sqlite3_column_double(st, 2)) &&
                json_array_append_new(ms, json_real(sqlite3_column_double(st, 2)))) {
                rc = VP_ERR_NOMEM;
                goto done;
            }
        }
        if (s != SQLITE_DONE) {
            rc = VP_ERR_DB;
            goto done;
        }
    }
    *out = json_pack("{s:O,s:O}", "routes", routes, "api", api);
    rc = *out ? 0 : VP_ERR_NOMEM;
done:
    sqlite3_finalize(st);
    json_decref(routes);
    json_decref(index);
    json_decref(api);
    json_decref(api_index);
    return rc;
}

static json_t *iso_of(int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char b[40];
    if (!gmtime_r(&t, &tm))
        return json_null();
    size_t n = strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", &tm);
    if (n == 0 || snprintf(b + n, sizeof b - n, ".%03dZ", (int)(ms % 1000)) < 0)
        return json_null();
    return json_string(b);
}

int query_labels(struct store_reader *r, json_t **out)
{
    static const char sql[] = "SELECT label, count(*), min(started_at), max(started_at) FROM "
                              "views WHERE label IS NOT NULL GROUP BY label "
                              "ORDER BY max(started_at) DESC LIMIT 200";
    sqlite3_stmt *st = NULL;
    json_t *arr = json_array();
    if (!arr)
        return VP_ERR_NOMEM;
    int rc = prep_filter(r, sql, NULL, &st), s;
    if (rc) {
        json_decref(arr);
        return rc;
    }
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        const char *label = (const char *)sqlite3_column_text(st, 0);
        json_t *o = json_pack("{s:s,s:I,s:o,s:o}", "label", label ? label : "", "views",
                              (json_int_t)sqlite3_column_int64(st, 1), "first",
                              iso_of(sqlite3_column_int64(st, 2)), "last",
                              iso_of(sqlite3_column_int64(st, 3)));
        if (!o || json_array_append_new(arr, o)) {
            rc = VP_ERR_NOMEM;
            break;
        }
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = VP_ERR_DB;
    sqlite3_finalize(st);
    if (rc == 0 && !(*out = json_pack("{s:o}", "labels", arr)))
        return VP_ERR_NOMEM;
    if (rc)
        json_decref(arr);
    return rc;
}
