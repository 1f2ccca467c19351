/* Before/after comparisons (see compare.h for the definitions and the statistics).
 *
 * Invariants: every value from the caller or the database reaches SQL as a bound parameter; the
 * SQL texts are constants. Samples are loaded per side into series keyed by (kind, route,
 * metric, method), kept sorted so the output order is stable. A series holds at most
 * max_samples values per side (VP_ERR_LIMIT beyond), so memory is bounded by the caller's
 * option. The bootstrap needs no sort per resample: the sample is sorted once, a resample is a
 * histogram of drawn indices, and its k-th order statistic is found by a cumulative walk, since
 * the k-th smallest drawn index maps to the k-th smallest drawn value. */
#include "config.h"

#include "store/compare.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/vp_err.h"
#include "store/query.h"
#include "store/store_internal.h"

static const char *const vital_names[] = {"LCP", "CLS", "INP", "FCP", "TTFB", "JS"};
#define N_PAGE_METRICS 6
#define METRIC_JS 5
#define METRIC_API 6
#define SERIES_MAX 100000 /* distinct (route, metric) series per comparison */

/* err = a + arg + b, control bytes of arg shown as '?'. */
static void set_err(char *err, size_t errlen, const char *a, const char *arg, const char *b)
{
    if (errlen == 0)
        return;
    int w = snprintf(err, errlen, "%s%s%s", a, arg ? arg : "", b);
    if (w < 0)
        err[0] = '\0';
    for (char *c = err; *c; c++) /* the echoed input stays one printable line */
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
}

/* ---- PRNG: splitmix64 ---- */

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, n) by multiply-shift (bias < n / 2^64, negligible for n <= 2^20). */
static size_t draw(uint64_t *state, size_t n)
{
    return (size_t)(((unsigned __int128)splitmix64(state) * n) >> 64);
}

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; s && *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    h ^= 0xff; /* separator so ("ab","c") != ("a","bc") */
    h *= 0x100000001b3ULL;
    return h;
}

/* ---- statistics ---- */

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static size_t rank_of(size_t n, double p)
{
    double r = ceil(p / 100.0 * (double)n);
    size_t k = r < 1 ? 1 : (size_t)r;
    return k > n ? n : k;
}

/* Nearest-rank percentile of a resample of sorted[0..n-1]; counts is scratch of n entries. */
static double resample_pct(const double *sorted, size_t n, size_t rank, uint32_t *counts,
                           uint64_t *state)
{
    memset(counts, 0, n * sizeof *counts);
    for (size_t i = 0; i < n; i++)
        counts[draw(state, n)]++;
    size_t cum = 0;
    for (size_t i = 0; i < n; i++) {
        cum += counts[i];
        if (cum >= rank)
            return sorted[i];
    }
    return sorted[n - 1];
}

void compare_options_default(struct compare_options *o)
{
    memset(o, 0, sizeof *o);
    o->resamples = 2000;
    o->seed = 1;
    o->min_n = 20;
    o->api_prefix = "/api/";
    o->max_samples = 100000;
}

static bool options_ok(const struct compare_options *o)
{
    return o && o->resamples >= 1 && o->resamples <= COMPARE_RESAMPLES_MAX && o->min_n >= 2 &&
           o->max_samples >= 1 && o->max_samples <= COMPARE_SAMPLES_MAX;
}

static const double pcts[4] = {50, 75, 95, 99};

