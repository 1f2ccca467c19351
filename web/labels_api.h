/* web/labels_api: `GET /__vitals/api/labels` -> {"labels":[{label, first, last, first_ms,
 * last_ms, views, requests}]} (store/labels.h). Same conventions as web_api_handle; runs on the
 * API thread (blocks on SQLite). Switching the label (POST /__vitals/api/label) is the proxy's
 * (proxy/label.h), since the current label is proxy state. */
#ifndef VP_WEB_LABELS_API_H
#define VP_WEB_LABELS_API_H

#include <stdbool.h>

struct store_reader;
struct web_reply;

/* rest: the path after "/__vitals/api/" (no query). When rest is not "labels", sets
 * *handled = false and touches nothing else; otherwise *handled = true and reply is filled
 * (200, 405 for a method other than GET/HEAD, 503 without a database). Returns 0, or
 * VP_ERR_NOMEM when even the error reply could not be built. r may be NULL. */
int web_labels_handle(struct store_reader *r, const char *method, const char *rest,
                      struct web_reply *reply, bool *handled) __attribute__((warn_unused_result));

#endif
