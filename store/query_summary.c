/* query_summary: the summary from the hourly rollups plus the raw rows of the time they do not
 * cover, with exactly the numbers of a computation over the raw rows alone (query.h gives the
 * definitions; store_summary_raw in query.c is that computation, kept as the reference the unit
 * tests compare against).
 *
 * Plan, inside one read transaction (so the watermark, the dirty marks, the rollup rows and the
 * raw rows are one snapshot): with lo = since (or 0) and hi = until (or no bound), the hours
 * [ceil(lo / 1h), min(floor(hi / 1h), watermark)) that are not dirty come from the rollup rows;
 * the rest of [lo, hi) -- the partial hours at both ends, the unsealed recent hours and the dirty
 * hours -- is read raw. Every hour is therefore counted exactly once.
 *
 * Each (route, metric) gathers its values in one array; the percentiles are selected in place
 * (quickselect, successive ranks on the shrinking upper part) rather than sorted: the nearest-rank
 * value is the same element either way. Filters on device / browser / connection / label become
 * a set of rollup_dims ids; a rollup value or view counts when its id is in the set, the same
 * predicate as the raw "(?N IS NULL OR col = ?N)". */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/vp_err.h"
#include "store/query.h"
#include "store/rollup.h"
#include "store/store_internal.h"

/* Values of one (route, metric): sorted runs (one per rollup row, one for the raw rows), run k
 * ending at run_end[k]. */
struct dvec {
    double *v;
    size_t n, cap;
    size_t *run_end;
    size_t nruns, rcap;
};

/* Closes the run of the values appended since the last one. */
static int dvec_end_run(struct dvec *d)
{
    size_t last = d->nruns ? d->run_end[d->nruns - 1] : 0;
    if (d->n == last)
        return 0;
    if (d->nruns == d->rcap) {
        size_t nc = d->rcap ? d->rcap * 2 : 64;
        size_t *nr = realloc(d->run_end, nc * sizeof *nr);
        if (!nr)
            return VP_ERR_NOMEM;
        d->run_end = nr;
        d->rcap = nc;
    }
    d->run_end[d->nruns++] = d->n;
    return 0;
}

static int dvec_reserve(struct dvec *d, size_t more)
{
    if (d->n + more <= d->cap)
        return 0;
    size_t nc = d->cap ? d->cap : 64;
    while (nc < d->n + more)
        nc *= 2;
    double *nv = realloc(d->v, nc * sizeof *nv);
    if (!nv)
        return VP_ERR_NOMEM;
    d->v = nv;
    d->cap = nc;
    return 0;
}

struct racc {
    int64_t views;
    struct dvec m[ROLLUP_NMETRICS];   /* from the rollup rows: sorted runs */
    struct dvec raw[ROLLUP_NMETRICS]; /* from the raw rows: sorted and added as one run last */
};

struct sum {
    sqlite3 *db;
    bool metrics_by_id; /* store_reader_metrics_by_id */
    const struct query_filter *f;
    struct rollup_keys routes;
    struct racc *acc;
    size_t cap;
    bool dims_filter;
    unsigned char *dims_ok; /* dims id -> matches the filter */
    size_t ndims;
};

static int acc_of(struct sum *s, const void *route, size_t len, struct racc **out)
{
    uint32_t i;
    if (rollup_keys_intern(&s->routes, route, len, &i))
        return VP_ERR_NOMEM;
    if (i >= s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 64;
        struct racc *na = realloc(s->acc, nc * sizeof *na);
        if (!na)
            return VP_ERR_NOMEM;
        memset(na + s->cap, 0, (nc - s->cap) * sizeof *na);
        s->acc = na;
        s->cap = nc;
    }
    *out = &s->acc[i];
    return 0;
}

static void sum_dispose(struct sum *s)
{
    /* routes.n may exceed cap by one when growing acc failed */
    for (size_t i = 0; i < s->routes.n && i < s->cap; i++)
        for (int k = 0; k < ROLLUP_NMETRICS; k++) {
            free(s->acc[i].m[k].v);
            free(s->acc[i].m[k].run_end);
            free(s->acc[i].raw[k].v);
        }
    free(s->acc);
    rollup_keys_dispose(&s->routes);
    free(s->dims_ok);
}