int compare_samples(const double *a, size_t na, const double *b, size_t nb, double stat_p,
                    const struct compare_options *o, uint64_t stream, struct compare_stat *out)
{
    if (!options_ok(o) || !(stat_p >= 0 && stat_p <= 100) || na > COMPARE_SAMPLES_MAX ||
        nb > COMPARE_SAMPLES_MAX)
        return VP_ERR_INVALID;
    for (size_t i = 0; i < na; i++)
        if (!isfinite(a[i]))
            return VP_ERR_INVALID;
    for (size_t i = 0; i < nb; i++)
        if (!isfinite(b[i]))
            return VP_ERR_INVALID;
    int rc = VP_ERR_NOMEM;
    double *sa = malloc((na ? na : 1) * sizeof *sa), *sb = malloc((nb ? nb : 1) * sizeof *sb);
    double *diffs = NULL;
    uint32_t *counts = NULL;
    if (!sa || !sb)
        goto done;
    if (na)
        memcpy(sa, a, na * sizeof *sa);
    if (nb)
        memcpy(sb, b, nb * sizeof *sb);
    qsort(sa, na, sizeof *sa, cmp_double);
    qsort(sb, nb, sizeof *sb, cmp_double);
    out->na = na;
    out->nb = nb;
    for (int i = 0; i < 4; i++) {
        out->a[i] = query_percentile(sa, na, pcts[i]);
        out->b[i] = query_percentile(sb, nb, pcts[i]);
    }
    out->diff = na && nb ? query_percentile(sb, nb, stat_p) - query_percentile(sa, na, stat_p)
                         : NAN;
    out->lo = out->hi = NAN;
    if (na < o->min_n || nb < o->min_n) {
        out->verdict = "not enough data";
        rc = 0;
        goto done;
    }
    diffs = malloc(o->resamples * sizeof *diffs);
    counts = malloc((na > nb ? na : nb) * sizeof *counts);
    if (!diffs || !counts)
        goto done;
    uint64_t state = o->seed;
    (void)splitmix64(&state);
    state ^= stream;
    size_t ka = rank_of(na, stat_p), kb = rank_of(nb, stat_p);
    for (unsigned r = 0; r < o->resamples; r++) {
        double pa = resample_pct(sa, na, ka, counts, &state);
        double pb = resample_pct(sb, nb, kb, counts, &state);
        diffs[r] = pb - pa;
    }
    qsort(diffs, o->resamples, sizeof *diffs, cmp_double);
    out->lo = query_percentile(diffs, o->resamples, 2.5);
    out->hi = query_percentile(diffs, o->resamples, 97.5);
    if (out->lo > 0)
        out->verdict = "worse";
    else if (out->hi < 0)
        out->verdict = "better";
    else
        out->verdict = "no detectable change";
    rc = 0;
done:
    free(sa);
    free(sb);
    free(diffs);
    free(counts);
    return rc;
}

/* ---- sides ---- */

bool compare_label_valid(const char *s)
{
    size_t n = 0;
    for (; s && s[n]; n++) {
        char c = s[n];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
        if (n >= COMPARE_LABEL_MAX)
            return false;
    }
    return n >= 1;
}

/* Reads exactly `digits` decimal digits. */
static bool read_num(const char **p, int digits, int *out)
{
    int v = 0;
    for (int i = 0; i < digits; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *p += digits;
    *out = v;
    return true;
}

/* "HH:MM[:SS[.fff]]" -> ms of the day; advances *p. */
static bool parse_tod(const char **p, int64_t *ms)
{
    int hh, mm, ss = 0, frac = 0;
    if (!read_num(p, 2, &hh) || **p != ':')
        return false;
    (*p)++;
    if (!read_num(p, 2, &mm))
        return false;
    if (**p == ':') {
        (*p)++;
        if (!read_num(p, 2, &ss))
            return false;
        if (**p == '.') {
            (*p)++;
            int digits = 0;
            while (**p >= '0' && **p <= '9') {
                if (digits < 3)
                    frac = frac * 10 + (**p - '0');
                digits++;
                (*p)++;
            }
            if (digits == 0 || digits > 9)
                return false;
            for (; digits < 3; digits++)
                frac *= 10;
        }
    }
    if (hh > 23 || mm > 59 || ss > 60)
        return false;
    *ms = ((int64_t)hh * 3600 + mm * 60 + ss) * 1000 + frac;
    return true;
}

/* "YYYY-MM-DD[THH:MM[:SS[.fff]]][Z]" (UTC) -> epoch ms. */
static bool parse_iso(const char *s, int64_t *out)
{
    const char *p = s;
    int y, mo, d;
    if (!read_num(&p, 4, &y) || *p++ != '-' || !read_num(&p, 2, &mo) || *p++ != '-' ||
        !read_num(&p, 2, &d))
        return false;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31)
        return false;
    int64_t tod = 0;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (!parse_tod(&p, &tod))
            return false;
    }
    if (*p == 'Z' || *p == 'z')
        p++;
    if (*p)
        return false;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d};
    time_t t = timegm(&tm);
    if (t == (time_t)-1 || tm.tm_mday != d) /* normalised: 31 Feb and the like */
        return false;
    *out = (int64_t)t * 1000 + tod;
    return true;
}

