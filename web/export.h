/* web/export: CSV and compact-JSON renderings of query results, shared by the JSON API
 * (`views.csv`, `summary.csv`, ...) and the CLI (`report --format csv`, `export`).
 * CSV follows RFC 4180 (CRLF line ends, fields quoted when they hold a comma, quote, CR or LF)
 * and neutralises spreadsheet formulas: a text field starting with = + - @ TAB or CR gets a
 * leading apostrophe (OWASP "CSV injection"). Numbers are written unquoted and never
 * neutralised. Functions append to a caller-owned evbuffer (borrowed) and return 0 or
 * VP_ERR_NOMEM; VP_ERR_INVALID when the JSON lacks the documented shape. Re-entrant. */
#ifndef VP_WEB_EXPORT_H
#define VP_WEB_EXPORT_H

#include <jansson.h>
#include <stddef.h>

struct evbuffer;

/* One text field (len bytes, may contain anything), escaped and neutralised. */
int export_csv_field(struct evbuffer *out, const char *s, size_t len);

/* One JSON value as a field: strings escaped, numbers plain (%.17g trimmed), null/absent
 * empty, true/false as words, objects/arrays as compact JSON text (escaped). */
int export_csv_value(struct evbuffer *out, const json_t *v);

/* Summary JSON (contract) -> "route,views,metric,n,p50,p75,p95,p99,good,ni,poor" rows. */
int export_summary_csv(struct evbuffer *out, const json_t *summary);

/* Views list JSON -> "id,started_at,url,route,navigation_type,device,browser,ect,label,
 * LCP,CLS,INP,FCP,TTFB" rows. */
int export_views_csv(struct evbuffer *out, const json_t *views);

/* One view (query_view) -> one row per resource, navigation first:
 * "index,url,initiator,start_ms,duration_ms,transfer_size,encoded_size,decoded_size,protocol,
 * render_blocking,status". */
int export_view_csv(struct evbuffer *out, const json_t *view);

/* API latency JSON -> "route,method,n,p50,p95,p99,errors" rows. */
int export_api_csv(struct evbuffer *out, const json_t *api);

/* Compact JSON (JSON_COMPACT, reals with 10 significant digits so 0.3 is "0.3"). */
int export_json(struct evbuffer *out, const json_t *j);

/* Reads a resource field by its store column name (long, e.g. "start_ms") or, for JSON built
 * straight from a beacon, its wire key (short, e.g. "s"). NULL when absent. */
const json_t *export_res_get(const json_t *res, const char *short_key, const char *long_key);

#endif
