/* HTTP/1.1 client connections and the exchanges they carry (RFC 9112; "upstream" in comments
 * below means the application behind the proxy).
 *
 * One exchange at a time per connection. States: HEAD (reading a request head, guarded by the
 * header timer: idle timeout before the first byte, header timeout from it), LOCAL_BODY (reading
 * a body for a /__vitals/ handler, bounded), PROXY (streaming to and from the upstream), TUNNEL
 * (after a 101: bytes both ways), CLOSING (flushing output, then free).
 *
 * Invariants:
 * - Bodies are never buffered beyond PROXY_HIGH_WM per direction: when one side's output passes
 *   it, the other side's reading stops, and resumes from the write callback (watermark LOW).
 * - Pipelining: requests are handled one after the other, so responses stay in order. Once a
 *   request is complete the client stays readable (no epoll_ctl per exchange), and what it
 *   sends meanwhile waits in the input buffer, at most PROXY_HIGH_WM (the read watermark, set
 *   once PROXY_LOW_WM wait unread on a plain socket: watch_input); an
 *   EOF then means a half-close: the pending response is still sent, then the connection
 *   closes.
 * - A response is never made to look complete when it is not: if the upstream dies mid-body the
 *   client connection is closed without a final chunk.
 * - Framing to the client is re-derived, never copied: Content-Length when the upstream gave
 *   one, otherwise chunked (HTTP/1.1 clients) or close-delimited (HTTP/1.0).
 * - Trailers (RFC 9112 section 7.1.2) travel with chunked framing only: the upstream's to a
 *   chunked client (injected and re-encoded bodies too), the client's to the upstream, minus
 *   the fields h1_trailer_forbidden names (RFC 9110 section 6.5.1). A malformed or oversized
 *   upstream trailer section ends the (whole) body without them and the upstream connection is
 *   not reused; in a request it fails the request, as before.
 * - conn_free() is the last thing a callback does with a connection. */
#include "config.h"
#include "proxy/conn_h1.h"

#include "common/vp_buf.h"
#include "common/vp_err.h"
#include "inject/injector.h"
#include "proxy/api_pool.h"
#include "proxy/conn_h2.h"
#include "proxy/exchange.h"
#include "proxy/route.h"
#include "proxy/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <fnmatch.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum cstate { CS_HEAD, CS_LOCAL_BODY, CS_LOCAL_WAIT, CS_PROXY, CS_TUNNEL, CS_CLOSING };

/* The request fields the proxy reads, found in one pass over the head when the exchange starts
 * (the first of each, as h1_parser_find gives; NULL when absent). They point into the request
 * parser's buffer, which lives as long as the exchange. */
struct req_fields {
    const char *host, *origin, *xff, *via, *upgrade, *referer, *user_agent, *clen;
};

struct exchange_state {
    const char *method, *target;
    struct req_fields rq;
    int minor;
    bool is_head, keep_alive, upgrade, expect_continue, had_cl, idempotent;
    enum h1_framing req_framing;
    uint64_t req_left;
    struct h1_chunked req_chunk;
    bool req_done;
    struct upstream *up;
    bool up_reading;  /* up_input_added is reading: its own commit calls it again */
    bool up_read_err; /* up_input_added's read met an error: a later EOF is no body end */
    bool up_connecting, head_sent_up, retried, up_clean, reused;
    bool resp_head_done, resp_started, resp_done, client_chunked, sent_100, logged;
    enum h1_framing resp_framing;
    uint64_t resp_left;
    struct h1_chunked resp_chunk;
    bool paused_client, paused_up;
    bool tunnel_closing; /* client closed a tunnel: flushing to the upstream, then free */
    int status;
    struct exchange_times t;
    const char *error;
    char ctype[96], cenc[32], cache[96];
    struct evbuffer *local_body;
    bool local_chunked;
    /* Beacon injection (HTML responses): upstream body -> inj_in -> injector -> inj_out ->
     * chunk framing. Freed with the exchange. */
    struct injector *inj;
    struct evbuffer *inj_in, *inj_out;
    bool inj_unflushed; /* fed since the last FLUSH: flushed at the end of the read batch */
    /* Identity HTML with a Content-Length: the head goes out without its framing line until the
     * scanner decides, and then with Content-Length: upstream length (+ the tag when injected)
     * instead of chunked framing. Undecided at the end of a read batch: chunked after all. */
    bool cl_pending;
    uint64_t cl_upstream;
    char view_id[33];
    /* Nonce carried by the injected tag; every CSP header of the response is rewritten at
     * emission so that this nonce may load the beacon ("" when the page has no CSP). */
    char csp_nonce[256];
    struct api_job *api_job; /* pending off-loop API request */
    /* The response head went into an empty output buffer of a plain socket when conn.flushes
     * was retract_flushes: while no flush has run since, none of the response has left and a
     * body error can still turn it into a 502 (retract_response). */
    bool retractable;
    unsigned retract_flushes;
    unsigned interim_sent; /* 1xx responses forwarded */
    /* Trailer sections as received (checked by the chunked decoder), filtered when written:
     * the client's towards the upstream, the upstream's towards a chunked client. */
    struct evbuffer *req_trailers, *resp_trailers;
};

struct conn {
    struct worker *w;
    struct conn *next, *prev;
    struct bufferevent *bev;
    char peer[INET6_ADDRSTRLEN];
    /* When the current request's timing starts: the accept for a connection's first request,
     * the first byte of its head for each later one (kept_alive), so that a request on a
     * connection kept open for minutes is not timed, nor tied to its page, from the accept. */
    int64_t accept_us;
    struct h1_parser *req, *resp;
    struct event *timer;
    int64_t deadline_us; /* CLOCK_MONOTONIC; 0: no timeout (set_deadline) */
    int64_t timer_at_us; /* when the pending timer fires; 0: not pending */
    enum cstate state;
    bool head_started;
    bool kept_alive; /* a request was answered on this connection before */
    bool lingering;
    struct exchange_state ex;
    /* Client protocol labels (conn_h1_attach): "h1" or "h2"; TLS version ("" = plain). */
    const char *proto;
    char tls_version[16];
    struct evbuffer_cb_entry *moved_cb; /* h2 pair ends: see count_moved */
    /* h2 pair ends: output assembled here enters the pair in one write (see stage_out); NULL
     * for sockets, or when it could not be allocated. */
    struct evbuffer *stage;
    bool h2c_checked; /* --h2c: the first bytes were not the HTTP/2 preface */
    /* Plain sockets: output is written by flush_cb, not by the bufferevent (see "client
     * output" below). */
    bool flush_queued;
    struct conn *flush_next;
    struct evbuffer_cb_entry *out_cb;
    /* The client half-closed while its response was pending. */
    bool rd_eof;
    /* bev is the h1 end of a bufferevent pair (an HTTP/2 stream). */
    bool pair;
    /* Timeouts last set by update_client_read (-1 = unknown). */
    signed char tmo;
    unsigned flushes; /* flush_conn calls (see retract_response) */
    /* Between two pipelined exchanges: the output passed the high watermark, so the next
     * request is not read until it drains to the low one (finish_exchange). */
    bool out_full;
    /* The read watermark bounds the input (watch_input). */
    bool in_wm;
};

static void client_read_cb(struct bufferevent *bev, void *arg);
static void client_write_cb(struct bufferevent *bev, void *arg);
static void client_event_cb(struct bufferevent *bev, short what, void *arg);
static void up_read_cb(struct bufferevent *bev, void *arg);
static void up_input_added(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg);
static void up_write_cb(struct bufferevent *bev, void *arg);
static void up_event_cb(struct bufferevent *bev, short what, void *arg);
static void on_upstream_ready(struct conn *c, struct upstream *u, int err, const char *why);
static void finish_exchange(struct conn *c);
static void pump_request(struct conn *c);
static void pump_response(struct conn *c);
static void update_client_read(struct conn *c);
static void up_shutdown_write(struct upstream *u);
static void stop_timer(struct conn *c);

#define PROXY_MAX_INTERIM 32

static void ms_tv(struct timeval *tv, unsigned ms)
{
    tv->tv_sec = ms / 1000;
    tv->tv_usec = (suseconds_t)(ms % 1000) * 1000;
}

static const struct vp_options *opts(const struct conn *c) { return c->w->px->opt; }
static struct evbuffer *cin(struct conn *c) { return bufferevent_get_input(c->bev); }
static struct evbuffer *cout(struct conn *c) { return bufferevent_get_output(c->bev); }

/* Parsers come from the worker's spares when it has one (already reset), else are allocated. */
static int parser_get(struct worker *w, struct h1_parser **out, enum h1_kind kind)
{
    unsigned k = kind == H1_REQUEST ? 0 : 1;
    if (w->nspare[k]) {
        *out = w->spare[k][--w->nspare[k]];
        return 0;
    }
    return h1_parser_new(out, kind, kind == H1_REQUEST ? &w->px->req_limits : &w->px->resp_limits);
}

static void parser_put(struct worker *w, struct h1_parser *p, enum h1_kind kind)
{
    if (!p)
        return;
    unsigned k = kind == H1_REQUEST ? 0 : 1;
    if (w->nspare[k] < PROXY_SPARE_PARSERS && !w->draining) {
        h1_parser_reset(p, false);
        w->spare[k][w->nspare[k]++] = p;
        return;
    }
    h1_parser_free(p);
}

static void spare_parsers_free(struct worker *w)
{
    for (unsigned k = 0; k < 2; k++) {
        while (w->nspare[k])
            h1_parser_free(w->spare[k][--w->nspare[k]]);
    }
    while (w->nspare_buf)
        evbuffer_free(w->spare_buf[--w->nspare_buf]);
    while (w->nspare_inj)
        injector_free(w->spare_inj[--w->nspare_inj]);
}

/* The injector's two evbuffers come from the worker's spares when it has them (empty), and go
 * back there (emptied) with the exchange: an evbuffer_new and an evbuffer_free less each per
 * HTML response. */
static struct evbuffer *buf_get(struct worker *w)
{
    return w->nspare_buf ? w->spare_buf[--w->nspare_buf] : evbuffer_new();
}

static void buf_put(struct worker *w, struct evbuffer *b)
{
    if (!b)
        return;
    if (w->nspare_buf < PROXY_SPARE_BUFS && !w->draining &&
        evbuffer_drain(b, evbuffer_get_length(b)) == 0) {
        w->spare_buf[w->nspare_buf++] = b;
        return;
    }
    evbuffer_free(b);
}

/* Identity injectors (the common HTML response) come from the worker's spares when it has one
 * (injector_reuse: no allocation) and go back there with the exchange. */
static bool inj_get(struct worker *w, struct injector **out, enum inject_coding cd, const char *tag,
                    size_t n)
{
    while (cd == INJECT_CODING_IDENTITY && w->nspare_inj) {
        struct injector *inj = w->spare_inj[--w->nspare_inj];
        if (injector_reuse(inj, tag, n) == 0) {
            *out = inj;
            return true;
        }
        injector_free(inj);
    }
    return injector_new(out, cd, tag, n, NULL) == 0;
}

static void inj_put(struct worker *w, struct injector *inj)
{
    if (!inj)
        return;
    if (injector_is_identity(inj) && w->nspare_inj < PROXY_SPARE_INJ && !w->draining) {
        w->spare_inj[w->nspare_inj++] = inj;
        return;
    }
    injector_free(inj);
}

static void exchange_dispose(struct worker *w, struct exchange_state *ex)
{
    if (ex->local_body)
        evbuffer_free(ex->local_body);
    buf_put(w, ex->inj_in);
    buf_put(w, ex->inj_out);
    if (ex->req_trailers)
        evbuffer_free(ex->req_trailers);
    if (ex->resp_trailers)
        evbuffer_free(ex->resp_trailers);
    inj_put(w, ex->inj);
    ex->local_body = ex->inj_in = ex->inj_out = NULL;
    ex->req_trailers = ex->resp_trailers = NULL;
    ex->inj = NULL;
}