/* "-2h" and friends, or "now". */
static bool parse_rel(const char *s, int64_t now_ms, int64_t *out)
{
    if (strcmp(s, "now") == 0) {
        *out = now_ms;
        return true;
    }
    if (s[0] != '-' || s[1] < '0' || s[1] > '9')
        return false;
    char *end;
    unsigned long long n = strtoull(s + 1, &end, 10);
    int64_t unit;
    switch (*end) {
    case 's': unit = 1000; break;
    case 'm': unit = 60 * 1000; break;
    case 'h': unit = 3600 * 1000; break;
    case 'd': unit = 86400 * 1000LL; break;
    case 'w': unit = 7 * 86400 * 1000LL; break;
    default: return false;
    }
    if (end[1] != '\0' || n > 3650ULL * 86400 * 1000 / (unsigned long long)unit)
        return false;
    *out = now_ms - (int64_t)n * unit;
    return true;
}

int compare_parse_side(const char *spec, int64_t now_ms, struct compare_side *out, char *err,
                       size_t errlen)
{
    if (!spec || !*spec) {
        set_err(err, errlen, "empty side (want a label or FROM..TO)", NULL, "");
        return VP_ERR_INVALID;
    }
    size_t len = strlen(spec);
    if (len > COMPARE_SPEC_MAX) {
        set_err(err, errlen, "side too long (at most 128 bytes)", NULL, "");
        return VP_ERR_INVALID;
    }
    struct compare_side s;
    memset(&s, 0, sizeof s);
    memcpy(s.spec, spec, len + 1);
    const char *dots = strstr(spec, "..");
    if (!dots) {
        if (!compare_label_valid(spec)) {
            set_err(err, errlen, "'", spec, "' is neither a label (1-64 of A-Z a-z 0-9 . _ -) nor a range FROM..TO");
            return VP_ERR_INVALID;
        }
        s.kind = COMPARE_BY_LABEL;
        memcpy(s.label, spec, len + 1);
        *out = s;
        return 0;
    }
    char from[COMPARE_SPEC_MAX + 1], to[COMPARE_SPEC_MAX + 1];
    size_t fl = (size_t)(dots - spec);
    memcpy(from, spec, fl);
    from[fl] = '\0';
    memcpy(to, dots + 2, len - fl - 1); /* includes the NUL */
    s.kind = COMPARE_BY_RANGE;
    if (!parse_rel(from, now_ms, &s.from_ms) && !parse_iso(from, &s.from_ms)) {
        set_err(err, errlen, "range start '", from, "': want an ISO-8601 UTC time (2026-11-24T10:00) or -DURATION (-2h)");
        return VP_ERR_INVALID;
    }
    const char *tp = to;
    int64_t tod;
    if (!parse_rel(to, now_ms, &s.to_ms) && !parse_iso(to, &s.to_ms)) {
        if (parse_tod(&tp, &tod) && *tp == '\0') {
            int64_t day = s.from_ms - (((s.from_ms % 86400000) + 86400000) % 86400000);
            s.to_ms = day + tod;
        } else {
            set_err(err, errlen, "range end '", to, "': want an ISO-8601 UTC time, a time of day (11:00) or -DURATION");
            return VP_ERR_INVALID;
        }
    }
    if (s.from_ms >= s.to_ms) {
        set_err(err, errlen, "range '", spec, "' is empty: its start is not before its end");
        return VP_ERR_INVALID;
    }
    *out = s;
    return 0;
}

/* ---- loading ---- */

struct dvec {
    double *v;
    size_t n, cap;
};

struct series {
    char *route;
    char *method; /* API only */
    int metric;   /* index in vital_names, or METRIC_API */
    struct dvec s[2];
};

struct loader {
    struct series *v;
    size_t n, cap;
    size_t max_samples;
};

static int series_cmp_key(const struct series *x, int metric, const char *route,
                          const char *method)
{
    int xa = x->metric == METRIC_API, ya = metric == METRIC_API;
    if (xa != ya)
        return xa - ya;
    int c = strcmp(x->route, route);
    if (c)
        return c;
    if (x->metric != metric)
        return x->metric - metric;
    return strcmp(x->method ? x->method : "", method ? method : "");
}