static void bind_opt(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

/* ---- the raw rows of [a, b) ---- */

static int add_raw(struct sum *s, sqlite3_stmt *st, int64_t a, int64_t b)
{
    const struct query_filter *f = s->f;
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, a);
    sqlite3_bind_int64(st, 2, b);
    bind_opt(st, 3, f->route);
    bind_opt(st, 4, f->device);
    bind_opt(st, 5, f->browser);
    bind_opt(st, 6, f->ect);
    bind_opt(st, 7, f->label);
    int64_t cur = 0;
    bool any = false;
    struct racc *acc = NULL;
    double max[ROLLUP_NMETRICS];
    unsigned have = 0;
    int sr, rc = 0;
    for (;;) {
        sr = sqlite3_step(st);
        int64_t rowid = sr == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        if (any && (sr != SQLITE_ROW || rowid != cur)) { /* the previous view is complete */
            for (int k = 0; k < ROLLUP_NMETRICS; k++)
                if (have & (1u << k)) {
                    if ((rc = dvec_reserve(&acc->raw[k], 1)))
                        return rc;
                    acc->raw[k].v[acc->raw[k].n++] = max[k];
                }
            any = false;
        }
        if (sr != SQLITE_ROW)
            break;
        if (!any) {
            const void *route =
                sqlite3_column_type(st, 1) == SQLITE_NULL ? NULL : sqlite3_column_text(st, 1);
            if ((rc = acc_of(s, route, (size_t)sqlite3_column_bytes(st, 1), &acc)))
                return rc;
            acc->views++;
            cur = rowid;
            any = true;
            have = 0;
        }
        if (sqlite3_column_type(st, 2) == SQLITE_NULL)
            continue;
        int k = rollup_metric_index((const char *)sqlite3_column_text(st, 2));
        if (k < 0)
            continue;
        double v = sqlite3_column_double(st, 3);
        if (!isfinite(v))
            continue; /* a hand-edited database: no infinities in the percentiles */
        if (!(have & (1u << k)) || v > max[k])
            max[k] = v;
        have |= 1u << k;
    }
    return sr == SQLITE_DONE ? 0 : VP_ERR_DB;
}

/* ---- the rollup rows of hours [h0, h1), minus the dirty ones ---- */

static int load_dims(struct sum *s)
{
    const struct query_filter *f = s->f;
    s->dims_filter = f->device || f->browser || f->ect || f->label;
    if (!s->dims_filter)
        return 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT id, (?1 IS NULL OR device = ?1) AND (?2 IS NULL OR browser = ?2)"
                           " AND (?3 IS NULL OR ect = ?3) AND (?4 IS NULL OR label = ?4) "
                           "FROM rollup_dims ORDER BY id DESC",
                           -1, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return VP_ERR_DB;
    }
    bind_opt(st, 1, f->device);
    bind_opt(st, 2, f->browser);
    bind_opt(st, 3, f->ect);
    bind_opt(st, 4, f->label);
    int sr, rc = 0;
    while ((sr = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        if (id < 0 || id > 100000000) {
            rc = VP_ERR_DB;
            break;
        }
        if (!s->dims_ok) { /* the first row has the largest id */
            s->ndims = (size_t)id + 1;
            if (!(s->dims_ok = calloc(s->ndims, 1))) {
                rc = VP_ERR_NOMEM;
                break;
            }
        }
        if ((size_t)id < s->ndims)
            s->dims_ok[id] = sqlite3_column_int(st, 1) == 1;
    }
    sqlite3_finalize(st);
    if (rc)
        return rc;
    return sr == SQLITE_DONE ? 0 : VP_ERR_DB;
}

static inline bool dims_match(const struct sum *s, const unsigned char *codes, size_t i)
{
    uint32_t c = rollup_get_u32(codes + 4 * i);
    return c < s->ndims && s->dims_ok[c];
}

