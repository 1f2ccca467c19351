/* web/budget: performance budgets (the ◆ budget file) and their evaluation, for `check`, the
 * report page and the API.
 *
 * Format: JSON object, route pattern -> metric -> percentile -> maximum, e.g.
 *   {"*": {"LCP": {"p75": 2500}}, "/checkout": {"LCP": {"p75": 2000}}, "/api/x": {"API": {"p95": 300}}}
 * Patterns: "*" = every route; a pattern containing '*' is a glob where '*' matches any run of
 * characters (nothing else is special, so "/products/[id]" is literal); anything else is an
 * exact route. For a given route, metric and percentile the most specific rule applies: exact,
 * then the glob with the most literal characters, then "*".
 * Metrics: LCP INP FCP TTFB (ms), CLS (unitless), API (proxy-timed latency of API routes, ms;
 * routes are the API paths), JS (initial JavaScript per view, compressed bytes).
 * Percentiles: p50 p75 p95 p99 (API: p50 p95 p99). Limits are finite numbers >= 0.
 * Defaults (no file): p75 LCP 2500, CLS 0.1, INP 200, TTFB 600; API p95 500; JS p75 200000. */
#ifndef VP_WEB_BUDGET_H
#define VP_WEB_BUDGET_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct budget;
struct store_reader;
struct query_filter;

#define BUDGET_FILE_MAX (1024 * 1024) /* bytes */
#define BUDGET_RULES_MAX 1000

/* Parses budget JSON text (len bytes, borrowed). Returns 0, VP_ERR_INVALID (one line naming the
 * problem in err: bad JSON with line/column, unknown metric, unknown percentile, bad limit),
 * VP_ERR_LIMIT (too many rules / too large) or VP_ERR_NOMEM. *out written only on success. */
int budget_parse(struct budget **out, const char *text, size_t len, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Reads and parses path. Adds VP_ERR_IO (cannot read: reason in err) to budget_parse's codes. */
int budget_load(struct budget **out, const char *path, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The default budget. 0 or VP_ERR_NOMEM. */
int budget_default(struct budget **out) __attribute__((warn_unused_result));

void budget_free(struct budget *b);

/* The budget as JSON in the file format (new reference). NULL on OOM. */
json_t *budget_to_json(const struct budget *b);

/* true when pattern matches route under the rules above. */
bool budget_pattern_match(const char *pattern, const char *route);

/* Evaluates b against measured data (all borrowed, any may be NULL):
 *   summary: the summary JSON (LCP CLS INP FCP TTFB per route),
 *   api:     query_api_latency's JSON (metric API; route + method),
 *   js:      {"routes":[{"route","n","p50","p75","p95","p99"}]} (metric JS).
 * *out = {"results":[{"route","method"?,"metric","percentile","pattern","limit","actual","n",
 * "ok"}], "checked":N, "violations":N}. Routes without data for a budgeted metric produce no
 * result. Returns 0 or VP_ERR_NOMEM. */
int budget_eval(const struct budget *b, const json_t *summary, const json_t *api,
                const json_t *js, json_t **out) __attribute__((warn_unused_result));

/* Initial JavaScript of one view (query_view JSON): the compressed bytes (transferSize, else
 * encodedBodySize) of script resources that started before the load event (all scripts when
 * the load event was not recorded). Returns false when the view has no resource list. */
bool budget_view_js_bytes(const json_t *view, double *out);

/* Percentile p (0..100) of n ascending values, nearest-rank (as store/query.h): the value at
 * 1-based rank ceil(p/100 * n). NAN when n == 0. */
double budget_percentile(const double *sorted, size_t n, double p);

/* Initial-JS distribution per route over the views matching f (store/query_report.h's
 * query_initial_js): {"routes":[{"route","n","p50","p75","p95","p99","max"}],"over":[]}.
 * Returns 0 or a query error. */
int budget_collect_js(struct store_reader *r, const struct query_filter *f, json_t **out)
    __attribute__((warn_unused_result));

/* Runs the queries b needs (summary, API latency under api_prefix, JS when budgeted) for f and
 * evaluates them. Returns 0 or the first query error. */
int budget_check(struct store_reader *r, const struct query_filter *f, const struct budget *b,
                 const char *api_prefix, json_t **out) __attribute__((warn_unused_result));

/* true when b has a rule for metric ("LCP", ..., "API", "JS"). */
bool budget_has_metric(const struct budget *b, const char *metric);

/* true when some rule of b budgets metric on route (its pattern matches route). */
bool budget_covers(const struct budget *b, const char *route, const char *metric);

/* One human line for a result: "/checkout LCP p75 3120 ms > limit 2000 ms (n=42)". */
int budget_format_result(const json_t *result, char *out, size_t cap);

#endif
