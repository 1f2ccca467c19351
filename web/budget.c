/* Performance budgets (see budget.h).
 *
 * A budget is a flat array of rules (pattern, metric, percentile, limit), kept in file order.
 * Evaluation walks the measured items (route x metric) and, for every percentile budgeted for
 * that metric, picks the single most specific matching rule, so a route-specific rule replaces
 * the "*" rule instead of adding to it. Parsing rejects anything it does not understand, naming
 * it, because a typo in a CI budget must not silently pass. */
#include "config.h"

#include "web/budget.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/vp_err.h"
#include "store/query.h"
#include "web/export.h"

#define PATTERN_MAX 512

struct rule {
    char pattern[PATTERN_MAX + 1];
    int metric; /* index into metrics[] */
    int pct;    /* 50, 75, 95, 99 */
    double limit;
};

struct budget {
    struct rule *rules;
    size_t n;
};

enum { M_LCP, M_CLS, M_INP, M_FCP, M_TTFB, M_API, M_JS, M_COUNT };
static const char *const metrics[M_COUNT] = {"LCP", "CLS", "INP", "FCP", "TTFB", "API", "JS"};
static const char *const units[M_COUNT] = {"ms", "", "ms", "ms", "ms", "ms", "bytes"};

__attribute__((format(printf, 3, 4))) static void seterr(char *err, size_t errlen,
                                                         const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    if (vsnprintf(err, errlen, fmt, ap) < 0)
        err[0] = '\0';
    va_end(ap);
    for (char *c = err; *c; c++) /* names echoed from the file stay on one line */
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
}

static int metric_index(const char *name)
{
    for (int i = 0; i < M_COUNT; i++)
        if (strcmp(metrics[i], name) == 0)
            return i;
    return -1;
}

static int pct_of(const char *name, int metric)
{
    static const int allowed[] = {50, 75, 95, 99};
    for (size_t i = 0; i < 4; i++) {
        char b[8];
        if (snprintf(b, sizeof b, "p%d", allowed[i]) > 0 && strcmp(b, name) == 0)
            return metric == M_API && allowed[i] == 75 ? -1 : allowed[i];
    }
    return -1;
}

void budget_free(struct budget *b)
{
    if (!b)
        return;
    free(b->rules);
    free(b);
}

static bool valid_pattern(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > PATTERN_MAX)
        return false;
    if (p[0] != '/' && p[0] != '*')
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
            return false;
    return true;
}

static int from_json(struct budget **out, const json_t *root, char *err, size_t errlen)
{
    if (!json_is_object(root)) {
        seterr(err, errlen, "budget: expected a JSON object of route patterns");
        return VP_ERR_INVALID;
    }
    struct budget *b = calloc(1, sizeof *b);
    if (!b)
        return VP_ERR_NOMEM;
    size_t cap = 0;
    const char *pat, *mname, *pname;
    json_t *mobj, *pobj, *lim;
    int rc = 0;
    json_object_foreach((json_t *)root, pat, mobj) {
        if (!valid_pattern(pat)) {
            seterr(err, errlen, "budget: route pattern \"%.80s\": expected \"*\" or a path",
                   pat);
            rc = VP_ERR_INVALID;
            goto fail;
        }
        if (!json_is_object(mobj)) {
            seterr(err, errlen, "budget: \"%.80s\": expected an object of metrics", pat);
            rc = VP_ERR_INVALID;
            goto fail;
        }
        json_object_foreach(mobj, mname, pobj) {
            int m = metric_index(mname);
            if (m < 0) {
                seterr(err, errlen,
                       "budget: \"%.80s\": unknown metric \"%.40s\" (expected LCP, CLS, INP, FCP, "
                       "TTFB, API or JS)",
                       pat, mname);
                rc = VP_ERR_INVALID;
                goto fail;
            }
            if (!json_is_object(pobj)) {
                seterr(err, errlen, "budget: \"%.80s\" %s: expected an object of percentiles",
                       pat, mname);
                rc = VP_ERR_INVALID;
                goto fail;
            }
            json_object_foreach(pobj, pname, lim) {
                int p = pct_of(pname, m);
                if (p < 0) {
                    seterr(err, errlen,
                           m == M_API ? "budget: \"%.80s\" %s: unknown percentile \"%.20s\" "
                                        "(expected p50, p95 or p99)"
                                      : "budget: \"%.80s\" %s: unknown percentile \"%.20s\" "
                                        "(expected p50, p75, p95 or p99)",
                           pat, mname, pname);
                    rc = VP_ERR_INVALID;
                    goto fail;
                }
                if (!json_is_number(lim) || !isfinite(json_number_value(lim)) ||
                    json_number_value(lim) < 0) {
                    seterr(err, errlen,
                           "budget: \"%.80s\" %s %s: expected a number >= 0 as the limit", pat,
                           mname, pname);
                    rc = VP_ERR_INVALID;
                    goto fail;
                }
                if (b->n == BUDGET_RULES_MAX) {
                    seterr(err, errlen, "budget: more than 1000 rules");
                    rc = VP_ERR_LIMIT;
                    goto fail;
                }
                if (b->n == cap) {
                    size_t nc = cap ? cap * 2 : 16;
                    struct rule *nr = realloc(b->rules, nc * sizeof *nr);
                    if (!nr) {
                        rc = VP_ERR_NOMEM;
                        goto fail;
                    }
                    b->rules = nr;
                    cap = nc;
                }
                struct rule *r = &b->rules[b->n++];
                memcpy(r->pattern, pat, strlen(pat) + 1);
                r->metric = m;
                r->pct = p;
                r->limit = json_number_value(lim);
            }
        }
    }
    *out = b;
    return 0;
fail:
    budget_free(b);
    return rc;
}