static bool is_dirty(const int64_t *dirty, size_t nd, int64_t h)
{
    size_t lo = 0, hi = nd;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (dirty[mid] < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < nd && dirty[lo] == h;
}

/* Appends n doubles stored little-endian at p. */
static int append_values(struct dvec *d, const unsigned char *p, size_t n)
{
    if (dvec_reserve(d, n))
        return VP_ERR_NOMEM;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (n)
        memcpy(d->v + d->n, p, n * 8);
    d->n += n;
#else
    for (size_t i = 0; i < n; i++)
        d->v[d->n++] = rollup_get_f64(p + 8 * i);
#endif
    return 0;
}

static int add_rollup_row(struct sum *s, sqlite3_stmt *st)
{
    struct racc *acc = NULL;
    const void *route =
        sqlite3_column_type(st, 0) == SQLITE_NULL ? NULL : sqlite3_column_text(st, 0);
    int64_t views = sqlite3_column_int64(st, 2);
    if (!s->dims_filter) {
        if (views <= 0)
            return 0;
        if (acc_of(s, route, (size_t)sqlite3_column_bytes(st, 0), &acc))
            return VP_ERR_NOMEM;
        acc->views += views;
        for (int k = 0; k < ROLLUP_NMETRICS; k++) {
            const unsigned char *p = sqlite3_column_blob(st, 3 + k);
            int bytes = sqlite3_column_bytes(st, 3 + k);
            if (bytes < 0 || bytes % 8 != 0)
                return VP_ERR_DB;
            if (bytes &&
                (append_values(&acc->m[k], p, (size_t)bytes / 8) || dvec_end_run(&acc->m[k])))
                return VP_ERR_NOMEM;
        }
        return 0;
    }
    const unsigned char *vc = sqlite3_column_blob(st, 8);
    int vbytes = sqlite3_column_bytes(st, 8);
    if (vbytes < 0 || vbytes % 4 != 0 || vbytes / 4 != views)
        return VP_ERR_DB;
    int64_t matched = 0;
    for (size_t i = 0; i < (size_t)views; i++)
        matched += dims_match(s, vc, i);
    if (matched == 0)
        return 0;
    if (acc_of(s, route, (size_t)sqlite3_column_bytes(st, 0), &acc))
        return VP_ERR_NOMEM;
    acc->views += matched;
    for (int k = 0; k < ROLLUP_NMETRICS; k++) {
        size_t n;
        const unsigned char *p = sqlite3_column_blob(st, 3 + k);
        int pb = sqlite3_column_bytes(st, 3 + k);
        const unsigned char *c = sqlite3_column_blob(st, 9 + k);
        int cb = sqlite3_column_bytes(st, 9 + k);
        if (!rollup_blob_ok(pb, cb, &n))
            return VP_ERR_DB;
        if (dvec_reserve(&acc->m[k], n))
            return VP_ERR_NOMEM;
        struct dvec *d = &acc->m[k];
        for (size_t i = 0; i < n; i++)
            if (dims_match(s, c, i))
                d->v[d->n++] = rollup_get_f64(p + 8 * i);
        if (dvec_end_run(d))
            return VP_ERR_NOMEM;
    }
    return 0;
}

static int add_rollup(struct sum *s, int64_t h0, int64_t h1, const int64_t *dirty, size_t nd)
{
    int rc = load_dims(s);
    if (rc)
        return rc;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT route, hour, views, m0, m1, m2, m3, m4, vcodes, c0, c1, c2, c3,"
                           " c4 FROM rollup WHERE hour >= ?1 AND hour < ?2 AND"
                           " (?3 IS NULL OR route = ?3)",
                           -1, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return VP_ERR_DB;
    }
    sqlite3_bind_int64(st, 1, h0);
    sqlite3_bind_int64(st, 2, h1);
    bind_opt(st, 3, s->f->route);
    int sr;
    while ((sr = sqlite3_step(st)) == SQLITE_ROW) {
        if (nd && is_dirty(dirty, nd, sqlite3_column_int64(st, 1)))
            continue;
        if ((rc = add_rollup_row(s, st)))
            break;
    }
    sqlite3_finalize(st);
    if (rc)
        return rc;
    return sr == SQLITE_DONE ? 0 : VP_ERR_DB;
}

