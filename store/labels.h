/* store/labels: run labels (issue 8). A label tags every view and request recorded while it is
 * current (proxy/label.h); this module validates label names and lists the labels in a
 * database with their time span and counts, for `GET /__vitals/api/labels` and the report
 * page's Compare tab. Re-entrant; one store_reader per thread (store/query.h). */
#ifndef VP_STORE_LABELS_H
#define VP_STORE_LABELS_H

#include <jansson.h>
#include <stdbool.h>

struct store_reader;

#define LABELS_NAME_MAX 64

/* true when s is a valid label: 1..64 bytes of [A-Za-z0-9._-]. */
bool labels_valid(const char *s);

/* {"labels":[{"label","first","last" (ISO-8601 UTC ms),"first_ms","last_ms","views",
 * "requests"}]}: every label found on views or requests, ordered by first appearance; first/last
 * span the views' start times and the requests' accept times. Returns 0, VP_ERR_DB,
 * VP_ERR_NOMEM. */
int labels_list(struct store_reader *r, json_t **out) __attribute__((warn_unused_result));

#endif
