/* proxy/conn_h2: HTTP/2 server sessions (nghttp2) for browsers.
 *
 * Each stream is carried to the HTTP/1.1 connection code through a bufferevent pair: the
 * stream's request is written as an HTTP/1.1 message into one end, conn_h1 serves the other end
 * exactly as it serves a browser (reserved /__vitals/ routes, injection, timing, the upstream
 * pool), and the HTTP/1.1 response coming back is parsed with proxy/h1_parse and sent as
 * HEADERS + DATA frames. So there is one proxy implementation, and h2 only translates framing.
 *
 * Event-loop thread only. A session counts once in the worker's nconns and once in the proxy's
 * connection count (which the caller already took at accept); each live stream adds one conn,
 * and so does each idle pair a session keeps for its next streams (at most 16 per session). */
#ifndef VP_CONN_H2_H
#define VP_CONN_H2_H

#include "common/vp_err.h"

struct bufferevent;
struct worker;

/* Starts a server session on bev (takes ownership, also on failure, when the connection is
 * closed and the proxy count given back). peer (the client address as text) and tls_version
 * ("TLSv1.3", or NULL for h2c) are copied. Bytes already in bev's input are processed.
 * Returns 0 or VP_ERR_NOMEM. */
int h2_session_start(struct worker *w, struct bufferevent *bev, const char *peer,
                     const char *tls_version) VP_WUR;

/* Graceful shutdown: GOAWAY (NO_ERROR, last stream processed) on every session of w; sessions
 * close once their streams are done. */
void h2_drain_all(struct worker *w);
/* Frees every session of w now. */
void h2_free_all(struct worker *w);

#endif