static void conn_free(struct conn *c)
{
    struct worker *w = c->w;
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->nconns--;
    atomic_fetch_sub(&w->px->nconns, 1);
    if (c->ex.up)
        upstream_free(c->ex.up);
    if (c->ex.api_job)
        c->ex.api_job->conn = NULL; /* the job finishes without us */
    exchange_dispose(w, &c->ex);
    event_free(c->timer);
    parser_put(w, c->req, H1_REQUEST);
    parser_put(w, c->resp, H1_RESPONSE);
    if (c->flush_queued) {
        struct conn **pp = &w->flush_head;
        while (*pp != c)
            pp = &(*pp)->flush_next;
        *pp = c->flush_next;
    }
    if (c->stage)
        evbuffer_free(c->stage);
    if (c->bev) { /* NULL after an h2c takeover */
        if (c->moved_cb)
            evbuffer_remove_cb_entry(cout(c), c->moved_cb);
        if (c->out_cb)
            evbuffer_remove_cb_entry(cout(c), c->out_cb);
        /* Tells a bufferevent-pair partner (an HTTP/2 stream) that this end is gone; a no-op
         * for sockets and TLS. */
        bufferevent_flush(c->bev, EV_READ | EV_WRITE, BEV_FINISHED);
        bufferevent_free(c->bev);
    }
    free(c);
    if (w->draining && w->nconns == 0)
        event_base_loopexit(w->base, NULL);
}

/* Output flushed: half-close and discard what the client still sends for a moment, so that
 * unread request bytes do not make the kernel reset the connection and destroy the response
 * (lingering close, RFC 9112 section 9.6). Freed on EOF or after the linger timeout. */
static void linger(struct conn *c)
{
    c->lingering = true;
    int fd = bufferevent_getfd(c->bev);
    if (fd >= 0) /* an HTTP/2 stream's pair end has no socket */
        shutdown(fd, SHUT_WR);
    evbuffer_drain(cin(c), evbuffer_get_length(cin(c)));
    struct timeval tv = {2, 0};
    bufferevent_set_timeouts(c->bev, &tv, NULL);
    c->tmo = -1;
    bufferevent_enable(c->bev, EV_READ);
}

/* Flush what is queued, then linger and free (write callback). */
static void close_after_flush(struct conn *c)
{
    c->state = CS_CLOSING;
    stop_timer(c);
    if (c->ex.up) {
        upstream_free(c->ex.up);
        c->ex.up = NULL;
    }
    bufferevent_disable(c->bev, EV_READ);
    if (evbuffer_get_length(cout(c)) == 0) {
        linger(c);
        return;
    }
    struct timeval tv;
    ms_tv(&tv, opts(c)->idle_timeout_ms);
    bufferevent_set_timeouts(c->bev, NULL, &tv);
    c->tmo = -1;
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
    bufferevent_enable(c->bev, EV_WRITE);
}

/* The connection timer (idle and header timeouts) runs lazily: set_deadline records when the
 * connection times out and adds the timer only when it is not pending already at or before that
 * time; timer_cb sets it again for a deadline that has moved on. A keep-alive exchange so costs
 * no timer operation (it took an add when the head started, a delete when it was complete and
 * an add when the response ended, each under the base lock). */
static void timer_at(struct conn *c, int64_t at, int64_t now)
{
    int64_t d = at > now ? at - now : 0;
    struct timeval tv = {(time_t)(d / 1000000), (suseconds_t)(d % 1000000)};
    c->timer_at_us = evtimer_add(c->timer, &tv) == 0 ? at : 0;
}

static void set_deadline(struct conn *c, unsigned ms)
{
    int64_t now = vp_mono_us();
    c->deadline_us = now + (int64_t)ms * 1000;
    if (!c->timer_at_us || c->timer_at_us > c->deadline_us)
        timer_at(c, c->deadline_us, now);
}

/* No timeout while an exchange runs; a pending timer finds no deadline and ends there. */
static void clear_deadline(struct conn *c)
{
    c->deadline_us = 0;
}

static void stop_timer(struct conn *c)
{
    evtimer_del(c->timer);
    c->deadline_us = c->timer_at_us = 0;
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    c->timer_at_us = 0;
    if (!c->deadline_us)
        return;
    int64_t now = vp_mono_us();
    if (now < c->deadline_us) {
        timer_at(c, c->deadline_us, now);
        return;
    }
    if (c->state == CS_HEAD && c->head_started) {
        /* Slowloris: the head did not arrive in time. */
        static const char r[] = "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
                                "Content-Length: 0\r\n\r\n";
        evbuffer_add(cout(c), r, sizeof r - 1);
        close_after_flush(c);
        return;
    }
    conn_free(c);
}

/* ---- client output ----
 * A plain-socket client's output is written by flush_cb, not by its bufferevent's write event:
 * whatever adds bytes to the output buffer queues the connection (once) on the worker's flush
 * list and activates flush_ev, which runs later in the same loop iteration, after the callbacks
 * that produced the output, and writes the buffer with one writev. Only what the socket does not
 * take turns EV_WRITE on (the bufferevent then writes the rest, with its write timeout), and the
 * next flush that empties the buffer turns it off again. A response that fits the socket buffer
 * so costs no epoll_ctl and no extra loop iteration. TLS connections and bufferevent pairs
 * (HTTP/2 streams) keep the bufferevent's own writing. */
static void client_write_cb(struct bufferevent *bev, void *arg);

static void flush_conn(struct conn *c)
{
    struct evbuffer *o = cout(c);
    c->flushes++;
    if (evbuffer_get_length(o) > 0) {
        /* A socket bufferevent keeps the start of its output frozen outside its own writes. */
        evbuffer_unfreeze(o, 1);
        int n = evbuffer_write(o, bufferevent_getfd(c->bev));
        int e = errno;
        evbuffer_freeze(o, 1);
        errno = e;
        if ((n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) ||
            evbuffer_get_length(o) > 0) {
            /* The rest, or an error: the bufferevent's own write meets it (again) and reports
             * it through client_event_cb as before. */
            bufferevent_enable(c->bev, EV_WRITE);
            return;
        }
    }
    bufferevent_disable(c->bev, EV_WRITE);
    client_write_cb(c->bev, c); /* drained: what the write callback does at its watermark */
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct worker *w = arg;
    while (w->flush_head) {
        struct conn *c = w->flush_head;
        w->flush_head = c->flush_next;
        c->flush_next = NULL;
        c->flush_queued = false;
        flush_conn(c); /* may free c, or queue it again */
    }
}

static void out_added(struct evbuffer *b, const struct evbuffer_cb_info *info, void *arg)
{
    (void)b;
    struct conn *c = arg;
    if (info->n_added == 0 || c->flush_queued)
        return;
    c->flush_queued = true;
    c->flush_next = c->w->flush_head;
    c->w->flush_head = c;
    event_active(c->w->flush_ev, EV_WRITE, 0);
}

/* Switches a plain-socket connection to flush_cb writing; false when that cannot be set up
 * (the bufferevent then keeps writing as usual). */
static bool direct_output(struct conn *c)
{
    struct worker *w = c->w;
    if (!w->flush_ev && !(w->flush_ev = event_new(w->base, -1, 0, flush_cb, w)))
        return false;
    c->out_cb = evbuffer_add_cb(cout(c), out_added, c);
    if (!c->out_cb)
        return false;
    bufferevent_disable(c->bev, EV_WRITE);
    return true;
}

/* Bounds what a client gets buffered while its input is not consumed (a pipelined request
 * behind a pending response) with the read watermark: libevent stops reading at PROXY_HIGH_WM.
 * A watermark makes libevent re-add the read event on every change of the input buffer, so a
 * plain socket gets it only once PROXY_LOW_WM bytes wait unread (client_read_cb); its reads are
 * at most a few KiB each, so it stops at the same bound. A TLS connection may read many records
 * in one go, so it has the watermark from the start. */
static void watch_input(struct conn *c)
{
    if (c->in_wm)
        return;
    c->in_wm = true;
    bufferevent_setwatermark(c->bev, EV_READ, 0, PROXY_HIGH_WM);
}

/* Links a new connection around bev (takes ownership) into the worker and starts reading. */
static int conn_start(struct worker *w, struct bufferevent *bev, const char *peer,
                      const char *proto, const char *tls_version)
{
    struct conn *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    c->timer = evtimer_new(w->base, timer_cb, c);
    if (!c->timer) {
        free(c);
        return -1;
    }
    c->w = w;
    c->bev = bev;
    c->accept_us = exchange_now_us();
    snprintf(c->peer, sizeof c->peer, "%s", peer && peer[0] ? peer : "-");
    c->proto = proto && !strcmp(proto, "h2") ? "h2" : "h1";
    snprintf(c->tls_version, sizeof c->tls_version, "%s", tls_version ? tls_version : "");
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    bufferevent_setcb(c->bev, client_read_cb, client_write_cb, client_event_cb, c);
    c->state = CS_HEAD;
    c->tmo = -1;
    /* Sockets (plain or TLS) stay readable while a response is pending; the watermark bounds
     * what a pipelining client gets buffered meanwhile. An HTTP/2 stream's pair end is not read
     * then: its EOF means the stream is gone (see update_client_read). */
    c->pair = strcmp(c->proto, "h2") == 0;
    if (!c->pair && c->tls_version[0])
        watch_input(c);
    set_deadline(c, opts(c)->header_timeout_ms);
    update_client_read(c);
    return 0;
}

void conn_h1_accept(struct worker *w, int fd, const struct sockaddr *sa, int salen)
{
    (void)salen;
    char peer[INET6_ADDRSTRLEN] = "-";
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, peer, sizeof peer);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, peer, sizeof peer);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct bufferevent *bev =
        bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!bev) {
        close(fd);
        atomic_fetch_sub(&w->px->nconns, 1);
        return;
    }
    /* libevent's default reads are 4-16 KiB (one FIONREAD + readv each); a 100 KiB body then
     * takes a dozen loop iterations. Reads stay bounded by the high watermark logic above. */
    bufferevent_set_max_single_read(bev, PROXY_MAX_SINGLE_IO);
    bufferevent_set_max_single_write(bev, PROXY_MAX_SINGLE_IO);
    if (conn_start(w, bev, peer, "h1", NULL) != 0) {
        bufferevent_free(bev);
        atomic_fetch_sub(&w->px->nconns, 1);
        return;
    }
    (void)direct_output(w->conns); /* conn_start links the new connection first */
}

/* bytes_out is counted as the growth of the output buffer around each write. A bufferevent pair
 * (HTTP/2 streams) moves bytes to its partner synchronously, inside those writes, so the bytes
 * it moves out are added back here; sockets never call this. */
static void count_moved(struct evbuffer *b, const struct evbuffer_cb_info *info, void *arg)
{
    (void)b;
    struct conn *c = arg;
    c->ex.t.bytes_out += info->n_deleted;
}

int conn_h1_attach(struct worker *w, struct bufferevent *bev, const char *peer,
                   const char *proto, const char *tls_version)
{
    atomic_fetch_add(&w->px->nconns, 1);
    if (conn_start(w, bev, peer, proto, tls_version) != 0) {
        atomic_fetch_sub(&w->px->nconns, 1);
        return VP_ERR_NOMEM;
    }
    if (proto && strcmp(proto, "h2") == 0) {
        struct conn *c = w->conns; /* conn_start links the new connection first */
        c->moved_cb = evbuffer_add_cb(cout(c), count_moved, c);
        c->stage = evbuffer_new();
    }
    return 0;
}

void conn_h1_drain_all(struct worker *w)
{
    struct conn *c = w->conns, *next;
    for (; c; c = next) {
        next = c->next;
        if (c->state == CS_HEAD && !c->head_started)
            conn_free(c);
    }
}

void conn_h1_free_all(struct worker *w)
{
    while (w->conns)
        conn_free(w->conns);
    spare_parsers_free(w);
    if (w->flush_ev) {
        event_free(w->flush_ev);
        w->flush_ev = NULL;
    }
}

/* ---- client reading ---- */

