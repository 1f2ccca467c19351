/* web/html_export: the shareable waterfall report (issue 8) — one self-contained HTML file
 * (inline CSS and SVG, no scripts, no external resources) that opens offline and is safe to
 * attach to a ticket. Every string from the database is HTML-escaped; URLs are printed as text,
 * never as links. Cookies and auth headers never reach it (the store keeps none). Appends to a
 * caller-owned evbuffer (borrowed); returns 0, VP_ERR_NOMEM, or VP_ERR_INVALID when the JSON
 * lacks the documented shape. Re-entrant. */
#ifndef VP_WEB_HTML_EXPORT_H
#define VP_WEB_HTML_EXPORT_H

#include <jansson.h>
#include <stddef.h>

struct evbuffer;

/* HTML-escapes len bytes of s (& < > " ') into out. */
int html_escape(struct evbuffer *out, const char *s, size_t len);

/* A whole document for one view (query_view JSON): its vitals, attribution, waterfall (SVG,
 * phases DNS/connect/TLS/wait/download, render-blocking marked, FCP/LCP/DCL/load markers) and
 * the proxy's upstream timings. */
int html_export_view(struct evbuffer *out, const json_t *view);

/* A whole document for one route: the route's row of the summary JSON (percentile table with
 * ratings) and the waterfalls of the given views (query_view JSON each; e.g. the slowest). */
int html_export_route(struct evbuffer *out, const json_t *route_summary, const json_t *views,
                      const char *label);

#endif
