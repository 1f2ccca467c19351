/* web/compare: before/after comparisons of two sets of views (issue 8), for the `compare` CLI
 * sub-command and /api/compare.
 *
 * A side is a run label ("baseline") or a time range "FROM..TO" where each end is an ISO-8601
 * instant, "-DURATION" back from now or "now" ("-2h..-1h", "-1h..now"); TO may be a bare "HH:MM[:SS]" meaning the
 * same day as FROM ("2026-11-24T10:00..11:00").
 * For every route and metric present on both sides: n, p50, p75, p95 on each side, the
 * difference of p75 (B - A) and its 95 % confidence interval by a percentile bootstrap over
 * views (COMPARE_RESAMPLES resamples of each side, a fixed-seed generator so output is
 * reproducible), and a verdict: "not enough data" when either side has fewer than min_n views,
 * else "better" / "worse" when the interval excludes zero (lower is better for every metric),
 * else "no detectable change". Metrics: LCP CLS INP FCP TTFB, JS (initial JS bytes per view)
 * and API (proxy-timed latency per API route and method; compares p95 instead of p75).
 * Pure computation over JSON inputs; re-entrant. */
#ifndef VP_WEB_COMPARE_H
#define VP_WEB_COMPARE_H

#include <jansson.h>
#include <stdint.h>

#include "store/query.h"

#define COMPARE_RESAMPLES 1000
#define COMPARE_MIN_N_DEFAULT 30

/* Parses one side into f (label borrowed from spec; spec must outlive f). Returns 0 or
 * VP_ERR_INVALID with a one-line reason in err. */
int compare_parse_side(const char *spec, int64_t now_ms, struct query_filter *f, char *err,
                       size_t errlen) __attribute__((warn_unused_result));

/* Compares query_samples() outputs a and b (borrowed). *out = {"seed","min_n","rows":[{"route",
 * "method"?,"metric","stat":"p75"|"p95","a":{n,p50,p75,p95,p99},"b":{..},"diff","ci":[lo,hi],
 * "verdict"}]}. Returns 0 or VP_ERR_NOMEM. */
int compare_samples(const json_t *a, const json_t *b, uint64_t seed, int min_n, json_t **out)
    __attribute__((warn_unused_result));

/* Bootstrap of the difference of percentile p between two samples (arrays not modified):
 * writes the point difference and the 2.5 / 97.5 % bounds. Exposed for tests. 0 or NOMEM. */
int compare_bootstrap(const double *a, size_t na, const double *b, size_t nb, double p,
                      uint64_t seed, double *diff, double *lo, double *hi)
    __attribute__((warn_unused_result));

#endif