static void update_client_read(struct conn *c)
{
    struct exchange_state *ex = &c->ex;
    bool want = false;
    struct timeval tv, *rt = NULL;
    ms_tv(&tv, opts(c)->idle_timeout_ms);
    switch (c->state) {
    case CS_HEAD:
        want = !c->out_full;
        break;
    case CS_LOCAL_BODY:
        want = true;
        rt = &tv;
        break;
    case CS_PROXY:
        /* Once the request is complete the client stays readable while its response is
         * pending: pipelined bytes wait in the input buffer (bounded by the read watermark) and
         * no epoll_ctl is spent turning reading off and on again for every exchange. */
        if (c->pair) {
            want = ex->head_sent_up && !ex->req_done && !ex->paused_client;
            rt = &tv;
            break;
        }
        want = ex->req_done ? !c->rd_eof : ex->head_sent_up && !ex->paused_client;
        rt = ex->req_done ? NULL : &tv;
        break;
    case CS_TUNNEL:
        want = !ex->paused_client && !ex->tunnel_closing;
        break;
    case CS_LOCAL_WAIT:
    case CS_CLOSING:
        break;
    }
    /* Timeouts are only set again when they change: each set re-adds pending events. */
    signed char tmo = (signed char)((rt ? 1 : 0) | (c->state == CS_TUNNEL ? 0 : 2));
    if (c->state != CS_CLOSING && tmo != c->tmo) {
        bufferevent_set_timeouts(c->bev, rt, c->state == CS_TUNNEL ? NULL : &tv);
        c->tmo = tmo;
    }
    /* Enabling what is enabled re-adds the read event (an event_add under the base lock) for
     * nothing; a pair end's enable also moves what its partner holds, so it always runs. */
    bool on = c->pair || want != ((bufferevent_get_enabled(c->bev) & EV_READ) != 0);
    if (on && want)
        bufferevent_enable(c->bev, EV_READ);
    else if (on)
        bufferevent_disable(c->bev, EV_READ);
}

static bool has_token_in(const struct h1_parser *p, const char *hname, const char *tok)
{
    for (size_t i = 0; i < h1_parser_header_count(p); i++) {
        const char *n, *v;
        h1_parser_header(p, i, &n, &v);
        if (vp_slice_ieq(n, strlen(n), hname) && vp_header_has_token(v, strlen(v), tok))
            return true;
    }
    return false;
}

/* Head builder: a head is assembled in a stack buffer and handed to the evbuffer with one
 * evbuffer_add (more only for heads beyond the buffer), rather than one printf per line. */
struct hout {
    struct evbuffer *ev;
    size_t len;
    char b[4096];
};

/* Only ev and len are set: an initializer would zero the whole 4 KiB buffer, once per head
 * (about 200 instructions each, several heads per exchange). */
static void hout_init(struct hout *h, struct evbuffer *ev)
{
    h->ev = ev;
    h->len = 0;
}

static void hout_flush(struct hout *h)
{
    if (h->len)
        evbuffer_add(h->ev, h->b, h->len);
    h->len = 0;
}

/* Final flush to a socket whose output buffer is empty: send(2) at once, and queue only what
 * the socket did not take. Saves the write event's add/del and a loop iteration. A send error
 * queues everything: the bufferevent's own write then meets the error again (EPIPE after a
 * reset) and reports it as before. */
static void hout_flush_direct(struct hout *h, int fd)
{
    size_t off = 0;
    if (fd >= 0 && h->len && evbuffer_get_length(h->ev) == 0) {
        ssize_t n = send(fd, h->b, h->len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0)
            off = (size_t)n;
    }
    if (h->len > off)
        evbuffer_add(h->ev, h->b + off, h->len - off);
    h->len = 0;
}

static void hout_mem(struct hout *h, const char *s, size_t n)
{
    if (n > sizeof h->b - h->len) {
        hout_flush(h);
        if (n > sizeof h->b) {
            evbuffer_add(h->ev, s, n);
            return;
        }
    }
    memcpy(h->b + h->len, s, n);
    h->len += n;
}

static void hout_str(struct hout *h, const char *s) { hout_mem(h, s, strlen(s)); }

static void hout_u64(struct hout *h, uint64_t v)
{
    char t[24];
    size_t i = sizeof t;
    do {
        t[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    hout_mem(h, t + i, sizeof t - i);
}

/* "name: value" CRLF, value of length vl: copied at once when it fits the buffer. */
static void hout_field_n(struct hout *h, const char *n, size_t nl, const char *v, size_t vl)
{
    if (nl + vl + 4 <= sizeof h->b - h->len) {
        char *d = h->b + h->len;
        memcpy(d, n, nl);
        d[nl] = ':';
        d[nl + 1] = ' ';
        memcpy(d + nl + 2, v, vl);
        d[nl + 2 + vl] = '\r';
        d[nl + 3 + vl] = '\n';
        h->len += nl + vl + 4;
        return;
    }
    hout_mem(h, n, nl);
    hout_mem(h, ": ", 2);
    hout_mem(h, v, vl);
    hout_mem(h, "\r\n", 2);
}

static void hout_field(struct hout *h, const char *n, size_t nl, const char *v)
{
    hout_field_n(h, n, nl, v, strlen(v));
}

/* Hop-by-hop fields (RFC 9110 section 7.6.1) plus those we regenerate. */
static bool is_hop_name(const char *n, size_t nl)
{
    switch (nl) {
    case 2:
        return vp_slice_ieq(n, nl, "te");
    case 7:
        return vp_slice_ieq(n, nl, "trailer") || vp_slice_ieq(n, nl, "upgrade");
    case 10:
        return vp_slice_ieq(n, nl, "connection") || vp_slice_ieq(n, nl, "keep-alive");
    case 14:
        return vp_slice_ieq(n, nl, "content-length");
    case 16:
        return vp_slice_ieq(n, nl, "proxy-connection");
    case 17:
        return vp_slice_ieq(n, nl, "transfer-encoding");
    case 18:
        return vp_slice_ieq(n, nl, "proxy-authenticate");
    case 19:
        return vp_slice_ieq(n, nl, "proxy-authorization");
    default:
        return false;
    }
}

/* Connection options (RFC 9110 section 7.6.1): the tokens of every Connection field, as slices;
 * false when there are more than cap (the caller then searches the fields per name). */
static bool conn_tokens(const struct h1_parser *p, const char **tok, size_t *tlen, size_t cap,
                        size_t *ntok)
{
    size_t nh = h1_parser_header_count(p), nt = 0;
    for (size_t i = 0; i < nh; i++) {
        const char *n, *v;
        h1_parser_header(p, i, &n, &v);
        if (!vp_slice_ieq(n, h1_parser_header_name_len(p, i), "connection"))
            continue;
        size_t vl = h1_parser_header_value_len(p, i), k = 0;
        while (k < vl) {
            while (k < vl && (v[k] == ' ' || v[k] == '\t' || v[k] == ','))
                k++;
            size_t st = k;
            while (k < vl && v[k] != ',')
                k++;
            size_t e = k;
            while (e > st && (v[e - 1] == ' ' || v[e - 1] == '\t'))
                e--;
            if (e == st)
                continue;
            if (nt == cap)
                return false;
            tok[nt] = v + st;
            tlen[nt++] = e - st;
        }
    }
    *ntok = nt;
    return true;
}

/* A header name with its length, for the skip lists of add_headers_filtered. */
struct hname {
    const char *s;
    size_t n;
};
#define HNAME(lit)                                                                                 \
    {                                                                                              \
        lit, sizeof lit - 1                                                                        \
    }

/* Copies the fields of p to out but the hop-by-hop ones and those in skip (lower case, ended by
 * {NULL, 0}; NULL: none). */
static void add_headers_filtered(const struct h1_parser *p, struct hout *out,
                                 const struct hname *skip)
{
    size_t nh = h1_parser_header_count(p);
    /* Fields named in Connection are hop-by-hop too. Its tokens are collected once (beyond a
     * few, the full scan per name). */
    const char *tok[8];
    size_t tlen[8], ntok = 0;
    bool many_conn = !conn_tokens(p, tok, tlen, sizeof tok / sizeof tok[0], &ntok);
    for (size_t i = 0; i < nh; i++) {
        const char *n, *v;
        h1_parser_header(p, i, &n, &v);
        size_t nl = h1_parser_header_name_len(p, i);
        if (is_hop_name(n, nl))
            continue;
        bool named = false;
        if (many_conn) {
            named = has_token_in(p, "connection", n);
        } else {
            for (size_t k = 0; k < ntok && !named; k++)
                named = tlen[k] == nl && vp_mem_ieq(tok[k], n, nl);
        }
        if (named)
            continue;
        bool sk = false;
        for (size_t k = 0; skip && skip[k].s && !sk; k++)
            sk = skip[k].n == nl && vp_mem_ieq(n, skip[k].s, nl);
        if (!sk)
            hout_field_n(out, n, nl, v, h1_parser_header_value_len(p, i));
    }
}

void conn_reply(struct conn *c, int status, const char *reason, const char *ctype,
                const char *extra_headers, const void *body, size_t len)
{
    struct exchange_state *ex = &c->ex;
    struct evbuffer *o = cout(c);
    size_t before = evbuffer_get_length(o);
    if (!ex->req_done || c->w->draining)
        ex->keep_alive = false;
    evbuffer_add_printf(o, "HTTP/1.1 %d %s\r\n", status, reason);
    if (ctype) {
        /* The proxy's own replies echo request text (an API error names the parameter, the
         * exports carry stored URLs): their type is final, never sniffed. */
        bool has = extra_headers && strstr(extra_headers, "X-Content-Type-Options:");
        evbuffer_add_printf(o, "Content-Type: %s\r\n%s", ctype,
                            has ? "" : "X-Content-Type-Options: nosniff\r\n");
    }
    evbuffer_add_printf(o, "Content-Length: %zu\r\n%s%s\r\n", len, extra_headers ? extra_headers : "",
                        ex->keep_alive ? "" : "Connection: close\r\n");
    if (!ex->is_head && len)
        evbuffer_add(o, body, len);
    ex->t.bytes_out += evbuffer_get_length(o) - before;
    ex->status = status;
    ex->resp_started = ex->resp_done = true;
    if (ctype)
        snprintf(ex->ctype, sizeof ex->ctype, "%s", ctype);
    finish_exchange(c);
}

const char *http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return status < 300 ? "OK" : status < 400 ? "Redirect" : status < 500 ? "Client Error"
                                                                                 : "Server Error";
    }
}

static void html_escape_into(char *out, size_t cap, const char *s)
{
    size_t j = 0;
    for (; *s && j + 7 < cap; s++) {
        const char *e = *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : *s == '&' ? "&amp;"
                        : *s == '"' ? "&quot;" : NULL;
        if (e) {
            size_t el = strlen(e);
            memcpy(out + j, e, el);
            j += el;
        } else {
            out[j++] = *s;
        }
    }
    out[j] = '\0';
}

/* 502/504 page naming the upstream; only before any response byte reached the client. */
static void reply_gateway_error(struct conn *c, int status, const char *why)
{
    struct exchange_state *ex = &c->ex;
    ex->error = why;
    if (ex->resp_started) {
        conn_free(c);
        return;
    }
    if (ex->up) {
        upstream_free(ex->up);
        ex->up = NULL;
    }
    char url[600], page[1400];
    html_escape_into(url, sizeof url, opts(c)->upstream_url);
    int n = snprintf(page, sizeof page,
                     "<!doctype html><html><head><title>%d</title></head><body>"
                     "<h1>%d %s</h1><p>vitals-proxy could not get a response from the "
                     "application at <code>%s</code>: %s.</p></body></html>\n",
                     status, status, status == 504 ? "Gateway Timeout" : "Bad Gateway", url, why);
    if (n < 0 || (size_t)n >= sizeof page)
        n = 0;
    conn_reply(c, status, status == 504 ? "Gateway Timeout" : "Bad Gateway",
               "text/html; charset=utf-8", "Cache-Control: no-store\r\n", page, (size_t)n);
}

static void reply_parse_error(struct conn *c, int status, const char *why)
{
    const char *reason = status == 414 ? "URI Too Long"
                         : status == 431 ? "Request Header Fields Too Large"
                         : status == 413 ? "Content Too Large"
                                         : "Bad Request";
    char body[160];
    int n = snprintf(body, sizeof body, "%d %s: %s\n", status, reason, why);
    if (n < 0 || (size_t)n >= sizeof body)
        n = 0;
    c->ex.keep_alive = false;
    c->ex.error = why;
    conn_reply(c, status, reason, "text/plain; charset=utf-8", NULL, body, (size_t)n);
}