int budget_parse(struct budget **out, const char *text, size_t len, char *err, size_t errlen)
{
    if (len > BUDGET_FILE_MAX) {
        seterr(err, errlen, "budget: file larger than 1 MiB");
        return VP_ERR_LIMIT;
    }
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        char where[48];
        if (snprintf(where, sizeof where, "line %d column %d", je.line, je.column) < 0)
            where[0] = '\0';
        seterr(err, errlen, "budget: invalid JSON at %s: %.100s", where, je.text);
        return VP_ERR_INVALID;
    }
    int rc = from_json(out, root, err, errlen);
    json_decref(root);
    return rc;
}

int budget_load(struct budget **out, const char *path, char *err, size_t errlen)
{
    /* Non-blocking open and a regular file only: a FIFO or a device would block or never end. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        seterr(err, errlen, "%.200s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return VP_ERR_IO;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        seterr(err, errlen, "%.200s: not a regular file", path);
        return VP_ERR_IO;
    }
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        seterr(err, errlen, "%.200s: %s", path, strerror(errno));
        close(fd);
        return VP_ERR_IO;
    }
    char *buf = malloc(BUDGET_FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        return VP_ERR_NOMEM;
    }
    size_t n = fread(buf, 1, BUDGET_FILE_MAX + 1, f);
    bool bad = ferror(f) != 0;
    fclose(f);
    int rc;
    if (bad) {
        seterr(err, errlen, "%.200s: read error", path);
        rc = VP_ERR_IO;
    } else {
        rc = budget_parse(out, buf, n, err, errlen);
        if (rc != 0 && err && errlen) {
            /* prefix the file name: "FILE: budget: ..." reads as "FILE: ..." */
            char tmp[512];
            const char *msg = strncmp(err, "budget: ", 8) == 0 ? err + 8 : err;
            if (snprintf(tmp, sizeof tmp, "%.200s: %s", path, msg) >= 0)
                seterr(err, errlen, "%s", tmp);
        }
    }
    free(buf);
    return rc;
}

int budget_default(struct budget **out)
{
    static const char def[] = "{\"*\":{\"LCP\":{\"p75\":2500},\"CLS\":{\"p75\":0.1},"
                              "\"INP\":{\"p75\":200},\"TTFB\":{\"p75\":600},"
                              "\"API\":{\"p95\":500},\"JS\":{\"p75\":200000}}}";
    char err[128];
    return budget_parse(out, def, sizeof def - 1, err, sizeof err);
}

json_t *budget_to_json(const struct budget *b)
{
    json_t *root = json_object();
    for (size_t i = 0; root && i < b->n; i++) {
        const struct rule *r = &b->rules[i];
        json_t *m = json_object_get(root, r->pattern);
        if (!m && (!(m = json_object()) || json_object_set_new(root, r->pattern, m)))
            goto fail;
        json_t *p = json_object_get(m, metrics[r->metric]);
        if (!p && (!(p = json_object()) || json_object_set_new(m, metrics[r->metric], p)))
            goto fail;
        char k[8];
        if (snprintf(k, sizeof k, "p%d", r->pct) < 0 ||
            json_object_set_new(p, k, json_real(r->limit)))
            goto fail;
    }
    return root;
fail:
    json_decref(root);
    return NULL;
}