static int add_sample(struct loader *L, int side, int metric, const char *route,
                      const char *method, double value)
{
    if (!isfinite(value))
        return 0;
    size_t lo = 0, hi = L->n;
    while (lo < hi) { /* binary search for the first series >= key */
        size_t mid = lo + (hi - lo) / 2;
        if (series_cmp_key(&L->v[mid], metric, route, method) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == L->n || series_cmp_key(&L->v[lo], metric, route, method) != 0) {
        if (L->n >= SERIES_MAX)
            return VP_ERR_LIMIT;
        if (L->n == L->cap) {
            size_t nc = L->cap ? L->cap * 2 : 32;
            struct series *nv = realloc(L->v, nc * sizeof *nv);
            if (!nv)
                return VP_ERR_NOMEM;
            L->v = nv;
            L->cap = nc;
        }
        struct series ns = {.metric = metric};
        ns.route = strdup(route);
        ns.method = method ? strdup(method) : NULL;
        if (!ns.route || (method && !ns.method)) {
            free(ns.route);
            free(ns.method);
            return VP_ERR_NOMEM;
        }
        memmove(&L->v[lo + 1], &L->v[lo], (L->n - lo) * sizeof *L->v);
        L->v[lo] = ns;
        L->n++;
    }
    struct dvec *d = &L->v[lo].s[side];
    if (d->n >= L->max_samples)
        return VP_ERR_LIMIT;
    if (d->n == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 64;
        double *nv = realloc(d->v, nc * sizeof *nv);
        if (!nv)
            return VP_ERR_NOMEM;
        d->v = nv;
        d->cap = nc;
    }
    d->v[d->n++] = value;
    return 0;
}

static void loader_dispose(struct loader *L)
{
    for (size_t i = 0; i < L->n; i++) {
        free(L->v[i].route);
        free(L->v[i].method);
        free(L->v[i].s[0].v);
        free(L->v[i].s[1].v);
    }
    free(L->v);
}

/* Side filter on views v: ?1 label or NULL, ?2 from (ms) or NULL, ?3 to or NULL, ?4 route. */
#define SIDE_VIEWS                                                                                \
    " (?1 IS NULL OR v.label = ?1) AND (?2 IS NULL OR v.started_at >= ?2) AND"                    \
    " (?3 IS NULL OR v.started_at < ?3) AND (?4 IS NULL OR v.route = ?4) "
/* The same on requests (accept_us is epoch us). */
#define SIDE_REQUESTS                                                                             \
    " (?1 IS NULL OR label = ?1) AND (?2 IS NULL OR accept_us >= ?2 * 1000) AND"                  \
    " (?3 IS NULL OR accept_us < ?3 * 1000) AND (?4 IS NULL OR route = ?4) "

static int prepare_side(sqlite3 *db, const char *sql, const struct compare_side *side,
                        const char *route, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK)
        return VP_ERR_DB;
    if (side->kind == COMPARE_BY_LABEL) {
        sqlite3_bind_text(*st, 1, side->label, -1, SQLITE_TRANSIENT);
    } else {
        sqlite3_bind_int64(*st, 2, side->from_ms);
        sqlite3_bind_int64(*st, 3, side->to_ms);
    }
    if (route)
        sqlite3_bind_text(*st, 4, route, -1, SQLITE_TRANSIENT);
    return 0;
}

static int metric_index(const char *name)
{
    for (int i = 0; i < N_PAGE_METRICS - 1; i++) /* JS is not a beacon metric */
        if (strcmp(name, vital_names[i]) == 0)
            return i;
    return -1;
}

static int load_vitals(sqlite3 *db, struct loader *L, int side, const struct compare_side *sd,
                       const char *route)
{
    sqlite3_stmt *st;
    int rc = prepare_side(db,
                          "SELECT coalesce(v.route,''), m.name, max(m.value) FROM views v JOIN "
                          "metrics m ON m.view_id = v.id WHERE" SIDE_VIEWS
                          "GROUP BY v.id, m.name",
                          sd, route, &st);
    if (rc)
        return rc;
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        const char *r = (const char *)sqlite3_column_text(st, 0);
        const char *name = (const char *)sqlite3_column_text(st, 1);
        int mi = name ? metric_index(name) : -1;
        if (!r || mi < 0)
            continue;
        if ((rc = add_sample(L, side, mi, r, NULL, sqlite3_column_double(st, 2))))
            break;
    }
    if (!rc && s != SQLITE_DONE)
        rc = VP_ERR_DB;
    sqlite3_finalize(st);
    return rc;
}