static void req_fields_get(const struct h1_parser *p, struct req_fields *f)
{
    memset(f, 0, sizeof *f);
    size_t nh = h1_parser_header_count(p);
    for (size_t i = 0; i < nh; i++) {
        const char *n, *v, **slot = NULL;
        h1_parser_header(p, i, &n, &v);
        size_t nl = h1_parser_header_name_len(p, i);
        switch (nl) {
        case 3:
            slot = vp_slice_ieq(n, nl, "via") ? &f->via : NULL;
            break;
        case 4:
            slot = vp_slice_ieq(n, nl, "host") ? &f->host : NULL;
            break;
        case 6:
            slot = vp_slice_ieq(n, nl, "origin") ? &f->origin : NULL;
            break;
        case 7:
            slot = vp_slice_ieq(n, nl, "referer")   ? &f->referer
                   : vp_slice_ieq(n, nl, "upgrade") ? &f->upgrade
                                                    : NULL;
            break;
        case 10:
            slot = vp_slice_ieq(n, nl, "user-agent") ? &f->user_agent : NULL;
            break;
        case 14:
            slot = vp_slice_ieq(n, nl, "content-length") ? &f->clen : NULL;
            break;
        case 15:
            slot = vp_slice_ieq(n, nl, "x-forwarded-for") ? &f->xff : NULL;
            break;
        default:
            break;
        }
        if (slot && !*slot)
            *slot = v;
    }
}

static bool is_idempotent(const char *m)
{
    return !strcmp(m, "GET") || !strcmp(m, "HEAD") || !strcmp(m, "OPTIONS") ||
           !strcmp(m, "PUT") || !strcmp(m, "DELETE") || !strcmp(m, "TRACE");
}

static void start_exchange(struct conn *c)
{
    struct exchange_state *ex = &c->ex;
    struct h1_parser *p = c->req;
    memset(ex, 0, sizeof *ex);
    ex->t.accept_us = c->accept_us;
    ex->t.head_done_us = exchange_now_us();
    ex->t.bytes_in = h1_parser_head_bytes(p);
    ex->method = h1_parser_method(p);
    ex->target = h1_parser_target(p);
    ex->minor = h1_parser_version_minor(p);
    ex->is_head = strcmp(ex->method, "HEAD") == 0;
    ex->keep_alive = h1_parser_keep_alive(p) && !c->w->draining;
    ex->upgrade = h1_parser_upgrade(p);
    ex->expect_continue = h1_parser_expect_continue(p);
    req_fields_get(p, &ex->rq);
    /* Upgrade: h2c is not passed on (RFC 9113 section 3.1 deprecates it): an upstream that
     * took it would get the rest of the connection as raw HTTP/2 through the tunnel, past every
     * check here. The request goes up as a plain one, Upgrade and HTTP2-Settings dropped. */
    if (ex->upgrade && ex->rq.upgrade &&
        vp_header_has_token(ex->rq.upgrade, strlen(ex->rq.upgrade), "h2c"))
        ex->upgrade = false;
    ex->had_cl = ex->rq.clen != NULL;
    ex->idempotent = is_idempotent(ex->method);
    ex->req_framing = h1_parser_framing(p);
    ex->req_left = h1_parser_content_length(p);
    ex->req_done = ex->req_framing == H1_BODY_NONE;
    h1_chunked_init(&ex->req_chunk, opts(c)->max_header_bytes);
    h1_chunked_keep_trailers(&ex->req_chunk);

    if (route_is_reserved_alias(ex->target)) {
        reply_parse_error(c, 400, "path is another spelling of /__vitals/");
        return;
    }
    if (route_is_reserved(ex->target)) {
        ex->upgrade = false;
        if (ex->req_done) {
            route_handle(c, ex->method, ex->target, NULL);
            return;
        }
        size_t max = opts(c)->max_body_bytes;
        if (ex->req_framing == H1_BODY_LENGTH && ex->req_left > max) {
            reply_parse_error(c, 413, "body too large");
            return;
        }
        ex->local_body = evbuffer_new();
        if (!ex->local_body) {
            reply_parse_error(c, 400, "out of memory");
            return;
        }
        if (ex->expect_continue && ex->minor >= 1)
            evbuffer_add(cout(c), "HTTP/1.1 100 Continue\r\n\r\n", 25);
        c->state = CS_LOCAL_BODY;
        update_client_read(c);
        client_read_cb(c->bev, c);
        return;
    }
    c->state = CS_PROXY;
    update_client_read(c);
    ex->t.connect_start_us = exchange_now_us();
    ex->up_connecting = true;
    struct upstream *pend = upstream_acquire(c->w, c, true, on_upstream_ready);
    if (pend)
        ex->up = pend;
}

/* Moves n trailer-section bytes from in to *dst (created on first use). 0 or -1 (memory). */
static int keep_trailer_bytes(struct evbuffer **dst, struct evbuffer *in, size_t n)
{
    if (!*dst && !(*dst = evbuffer_new()))
        return -1;
    return evbuffer_remove_buffer(in, *dst, n) == (int)n ? 0 : -1;
}

/* Writes the fields of a trailer section (as the chunked decoder gave it) to out as
 * "Name: value" lines, leaving out what must not travel in trailers (h1_trailer_forbidden),
 * at most max bytes of lines in all (the next hop's bound). sec may be NULL. */
static void put_trailers(struct evbuffer *out, struct evbuffer *sec, size_t max)
{
    size_t len = sec ? evbuffer_get_length(sec) : 0;
    if (len == 0)
        return;
    const char *b = (const char *)evbuffer_pullup(sec, -1);
    if (!b)
        return;
    size_t off = 0, nl, vl, total = 0;
    const char *n, *v;
    while (h1_trailer_next(b, len, &off, &n, &nl, &v, &vl)) {
        if (h1_trailer_forbidden(n, nl))
            continue;
        if (nl + vl + 4 > max - total)
            break;
        total += nl + vl + 4;
        evbuffer_add(out, n, nl);
        evbuffer_add(out, ": ", 2);
        evbuffer_add(out, v, vl);
        evbuffer_add(out, "\r\n", 2);
    }
}

/* One step of request-body framing: moves what `in` holds of the body (Content-Length or
 * chunked) to `out`, decoding chunks, and re-framing them as chunks when rechunk is set (towards
 * the upstream; a local handler wants the plain bytes). Returns 0 after progress, 1 when nothing
 * could be taken, -1 for an invalid chunked body. */
static int move_request_body(struct exchange_state *ex, struct evbuffer *in, struct evbuffer *out,
                             bool rechunk)
{
    if (ex->req_framing == H1_BODY_LENGTH) {
        size_t n = evbuffer_get_length(in);
        if (n > ex->req_left)
            n = (size_t)ex->req_left;
        evbuffer_remove_buffer(in, out, n);
        ex->t.bytes_in += n;
        ex->req_left -= n;
        ex->req_done = ex->req_left == 0;
        return 0;
    }
    struct evbuffer_iovec v;
    if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
        return 1;
    size_t used, dl;
    int rc = h1_chunked_feed(&ex->req_chunk, v.iov_base, v.iov_len, &used, &dl);
    if (rc < 0 || (rc == H1_CHUNK_END && h1_chunked_cut(&ex->req_chunk)))
        return -1; /* a request keeps its strictness: a bad trailer section fails it */
    evbuffer_drain(in, used - dl);
    ex->t.bytes_in += used;
    if (rc == H1_CHUNK_TRAILER) {
        /* Kept for the upstream; a local handler has no use for them. */
        if (!rechunk)
            evbuffer_drain(in, dl);
        else if (keep_trailer_bytes(&ex->req_trailers, in, dl) != 0)
            return -1;
        return 0;
    }
    if (dl && rechunk)
        evbuffer_add_printf(out, "%zx\r\n", dl);
    evbuffer_remove_buffer(in, out, dl);
    if (dl && rechunk)
        evbuffer_add(out, "\r\n", 2);
    if (rc == H1_CHUNK_END) {
        if (rechunk) {
            evbuffer_add(out, "0\r\n", 3);
            put_trailers(out, ex->req_trailers, SIZE_MAX);
            evbuffer_add(out, "\r\n", 2);
        }
        ex->req_done = true;
    }
    return 0;
}

/* Reads a bounded body for a local handler. */
static void read_local_body(struct conn *c)
{
    struct exchange_state *ex = &c->ex;
    struct evbuffer *in = cin(c);
    size_t max = opts(c)->max_body_bytes;
    while (!ex->req_done && evbuffer_get_length(in) > 0) {
        int rc = move_request_body(ex, in, ex->local_body, false);
        if (rc < 0) {
            reply_parse_error(c, 400, "invalid chunked body");
            return;
        }
        if (rc > 0)
            break;
        if (evbuffer_get_length(ex->local_body) > max) {
            reply_parse_error(c, 413, "body too large");
            return;
        }
    }
    if (ex->req_done) {
        update_client_read(c);
        route_handle(c, ex->method, ex->target, ex->local_body);
    }
}

/* --h2c: a plain connection whose first bytes are the HTTP/2 connection preface (prior
 * knowledge, RFC 9113 section 3.3) becomes an HTTP/2 session. Returns true when c is gone (handed
 * over) or must wait for more bytes. */
static bool h2c_preface(struct conn *c)
{
    static const char pri[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    struct evbuffer *in = cin(c);
    size_t n = evbuffer_get_length(in), k = n < 24 ? n : 24;
    const unsigned char *p = evbuffer_pullup(in, (ev_ssize_t)k);
    if (!p || memcmp(p, pri, k) != 0 || c->w->draining || c->tls_version[0] ||
        strcmp(c->proto, "h1") != 0) {
        c->h2c_checked = true;
        return false;
    }
    if (n < 24)
        return true;
    struct worker *w = c->w;
    struct bufferevent *bev = c->bev;
    char peer[INET6_ADDRSTRLEN];
    memcpy(peer, c->peer, sizeof peer);
    bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
    /* The session writes and reads through the bufferevent as it was made. */
    if (c->out_cb) {
        evbuffer_remove_cb_entry(cout(c), c->out_cb);
        c->out_cb = NULL;
    }
    bufferevent_setwatermark(bev, EV_READ, 0, 0);
    c->bev = NULL;
    atomic_fetch_add(&w->px->nconns, 1); /* the session's; conn_free gives back c's */
    /* On failure h2_session_start has freed bev and given the count back. */
    int rc = h2_session_start(w, bev, peer, NULL);
    (void)rc;
    conn_free(c);
    return true;
}

static void on_head_bytes(struct conn *c)
{
    struct evbuffer *in = cin(c);
    if (evbuffer_get_length(in) == 0)
        return;
    if (opts(c)->h2c && !c->h2c_checked && h2c_preface(c))
        return;
    if (!c->req && parser_get(c->w, &c->req, H1_REQUEST) != 0) {
        conn_free(c);
        return;
    }
    /* The header timeout runs from the head's first byte; it is set below, when these bytes
     * did not complete the head. */
    bool fresh = !c->head_started;
    if (fresh) {
        c->head_started = true;
        /* An HTTP/2 stream's pair end, reused, or a kept-alive connection: timing starts per
         * stream or request. */
        if (c->moved_cb || c->kept_alive)
            c->accept_us = exchange_now_us();
    }
    while (evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            return;
        size_t used = 0;
        int rc = h1_parser_feed(c->req, v.iov_base, v.iov_len, &used);
        if (rc < 0) {
            evbuffer_drain(in, evbuffer_get_length(in));
            memset(&c->ex, 0, sizeof c->ex);
            c->ex.method = "-";
            c->ex.target = "-";
            c->ex.t.accept_us = c->accept_us;
            c->ex.t.head_done_us = exchange_now_us();
            clear_deadline(c);
            reply_parse_error(c, h1_parser_status(c->req), h1_parser_error(c->req));
            return;
        }
        evbuffer_drain(in, used);
        if (rc == H1_DONE) {
            clear_deadline(c);
            start_exchange(c);
            return;
        }
    }
    if (fresh)
        set_deadline(c, opts(c)->header_timeout_ms);
}

static void client_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct conn *c = arg;
    if (!c->in_wm && !c->pair && evbuffer_get_length(cin(c)) >= PROXY_LOW_WM)
        watch_input(c);
    switch (c->state) {
    case CS_HEAD:
        on_head_bytes(c);
        break;
    case CS_LOCAL_BODY:
        read_local_body(c);
        break;
    case CS_PROXY:
        pump_request(c);
        break;
    case CS_TUNNEL:
        if (c->ex.up) {
            struct evbuffer *uo = bufferevent_get_output(c->ex.up->bev);
            size_t n = evbuffer_get_length(cin(c));
            c->ex.t.bytes_in += n;
            evbuffer_add_buffer(uo, cin(c));
            if (evbuffer_get_length(uo) >= PROXY_HIGH_WM) {
                c->ex.paused_client = true;
                bufferevent_setwatermark(c->ex.up->bev, EV_WRITE, PROXY_LOW_WM, 0);
                update_client_read(c);
            }
        }
        break;
    case CS_LOCAL_WAIT:
        break;
    case CS_CLOSING:
        evbuffer_drain(cin(c), evbuffer_get_length(cin(c)));
        break;
    }
}

