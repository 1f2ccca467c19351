/* Before/after comparison (see compare.h).
 *
 * The bootstrap resamples each side with replacement, takes the nearest-rank percentile of each
 * resample with quickselect (O(n) instead of a sort), and keeps the B - A differences; the CI is
 * their 2.5th / 97.5th percentile. The generator is splitmix64 seeded from the caller's seed and
 * the row's position, so a run is reproducible and rows are independent of each other. */
#include "config.h"

#include "web/compare.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/vp_err.h"
#include "web/budget.h"
#include "web/params.h"

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* k-th smallest (0-based) of v[0..n-1], reordering v (Hoare quickselect). */
static double select_k(double *v, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        double pivot = v[lo + (hi - lo) / 2];
        size_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot)
                i++;
            while (v[j] > pivot)
                j--;
            if (i <= j) {
                double t = v[i];
                v[i] = v[j];
                v[j] = t;
                i++;
                if (j == 0)
                    break;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            break;
    }
    return v[k];
}

static size_t rank_of(size_t n, double p)
{
    double r = ceil(p / 100.0 * (double)n);
    size_t k = r < 1 ? 1 : (size_t)r;
    return (k > n ? n : k) - 1;
}

static double resampled_pct(const double *src, size_t n, double *tmp, double p, uint64_t *rng)
{
    for (size_t i = 0; i < n; i++)
        tmp[i] = src[splitmix(rng) % n];
    return select_k(tmp, n, rank_of(n, p));
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

int compare_bootstrap(const double *a, size_t na, const double *b, size_t nb, double p,
                      uint64_t seed, double *diff, double *lo, double *hi)
{
    if (na == 0 || nb == 0)
        return VP_ERR_INVALID;
    double *tmp = malloc((na > nb ? na : nb) * sizeof(double));
    double *d = malloc(COMPARE_RESAMPLES * sizeof(double));
    if (!tmp || !d) {
        free(tmp);
        free(d);
        return VP_ERR_NOMEM;
    }
    memcpy(tmp, a, na * sizeof(double));
    double pa = select_k(tmp, na, rank_of(na, p));
    memcpy(tmp, b, nb * sizeof(double));
    double pb = select_k(tmp, nb, rank_of(nb, p));
    uint64_t rng = seed;
    for (int i = 0; i < COMPARE_RESAMPLES; i++)
        d[i] = resampled_pct(b, nb, tmp, p, &rng) - resampled_pct(a, na, tmp, p, &rng);
    qsort(d, COMPARE_RESAMPLES, sizeof(double), cmp_double);
    *diff = pb - pa;
    *lo = d[(size_t)(0.025 * COMPARE_RESAMPLES)];
    *hi = d[(size_t)(0.975 * COMPARE_RESAMPLES) - 1];
    free(tmp);
    free(d);
    return 0;
}

/* Time-range end: ISO-8601, or "-DURATION" back from now; a bare time of day "HH:MM[:SS]" takes
 * its date (and zone) from day (the FROM text), when given. */
static int parse_end(const char *s, const char *day, int64_t now_ms, int64_t *out)
{
    if (strcmp(s, "now") == 0) {
        *out = now_ms;
        return 0;
    }
    if (s[0] == '-') {
        int64_t d;
        if (web_parse_duration(s + 1, &d) != 0)
            return VP_ERR_INVALID;
        *out = now_ms - d;
        return 0;
    }
    if (day && strlen(s) >= 5 && s[2] == ':' && !strchr(s, '-') && strlen(day) >= 10 &&
        day[4] == '-') {
        char buf[64];
        if (snprintf(buf, sizeof buf, "%.10sT%.20s", day, s) >= (int)sizeof buf)
            return VP_ERR_INVALID;
        return web_parse_iso8601(buf, out);
    }
    return web_parse_iso8601(s, out);
}

int compare_parse_side(const char *spec, int64_t now_ms, struct query_filter *f, char *err,
                       size_t errlen)
{
    memset(f, 0, sizeof *f);
    char shown[64]; /* the spec as echoed in errors: one line, bounded */
    size_t k = 0;
    for (; spec[k] && k < sizeof shown - 1; k++)
        shown[k] = (unsigned char)spec[k] < 0x20 || spec[k] == 0x7f ? '?' : spec[k];
    shown[k] = '\0';
    const char *dots = strstr(spec, "..");
    if (!dots) {
        size_t n = strlen(spec);
        bool ok = n > 0 && n <= 64;
        for (size_t i = 0; ok && i < n; i++)
            ok = (unsigned char)spec[i] >= 0x20 && spec[i] != 0x7f;
        if (!ok) {
            if (snprintf(err, errlen, "\"%.40s\": expected a label or a time range FROM..TO",
                         shown) < 0)
                err[0] = '\0';
            return VP_ERR_INVALID;
        }
        f->label = spec;
        return 0;
    }
    char from[64];
    size_t fl = (size_t)(dots - spec);
    if (fl == 0 || fl >= sizeof from)
        goto bad;
    memcpy(from, spec, fl);
    from[fl] = '\0';
    if (parse_end(from, NULL, now_ms, &f->since_ms) != 0 ||
        parse_end(dots + 2, from, now_ms, &f->until_ms) != 0 || f->until_ms <= f->since_ms)
        goto bad;
    return 0;
bad:
    if (snprintf(err, errlen,
                 "\"%.60s\": expected FROM..TO with ISO-8601 times or -DURATION (-2h..-1h), "
                 "TO later than FROM",
                 shown) < 0)
        err[0] = '\0';
    return VP_ERR_INVALID;
}

/* Copies a JSON array of numbers into a new double array. */
static double *to_doubles(const json_t *arr, size_t *n)
{
    size_t len = json_array_size(arr), k = 0;
    double *v = malloc((len ? len : 1) * sizeof(double));
    if (!v)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        const json_t *x = json_array_get(arr, i);
        if (json_is_number(x))
            v[k++] = json_number_value(x);
    }
    *n = k;
    return v;
}

