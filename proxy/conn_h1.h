/* proxy/conn_h1: HTTP/1.1 client connections (server side) and the exchanges they carry.
 * Event-loop thread only; every function takes a borrowed connection owned by its worker. */
#ifndef VP_CONN_H1_H
#define VP_CONN_H1_H

#include "common/vp_err.h"
#include "proxy/exchange.h"
#include "proxy/proxy_internal.h"

#include <stddef.h>

/* Runs HTTP/1.1 over an established bufferevent (takes ownership of bev: a TLS bufferevent after
 * its handshake, or one end of a bufferevent pair carrying one HTTP/2 stream). peer is the real
 * client's address as text (rate limits, X-Forwarded-For); proto is "h1" or "h2" and
 * tls_version the negotiated TLS version ("TLSv1.3") or NULL for plain TCP; both end up in the
 * timing record, and a TLS version makes X-Forwarded-Proto "https". Counts towards
 * --max-connections. Returns 0, or VP_ERR_NOMEM (bev not taken: the caller frees it). */
int conn_h1_attach(struct worker *w, struct bufferevent *bev, const char *peer,
                   const char *proto, const char *tls_version) VP_WUR;

/* Sends a complete response to the current request and finishes the exchange (keep-alive or
 * close as the request allows). ctype and extra_headers (CRLF-terminated lines) may be NULL;
 * body (len bytes) is copied. A reply with a ctype carries X-Content-Type-Options: nosniff
 * unless extra_headers has that field. The connection may be freed before this returns: the caller
 * must not touch c afterwards. */
void conn_reply(struct conn *c, int status, const char *reason, const char *ctype,
                const char *extra_headers, const void *body, size_t len);

struct api_job;
/* Parks c until the API job j (already submitted) comes back through conn_h1_api_done. */
void conn_await(struct conn *c, struct api_job *j);
/* Standard reason phrase for a status code. */
const char *http_reason(int status);

/* What exchange.c needs to log and record the current exchange. */
void conn_exchange_info(struct conn *c, struct exchange_info *out);
void conn_mark_logged(struct conn *c);
struct worker *conn_worker(struct conn *c);
/* First value of a request header of the current exchange, or NULL (borrowed). */
const char *conn_request_header(struct conn *c, const char *name);
const char *conn_peer(struct conn *c);

#endif