static void client_write_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct conn *c = arg;
    if (c->state == CS_CLOSING) {
        if (evbuffer_get_length(cout(c)) == 0 && !c->lingering)
            linger(c);
        return;
    }
    if (c->out_full) {
        if (evbuffer_get_length(cout(c)) > PROXY_LOW_WM)
            return;
        c->out_full = false;
        bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
        update_client_read(c);
        if (evbuffer_get_length(cin(c)) > 0)
            bufferevent_trigger(c->bev, EV_READ,
                                BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
        return;
    }
    if (c->ex.paused_up && c->ex.up) {
        c->ex.paused_up = false;
        bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
        bufferevent_enable(c->ex.up->bev, EV_READ);
        if (c->state == CS_TUNNEL)
            up_read_cb(c->ex.up->bev, c);
        else
            pump_response(c);
    }
}

static void client_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct conn *c = arg;
    if (c->state == CS_PROXY && !c->ex.resp_started && (what & BEV_EVENT_TIMEOUT)) {
        c->ex.error = "client body timeout";
        reply_parse_error(c, 408, "request body timeout");
        return;
    }
    if (c->state == CS_TUNNEL && (what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) &&
        c->ex.up) {
        /* Half-close: deliver what the client sent (e.g. a WebSocket close frame), then
         * shut the upstream's write side; keep relaying the other way until it ends. */
        struct evbuffer *uo = bufferevent_get_output(c->ex.up->bev);
        c->ex.t.bytes_in += evbuffer_get_length(cin(c));
        evbuffer_add_buffer(uo, cin(c));
        c->ex.tunnel_closing = true;
        update_client_read(c);
        bufferevent_setwatermark(c->ex.up->bev, EV_WRITE, 0, 0);
        if (evbuffer_get_length(uo) == 0)
            up_shutdown_write(c->ex.up);
        return;
    }
    if (c->state == CS_PROXY && c->ex.req_done && !c->pair && !c->tls_version[0] &&
        (what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
        /* Half-close after a complete request: answer it, then close. Plain sockets only: a
         * TLS client's EOF (close_notify, or a TCP close allowed as a dirty shutdown) stops
         * libevent's OpenSSL bufferevent writing as well as reading, with no event or timeout
         * left to end the exchange; a response kept for it filled its output to the high
         * watermark, paused the upstream, and held both connections for good. */
        c->rd_eof = true;
        c->ex.keep_alive = false;
        update_client_read(c);
        return;
    }
    c->ex.error = (what & BEV_EVENT_TIMEOUT) ? "client timeout" : "client closed";
    if ((c->state == CS_PROXY || c->state == CS_LOCAL_BODY) && !c->ex.logged) {
        c->ex.status = c->ex.resp_started ? c->ex.status : 499;
        exchange_finish_log(c);
    }
    conn_free(c);
}

/* ---- upstream side ----
 * An https:// upstream (u->tls) is an OpenSSL bufferevent: its bytes only go through the
 * bufferevent's buffers, never the direct socket reads and writes that plain connections use. */

/* A tunnel's client half-closed and everything it sent reached the upstream: half-close the
 * upstream too (a TLS upstream gets close_notify first). */
static void up_shutdown_write(struct upstream *u)
{
    if (u->tls)
        tls_client_close_notify(u->bev, true);
    else
        shutdown(bufferevent_getfd(u->bev), SHUT_WR);
}

static void write_request_head(struct conn *c)
{
    struct exchange_state *ex = &c->ex;
    const struct vp_options *o = opts(c);
    struct h1_parser *p = c->req;
    struct hout out;
    hout_init(&out, bufferevent_get_output(ex->up->bev));
    static const struct hname skip[] = {HNAME("expect"),
                                        HNAME("x-forwarded-for"),
                                        HNAME("x-forwarded-proto"),
                                        HNAME("x-forwarded-host"),
                                        HNAME("via"),
                                        HNAME("host"),
                                        HNAME("origin"),
                                        {NULL, 0}};
    hout_str(&out, ex->method);
    hout_mem(&out, " ", 1);
    hout_str(&out, ex->target);
    hout_str(&out, " HTTP/1.1\r\nHost: ");
    const char *host = ex->rq.host;
    hout_str(&out, o->rewrite_origin || !host ? o->upstream_authority : host);
    hout_mem(&out, "\r\n", 2);
    const char *origin = ex->rq.origin;
    if (origin && o->rewrite_origin && strcmp(origin, "null") != 0) {
        hout_str(&out, o->upstream_tls ? "Origin: https://" : "Origin: http://");
        hout_str(&out, o->upstream_authority);
        hout_mem(&out, "\r\n", 2);
    } else if (origin) {
        hout_field(&out, "Origin", 6, origin);
    }
    add_headers_filtered(p, &out, skip);
    const char *xff = ex->rq.xff;
    hout_str(&out, "X-Forwarded-For: ");
    if (xff) {
        hout_str(&out, xff);
        hout_mem(&out, ", ", 2);
    }
    hout_str(&out, c->peer);
    hout_str(&out, c->tls_version[0] ? "\r\nX-Forwarded-Proto: https\r\n"
                                     : "\r\nX-Forwarded-Proto: http\r\n");
    if (host)
        hout_field(&out, "X-Forwarded-Host", 16, host);
    const char *via = ex->rq.via;
    hout_str(&out, "Via: ");
    if (via) {
        hout_str(&out, via);
        hout_mem(&out, ", ", 2);
    }
    hout_str(&out, "1.");
    hout_u64(&out, (uint64_t)(ex->minor < 0 ? 0 : ex->minor));
    hout_str(&out, " vitals-proxy\r\n");
    if (ex->upgrade) {
        const char *up = ex->rq.upgrade;
        hout_str(&out, "Connection: upgrade\r\n");
        hout_field(&out, "Upgrade", 7, up ? up : "");
    }
    if (ex->req_framing == H1_BODY_LENGTH) {
        hout_str(&out, "Content-Length: ");
        hout_u64(&out, ex->req_left);
        hout_mem(&out, "\r\n", 2);
    } else if (ex->req_framing == H1_BODY_CHUNKED) {
        hout_str(&out, "Transfer-Encoding: chunked\r\n");
    } else if (ex->had_cl) {
        hout_str(&out, "Content-Length: 0\r\n");
    }
    hout_mem(&out, "\r\n", 2);
    /* The pooled or just connected upstream socket has an empty output buffer. A request with a
     * body is queued instead: its bytes already read are checked first (pump_request), and an
     * invalid chunked body then means the head never leaves (the upstream is dropped). */
    hout_flush_direct(&out, ex->req_done && !ex->up->tls ? bufferevent_getfd(ex->up->bev) : -1);
}

static void set_up_timeouts(struct conn *c)
{
    /* No read timeout while the client is still uploading: the app legitimately stays silent. */
    upstream_set_timeouts(c->ex.up, c->ex.req_done ? UPSTREAM_TMO_EXCHANGE : UPSTREAM_TMO_UPLOAD);
}

static void on_upstream_ready(struct conn *c, struct upstream *u, int err, const char *why)
{
    struct exchange_state *ex = &c->ex;
    ex->up_connecting = false;
    if (err) {
        ex->up = NULL;
        reply_gateway_error(c, strstr(why, "timeout") ? 504 : 502, why);
        return;
    }
    ex->up = u;
    u->owner = c;
    ex->reused = u->reused;
    if (u->reused)
        ex->t.connect_start_us = 0;
    else
        ex->t.connect_end_us = exchange_now_us();
    if (!c->resp && parser_get(c->w, &c->resp, H1_RESPONSE) != 0) {
        reply_gateway_error(c, 502, "out of memory");
        return;
    }
    h1_parser_reset(c->resp, ex->is_head);
    bufferevent_setcb(u->bev, up_read_cb, up_write_cb, up_event_cb, c);
    bufferevent_setwatermark(u->bev, EV_WRITE, 0, 0);
    if (!u->tls && !u->read_cb)
        u->read_cb = evbuffer_add_cb(bufferevent_get_input(u->bev), up_input_added, u) != NULL;
    write_request_head(c);
    ex->t.sent_us = exchange_now_us();
    ex->head_sent_up = true;
    if (ex->expect_continue && !ex->req_done && ex->minor >= 1 && !ex->sent_100) {
        evbuffer_add(cout(c), "HTTP/1.1 100 Continue\r\n\r\n", 25);
        ex->sent_100 = true;
    }
    set_up_timeouts(c);
    /* EV_WRITE is enabled from creation on and never disabled on upstream connections; enabling
     * it again would add the write event even when the head went out directly. */
    short ev = evbuffer_get_length(bufferevent_get_output(u->bev)) ? EV_READ | EV_WRITE : EV_READ;
    /* A pooled connection reads already: enabling it again would re-add its read event. */
    ev = (short)(ev & ~bufferevent_get_enabled(u->bev));
    if (ev)
        bufferevent_enable(u->bev, ev);
    /* Without a body, the client's read state is the one start_exchange set (not read). */
    if (!ex->req_done)
        update_client_read(c);
    pump_request(c);
}

static void pump_request(struct conn *c)
{
    struct exchange_state *ex = &c->ex;
    if (!ex->head_sent_up || ex->req_done || !ex->up)
        return;
    struct evbuffer *in = cin(c), *out = bufferevent_get_output(ex->up->bev);
    while (!ex->req_done && evbuffer_get_length(in) > 0 &&
           evbuffer_get_length(out) < PROXY_HIGH_WM) {
        int rc = move_request_body(ex, in, out, true);
        if (rc < 0) {
            ex->keep_alive = false;
            if (ex->resp_started) {
                conn_free(c);
            } else {
                upstream_free(ex->up);
                ex->up = NULL;
                reply_parse_error(c, 400, "invalid chunked body");
            }
            return;
        }
        if (rc > 0)
            break;
    }
    if (!ex->req_done && evbuffer_get_length(out) >= PROXY_HIGH_WM) {
        ex->paused_client = true;
        bufferevent_setwatermark(ex->up->bev, EV_WRITE, PROXY_LOW_WM, 0);
    }
    if (ex->req_done) {
        set_up_timeouts(c);
        if (ex->resp_done) {
            finish_exchange(c);
            return;
        }
    }
    update_client_read(c);
}

static void up_write_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct conn *c = arg;
    if (c->ex.tunnel_closing) {
        if (evbuffer_get_length(bufferevent_get_output(c->ex.up->bev)) == 0)
            up_shutdown_write(c->ex.up);
        return;
    }
    if (!c->ex.paused_client)
        return;
    c->ex.paused_client = false;
    bufferevent_setwatermark(c->ex.up->bev, EV_WRITE, 0, 0);
    update_client_read(c);
    if (c->state == CS_TUNNEL)
        client_read_cb(c->bev, c);
    else
        pump_request(c);
}

/* v (NULL = "") into dst, cut to cap - 1 bytes. */
static void capture(char *dst, size_t cap, const char *v)
{
    size_t n = v ? strnlen(v, cap - 1) : 0;
    if (n)
        memcpy(dst, v, n);
    dst[n] = '\0';
}