/* ---- percentiles and JSON ---- */

static void swapd(double *a, size_t i, size_t j)
{
    double t = a[i];
    a[i] = a[j];
    a[j] = t;
}

/* Rearranges a[0..n) so that a[k] holds the value of rank k (0-based) in sorted order, smaller
 * or equal values before it and larger or equal ones after it. Returns a[k]. */
static double select_rank(double *a, size_t n, size_t k)
{
    size_t l = 0, ir = n - 1;
    for (;;) {
        if (ir <= l + 1) {
            if (ir == l + 1 && a[ir] < a[l])
                swapd(a, l, ir);
            return a[k];
        }
        size_t mid = l + (ir - l) / 2;
        swapd(a, mid, l + 1);
        if (a[l] > a[ir])
            swapd(a, l, ir);
        if (a[l + 1] > a[ir])
            swapd(a, l + 1, ir);
        if (a[l] > a[l + 1])
            swapd(a, l, l + 1);
        size_t i = l + 1, j = ir;
        double piv = a[l + 1];
        for (;;) {
            do
                i++;
            while (a[i] < piv);
            do
                j--;
            while (a[j] > piv);
            if (j < i)
                break;
            swapd(a, i, j);
        }
        a[l + 1] = a[j];
        a[j] = piv;
        if (j >= k)
            ir = j - 1;
        if (j <= k)
            l = i;
    }
}

static const double pct[4] = {50, 75, 95, 99};

static size_t rank_index(double p, size_t n)
{
    double r = ceil(p / 100.0 * (double)n);
    size_t rank = r < 1 ? 1 : (size_t)r;
    return (rank > n ? n : rank) - 1;
}

/* Successive quickselect: each rank on the part above the previous one. */
static void percentiles_qs(double *v, size_t n, double out[4])
{
    size_t from = 0;
    for (int i = 0; i < 4; i++) {
        size_t idx = rank_index(pct[i], n);
        if (idx < from) { /* an equal rank was selected already */
            out[i] = v[idx];
            continue;
        }
        out[i] = select_rank(v + from, n - from, idx - from);
        from = idx + 1;
    }
}

/* Values <= x (count_le) or < x (count_lt) in the sorted run v[0..n): branch-free binary
 * searches (the comparison picks the next base through a conditional move), since runs are
 * short and a mispredicted branch per step cost more than the search itself. */
static size_t count_le(const double *v, size_t n, double x)
{
    if (n == 0)
        return 0;
    const double *base = v;
    while (n > 1) {
        size_t half = n / 2;
        base = base[half] <= x ? base + half : base;
        n -= half;
    }
    return (size_t)(base - v) + (*base <= x);
}

static size_t count_lt(const double *v, size_t n, double x)
{
    if (n == 0)
        return 0;
    const double *base = v;
    while (n > 1) {
        size_t half = n / 2;
        base = base[half] < x ? base + half : base;
        n -= half;
    }
    return (size_t)(base - v) + (*base < x);
}

/* Large n: a sample (n / 16 values, at most 16384) gives each rank a value bracket [lo, hi]
 * about 3 standard deviations of the sample rank wide; binary searches in each sorted run count
 * the values below the bracket and find those inside, which are copied out; the rank is then
 * selected among these few candidates. A bracket that misses its rank (an unlucky sample)
 * falls back to quickselect on all values, so the result is always exact. */
