/* web/export_html: one self-contained HTML document (inline CSS, inline SVG waterfall, no script,
 * no external reference, opens offline) for a view or a route, safe to attach to a ticket.
 *
 * Safety: every string that came from the database (URLs, routes, labels, attribution
 * selectors, ...) is HTML-escaped (& < > " ') wherever it lands, in text or in attribute values;
 * URLs are shown as text, never as links. The document also carries a CSP meta tag
 * (default-src 'none'; style-src 'unsafe-inline') so no script could run even if escaping were
 * bypassed. Content is what the HAR export carries: no cookies or headers (the store keeps none),
 * URLs and query strings as stored.
 *
 * Renderers append to a caller-owned evbuffer (borrowed) and return 0, VP_ERR_NOMEM, or
 * VP_ERR_INVALID when the JSON lacks the documented shape. Re-entrant. */
#ifndef VP_WEB_EXPORT_HTML_H
#define VP_WEB_EXPORT_HTML_H

#include <jansson.h>
#include <stddef.h>

struct evbuffer;
struct store_reader;

#define EXPORT_HTML_MAX_ROWS 400  /* waterfall rows drawn per view (the rest are counted) */
#define EXPORT_HTML_SLOWEST 5     /* views shown in a route export */

/* Appends s (len bytes, any content) HTML-escaped. */
int export_html_escape(struct evbuffer *out, const char *s, size_t len);

/* A whole document for one view (the JSON of query_view). */
int export_html_view(struct evbuffer *out, const json_t *view);

/* A whole document for a route: route_summary is one element of the summary's "routes" array
 * (NULL when the route has no views), slowest an array of query_view objects (may be empty),
 * label the run label or NULL. */
int export_html_route(struct evbuffer *out, const char *route, const char *label,
                      const json_t *route_summary, const json_t *slowest);

/* Query + render: the view with this id (VP_ERR_NOTFOUND when absent), or the route (with
 * label, may be NULL) with its summary and its EXPORT_HTML_SLOWEST slowest views by LCP among
 * the newest 1000 (VP_ERR_NOTFOUND when the route has no views). Other query errors as
 * store/query.h. */
int export_html_write_view(struct store_reader *r, const char *id, struct evbuffer *out)
    __attribute__((warn_unused_result));
int export_html_write_route(struct store_reader *r, const char *route, const char *label,
                            struct evbuffer *out) __attribute__((warn_unused_result));

#endif