static void start_tunnel(struct conn *c)
{
    struct exchange_state *ex = &c->ex;
    struct evbuffer *o = cout(c);
    size_t before = evbuffer_get_length(o);
    struct hout h;
    hout_init(&h, o);
    hout_str(&h, "HTTP/1.1 101 ");
    hout_str(&h, h1_parser_reason(c->resp));
    hout_mem(&h, "\r\n", 2);
    add_headers_filtered(c->resp, &h, NULL);
    const char *up = h1_parser_find(c->resp, "upgrade");
    hout_str(&h, "Connection: upgrade\r\n");
    hout_field(&h, "Upgrade", 7, up ? up : "");
    hout_mem(&h, "\r\n", 2);
    hout_flush(&h);
    ex->t.bytes_out += evbuffer_get_length(o) - before;
    ex->status = 101;
    ex->resp_started = true;
    ex->keep_alive = false;
    c->state = CS_TUNNEL;
    upstream_keep(ex->up);
    ex->t.last_byte_us = exchange_now_us();
    exchange_finish_log(c);
    bufferevent_set_timeouts(ex->up->bev, NULL, NULL);
    ex->up->tmo = 0;
    bufferevent_set_timeouts(c->bev, NULL, NULL);
    c->tmo = -1;
    update_client_read(c);
    /* Bytes that arrived behind the 101 or behind the request head. */
    up_read_cb(ex->up->bev, c);
    if (c->state == CS_TUNNEL && evbuffer_get_length(cin(c)))
        client_read_cb(c->bev, c);
}

/* The beacon tag for view id vid (and the page's nonce, or NULL) into tag; its length or -1. */
static int build_tag(struct conn *c, char *tag, size_t cap, const char *vid, const char *nonce)
{
    int n = inject_build_tag(tag, cap, c->w->px->beacon_src, vid, nonce);
    if (n < 0)
        return -1;
    if (opts(c)->keep_query) {
        /* --keep-query: the beacon reports page URLs with their query (data-keep-query). */
        static const char attr[] = " data-keep-query=\"\"";
        char *at = strstr(tag, " async=");
        if (!at || (size_t)n + sizeof attr > cap)
            return -1;
        memmove(at + sizeof attr - 1, at, strlen(at) + 1);
        memcpy(at, attr, sizeof attr - 1);
        n += (int)(sizeof attr - 1);
    }
    return n;
}

/* The tag of a page without a CSP nonce differs from page to page only in its 32-digit view id:
 * the worker builds it once with two placeholder ids, which locates the id, and then copies it
 * with the id written in (building and checking the same tag again took about 2,000
 * instructions per response, 4 % of a proxied 1 KiB page). */
static int plain_tag(struct conn *c, char *tag, size_t cap, const char *vid)
{
    struct worker *w = c->w;
    enum { VID = 32 };
    if (w->tag_len == 0) {
        char a[sizeof w->tag_tpl], b[sizeof w->tag_tpl];
        int na = build_tag(c, a, sizeof a, "00000000000000000000000000000000", NULL);
        int nb = build_tag(c, b, sizeof b, "ffffffffffffffffffffffffffffffff", NULL);
        size_t off = 0;
        while (na > 0 && off < (size_t)na && a[off] == b[off])
            off++;
        bool ok = na > 0 && na == nb && off + VID <= (size_t)na &&
                  memcmp(a + off + VID, b + off + VID, (size_t)na - off - VID) == 0;
        for (size_t i = 0; ok && i < VID; i++)
            ok = a[off + i] == '0' && b[off + i] == 'f';
        w->tag_len = ok ? na : -1;
        if (ok) {
            memcpy(w->tag_tpl, a, (size_t)na + 1);
            w->tag_vid_off = off;
        }
    }
    if (w->tag_len < 0 || strlen(vid) != VID || (size_t)w->tag_len >= cap)
        return build_tag(c, tag, cap, vid, NULL);
    memcpy(tag, w->tag_tpl, (size_t)w->tag_len + 1);
    memcpy(tag + w->tag_vid_off, vid, VID);
    return w->tag_len;
}

/* The response fields the proxy reads, found in one pass over the head (the first of each, as
 * h1_parser_find gives; NULL when absent) instead of one search per name. */
struct resp_fields {
    const char *ctype, *cenc, *cdisp, *cache, *crange, *csp, *csp_ro, *clen;
};

static void resp_fields_get(const struct h1_parser *r, struct resp_fields *f)
{
    memset(f, 0, sizeof *f);
    size_t nh = h1_parser_header_count(r);
    for (size_t i = 0; i < nh; i++) {
        const char *n, *v, **slot = NULL;
        h1_parser_header(r, i, &n, &v);
        size_t nl = h1_parser_header_name_len(r, i);
        if (nl < 12 || (n[0] | 0x20) != 'c')
            continue;
        switch (nl) {
        case 12:
            slot = vp_slice_ieq(n, nl, "content-type") ? &f->ctype : NULL;
            break;
        case 13:
            slot = vp_slice_ieq(n, nl, "cache-control")   ? &f->cache
                   : vp_slice_ieq(n, nl, "content-range") ? &f->crange
                                                          : NULL;
            break;
        case 14:
            slot = vp_slice_ieq(n, nl, "content-length") ? &f->clen : NULL;
            break;
        case 16:
            slot = vp_slice_ieq(n, nl, "content-encoding") ? &f->cenc : NULL;
            break;
        case 19:
            slot = vp_slice_ieq(n, nl, "content-disposition") ? &f->cdisp : NULL;
            break;
        case 23:
            slot = vp_slice_ieq(n, nl, "content-security-policy") ? &f->csp : NULL;
            break;
        case 35:
            slot = vp_slice_ieq(n, nl, "content-security-policy-report-only") ? &f->csp_ro : NULL;
            break;
        default:
            break;
        }
        if (slot && !*slot)
            *slot = v;
    }
}

/* A new view id into out (33 bytes): 32 lower-case hex digits, the first 12 the wall-clock time
 * in milliseconds and the other 20 random (80 bits, from the same pool as before). Every
 * injected page's request row is indexed by its view id (requests_view): with ids wholly random,
 * each row of a writer's batch went to its own leaf of that index, so an injected page cost
 * about 1.5 more WAL page writes than a plain request (pwrite64 per request under h2load: 2.04
 * for the page, 0.23 for 1 KiB); ids that grow with time are appended at the index's end, a few
 * rows per page. Same length and alphabet as before (beacon_valid_view_id, the tag template),
 * and still unguessable. 0 or an error from vp_random_hex. */
static int view_id_new(char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    if (cap < 33)
        return VP_ERR_INVALID;
    uint64_t ms = (uint64_t)exchange_now_us() / 1000;
    for (int i = 0; i < 12; i++)
        out[i] = hex[(ms >> (44 - 4 * i)) & 15];
    return vp_random_hex(out + 12, cap - 12, 10);
}

/* Decides whether this response gets the beacon (inject_wanted + --no-inject globs) and sets
 * up the injector; any failure just means no injection. */