#define SAMPLE_MIN_N 4096
void rollup_percentiles(double *v, size_t n, const size_t *run_end, size_t nruns, double out[4])
{
    if (n < SAMPLE_MIN_N) {
        percentiles_qs(v, n, out);
        return;
    }
    size_t m = n / 16 > 16384 ? 16384 : n / 16, step = n / m;
    double *smp = malloc(m * sizeof *smp), *cand[4] = {NULL, NULL, NULL, NULL};
    for (int k = 0; k < 4 && smp; k++)
        if (!(cand[k] = malloc(n * sizeof *cand[k])))
            break;
    if (!smp || !cand[3]) {
        for (int k = 0; k < 4; k++)
            free(cand[k]);
        free(smp);
        percentiles_qs(v, n, out);
        return;
    }
    for (size_t j = 0; j < m; j++) /* one value per stride, at a scrambled offset within it */
        smp[j] = v[j * step + (size_t)((j * 2654435761u) % step)];
    /* The bracket ends are order statistics of the sample: 8 positions, ascending, each
     * selected above the previous one (cheaper than sorting the sample). */
    double lo[4], hi[4];
    size_t idx[4], below[4] = {0}, nlo[4] = {0}, nc[4] = {0}, nhi[4] = {0}, pos[8];
    bool has[8];
    for (int k = 0; k < 4; k++) {
        idx[k] = rank_index(pct[k], n);
        double p = pct[k] / 100.0;
        size_t d = (size_t)(3.0 * sqrt((double)m * p * (1 - p))) + 4;
        size_t sp = (size_t)((double)idx[k] * (double)m / (double)n);
        has[2 * k] = sp >= d;
        pos[2 * k] = has[2 * k] ? sp - d : 0;
        has[2 * k + 1] = sp + d < m;
        pos[2 * k + 1] = has[2 * k + 1] ? sp + d : m - 1;
    }
    double at[8];
    size_t order[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    for (int a = 0; a < 8; a++) /* insertion sort of the 8 positions */
        for (int b = a; b > 0 && pos[order[b - 1]] > pos[order[b]]; b--) {
            size_t t = order[b];
            order[b] = order[b - 1];
            order[b - 1] = t;
        }
    size_t from = 0;
    for (int a = 0; a < 8; a++) {
        size_t q = pos[order[a]];
        if (q < from) {
            at[order[a]] = smp[q];
        } else {
            at[order[a]] = select_rank(smp + from, m - from, q - from);
            from = q + 1;
        }
    }
    for (int k = 0; k < 4; k++) {
        lo[k] = has[2 * k] ? at[2 * k] : -HUGE_VAL;
        hi[k] = has[2 * k + 1] ? at[2 * k + 1] : HUGE_VAL;
    }
    for (size_t r = 0, s0 = 0; r < nruns; s0 = run_end[r++]) {
        const double *run = v + s0;
        size_t len = run_end[r] - s0;
        for (int k = 0; k < 4; k++) {
            /* [b, e1) == lo, [e1, b2) strictly inside, [b2, e) == hi (when hi > lo): ties at
             * the ends are counted, not copied (CLS is 0 for many views) */
            size_t b = count_lt(run, len, lo[k]), e1 = count_le(run, len, lo[k]);
            size_t b2 = hi[k] > lo[k] ? count_lt(run, len, hi[k]) : e1;
            size_t e = hi[k] > lo[k] ? count_le(run, len, hi[k]) : e1;
            below[k] += b;
            nlo[k] += e1 - b;
            nhi[k] += e - b2;
            if (b2 > e1) {
                memcpy(cand[k] + nc[k], run + e1, (b2 - e1) * sizeof *run);
                nc[k] += b2 - e1;
            }
        }
    }
    for (int k = 0; k < 4; k++) {
        size_t r = idx[k] - below[k];
        if (idx[k] < below[k] || r >= nlo[k] + nc[k] + nhi[k])
            out[k] = select_rank(v, n, idx[k]); /* the bracket missed: exact fallback */
        else if (r < nlo[k])
            out[k] = lo[k];
        else if (r < nlo[k] + nc[k])
            out[k] = select_rank(cand[k], nc[k], r - nlo[k]);
        else
            out[k] = hi[k];
        free(cand[k]);
    }
    free(smp);
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentiles and rating shares of one (route, metric), as metric_stats in query.c
 * computes them from a sorted copy: the raw values are sorted and added as the last run; the
 * shares come from binary searches in each run. */
static int add_stats(json_t *metrics, int k, struct dvec *d, struct dvec *raw)
{
    if (raw->n) {
        qsort(raw->v, raw->n, sizeof *raw->v, cmp_dbl);
        if (dvec_reserve(d, raw->n))
            return VP_ERR_NOMEM;
        memcpy(d->v + d->n, raw->v, raw->n * sizeof *raw->v);
        d->n += raw->n;
        if (dvec_end_run(d))
            return VP_ERR_NOMEM;
    }
    size_t n = d->n;
    if (n == 0)
        return 0;
    double good = 0, poor = 0;
    if (query_thresholds(rollup_metrics[k], &good, &poor))
        return 0;
    size_t ng = 0, nle = 0;
    for (size_t r = 0, s0 = 0; r < d->nruns; s0 = d->run_end[r++]) {
        ng += count_le(d->v + s0, d->run_end[r] - s0, good);
        nle += count_le(d->v + s0, d->run_end[r] - s0, poor);
    }
    size_t nn = nle - ng;
    double out[4];
    rollup_percentiles(d->v, n, d->run_end, d->nruns, out);
    for (int i = 0; i < 4; i++)
        if (!isfinite(out[i]))
            return VP_ERR_DB; /* a rollup blob edited by hand */
    double dn = (double)n;
    json_t *o = json_pack("{s:I,s:f,s:f,s:f,s:f,s:f,s:f,s:f}", "n", (json_int_t)n, "p50", out[0],
                          "p75", out[1], "p95", out[2], "p99", out[3], "good", (double)ng / dn,
                          "ni", (double)nn / dn, "poor", (double)(n - nle) / dn);
    if (!o || json_object_set_new(metrics, rollup_metrics[k], o) != 0)
        return VP_ERR_NOMEM;
    return 0;
}

struct rorder {
    int64_t views;
    const struct rollup_key *key;
    uint32_t idx;
};

/* Views descending, then the route in SQLite's BINARY order (NULL first). */
static int cmp_route(const void *a, const void *b)
{
    const struct rorder *x = a, *y = b;
    if (x->views != y->views)
        return x->views > y->views ? -1 : 1;
    const struct rollup_key *kx = x->key, *ky = y->key;
    if (!kx->bytes || !ky->bytes)
        return (kx->bytes != NULL) - (ky->bytes != NULL);
    size_t m = kx->len < ky->len ? kx->len : ky->len;
    int c = memcmp(kx->bytes, ky->bytes, m);
    if (c)
        return c;
    return (kx->len > ky->len) - (kx->len < ky->len);
}

static int to_json(struct sum *s, json_t **out)
{
    size_t n = s->routes.n;
    struct rorder *order = malloc((n ? n : 1) * sizeof *order);
    json_t *routes = json_array();
    int rc = VP_ERR_NOMEM;
    if (!order || !routes)
        goto fail;
    size_t m = 0;
    for (uint32_t i = 0; i < n; i++)
        if (s->acc[i].views > 0)
            order[m++] = (struct rorder){s->acc[i].views, &s->routes.v[i], i};
    qsort(order, m, sizeof *order, cmp_route);
    for (size_t i = 0; i < m; i++) {
        struct racc *a = &s->acc[order[i].idx];
        json_t *metrics = json_object();
        json_t *ro = json_pack("{s:s?,s:I,s:o}", "route", order[i].key->bytes, "views",
                               (json_int_t)a->views, "metrics", metrics);
        if (!ro || json_array_append_new(routes, ro) != 0)
            goto fail;
        for (int k = 0; k < ROLLUP_NMETRICS; k++)
            if ((rc = add_stats(metrics, k, &a->m[k], &a->raw[k])))
                goto fail;
        rc = VP_ERR_NOMEM;
    }
    free(order);
    *out = json_pack("{s:o}", "routes", routes);
    return *out ? 0 : VP_ERR_NOMEM;
fail:
    free(order);
    json_decref(routes);
    return rc;
}

static int read_dirty(sqlite3 *db, int64_t h0, int64_t h1, int64_t **out, size_t *n)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT hour FROM rollup_dirty WHERE hour >= ?1 AND hour < ?2 "
                           "ORDER BY hour",
                           -1, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return VP_ERR_DB;
    }
    sqlite3_bind_int64(st, 1, h0);
    sqlite3_bind_int64(st, 2, h1);
    int64_t *v = NULL;
    size_t nv = 0, cap = 0;
    int sr, rc = 0;
    while ((sr = sqlite3_step(st)) == SQLITE_ROW) {
        if (nv == cap) {
            size_t nc = cap ? cap * 2 : 16;
            int64_t *nvp = realloc(v, nc * sizeof *nvp);
            if (!nvp) {
                rc = VP_ERR_NOMEM;
                break;
            }
            v = nvp;
            cap = nc;
        }
        v[nv++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    if (!rc && sr != SQLITE_DONE)
        rc = VP_ERR_DB;
    if (rc) {
        free(v);
        return rc;
    }
    *out = v;
    *n = nv;
    return 0;
}

static int summarize(struct sum *s)
{
    static const struct query_filter none = {0};
    const struct query_filter *f = s->f ? s->f : &none;
    s->f = f;
    int64_t lo = f->since_ms > 0 ? f->since_ms : 0;
    int64_t hi = f->until_ms > 0 ? f->until_ms : INT64_MAX;
    int64_t until = 0;
    int rc = rollup_until(s->db, &until);
    if (rc == VP_ERR_NOTFOUND) { /* schema 1, read-only: no rollups */
        until = 0;
        rc = 0;
    }
    if (rc)
        return rc;
    int64_t h0 = lo / ROLLUP_HOUR_MS + (lo % ROLLUP_HOUR_MS != 0);
    int64_t h1 = hi / ROLLUP_HOUR_MS;
    if (h1 > until)
        h1 = until;
    int64_t *dirty = NULL;
    size_t nd = 0;
    sqlite3_stmt *raw = NULL;
#define RAW_SQL(join)                                                                              \
    "SELECT v.rowid, v.route, m.name, m.value FROM views v LEFT JOIN " join " WHERE "             \
    "v.started_at >= ?1 AND v.started_at < ?2 AND (?3 IS NULL OR v.route = ?3) AND "              \
    "(?4 IS NULL OR v.device = ?4) AND (?5 IS NULL OR v.browser = ?5) AND "                       \
    "(?6 IS NULL OR v.ect = ?6) AND (?7 IS NULL OR v.label = ?7)"
    /* A file before schema 6 keys metrics by the view's text id: read directly (the reader's
     * temporary view of them is not flattened into a LEFT JOIN, and each view would scan it). */
    if (sqlite3_prepare_v2(s->db,
                           s->metrics_by_id ? RAW_SQL("main.metrics m ON m.view_id = v.id")
                                            : RAW_SQL("metrics m ON m.view_seq = v.rowid"),
                           -1, &raw, NULL) != SQLITE_OK) {
        sqlite3_finalize(raw);
        return VP_ERR_DB;
    }
    if (h0 >= h1) {
        rc = add_raw(s, raw, lo, hi);
        goto done;
    }
    if ((rc = read_dirty(s->db, h0, h1, &dirty, &nd)))
        goto done;
    if ((rc = add_rollup(s, h0, h1, dirty, nd)))
        goto done;
    if (lo < h0 * ROLLUP_HOUR_MS && (rc = add_raw(s, raw, lo, h0 * ROLLUP_HOUR_MS)))
        goto done;
    for (size_t i = 0; i < nd; i++)
        if ((rc = add_raw(s, raw, dirty[i] * ROLLUP_HOUR_MS, (dirty[i] + 1) * ROLLUP_HOUR_MS)))
            goto done;
    if (h1 * ROLLUP_HOUR_MS < hi)
        rc = add_raw(s, raw, h1 * ROLLUP_HOUR_MS, hi);
done:
    sqlite3_finalize(raw);
    free(dirty);
    return rc;
}

int query_summary(struct store_reader *r, const struct query_filter *f, json_t **out)
{
    struct sum s = {.db = store_reader_sqlite(r), .metrics_by_id = store_reader_metrics_by_id(r),
                    .f = f};
    bool txn = sqlite3_get_autocommit(s.db);
    if (txn && sqlite3_exec(s.db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return VP_ERR_DB;
    int rc = summarize(&s);
    if (txn)
        sqlite3_exec(s.db, "COMMIT", NULL, NULL, NULL);
    if (rc == 0)
        rc = to_json(&s, out);
    sum_dispose(&s);
    return rc;
}