/* '*' matches any run of characters; everything else is literal. Iterative with one backtrack
 * point, so linear-ish and never recursive on hostile input. */
static bool glob(const char *p, const char *s)
{
    const char *star = NULL, *ss = NULL;
    while (*s) {
        if (*p == '*') {
            star = p++;
            ss = s;
        } else if (*p == *s) {
            p++;
            s++;
        } else if (star) {
            p = star + 1;
            s = ++ss;
        } else {
            return false;
        }
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}

bool budget_pattern_match(const char *pattern, const char *route)
{
    if (strcmp(pattern, "*") == 0)
        return true;
    if (!strchr(pattern, '*'))
        return strcmp(pattern, route) == 0;
    return glob(pattern, route);
}

/* Higher = more specific. */
static long specificity(const char *pattern)
{
    if (strcmp(pattern, "*") == 0)
        return 0;
    long lit = 0;
    for (const char *c = pattern; *c; c++)
        lit += *c != '*';
    return strchr(pattern, '*') ? 1 + lit : 1000000;
}

static int add_result(json_t *results, const struct rule *r, const char *route,
                      const char *method, double actual, double n, long *violations)
{
    bool ok = actual <= r->limit;
    char pk[8];
    if (snprintf(pk, sizeof pk, "p%d", r->pct) < 0)
        return VP_ERR_NOMEM;
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:f, s:f, s:f, s:b}", "route", route, "metric",
                          metrics[r->metric], "percentile", pk, "pattern", r->pattern, "limit",
                          r->limit, "actual", actual, "n", n, "ok", ok);
    if (!o)
        return VP_ERR_NOMEM;
    if (method && json_object_set_new(o, "method", json_string(method))) {
        json_decref(o);
        return VP_ERR_NOMEM;
    }
    if (!ok)
        (*violations)++;
    return json_array_append_new(results, o) ? VP_ERR_NOMEM : 0;
}

/* Evaluates one measured item: stats holds "p50".."p99" and "n". */
static int eval_item(const struct budget *b, int metric, const char *route, const char *method,
                     const json_t *stats, json_t *results, long *violations)
{
    static const int pcts[] = {50, 75, 95, 99};
    for (size_t k = 0; k < 4; k++) {
        const struct rule *best = NULL;
        long best_spec = -1;
        for (size_t i = 0; i < b->n; i++) {
            const struct rule *r = &b->rules[i];
            if (r->metric != metric || r->pct != pcts[k] ||
                !budget_pattern_match(r->pattern, route))
                continue;
            long sp = specificity(r->pattern);
            if (sp > best_spec) {
                best = r;
                best_spec = sp;
            }
        }
        if (!best)
            continue;
        char pk[8];
        if (snprintf(pk, sizeof pk, "p%d", pcts[k]) < 0)
            return VP_ERR_NOMEM;
        const json_t *v = json_object_get(stats, pk);
        if (!json_is_number(v))
            continue;
        const json_t *n = json_object_get(stats, "n");
        int rc = add_result(results, best, route, method, json_number_value(v),
                            json_is_number(n) ? json_number_value(n) : 0, violations);
        if (rc)
            return rc;
    }
    return 0;
}

int budget_eval(const struct budget *b, const json_t *summary, const json_t *api,
                const json_t *js, json_t **out)
{
    json_t *results = json_array();
    if (!results)
        return VP_ERR_NOMEM;
    long violations = 0;
    int rc = 0;
    size_t i;
    const json_t *r;
    json_array_foreach(json_object_get(summary, "routes"), i, r) {
        const char *route = json_string_value(json_object_get(r, "route"));
        const json_t *ms = json_object_get(r, "metrics");
        for (int m = M_LCP; route && rc == 0 && m <= M_TTFB; m++) {
            const json_t *st = json_object_get(ms, metrics[m]);
            if (json_is_object(st))
                rc = eval_item(b, m, route, NULL, st, results, &violations);
        }
    }
    json_array_foreach(json_object_get(api, "routes"), i, r) {
        const char *route = json_string_value(json_object_get(r, "route"));
        if (route && rc == 0)
            rc = eval_item(b, M_API, route, json_string_value(json_object_get(r, "method")), r,
                           results, &violations);
    }
    json_array_foreach(json_object_get(js, "routes"), i, r) {
        const char *route = json_string_value(json_object_get(r, "route"));
        if (route && rc == 0)
            rc = eval_item(b, M_JS, route, NULL, r, results, &violations);
    }
    if (rc) {
        json_decref(results);
        return rc;
    }
    json_t *o = json_pack("{s:o, s:I, s:I}", "results", results, "checked",
                          (json_int_t)json_array_size(results), "violations",
                          (json_int_t)violations);
    if (!o)
        return VP_ERR_NOMEM;
    *out = o;
    return 0;
}

