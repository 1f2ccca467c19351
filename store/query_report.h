/* store/query_report: the report page's extra read-only queries (initial JS per view, top
 * attribution targets, traffic findings), beside store/query.h and with its conventions: one
 * store_reader per thread, filters as bound parameters, results as jansson objects owned by the
 * caller, percentiles nearest-rank (query_percentile). Each returns 0, VP_ERR_DB or VP_ERR_NOMEM;
 * *out is written only on success. */
#ifndef VP_QUERY_REPORT_H
#define VP_QUERY_REPORT_H

#include <jansson.h>

#include "store/query.h"

#define QUERY_JS_MAX_VIEWS 100000 /* views examined per call (newest first) */

/* Initial JavaScript per view: the compressed bytes (transfer_size, else encoded_size) of
 * script resources (initiator "script", or "link" to a .js/.mjs path) that started before the
 * navigation's load event (all of them when it was not recorded); views with no resource list
 * are left out. {"routes":[{"route","n","p50","p75","p95","p99","max"}],
 * "over":[{"id","route","bytes"}]} where "over" lists the views above over_bytes (largest
 * first, at most 50; over_bytes <= 0: none). */
int query_initial_js(struct store_reader *r, const struct query_filter *f, double over_bytes,
                     json_t **out) __attribute__((warn_unused_result));

/* Most frequent attribution targets (each view counted once per metric, with its final value):
 * {"views":N,"LCP":[{"target","count","p75"}],"CLS":[..],"INP":[..]}, top entries per metric
 * (1..100). */
int query_targets(struct store_reader *r, const struct query_filter *f, int top, json_t **out)
    __attribute__((warn_unused_result));

/* Traffic red flags from the proxy's records and the beacons:
 * {"findings":[{"type","title","evidence","count"}]} with type one of
 *   uncompressed-text  text-like 2xx response body > 1 KiB sent without Content-Encoding
 *   cache-policy       static asset (JS, CSS, font, image) 200 without Cache-Control max-age
 *                      >= 7 days (or with no-store / no-cache)
 *   large-json         JSON response body > 1 MiB
 *   n-plus-one         one view issuing >= 10 requests to the same API route (under api_prefix)
 *   initial-js         views whose initial JS exceeds 200,000 compressed bytes
 *   render-blocking    render-blocking resources, by URL
 * uncompressed-text and large-json are grouped by the request's route template (evidence
 * "ROUTE (N URLs, up to B bytes)"), at most 20 per type, most frequent first. Request findings use since/until/label (and the
 * route of the view the request belongs to); resource findings use the view filter. */
int query_findings(struct store_reader *r, const struct query_filter *f, const char *api_prefix,
                   json_t **out) __attribute__((warn_unused_result));


/* Samples for before/after comparisons: per route, the final value of each metric for every
 * view matching f (LCP CLS INP FCP TTFB), the initial JS bytes of the views that reported
 * resources (JS), and, per API route under api_prefix, the proxy-timed latencies (ms):
 * {"routes":[{"route","LCP":[..],"CLS":[..],"INP":[..],"FCP":[..],"TTFB":[..],"JS":[..]}],
 *  "api":[{"route","method","ms":[..]}]}. At most QUERY_SAMPLES_MAX values per list (newest
 * first); api_prefix NULL = no API samples. */
#define QUERY_SAMPLES_MAX 20000
int query_samples(struct store_reader *r, const struct query_filter *f, const char *api_prefix,
                  json_t **out) __attribute__((warn_unused_result));

/* Run labels with their span: {"labels":[{"label","views","first","last"}]} (ISO-8601 UTC ms),
 * most recent first, at most 200. */
int query_labels(struct store_reader *r, json_t **out) __attribute__((warn_unused_result));

#endif