static void setup_injection(struct conn *c, const struct resp_fields *f)
{
    struct exchange_state *ex = &c->ex;
    struct proxy *px = c->w->px;
    if (ex->is_head || ex->resp_framing == H1_BODY_NONE || !px->beacon_src)
        return;
    char path[2048];
    size_t pl = strcspn(ex->target, "?#");
    if (pl >= sizeof path)
        return;
    memcpy(path, ex->target, pl);
    path[pl] = '\0';
    struct inject_response_info info = {
        .method = ex->method,
        .request_path = path,
        .status = ex->status,
        .content_type = f->ctype,
        .content_encoding = f->cenc,
        .content_disposition = f->cdisp,
        .cache_control = f->cache,
        .content_range = f->crange,
        .upgraded = false,
    };
    if (!inject_wanted(&info))
        return;
    for (size_t i = 0; i < opts(c)->n_no_inject; i++)
        if (fnmatch(opts(c)->no_inject[i], path, 0) == 0)
            return;
    if (opts(c)->sample < 1.0) {
        /* --sample: an unsampled page view gets no beacon at all (xorshift64*). */
        uint64_t x = c->w->rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        c->w->rng = x;
        double u = (double)((x * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;
        if (u >= opts(c)->sample)
            return;
    }
    char vid[33], nonce[256], tag[1024];
    if (view_id_new(vid, sizeof vid) != 0)
        return;
    /* With a CSP, the tag carries the page's own script nonce when it has one (strict-dynamic
     * policies trust only nonced scripts), else a fresh one that the header rewrite allows. */
    const char *csp = f->csp, *csp_ro = f->csp_ro;
    bool has_nonce = csp && inject_csp_nonce(csp, strlen(csp), nonce, sizeof nonce);
    if (!has_nonce && (csp || csp_ro)) {
        if (vp_random_hex(nonce, sizeof nonce, 16) != 0)
            return;
        has_nonce = true;
    }
    int n =
        has_nonce ? build_tag(c, tag, sizeof tag, vid, nonce) : plain_tag(c, tag, sizeof tag, vid);
    if (n < 0)
        return;
    const char *ce = info.content_encoding;
    enum inject_coding cd = inject_coding_parse(ce, ce ? strlen(ce) : 0);
    if (!inj_get(c->w, &ex->inj, cd, tag, (size_t)n))
        return;
    ex->inj_in = buf_get(c->w);
    ex->inj_out = buf_get(c->w);
    if (!ex->inj_in || !ex->inj_out) {
        exchange_dispose(c->w, ex);
        return;
    }
    if (cd == INJECT_CODING_IDENTITY && ex->resp_framing == H1_BODY_LENGTH && ex->minor >= 1) {
        ex->cl_pending = true;
        ex->cl_upstream = ex->resp_left;
    }
    memcpy(ex->view_id, vid, sizeof vid);
    capture(ex->csp_nonce, sizeof ex->csp_nonce, has_nonce ? nonce : NULL);
}

/* Where body framing is written: an HTTP/2 stream's pair end hands every write over to
 * conn_h2 at once (a transfer of about a thousand instructions), so a chunk's size line, data
 * and CRLF, the last chunk with its trailers, and a head waiting for its Content-Length
 * (cl_pending) with that line and the first body bytes are assembled in c->stage and enter the
 * pair together (stage_done, at the end of put_framed and emit_end). */
static struct evbuffer *stage_out(struct conn *c) { return c->stage ? c->stage : cout(c); }

static void stage_done(struct conn *c)
{
    if (c->stage && evbuffer_get_length(c->stage))
        evbuffer_add_buffer(cout(c), c->stage);
}

/* Header edits for a transformed body (style.md rule 19): length unknown (chunked), coding
 * kept, ETag weakened, Vary: Accept-Encoding. */
static void add_injected_headers(struct h1_parser *r, const char *nonce, struct hout *o)
{
    static const struct hname skip[] = {HNAME("etag"),
                                        HNAME("content-security-policy"),
                                        HNAME("content-security-policy-report-only"),
                                        {NULL, 0}};
    add_headers_filtered(r, o, skip);
    bool vary = false;
    for (size_t i = 0; i < h1_parser_header_count(r); i++) {
        const char *n, *v;
        h1_parser_header(r, i, &n, &v);
        size_t nl = strlen(n), vl = strlen(v);
        if (vp_slice_ieq(n, nl, "content-security-policy") ||
            vp_slice_ieq(n, nl, "content-security-policy-report-only")) {
            /* Each policy is enforced on its own: rewrite every one so the tag may load and the
             * beacon may POST to 'self'; a policy that cannot be rewritten is kept as it was. */
            char csp[8192];
            int cl = nonce[0] ? inject_csp_rewrite(v, vl, nonce, csp, sizeof csp, NULL) : -1;
            hout_field(o, n, nl, cl >= 0 ? csp : v);
        } else if (vp_slice_ieq(n, nl, "etag")) {
            hout_str(o, vp_slice_iprefix(v, vl, "W/") ? "ETag: " : "ETag: W/");
            hout_str(o, v);
            hout_mem(o, "\r\n", 2);
        }
        else if (vp_slice_ieq(n, nl, "vary") &&
                 (vp_header_has_token(v, vl, "accept-encoding") || vp_header_has_token(v, vl, "*")))
            vary = true;
    }
    if (!vary)
        hout_str(o, "Vary: Accept-Encoding\r\n");
}

static void send_response_head(struct conn *c)
{
    struct exchange_state *ex = &c->ex;
    struct h1_parser *r = c->resp;
    struct evbuffer *o = cout(c);
    size_t before = evbuffer_get_length(o);
    int sc = ex->status;
    if (!r || !h1_parser_keep_alive(r))
        ex->up_clean = false;
    if (!ex->req_done || c->w->draining)
        ex->keep_alive = false;
    ex->retractable = c->out_cb && before == 0;
    ex->retract_flushes = c->flushes;
    struct hout h;
    hout_init(&h, o);
    hout_str(&h, "HTTP/1.1 ");
    hout_u64(&h, (uint64_t)sc); /* 100..599: checked by the parser */
    hout_mem(&h, " ", 1);
    hout_str(&h, h1_parser_reason(r));
    hout_mem(&h, "\r\n", 2);
    struct resp_fields f;
    resp_fields_get(r, &f);
    setup_injection(c, &f);
    if (ex->inj)
        add_injected_headers(r, ex->csp_nonce, &h);
    else
        add_headers_filtered(r, &h, NULL);
    switch (ex->cl_pending ? H1_BODY_NONE : ex->inj ? H1_BODY_CHUNKED : ex->resp_framing) {
    case H1_BODY_NONE: {
        /* HEAD and 304 keep the upstream's Content-Length as metadata. */
        const char *cl = f.clen;
        if (cl && sc != 204 && sc >= 200 && !ex->cl_pending)
            hout_field(&h, "Content-Length", 14, cl);
        break;
    }
    case H1_BODY_LENGTH:
        hout_str(&h, "Content-Length: ");
        hout_u64(&h, ex->resp_left);
        hout_mem(&h, "\r\n", 2);
        break;
    case H1_BODY_CHUNKED:
    case H1_BODY_CLOSE:
        if (ex->minor >= 1) {
            ex->client_chunked = true;
            hout_str(&h, "Transfer-Encoding: chunked\r\n");
        } else {
            ex->keep_alive = false;
        }
        break;
    }
    if (!ex->keep_alive)
        hout_str(&h, "Connection: close\r\n");
    else if (ex->minor == 0)
        hout_str(&h, "Connection: keep-alive\r\n");
    if (!ex->cl_pending)
        hout_mem(&h, "\r\n", 2);
    else
        h.ev = stage_out(c); /* a pair end: the head goes in with its framing and first bytes */
    hout_flush(&h);
    ex->t.bytes_out += evbuffer_get_length(o) - before;
    ex->resp_started = true;
    capture(ex->ctype, sizeof ex->ctype, f.ctype);
    capture(ex->cenc, sizeof ex->cenc, f.cenc);
    capture(ex->cache, sizeof ex->cache, f.cache);
}

/* Returns true when the head is complete and handled (a final response started). */
static bool parse_response_head(struct conn *c)
{
    struct exchange_state *ex = &c->ex;
    struct evbuffer *in = bufferevent_get_input(ex->up->bev);
    while (evbuffer_get_length(in) > 0) {
        if (!ex->t.first_byte_us)
            ex->t.first_byte_us = exchange_now_us();
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            return false;
        size_t used = 0;
        int rc = h1_parser_feed(c->resp, v.iov_base, v.iov_len, &used);
        if (rc < 0) {
            reply_gateway_error(c, 502, "invalid response from upstream");
            return false;
        }
        evbuffer_drain(in, used);
        if (rc != H1_DONE)
            continue;
        int sc = h1_parser_status_code(c->resp);
        if (sc == 101) {
            if (!ex->upgrade) {
                reply_gateway_error(c, 502, "unexpected 101 from upstream");
                return false;
            }
            start_tunnel(c);
            return false;
        }
        if (sc < 200) {
            /* Interim response: forward (once for 100) to HTTP/1.1 clients, keep parsing. At
             * most PROXY_MAX_INTERIM of them: an upstream that streams 103s endlessly must not
             * fill the output of a client that does not read. */
            if (ex->minor >= 1 && !(sc == 100 && ex->sent_100) &&
                ex->interim_sent < PROXY_MAX_INTERIM) {
                ex->interim_sent++;
                struct evbuffer *o = cout(c);
                struct hout h;
    hout_init(&h, o);
                hout_str(&h, "HTTP/1.1 ");
                hout_u64(&h, (uint64_t)sc);
                hout_mem(&h, " ", 1);
                hout_str(&h, h1_parser_reason(c->resp));
                hout_mem(&h, "\r\n", 2);
                add_headers_filtered(c->resp, &h, NULL);
                hout_mem(&h, "\r\n", 2);
                hout_flush(&h);
                if (sc == 100)
                    ex->sent_100 = true;
            }
            h1_parser_reset(c->resp, ex->is_head);
            continue;
        }
        ex->resp_head_done = true;
        ex->status = sc;
        ex->resp_framing = h1_parser_framing(c->resp);
        ex->resp_left = h1_parser_content_length(c->resp);
        ex->up_clean = true;
        if (ex->upgrade)
            ex->up_clean = false; /* the app saw "Connection: upgrade" */
        h1_chunked_init(&ex->resp_chunk, PROXY_RESP_HEAD_MAX);
        send_response_head(c);
        /* Only chunked framing towards the client has room for trailers. */
        if (ex->client_chunked)
            h1_chunked_keep_trailers(&ex->resp_chunk);
        if (ex->resp_framing == H1_BODY_NONE)
            ex->resp_done = true;
        return true;
    }
    return false;
}

/* Moves n bytes of src to the client in the client's framing. */
static void put_framed(struct conn *c, struct evbuffer *src, size_t n)
{
    /* One write anyway (no chunk framing, nothing staged): straight to the output. */
    struct evbuffer *o = c->ex.client_chunked || (c->stage && evbuffer_get_length(c->stage))
                             ? stage_out(c)
                             : cout(c);
    if (n == 0) {
        stage_done(c);
        return;
    }
    if (c->ex.client_chunked) {
        char h[24]; /* chunk size line: hex digits, CRLF */
        size_t i = sizeof h - 2, v = n;
        h[i] = '\r';
        h[i + 1] = '\n';
        do {
            h[--i] = "0123456789abcdef"[v & 15];
            v >>= 4;
        } while (v);
        evbuffer_add(o, h + i, sizeof h - i);
    }
    evbuffer_remove_buffer(src, o, n);
    if (c->ex.client_chunked)
        evbuffer_add(o, "\r\n", 2);
    stage_done(c);
}

/* Ends a head sent without its framing (cl_pending): Content-Length once the injector knows
 * the output length, else (undecided and `decide_now`) chunked framing. */
static void end_pending_head(struct conn *c, bool decide_now)
{
    struct exchange_state *ex = &c->ex;
    size_t growth;
    if (!ex->cl_pending)
        return;
    struct hout h; /* put_framed follows: stage_done */
    hout_init(&h, stage_out(c));
    if (injector_identity_growth(ex->inj, &growth)) {
        hout_str(&h, "Content-Length: ");
        hout_u64(&h, ex->cl_upstream + growth);
        hout_mem(&h, "\r\n\r\n", 4);
    } else if (decide_now) {
        ex->client_chunked = true;
        hout_str(&h, "Transfer-Encoding: chunked\r\n\r\n");
    } else {
        return;
    }
    hout_flush(&h);
    ex->cl_pending = false;
}

/* n upstream body bytes from src: through the injector when there is one. */
static int emit(struct conn *c, struct evbuffer *src, size_t n)
{
    struct exchange_state *ex = &c->ex;
    ex->t.upstream_bytes += n;
    if (!ex->inj) {
        put_framed(c, src, n);
        return 0;
    }
    evbuffer_remove_buffer(src, ex->inj_in, n);
    if (injector_feed(ex->inj, ex->inj_in, ex->inj_out, 0) != 0)
        return -1;
    ex->inj_unflushed = true;
    end_pending_head(c, false);
    if (!ex->cl_pending)
        put_framed(c, ex->inj_out, evbuffer_get_length(ex->inj_out));
    return 0;
}

/* End of a read batch: the injector flushes once for all the upstream chunks of the batch, so
 * the client gets every byte available now without one encoder sync flush per upstream chunk
 * (with 1 KiB gzip chunks those flushes cost more than the rest of the re-encode). */
static int emit_flush(struct conn *c)
{
    struct exchange_state *ex = &c->ex;
    if (!ex->inj || !ex->inj_unflushed)
        return 0;
    size_t before = evbuffer_get_length(cout(c));
    ex->inj_unflushed = false;
    if (injector_feed(ex->inj, ex->inj_in, ex->inj_out, INJECTOR_FLUSH) != 0)
        return -1;
    end_pending_head(c, true);
    put_framed(c, ex->inj_out, evbuffer_get_length(ex->inj_out));
    ex->t.bytes_out += evbuffer_get_length(cout(c)) - before;
    return 0;
}

static int emit_end(struct conn *c)
{
    struct exchange_state *ex = &c->ex;
    size_t before = evbuffer_get_length(cout(c));
    if (ex->inj) {
        if (injector_feed(ex->inj, ex->inj_in, ex->inj_out, INJECTOR_END) != 0)
            return -1;
        end_pending_head(c, true);
        put_framed(c, ex->inj_out, evbuffer_get_length(ex->inj_out));
    }
    if (ex->client_chunked) {
        struct evbuffer *o = stage_out(c);
        evbuffer_add(o, "0\r\n", 3);
        /* An HTTP/2 client's stream reads this back with the same bound (conn_h2). */
        put_trailers(o, ex->resp_trailers, PROXY_RESP_HEAD_MAX - 3);
        evbuffer_add(o, "\r\n", 2);
        stage_done(c);
    }
    ex->t.bytes_out += evbuffer_get_length(cout(c)) - before;
    return 0;
}

/* A body that fails (invalid chunk framing, a corrupt or oversized encoding) before any byte of
 * the response left the proxy: the queued head and body are dropped and the client gets a 502
 * naming the reason instead of an empty reply. False when part of it may have been sent. */
static bool retract_response(struct conn *c, const char *why)
{
    struct exchange_state *ex = &c->ex;
    if (!ex->retractable || ex->retract_flushes != c->flushes || c->state != CS_PROXY)
        return false;
    struct evbuffer *o = cout(c);
    evbuffer_unfreeze(o, 1);
    evbuffer_drain(o, evbuffer_get_length(o));
    evbuffer_freeze(o, 1);
    ex->resp_started = ex->client_chunked = ex->cl_pending = false;
    ex->keep_alive = ex->up_clean = false;
    ex->t.bytes_out = 0;
    reply_gateway_error(c, 502, why);
    return true;
}

static void pump_response(struct conn *c)
{
    struct exchange_state *ex = &c->ex;
    struct evbuffer *in = bufferevent_get_input(ex->up->bev), *o = cout(c);
    while (!ex->resp_done && evbuffer_get_length(in) > 0 &&
           evbuffer_get_length(o) < PROXY_HIGH_WM) {
        size_t before = evbuffer_get_length(o);
        if (ex->resp_framing == H1_BODY_LENGTH) {
            size_t n = evbuffer_get_length(in);
            if (n > ex->resp_left)
                n = (size_t)ex->resp_left;
            if (emit(c, in, n) != 0)
                goto bad_body;
            ex->resp_left -= n;
            ex->resp_done = ex->resp_left == 0;
        } else if (ex->resp_framing == H1_BODY_CHUNKED) {
            struct evbuffer_iovec v;
            if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
                break;
            size_t used, dl;
            int rc = h1_chunked_feed(&ex->resp_chunk, v.iov_base, v.iov_len, &used, &dl);
            if (rc < 0) {
                if (retract_response(c, "invalid chunked response from upstream"))
                    return;
                ex->error = "invalid chunked response";
                ex->up_clean = false;
                conn_free(c); /* no terminating chunk: the client sees the failure */
                return;
            }
            evbuffer_drain(in, used - dl);
            if (rc == H1_CHUNK_TRAILER) {
                if (keep_trailer_bytes(&ex->resp_trailers, in, dl) != 0)
                    evbuffer_drain(in, dl); /* out of memory: the trailers are lost, not the body */
            } else if (dl && emit(c, in, dl) != 0) {
                goto bad_body;
            }
            if (rc == H1_CHUNK_END) {
                ex->resp_done = true;
                if (h1_chunked_cut(&ex->resp_chunk)) {
                    /* The body is whole; its trailers are dropped, and the bytes that follow
                     * are no message boundary: the upstream connection is not reused. */
                    ex->up_clean = false;
                    if (ex->resp_trailers)
                        evbuffer_drain(ex->resp_trailers, evbuffer_get_length(ex->resp_trailers));
                }
            }
        } else { /* H1_BODY_CLOSE: until EOF */
            if (emit(c, in, evbuffer_get_length(in)) != 0)
                goto bad_body;
        }
        ex->t.bytes_out += evbuffer_get_length(o) - before;
    }
    if (!ex->resp_done && emit_flush(c) != 0)
        goto bad_body;
    if (ex->resp_done && emit_end(c) != 0)
        goto bad_body;
    if (ex->resp_done) {
        if (ex->req_done || !ex->head_sent_up) {
            finish_exchange(c);
        } else {
            /* The app answered before the upload ended: it will not read the rest. */
            ex->keep_alive = false;
            ex->up_clean = false;
            finish_exchange(c);
        }
        return;
    }
    if (evbuffer_get_length(o) >= PROXY_HIGH_WM) {
        ex->paused_up = true;
        bufferevent_disable(ex->up->bev, EV_READ);
        bufferevent_setwatermark(c->bev, EV_WRITE, PROXY_LOW_WM, 0);
    }
    return;
bad_body:
    /* Corrupt compressed body or a decompression bomb: abort, never a body that looks whole. */
    if (retract_response(c, "response body could not be decoded"))
        return;
    ex->error = "response body could not be transformed";
    ex->up_clean = false;
    exchange_finish_log(c);
    conn_free(c);
}

/* libevent 2.1 reads at most 4 KiB per read callback (EVBUFFER_MAX_READ), whatever
 * bufferevent_set_max_single_read says, so a 100 KiB body took some 25 loop iterations, each
 * with its own ioctl, readv, writev and epoll_ctl. When one of its reads fills those 4 KiB, this
 * callback on the input buffer (registered once per plain upstream connection, see
 * on_upstream_ready) reads what else the socket holds straight into the input, bounded by the
 * high watermark and, once the head is known, by the body's length. It runs inside libevent's
 * read, before the loop's next epoll_wait. Done later, from the (deferred) read callback, the
 * socket was still readable at that epoll_wait and libevent's own read followed ours with a
 * wasted FIONREAD and an EAGAIN readv (about one pair per response under load, where deferred
 * callbacks run an iteration late); and an 8.6 KiB page whose first 4 KiB held the head took
 * three reads, since only a read after the head knew the body's framing. A direct read that
 * meets a reset consumes the error and libevent then reports a plain EOF: ex->up_read_err keeps
 * it, so that this EOF never completes a close-delimited body. EOF itself is left for libevent
 * (sticky). */
static void up_input_added(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg)
{
    struct upstream *u = arg;
    struct conn *c = u->owner;
    if (info->n_added < 4096 || !c || c->ex.up != u || c->state != CS_PROXY)
        return;
    struct exchange_state *ex = &c->ex;
    size_t have = evbuffer_get_length(in);
    if (ex->up_reading || ex->resp_done || evbuffer_get_length(cout(c)) >= PROXY_HIGH_WM)
        return;
    size_t want = PROXY_UP_READ_MAX > have ? PROXY_UP_READ_MAX - have : 0;
    if (ex->resp_head_done && ex->resp_framing == H1_BODY_LENGTH)
        want = ex->resp_left > have
                   ? (ex->resp_left - have < want ? (size_t)(ex->resp_left - have) : want)
                   : 0;
    if (want == 0)
        return;
    struct evbuffer_iovec v[2];
    int nv = evbuffer_reserve_space(in, (ev_ssize_t)want, v, 2);
    if (nv <= 0)
        return;
    struct iovec iov[2];
    for (int i = 0; i < nv; i++) {
        iov[i].iov_base = v[i].iov_base;
        iov[i].iov_len = v[i].iov_len;
    }
    ssize_t n = readv(bufferevent_getfd(u->bev), iov, nv);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        ex->up_read_err = true;
    size_t left = n > 0 ? (size_t)n : 0;
    int used = 0;
    for (; used < nv && left > 0; used++) {
        if (v[used].iov_len > left)
            v[used].iov_len = left;
        left -= v[used].iov_len;
    }
    ex->up_reading = true; /* the commit calls this callback again */
    evbuffer_commit_space(in, v, used);
    ex->up_reading = false;
}

static void up_read_cb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    struct exchange_state *ex = &c->ex;
    if (c->state == CS_TUNNEL) {
        struct evbuffer *in = bufferevent_get_input(bev);
        ex->t.bytes_out += evbuffer_get_length(in);
        evbuffer_add_buffer(cout(c), in);
        if (evbuffer_get_length(cout(c)) >= PROXY_HIGH_WM) {
            ex->paused_up = true;
            bufferevent_disable(bev, EV_READ);
            bufferevent_setwatermark(c->bev, EV_WRITE, PROXY_LOW_WM, 0);
        }
        return;
    }
    if (c->state != CS_PROXY)
        return;
    if (!ex->resp_head_done && !parse_response_head(c))
        return;
    pump_response(c);
}

static void retry_fresh(struct conn *c)
{
    struct exchange_state *ex = &c->ex;
    upstream_free(ex->up);
    ex->up = NULL;
    ex->retried = true;
    ex->head_sent_up = false;
    ex->t.first_byte_us = 0;
    ex->t.connect_start_us = exchange_now_us();
    ex->up_connecting = true;
    struct upstream *pend = upstream_acquire(c->w, c, false, on_upstream_ready);
    if (pend)
        ex->up = pend;
}

static void up_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;
    struct exchange_state *ex = &c->ex;
    if (c->state == CS_TUNNEL) {
        up_read_cb(bev, c);
        close_after_flush(c);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        if (!ex->resp_started) {
            reply_gateway_error(c, 504, "upstream timeout");
        } else {
            ex->error = "upstream timeout mid-body";
            exchange_finish_log(c);
            conn_free(c);
        }
        return;
    }
    /* EOF or error. */
    if (!ex->resp_head_done) {
        if (ex->t.first_byte_us == 0 && ex->reused && !ex->retried && ex->idempotent &&
            ex->req_framing == H1_BODY_NONE) {
            retry_fresh(c); /* a pooled connection the app had closed */
            return;
        }
        reply_gateway_error(c, 502, ex->t.first_byte_us ? "upstream sent an incomplete head"
                                                        : "upstream closed the connection");
        return;
    }
    if (ex->resp_framing == H1_BODY_CLOSE && (what & BEV_EVENT_EOF) && !ex->up_read_err) {
        pump_response(c);
        if (ex->resp_framing == H1_BODY_CLOSE && c->state == CS_PROXY) {
            if (ex->paused_up) {
                /* Client is slow: the rest of the body still sits in the upstream input. */
                ex->up_clean = false;
                bufferevent_disable(bev, EV_READ);
                return;
            }
            if (emit_end(c) != 0) {
                if (retract_response(c, "response body could not be decoded"))
                    return;
                ex->error = "response body could not be transformed";
                exchange_finish_log(c);
                conn_free(c);
                return;
            }
            ex->resp_done = true;
            ex->up_clean = false;
            finish_exchange(c);
        }
        return;
    }
    pump_response(c);
    if (c->state == CS_PROXY && !ex->resp_done) {
        ex->error = "upstream closed mid-body";
        exchange_finish_log(c);
        conn_free(c); /* never a truncated body that looks complete */
    }
}

