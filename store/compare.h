/* store/compare: before/after comparisons of two sides of the data (a run label or a time range)
 * with bootstrap confidence intervals, and the list of labels.
 *
 * Samples: one value per view per metric, the definition query_summary uses (the largest value
 * stored for the view under any metric id); JS = initial JavaScript bytes of a view (script
 * resources, or <link> preloads of .js/.mjs, started before the load event; transferSize, else
 * encodedBodySize; views without a resource list have no JS sample) - the definition of
 * web/budget.h; API = proxy-timed latency of requests under the API prefix (last byte sent -
 * request head parsed, ms), per route and method, the definition of query_api_latency.
 * Percentiles are nearest-rank (query_percentile).
 *
 * Statistic compared: p75 for the vitals and JS, p95 for API latency. The 95 % interval of
 * (stat(B) - stat(A)) is the percentile bootstrap over views (requests for API): each resample
 * draws n_A values from A and n_B from B with replacement. The PRNG is splitmix64 seeded from
 * (seed, route, metric), so a result does not depend on which other routes are in the data and
 * the same inputs always give the same output. Verdict: "not enough data" when either side has
 * fewer than min_n samples, else "worse" (interval entirely above 0: lower is better for every
 * metric), "better" (entirely below 0), or "no detectable change".
 *
 * Thread-safety: re-entrant; one store_reader per thread (store/query.h). */
#ifndef VP_STORE_COMPARE_H
#define VP_STORE_COMPARE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store_reader;

#define COMPARE_LABEL_MAX 64
#define COMPARE_SPEC_MAX 128        /* bytes of a side's text */
#define COMPARE_RESAMPLES_MAX 100000
#define COMPARE_SAMPLES_MAX 1000000 /* hard cap on samples per side and series */

enum compare_kind { COMPARE_BY_LABEL, COMPARE_BY_RANGE };

struct compare_side {
    enum compare_kind kind;
    char label[COMPARE_LABEL_MAX + 1]; /* COMPARE_BY_LABEL */
    int64_t from_ms, to_ms;            /* COMPARE_BY_RANGE: [from, to) epoch ms */
    char spec[COMPARE_SPEC_MAX + 1];   /* the text as given */
};

/* true when s is a valid label: 1..64 bytes of [A-Za-z0-9._-]. */
bool compare_label_valid(const char *s);

/* Parses a side: a label (`baseline`), or a range `FROM..TO` where each end is an ISO-8601 UTC
 * instant (`2026-11-24T10:00`, `2026-11-24T10:00:00Z`, `2026-11-24T10:00:00.000Z`), a duration
 * back from now_ms (`-2h`, `-90m`, `-30s`, `-1d`, `-1w`) or `now`; TO may also be a time of day
 * (`11:00`, `11:00:30`) on FROM's date. FROM must be before TO. Returns 0 or VP_ERR_INVALID
 * with a one-line reason in err. */
int compare_parse_side(const char *spec, int64_t now_ms, struct compare_side *out, char *err,
                       size_t errlen) __attribute__((warn_unused_result));

struct compare_options {
    unsigned resamples;     /* bootstrap resamples (default 2000, 1..COMPARE_RESAMPLES_MAX) */
    uint64_t seed;          /* PRNG seed (default 1) */
    unsigned min_n;         /* samples needed on each side for a verdict (default 20, >= 2) */
    const char *route;      /* only this route (exact template), or NULL; borrowed */
    const char *api_prefix; /* paths counted as API routes (default "/api/"); borrowed */
    size_t max_samples;     /* per side and series (default 100000, <= COMPARE_SAMPLES_MAX):
                             * more -> VP_ERR_LIMIT */
};

void compare_options_default(struct compare_options *o);

/* The comparison of one series. */
struct compare_stat {
    size_t na, nb;
    double a[4], b[4]; /* p50 p75 p95 p99 of each side (NAN when that side is empty) */
    double diff;       /* stat(B) - stat(A) (NAN when a side is empty) */
    double lo, hi;     /* 95 % bootstrap interval of diff (NAN without a verdict) */
    const char *verdict; /* static string: "better", "worse", "no detectable change",
                          * "not enough data" */
};

/* Compares samples a[0..na-1] and b[0..nb-1] (borrowed, unsorted, finite) on percentile
 * stat_p (0..100). stream distinguishes series sharing one seed. Returns 0, VP_ERR_INVALID
 * (bad options or a non-finite value) or VP_ERR_NOMEM. */
int compare_samples(const double *a, size_t na, const double *b, size_t nb, double stat_p,
                    const struct compare_options *o, uint64_t stream, struct compare_stat *out)
    __attribute__((warn_unused_result));

/* Runs the full comparison of side a against side b. *out (caller owns):
 * {"a":{"spec","kind":"label"|"range","label"?,"from"?,"to"? (ISO),"views","requests"},
 *  "b":{...}, "resamples","seed","min_n","confidence":0.95,
 *  "routes":[{"route","metrics":[{"metric","unit":"ms"|""|"bytes","stat":"p75",
 *      "a":{"n","p50","p75","p95","p99"},"b":{...},"diff","ci":[lo,hi]|null,"verdict"}]}],
 *  "api":[{"route","method","metric":"API","unit":"ms","stat":"p95","a":{..},"b":{..},"diff",
 *      "ci","verdict"}],
 *  "worse":N,"better":N}
 * Routes sorted by name; metrics in the order LCP CLS INP FCP TTFB JS; a metric without samples
 * on both sides is omitted; p-values of an empty side are null. Returns 0, VP_ERR_INVALID (bad
 * options), VP_ERR_LIMIT (a side exceeds max_samples), VP_ERR_DB, VP_ERR_NOMEM. */
int compare_run(struct store_reader *r, const struct compare_side *a, const struct compare_side *b,
                const struct compare_options *o, json_t **out) __attribute__((warn_unused_result));

/* Labels: {"labels":[{"label","first","last" (ISO views' start times),"first_ms","last_ms",
 * "views","requests"}]} ordered by first appearance (labels only on requests included). */
int compare_labels(struct store_reader *r, json_t **out) __attribute__((warn_unused_result));

#endif
