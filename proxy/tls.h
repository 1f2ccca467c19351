/* proxy/tls: TLS termination for the browser side. One server context (OpenSSL 3), built at
 * start-up and shared read-only by every worker thread: TLS 1.2 and 1.3 only, AEAD ciphers with
 * forward secrecy, ALPN "h2" then "http/1.1", session tickets and a server session cache, any
 * SNI name accepted. Each worker accepts on its own dup of the TLS listening socket; after the
 * handshake a connection that chose "h2" goes to proxy/conn_h2, any other to the HTTP/1.1 code
 * (conn_h1_attach), so WebSocket upgrades keep working over the TLS listener.
 *
 * Start-up only (tls_server_new/free) or event-loop thread only (tls_worker_*). */
#ifndef VP_TLS_H
#define VP_TLS_H

#include "common/vp_err.h"

#include <stdbool.h>
#include <stddef.h>

struct bufferevent;
struct vp_options;
struct tls_server;
struct worker;

/* Name of the self-signed certificate cache, created beside the --db file. */
#define TLS_SELF_SIGNED_FILE "vitals-proxy-selfsigned.pem"

/* Builds the server context from o: --cert/--key (PEM; the cert file may hold a chain) or
 * --tls-self-signed (an EC P-256 key and a certificate for localhost, 127.0.0.1 and ::1, reused
 * from the cache file beside o->db while valid for more than a day, else made and written there
 * with mode 0600; an unwritable directory only means the certificate lives in memory).
 * Refuses unreadable files, a key that does not match the certificate, and a certificate that
 * is expired or not yet valid. On failure returns VP_ERR_INVALID/VP_ERR_IO/VP_ERR_NOMEM and
 * writes one line (no program prefix, no newline) into err (errcap bytes). */
int tls_server_new(struct tls_server **out, const struct vp_options *o, char *err, size_t errcap)
    VP_WUR;
void tls_server_free(struct tls_server *t);

/* The certificate file in use (self-signed cache path, or --cert); "" when in memory only. */
const char *tls_server_cert_path(const struct tls_server *t);

/* Starts accepting TLS connections on w (px->tls_fd is duplicated). 0 or VP_ERR_NOMEM/IO. */
int tls_worker_start(struct worker *w) VP_WUR;
/* Drain: stop accepting, drop handshakes in progress, GOAWAY every HTTP/2 session. */
void tls_worker_drain(struct worker *w);
/* Frees every handshake in progress and every HTTP/2 session (hard stop, teardown). */
void tls_worker_free_all(struct worker *w);
/* A browser connection busy with requests, or idle again (bev borrowed; a no-op for a plain
 * socket). Busy, it keeps its record buffers (the server context releases them whenever they
 * empty, SSL_MODE_RELEASE_BUFFERS, which keeps an idle connection small but on a busy one cost
 * a malloc and free of about 17 KiB for every read and every write) and reads ahead (a read(2)
 * per batch of records instead of two per record; see tls_conn_has_pending). Idle, it frees
 * them as soon as they are empty and reads one record at a time again. */
void tls_conn_set_busy(struct bufferevent *bev, bool busy);
/* Whether OpenSSL holds bytes of bev read from the socket but not returned yet (read-ahead). */
bool tls_conn_has_pending(struct bufferevent *bev);

/* ---- TLS to the upstream (--upstream https://...) ----
 * One client context built at start-up and shared read-only by the workers: TLS 1.2 and 1.3,
 * ALPN "http/1.1" only (the upstream leg stays HTTP/1.1), certificate verification against the
 * system store or --upstream-ca (none with --upstream-insecure), the host name checked (or the
 * IP address for an IP literal) and sent as SNI (names only). Each worker keeps a copy of the
 * newest session the upstream gave it, and every new upstream connection of that worker resumes
 * from a copy of that, so a fresh pooled connection does not pay a full handshake. */
struct tls_client;

/* Builds the client context from o (o->upstream_tls must be set). Refuses an unreadable
 * --upstream-ca or one without a PEM certificate; an unusable system store is not an error here
 * (verification then fails per connection, with its reason). On failure returns
 * VP_ERR_INVALID/VP_ERR_IO/VP_ERR_NOMEM and writes one line (no program prefix) into err. */
int tls_client_new(struct tls_client **out, const struct vp_options *o, char *err, size_t errcap)
    VP_WUR;
void tls_client_free(struct tls_client *t);

/* A socket-less OpenSSL bufferevent in the connecting state for worker w (borrowed), ready for
 * bufferevent_socket_connect: SNI, host check and w's cached session are set. NULL when out of
 * memory. */
struct bufferevent *tls_client_bufferevent(struct tls_client *t, struct worker *w, int bev_opts);

/* The reason a handshake on bev failed, as "upstream TLS: ..." in buf (cap bytes), or NULL when
 * the TLS layer saw no error (the TCP connection itself failed or was closed). Clears the
 * thread's OpenSSL error queue. */
const char *tls_client_failure(struct bufferevent *bev, char *buf, size_t cap);

/* Sends close_notify on an established upstream TLS connection (a no-op otherwise); then, when
 * shut_wr is set, half-closes the socket. Non-blocking: a close_notify the socket does not take
 * at once is dropped. */
void tls_client_close_notify(struct bufferevent *bev, bool shut_wr);

/* Frees w's cached session (worker teardown). */
void tls_client_worker_dispose(struct worker *w);

#endif
