/* proxy/route: the reserved /__vitals/ namespace. Nothing under it reaches the upstream.
 * Event-loop thread only. */
#ifndef VP_ROUTE_H
#define VP_ROUTE_H

#include <stdbool.h>

struct conn;
struct evbuffer;
struct vp_options;

/* true for "/__vitals" and everything below "/__vitals/" (path part of target). */
bool route_is_reserved(const char *target);

/* true for a target that is not reserved as sent but names the reserved prefix once an
 * upstream normalises it: percent-encoded bytes (also double-encoded), '\\' for '/', empty and
 * dot segments, ";params", another letter case ("/%5F%5Fvitals/", "//__vitals", "/x/../__vitals",
 * "/__VITALS/"). Such requests are refused, never forwarded and never served as the report. */
bool route_is_reserved_alias(const char *target);

/* true when host (a request's Host value as received, "name[:port]", NULL when absent) may
 * read the report, API and exports without a token: an IPv4 literal, a bracketed IPv6 literal,
 * localhost or a name under .localhost (any letter case, one trailing dot allowed), or one of
 * o's --allow-host names. Any port. Everything else, an absent Host included, is false. */
bool route_host_allowed(const char *host, const struct vp_options *o);

/* Answers a reserved request on c (body: the request body, borrowed, or NULL). Always replies
 * through conn_reply; c may be freed before this returns. */
void route_handle(struct conn *c, const char *method, const char *target, struct evbuffer *body);

#endif