/* Script resource: initiator "script", or a <link> (preload / modulepreload) of a .js/.mjs
 * path (the definition of web/budget.c). */
static bool is_script(const char *initiator, const char *url)
{
    if (initiator && strcmp(initiator, "script") == 0)
        return true;
    if (!initiator || strcmp(initiator, "link") != 0 || !url)
        return false;
    size_t n = strcspn(url, "?#");
    return (n > 3 && memcmp(url + n - 3, ".js", 3) == 0) ||
           (n > 4 && memcmp(url + n - 4, ".mjs", 4) == 0);
}

static int load_js(sqlite3 *db, struct loader *L, int side, const struct compare_side *sd,
                   const char *route)
{
    sqlite3_stmt *st;
    int rc = prepare_side(
        db,
        "SELECT v.id, coalesce(v.route,''), r.initiator, r.url, r.start_ms, r.transfer_size, "
        "r.encoded_size, n.load_start FROM views v JOIN resources r ON r.view_id = v.id LEFT "
        "JOIN navigation n ON n.view_id = v.id WHERE" SIDE_VIEWS "ORDER BY v.id",
        sd, route, &st);
    if (rc)
        return rc;
    char cur[80] = "";
    char *cur_route = NULL;
    double total = 0;
    bool have = false;
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        const char *r = (const char *)sqlite3_column_text(st, 1);
        if (!id || !r || strlen(id) >= sizeof cur)
            continue;
        if (!have || strcmp(id, cur) != 0) {
            if (have && (rc = add_sample(L, side, METRIC_JS, cur_route, NULL, total)))
                break;
            free(cur_route);
            cur_route = strdup(r);
            if (!cur_route) {
                rc = VP_ERR_NOMEM;
                break;
            }
            memcpy(cur, id, strlen(id) + 1);
            total = 0;
            have = true;
        }
        if (!is_script((const char *)sqlite3_column_text(st, 2),
                       (const char *)sqlite3_column_text(st, 3)))
            continue;
        double load = sqlite3_column_double(st, 7);
        if (load > 0 && sqlite3_column_double(st, 4) >= load)
            continue;
        double ts = sqlite3_column_double(st, 5);
        total += ts > 0 ? ts : sqlite3_column_double(st, 6);
    }
    if (!rc && s != SQLITE_DONE)
        rc = VP_ERR_DB;
    if (!rc && have)
        rc = add_sample(L, side, METRIC_JS, cur_route, NULL, total);
    free(cur_route);
    sqlite3_finalize(st);
    return rc;
}

static int load_api(sqlite3 *db, struct loader *L, int side, const struct compare_side *sd,
                    const char *route, const char *prefix)
{
    sqlite3_stmt *st;
    int rc = prepare_side(db,
                          "SELECT coalesce(method,''), coalesce(route,''), (last_byte_us - CASE "
                          "WHEN head_done_us > 0 THEN head_done_us ELSE accept_us END) / 1000.0 "
                          "FROM requests WHERE path IS NOT NULL AND substr(path, 1, length(?5)) "
                          "= ?5 AND last_byte_us > 0 AND accept_us > 0 AND" SIDE_REQUESTS,
                          sd, route, &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 5, prefix, -1, SQLITE_TRANSIENT);
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        const char *m = (const char *)sqlite3_column_text(st, 0);
        const char *r = (const char *)sqlite3_column_text(st, 1);
        if (!m || !r)
            continue;
        if ((rc = add_sample(L, side, METRIC_API, r, m, sqlite3_column_double(st, 2))))
            break;
    }
    if (!rc && s != SQLITE_DONE)
        rc = VP_ERR_DB;
    sqlite3_finalize(st);
    return rc;
}