static void finish_exchange(struct conn *c)
{
    struct exchange_state *ex = &c->ex;
    ex->t.last_byte_us = exchange_now_us();
    if (!ex->logged)
        exchange_finish_log(c);
    if (ex->up) {
        if (ex->up_clean && ex->req_done && !ex->up_connecting) {
            struct upstream *u = ex->up;
            ex->up = NULL;
            upstream_release(u);
        } else {
            upstream_free(ex->up);
            ex->up = NULL;
        }
    }
    exchange_dispose(c->w, ex);
    if (!ex->keep_alive || !ex->req_done || c->w->draining) {
        close_after_flush(c);
        return;
    }
    c->state = CS_HEAD;
    c->head_started = false;
    c->kept_alive = true;
    ex->paused_client = ex->paused_up = false;
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
    parser_put(c->w, c->resp, H1_RESPONSE);
    c->resp = NULL;
    if (evbuffer_get_length(cin(c)) == 0) {
        /* Idle keep-alive connections hold no parser memory. */
        parser_put(c->w, c->req, H1_REQUEST);
        c->req = NULL;
    } else {
        h1_parser_reset(c->req, false);
    }
    memset(ex, 0, sizeof *ex);
    set_deadline(c, opts(c)->idle_timeout_ms);
    if (evbuffer_get_length(cout(c)) >= PROXY_HIGH_WM && !c->pair) {
        /* A pipelining client that does not read its responses: the next request waits until
         * the output drains to the low watermark (client_write_cb), so replies never pile up
         * in memory. The idle timer still ends a client that never reads. */
        c->out_full = true;
        update_client_read(c);
        bufferevent_setwatermark(c->bev, EV_WRITE, PROXY_LOW_WM, 0);
        return;
    }
    update_client_read(c);
    if (evbuffer_get_length(cin(c)) > 0)
        bufferevent_trigger(c->bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

/* ---- off-loop API replies ---- */

void conn_await(struct conn *c, struct api_job *j)
{
    c->ex.api_job = j;
    c->state = CS_LOCAL_WAIT;
    update_client_read(c);
}

void conn_h1_api_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct worker *w = arg;
    pthread_mutex_lock(&w->api_mu);
    struct api_job *j = w->api_done;
    w->api_done = NULL;
    pthread_mutex_unlock(&w->api_mu);
    while (j) {
        struct api_job *next = j->next;
        struct conn *c = j->conn;
        if (c) {
            c->ex.api_job = NULL;
            char extra[256] = "Cache-Control: no-store\r\n";
            if (j->reply.content_disposition[0] &&
                strpbrk(j->reply.content_disposition, "\r\n") == NULL) {
                int n = snprintf(extra, sizeof extra,
                                 "Cache-Control: no-store\r\nContent-Disposition: %s\r\n",
                                 j->reply.content_disposition);
                if (n < 0 || (size_t)n >= sizeof extra)
                    snprintf(extra, sizeof extra, "Cache-Control: no-store\r\n");
            }
            if (j->rc != 0) {
                static const char e[] = "{\"error\":\"out of memory\"}\n";
                conn_reply(c, 500, "Internal Server Error", "application/json", extra, e,
                           sizeof e - 1);
            } else {
                size_t len = evbuffer_get_length(j->reply.body);
                const void *body = evbuffer_pullup(j->reply.body, -1);
                int st = j->reply.status >= 100 && j->reply.status <= 599 ? j->reply.status : 500;
                conn_reply(c, st, http_reason(st),
                           j->reply.content_type ? j->reply.content_type : "application/json",
                           extra, body, len);
            }
        }
        api_job_free(j);
        j = next;
    }
}

/* ---- accessors for exchange.c and route.c ---- */

void conn_exchange_info(struct conn *c, struct exchange_info *out)
{
    struct exchange_state *ex = &c->ex;
    memset(out, 0, sizeof *out);
    out->t = ex->t;
    out->status = ex->status;
    out->method = ex->method ? ex->method : "-";
    out->target = ex->target ? ex->target : "-";
    out->minor = ex->minor;
    out->peer = c->peer;
    bool have_head = c->req && ex->method && ex->method[0] != '-';
    out->host = have_head ? ex->rq.host : NULL;
    out->referer = have_head ? ex->rq.referer : NULL;
    out->user_agent = have_head ? ex->rq.user_agent : NULL;
    out->content_type = ex->ctype[0] ? ex->ctype : NULL;
    out->content_encoding = ex->cenc[0] ? ex->cenc : NULL;
    out->cache_control = ex->cache[0] ? ex->cache : NULL;
    out->error = ex->error;
    out->reused = ex->reused;
    out->injected = ex->inj && injector_injected(ex->inj);
    out->view_id = out->injected ? ex->view_id : NULL;
    out->protocol = c->proto;
    out->tls_version = c->tls_version[0] ? c->tls_version : NULL;
    out->forwarded = c->state == CS_PROXY || c->state == CS_TUNNEL || ex->head_sent_up ||
                     ex->up_connecting || (ex->error && ex->t.connect_start_us);
}

void conn_mark_logged(struct conn *c) { c->ex.logged = true; }

struct worker *conn_worker(struct conn *c) { return c->w; }

const char *conn_request_header(struct conn *c, const char *name)
{
    return c->req ? h1_parser_find(c->req, name) : NULL;
}

const char *conn_peer(struct conn *c) { return c->peer; }