static json_t *side_stats(const double *v, size_t n)
{
    double *t = malloc((n ? n : 1) * sizeof(double));
    if (!t)
        return NULL;
    memcpy(t, v, n * sizeof(double));
    qsort(t, n, sizeof(double), cmp_double);
    json_t *o = n ? json_pack("{s:I,s:f,s:f,s:f,s:f}", "n", (json_int_t)n, "p50",
                              budget_percentile(t, n, 50), "p75", budget_percentile(t, n, 75),
                              "p95", budget_percentile(t, n, 95), "p99",
                              budget_percentile(t, n, 99))
                  : json_pack("{s:I}", "n", (json_int_t)0);
    free(t);
    return o;
}

/* Adds one comparison row. */
static int compare_row(json_t *rows, const char *route, const char *method, const char *metric,
                       const json_t *xa, const json_t *xb, uint64_t seed, int min_n)
{
    size_t na = 0, nb = 0;
    double *a = to_doubles(xa, &na), *b = to_doubles(xb, &nb);
    int rc = VP_ERR_NOMEM;
    json_t *o = NULL;
    if (!a || !b)
        goto done;
    double p = method ? 95 : 75;
    json_t *sa = side_stats(a, na), *sb = side_stats(b, nb);
    o = json_pack("{s:s,s:s,s:s,s:o*,s:o*}", "route", route, "metric", metric, "stat",
                  method ? "p95" : "p75", "a", sa, "b", sb);
    if (!o || !sa || !sb || (method && json_object_set_new(o, "method", json_string(method))))
        goto done;
    const char *verdict;
    if ((int)na < min_n || (int)nb < min_n || na == 0 || nb == 0) {
        verdict = "not enough data";
    } else {
        double diff, lo, hi;
        if ((rc = compare_bootstrap(a, na, b, nb, p, seed, &diff, &lo, &hi)))
            goto done;
        verdict = lo > 0 ? "worse" : hi < 0 ? "better" : "no detectable change";
        if (json_object_set_new(o, "diff", json_real(diff)) ||
            json_object_set_new(o, "ci", json_pack("[f,f]", lo, hi))) {
            rc = VP_ERR_NOMEM;
            goto done;
        }
    }
    if (json_object_set_new(o, "verdict", json_string(verdict)) || json_array_append(rows, o)) {
        rc = VP_ERR_NOMEM;
        goto done;
    }
    rc = 0;
done:
    json_decref(o);
    free(a);
    free(b);
    return rc;
}

static const json_t *find_route(const json_t *list, const char *route, const char *method)
{
    size_t i;
    const json_t *r;
    json_array_foreach(list, i, r) {
        const char *rr = json_string_value(json_object_get(r, "route"));
        const char *mm = json_string_value(json_object_get(r, "method"));
        if (rr && strcmp(rr, route) == 0 && (!method || (mm && strcmp(mm, method) == 0)))
            return r;
    }
    return NULL;
}

int compare_samples(const json_t *a, const json_t *b, uint64_t seed, int min_n, json_t **out)
{
    static const char *const metrics[] = {"LCP", "CLS", "INP", "FCP", "TTFB", "JS"};
    json_t *rows = json_array();
    if (!rows)
        return VP_ERR_NOMEM;
    int rc = 0;
    uint64_t row_seed = seed;
    size_t i;
    const json_t *ra;
    json_array_foreach(json_object_get(a, "routes"), i, ra) {
        const char *route = json_string_value(json_object_get(ra, "route"));
        const json_t *rb = route ? find_route(json_object_get(b, "routes"), route, NULL) : NULL;
        for (size_t m = 0; rb && rc == 0 && m < 6; m++) {
            const json_t *xa = json_object_get(ra, metrics[m]), *xb = json_object_get(rb, metrics[m]);
            if (json_array_size(xa) && json_array_size(xb))
                rc = compare_row(rows, route, NULL, metrics[m], xa, xb, splitmix(&row_seed),
                                 min_n);
        }
    }
    json_array_foreach(json_object_get(a, "api"), i, ra) {
        const char *route = json_string_value(json_object_get(ra, "route"));
        const char *method = json_string_value(json_object_get(ra, "method"));
        const json_t *rb =
            route && method ? find_route(json_object_get(b, "api"), route, method) : NULL;
        if (rb && rc == 0)
            rc = compare_row(rows, route, method, "API", json_object_get(ra, "ms"),
                             json_object_get(rb, "ms"), splitmix(&row_seed), min_n);
    }
    if (rc) {
        json_decref(rows);
        return rc;
    }
    *out = json_pack("{s:I,s:i,s:o}", "seed", (json_int_t)seed, "min_n", min_n, "rows", rows);
    return *out ? 0 : VP_ERR_NOMEM;
}