static int count_side(sqlite3 *db, const char *sql, const struct compare_side *sd,
                      const char *route, json_int_t *out)
{
    sqlite3_stmt *st;
    int rc = prepare_side(db, sql, sd, route, &st);
    if (rc)
        return rc;
    if (sqlite3_step(st) == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else
        rc = VP_ERR_DB;
    sqlite3_finalize(st);
    return rc;
}

/* ---- JSON ---- */

static json_t *num_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *iso(int64_t ms)
{
    time_t sec = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    struct tm tm;
    char base[32], buf[48];
    if (!gmtime_r(&sec, &tm) || strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        return json_null();
    int w = snprintf(buf, sizeof buf, "%s.%03dZ", base, (int)(ms - (int64_t)sec * 1000));
    return w > 0 && (size_t)w < sizeof buf ? json_string(buf) : json_null();
}

static json_t *side_json(const struct compare_side *s, json_int_t views, json_int_t requests)
{
    json_t *o = json_pack("{s:s,s:s,s:I,s:I}", "spec", s->spec, "kind",
                          s->kind == COMPARE_BY_LABEL ? "label" : "range", "views", views,
                          "requests", requests);
    if (!o)
        return NULL;
    int bad = s->kind == COMPARE_BY_LABEL
                  ? json_object_set_new(o, "label", json_string(s->label))
                  : json_object_set_new(o, "from", iso(s->from_ms)) ||
                        json_object_set_new(o, "to", iso(s->to_ms));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *pcts_json(size_t n, const double *p)
{
    return json_pack("{s:I,s:o,s:o,s:o,s:o}", "n", (json_int_t)n, "p50", num_or_null(p[0]),
                     "p75", num_or_null(p[1]), "p95", num_or_null(p[2]), "p99",
                     num_or_null(p[3]));
}

static json_t *stat_json(const struct series *se, const struct compare_stat *cs)
{
    bool api = se->metric == METRIC_API;
    const char *name = api ? "API" : vital_names[se->metric];
    const char *unit = api ? "ms" : se->metric == METRIC_JS ? "bytes" : se->metric == 1 ? "" : "ms";
    json_t *ci = isfinite(cs->lo) ? json_pack("[f,f]", cs->lo, cs->hi) : json_null();
    json_t *o = json_pack("{s:s,s:s,s:s,s:o,s:o,s:o,s:o,s:s}", "metric", name, "unit", unit,
                          "stat", api ? "p95" : "p75", "a", pcts_json(cs->na, cs->a), "b",
                          pcts_json(cs->nb, cs->b), "diff", num_or_null(cs->diff), "ci", ci,
                          "verdict", cs->verdict);
    if (o && api &&
        (json_object_set_new(o, "route", json_string(se->route)) ||
         json_object_set_new(o, "method", json_string(se->method ? se->method : "")))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int compare_run(struct store_reader *r, const struct compare_side *a, const struct compare_side *b,
                const struct compare_options *o, json_t **out)
{
    if (!r || !a || !b || !options_ok(o))
        return VP_ERR_INVALID;
    sqlite3 *db = store_reader_sqlite(r);
    const char *prefix = o->api_prefix ? o->api_prefix : "/api/";
    struct loader L = {.max_samples = o->max_samples};
    json_t *routes = json_array(), *api = json_array(), *res = NULL;
    json_int_t views[2] = {0, 0}, requests[2] = {0, 0}, worse = 0, better = 0;
    int rc = routes && api ? 0 : VP_ERR_NOMEM;
    const struct compare_side *sides[2] = {a, b};
    for (int i = 0; i < 2 && !rc; i++) {
        if (!rc)
            rc = load_vitals(db, &L, i, sides[i], o->route);
        if (!rc)
            rc = load_js(db, &L, i, sides[i], o->route);
        if (!rc)
            rc = load_api(db, &L, i, sides[i], o->route, prefix);
        if (!rc)
            rc = count_side(db, "SELECT count(*) FROM views v WHERE" SIDE_VIEWS, sides[i],
                            o->route, &views[i]);
        if (!rc)
            rc = count_side(db, "SELECT count(*) FROM requests WHERE" SIDE_REQUESTS, sides[i],
                            o->route, &requests[i]);
    }
    json_t *cur_metrics = NULL;
    const char *cur_route = NULL;
    for (size_t i = 0; i < L.n && !rc; i++) {
        struct series *se = &L.v[i];
        struct compare_stat cs;
        uint64_t stream = fnv1a(fnv1a(fnv1a(0xcbf29ce484222325ULL, se->route),
                                      se->metric == METRIC_API ? "API" : vital_names[se->metric]),
                                se->method);
        rc = compare_samples(se->s[0].v, se->s[0].n, se->s[1].v, se->s[1].n,
                             se->metric == METRIC_API ? 95 : 75, o, stream, &cs);
        if (rc)
            break;
        worse += strcmp(cs.verdict, "worse") == 0;
        better += strcmp(cs.verdict, "better") == 0;
        json_t *sj = stat_json(se, &cs);
        if (!sj) {
            rc = VP_ERR_NOMEM;
            break;
        }
        if (se->metric == METRIC_API) {
            if (json_array_append_new(api, sj))
                rc = VP_ERR_NOMEM;
            continue;
        }
        if (!cur_route || strcmp(cur_route, se->route) != 0) {
            cur_metrics = json_array();
            json_t *ro = json_pack("{s:s,s:o}", "route", se->route, "metrics", cur_metrics);
            if (!ro || json_array_append_new(routes, ro)) {
                json_decref(sj);
                rc = VP_ERR_NOMEM;
                break;
            }
            cur_route = se->route;
        }
        if (json_array_append_new(cur_metrics, sj))
            rc = VP_ERR_NOMEM;
    }
    if (!rc) {
        res = json_pack("{s:o,s:o,s:I,s:I,s:I,s:f,s:O,s:O,s:I,s:I}", "a",
                        side_json(a, views[0], requests[0]), "b",
                        side_json(b, views[1], requests[1]), "resamples",
                        (json_int_t)o->resamples, "seed", (json_int_t)o->seed, "min_n",
                        (json_int_t)o->min_n, "confidence", 0.95, "routes", routes, "api", api,
                        "worse", worse, "better", better);
        if (!res)
            rc = VP_ERR_NOMEM;
    }
    json_decref(routes);
    json_decref(api);
    loader_dispose(&L);
    if (!rc)
        *out = res;
    return rc;
}

int compare_labels(struct store_reader *r, json_t **out)
{
    if (!r)
        return VP_ERR_INVALID;
    sqlite3 *db = store_reader_sqlite(r);
    sqlite3_stmt *st = NULL;
    json_t *labels = json_array();
    if (!labels)
        return VP_ERR_NOMEM;
    int rc = 0;
    /* Labels of views and of requests (a label may have requests but no beacon yet). */
    if (sqlite3_prepare_v2(
            db,
            "SELECT l, min(f), max(t), sum(v), sum(q) FROM ("
            " SELECT label AS l, min(started_at) AS f, max(started_at) AS t, count(*) AS v,"
            "  0 AS q FROM views WHERE label IS NOT NULL GROUP BY label"
            " UNION ALL SELECT label, min(accept_us) / 1000, max(accept_us) / 1000, 0, count(*)"
            "  FROM requests WHERE label IS NOT NULL GROUP BY label)"
            " GROUP BY l ORDER BY min(f), l",
            -1, &st, NULL) != SQLITE_OK) {
        json_decref(labels);
        return VP_ERR_DB;
    }
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        const char *l = (const char *)sqlite3_column_text(st, 0);
        if (!l)
            continue;
        int64_t f = sqlite3_column_int64(st, 1), t = sqlite3_column_int64(st, 2);
        json_t *o = json_pack("{s:s,s:o,s:o,s:I,s:I,s:I,s:I}", "label", l, "first", iso(f),
                              "last", iso(t), "first_ms", (json_int_t)f, "last_ms",
                              (json_int_t)t, "views", (json_int_t)sqlite3_column_int64(st, 3),
                              "requests", (json_int_t)sqlite3_column_int64(st, 4));
        if (!o || json_array_append_new(labels, o)) {
            rc = VP_ERR_NOMEM;
            break;
        }
    }
    if (!rc && s != SQLITE_DONE)
        rc = VP_ERR_DB;
    sqlite3_finalize(st);
    json_t *res = rc ? NULL : json_pack("{s:O}", "labels", labels);
    json_decref(labels);
    if (!rc && !res)
        rc = VP_ERR_NOMEM;
    if (!rc)
        *out = res;
    return rc;
}
