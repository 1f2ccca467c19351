/* web/compare_api: the comparison, labels and HTML-export endpoints under /__vitals/api/:
 *   GET /__vitals/api/compare?a=SIDE&b=SIDE[&route=R][&resamples=N][&seed=N][&min_n=N]
 *       the store/compare JSON (sides: labels or ranges, compare_parse_side)
 *   GET /__vitals/api/labels           {"labels":[{label, first, last, views, requests}]}
 *   GET /__vitals/api/export.html?view=ID | ?route=R[&label=L]
 *       the self-contained HTML export (web/export_html.h) as a download
 * Same conventions as web_api_handle: parameters validated before any query, errors are
 * {"error": "..."} with 400/404/405/503. Runs on the API thread (blocks on SQLite). */
#ifndef VP_WEB_COMPARE_API_H
#define VP_WEB_COMPARE_API_H

#include <stdbool.h>

struct store_reader;
struct web_reply;

#define COMPARE_API_RESAMPLES_MAX 10000 /* CPU bound per request */

/* rest: the path after "/__vitals/api/" (no query); query: raw query string or NULL. When rest
 * is not one of the paths above, sets *handled = false and touches nothing else; otherwise
 * *handled = true and reply is filled. Returns 0, or VP_ERR_NOMEM when even the error reply
 * could not be built. r may be NULL (503). */
int web_compare_handle(struct store_reader *r, const char *method, const char *rest,
                       const char *query, struct web_reply *reply, bool *handled)
    __attribute__((warn_unused_result));

#endif