static double num(const json_t *res, const char *s, const char *l)
{
    const json_t *v = export_res_get(res, s, l);
    return json_is_number(v) ? json_number_value(v) : 0;
}

static bool is_script(const json_t *res)
{
    const char *i = json_string_value(export_res_get(res, "i", "initiator"));
    if (i && strcmp(i, "script") == 0)
        return true;
    if (!i || strcmp(i, "link") != 0)
        return false;
    /* <link rel=preload as=script> / modulepreload: judge by the path's extension */
    const char *u = json_string_value(export_res_get(res, "u", "url"));
    if (!u)
        return false;
    size_t n = strcspn(u, "?#");
    return (n > 3 && memcmp(u + n - 3, ".js", 3) == 0) ||
           (n > 4 && memcmp(u + n - 4, ".mjs", 4) == 0);
}

bool budget_view_js_bytes(const json_t *view, double *out)
{
    const json_t *res = json_object_get(view, "resources");
    if (!json_is_array(res))
        return false;
    const json_t *nav = json_object_get(view, "navigation");
    double load = nav ? num(nav, "ls", "load_start") : 0;
    double total = 0;
    size_t i;
    const json_t *r;
    json_array_foreach(res, i, r) {
        if (!is_script(r))
            continue;
        if (load > 0 && num(r, "s", "start_ms") >= load)
            continue;
        double ts = num(r, "ts", "transfer_size");
        total += ts > 0 ? ts : num(r, "eb", "encoded_size");
    }
    *out = total;
    return true;
}

double budget_percentile(const double *sorted, size_t n, double p)
{
    if (n == 0)
        return NAN;
    double r = ceil(p / 100.0 * (double)n);
    size_t rank = r < 1 ? 1 : (size_t)r;
    if (rank > n)
        rank = n;
    return sorted[rank - 1];
}

bool budget_has_metric(const struct budget *b, const char *metric)
{
    for (size_t i = 0; i < b->n; i++)
        if (b->rules[i].metric == metric_index(metric))
            return true;
    return false;
}

bool budget_covers(const struct budget *b, const char *route, const char *metric)
{
    int m = metric_index(metric);
    for (size_t i = 0; m >= 0 && i < b->n; i++)
        if (b->rules[i].metric == m && budget_pattern_match(b->rules[i].pattern, route))
            return true;
    return false;
}

int budget_format_result(const json_t *res, char *out, size_t cap)
{
    const char *route = json_string_value(json_object_get(res, "route"));
    const char *method = json_string_value(json_object_get(res, "method"));
    const char *metric = json_string_value(json_object_get(res, "metric"));
    const char *pct = json_string_value(json_object_get(res, "percentile"));
    int m = metric ? metric_index(metric) : -1;
    if (!route || !pct || m < 0)
        return VP_ERR_INVALID;
    double actual = json_number_value(json_object_get(res, "actual"));
    double limit = json_number_value(json_object_get(res, "limit"));
    long n = (long)json_number_value(json_object_get(res, "n"));
    bool ok = json_is_true(json_object_get(res, "ok"));
    const char *u = units[m], *sp = *u ? " " : "";
    int w = m == M_CLS
                ? snprintf(out, cap, "%s%s%s %s %s %.3f %s limit %.3f (n=%ld)", method ? method : "",
                           method ? " " : "", route, metric, pct, actual, ok ? "<=" : ">", limit, n)
                : snprintf(out, cap, "%s%s%s %s %s %.0f%s%s %s limit %.0f%s%s (n=%ld)",
                           method ? method : "", method ? " " : "", route, metric, pct, actual, sp,
                           u, ok ? "<=" : ">", limit, sp, u, n);
    return w < 0 || (size_t)w >= cap ? VP_ERR_LIMIT : 0;
}
