/* HTTP/2 server sessions (see conn_h2.h): nghttp2 does the framing, HPACK, flow-control
 * accounting and protocol validation (RFC 9113 field checks, pseudo-header rules,
 * content-length vs DATA); this file translates each stream to and from HTTP/1.1 for conn_h1.
 *
 * Per stream: the request head is collected from the header callbacks (bounded by
 * --max-header-bytes and --max-headers, as for HTTP/1.1), then written into our end of a
 * bufferevent pair as "METHOD path HTTP/1.1", Host from :authority, crumbled cookies joined,
 * Content-Length or chunked framing for the body. A body-less request leaves conn_h1 waiting for
 * the next head once its response is complete, so the pair is parked on the session (at most
 * H2_IDLE_PAIRS) and the next stream reuses it: no new pair, conn_h1 connection, timer or parsers.
 * A request with a body carries "Connection: close" and its pair is closed after one response,
 * as is any pair whose exchange did not end cleanly (local reply, reset, keep-alive refused,
 * bytes after the response, conn_h1 end gone). Request DATA goes in as it arrives; its
 * flow-control credit is given back (nghttp2_session_consume) only when conn_h1 has taken the
 * bytes, so a slow upstream slows the client's uploads instead of growing buffers. The response
 * head is conn_h1's own serialisation of a head its strict parser accepted, so it is split into
 * fields by a bounded reader of that form (proxy/h2_head) rather than parsed a second time;
 * the body goes through the project's chunked decoder; hop-by-hop fields are dropped and names
 * lowercased; the decoded body waits in st->body for the DATA provider.
 *
 * Trailers (RFC 9113 section 8.1): a chunked response's trailer section (conn_h1 forwards the
 * upstream's) is kept in st->trailers and goes out as the stream's last HEADERS frame, with
 * END_STREAM, after the last DATA frame, lower-cased, without pseudo-fields or the fields
 * h1_trailer_forbidden names. The client's trailers follow a chunked upload (a request without
 * content-length) to conn_h1 and the upstream; a request that announced its length goes up with
 * Content-Length framing, which has no room for them, so they are dropped there.
 *
 * Bounded buffering, whatever the client does:
 * - st->body holds at most H2_BODY_HIGH bytes: beyond it our pair end stops reading, so bytes
 *   stay in conn_h1's output, which makes conn_h1 stop reading the upstream (its own watermarks);
 *   reading resumes when the provider has drained st->body below H2_BODY_LOW.
 * - The TLS output holds at most about H2_OUT_HIGH bytes: nghttp2_session_mem_send is not called
 *   beyond it, and the write callback resumes sending. Frames are copied into H2_OUT_CHAIN-byte
 *   chains (an open evbuffer reservation during session_flush) rather than appended piecemeal:
 *   bufferevent_openssl makes one SSL_write, so one TLS record and one write(2), per chain, and
 *   a flush of many small responses then leaves in a few full records.
 * - Request bytes in flight are bounded by the stream and connection windows we advertise.
 *
 * Attacks: concurrent streams (SETTINGS_MAX_CONCURRENT_STREAMS), header list size (advertised
 * and enforced here), CONTINUATION floods and SETTINGS/ACK floods (nghttp2 limits), rapid reset
 * and control-frame floods (per-10 s budgets below, --h2-max-resets / --h2-max-control): the
 * session ends with GOAWAY ENHANCE_YOUR_CALM. Extended CONNECT is not advertised; CONNECT gets
 * 501.
 *
 * Lifetimes: a stream is freed only from nghttp2's stream-close callback (or with its session).
 * A session is freed only from a libevent callback, never from inside nghttp2, and every path
 * that may free it returns "gone" so callers stop touching it. */
#include "config.h"
#include "proxy/conn_h2.h"

#include "common/vp_buf.h"
#include "proxy/conn_h1.h"
#include "proxy/exchange.h"
#include "proxy/h1_parse.h"
#include "proxy/h2_head.h"
#include "proxy/proxy_internal.h"
#include "proxy/tls.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_struct.h>
#include <event2/event.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define H2_BODY_HIGH (64 * 1024)
#define H2_BODY_LOW (16 * 1024)
#define H2_OUT_HIGH (128 * 1024)
#define H2_STREAM_WINDOW (256 * 1024)
#define H2_CONN_WINDOW (1024 * 1024)
#define H2_WINDOW_US 10000000LL /* flood budgets are per 10 s */
/* Frames are copied into output chains of this size: bufferevent_openssl makes one SSL_write
 * (one TLS record, one write(2)) per chain, so full chains mean full records. */
#define H2_OUT_CHAIN (16 * 1024)
/* Least room worth continuing the last output chain with (see tail_room). */
#define H2_OUT_TAIL_MIN 1024
/* Idle bufferevent pairs (each with its keep-alive conn_h1 end) kept per session for the next
 * streams. Each counts as a connection (--max-connections) while parked. */
#define H2_IDLE_PAIRS 16
/* Finished streams kept per worker (with their empty evbuffers) for the next streams of any
 * session: a stream then costs no calloc and no evbuffer_new. About 0.8 KiB each. */
#define H2_SPARE_STREAMS 64
/* :path and :authority up to this length live in the stream (no malloc). */
#define H2_INLINE_PATH 256
#define H2_INLINE_AUTHORITY 128

struct h2_session;

struct h2_stream {
    struct h2_session *s;
    struct h2_stream *next, *prev;
    int32_t id;
    /* request */
    char method[32];
    char *path, *authority; /* path_buf / auth_buf, or malloc'd when longer */
    char path_buf[H2_INLINE_PATH], auth_buf[H2_INLINE_AUTHORITY];
    struct evbuffer *hdrs;   /* "Name: value\r\n" lines, already validated by nghttp2 */
    struct evbuffer *cookie; /* crumbs joined with "; " */
    size_t hdr_bytes;
    unsigned nhdr;
    bool too_large, bad, has_cl, is_head, chunked_up, req_ended, pair_closed;
    bool reusable; /* a body-less request and a clean keep-alive response so far */
    uint64_t cl;
    struct bufferevent *pair; /* our end; conn_h1 owns the other */
    size_t unconsumed;        /* DATA bytes not yet taken by conn_h1 */
    /* response */
    bool resp_submitted, resp_done, deferred, read_paused;
    enum h1_framing framing;
    uint64_t left;
    struct h1_chunked chunk;
    struct evbuffer *body; /* decoded response body waiting for DATA frames */
    /* Trailers: the response's section as conn_h1 sent it (the last HEADERS frame), and the
     * client's request trailers as "name: value" lines for the chunked upload. */
    struct evbuffer *trailers, *req_trailers;
    size_t req_trailer_bytes;
    bool req_trailers_over;
};

struct h2_session {
    struct worker *w;
    struct h2_session *next, *prev;
    struct bufferevent *bev;
    nghttp2_session *ng;
    char peer[INET6_ADDRSTRLEN];
    char tls_version[16];
    struct h2_stream *streams;
    unsigned nstreams;
    struct bufferevent *idle[H2_IDLE_PAIRS]; /* parked pairs, conn_h1 ends waiting for a head */
    unsigned nidle;
    bool closing; /* flush what is queued, then free */
    bool timeouts_set, timeouts_idle; /* update_idle_timeout: what the bufferevent has */
    /* The client does not read: its output is full and nghttp2 still has frames queued, so
     * its input is not read (every request would queue more, e.g. a RST_STREAM per refused
     * stream) until the output drains (sess_write_cb). */
    bool in_paused;
    /* Open reservation at the end of the TLS output (session_flush only; see out_put). */
    struct evbuffer_iovec wv;
    size_t wused;
    bool wopen;
    /* Room left in the chain the last commit ended in, and the output's length just after that
     * commit. While the length is the same (the socket has taken nothing since), the next
     * reservation continues that chain even when it has less than H2_OUT_CHAIN free, so the
     * frames of several flushes in one loop iteration leave in one TLS record. */
    size_t tail_room, tail_mark;
    int64_t win_start_us;
    unsigned resets, control;
};

static const struct vp_options *sopts(const struct h2_session *s) { return s->w->px->opt; }

static bool session_flush(struct h2_session *s);
static void pair_read_cb(struct bufferevent *bev, void *arg);

/* ---- streams ---- */

/* Ends our side of a pair: conn_h1 sees EOF on its end (it has logged a finished exchange
 * already; an unfinished one is logged as 499) and frees its connection at once. */
static void close_pair(struct bufferevent *p)
{
    bufferevent_flush(p, EV_READ | EV_WRITE, BEV_FINISHED);
    bufferevent_free(p);
}

static void unpark(struct h2_session *s, struct bufferevent *p)
{
    for (unsigned i = 0; i < s->nidle; i++) {
        if (s->idle[i] == p) {
            s->idle[i] = s->idle[--s->nidle];
            return;
        }
    }
}

/* A parked pair's conn_h1 end went away (idle timeout, drain) or, against the protocol, wrote
 * while idle: drop the pair. */
static void idle_read_cb(struct bufferevent *bev, void *arg)
{
    unpark(arg, bev);
    close_pair(bev);
}

static void idle_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)what;
    unpark(arg, bev);
    close_pair(bev);
}

/* A parked pair whose conn_h1 end is still there, or NULL. */
static struct bufferevent *take_parked(struct h2_session *s)
{
    while (s->nidle) {
        struct bufferevent *p = s->idle[--s->nidle];
        if (bufferevent_pair_get_partner(p) &&
            evbuffer_get_length(bufferevent_get_input(p)) == 0)
            return p;
        close_pair(p);
    }
    return NULL;
}

/* The stream is done with its pair: parked for the next stream when the exchange ended cleanly
 * (conn_h1 is then waiting for the next head), else closed. */
static void release_pair(struct h2_stream *st)
{
    if (!st->pair)
        return;
    struct h2_session *s = st->s;
    struct bufferevent *p = st->pair;
    st->pair = NULL;
    st->pair_closed = true;
    if (st->reusable && st->resp_done && s->nidle < H2_IDLE_PAIRS && !s->closing &&
        !s->w->draining && bufferevent_pair_get_partner(p) &&
        evbuffer_get_length(bufferevent_get_input(p)) == 0 &&
        evbuffer_get_length(bufferevent_get_output(p)) == 0) {
        bufferevent_setcb(p, idle_read_cb, NULL, idle_event_cb, s);
        bufferevent_enable(p, EV_READ);
        s->idle[s->nidle++] = p;
        return;
    }
    close_pair(p);
}

/* Frees a stream's evbuffers and the stream (the rest is released by stream_free). */
static void stream_dispose(struct h2_stream *st)
{
    if (st->hdrs)
        evbuffer_free(st->hdrs);
    if (st->cookie)
        evbuffer_free(st->cookie);
    if (st->body)
        evbuffer_free(st->body);
    free(st);
}

static void stream_free(struct h2_stream *st)
{
    struct h2_session *s = st->s;
    if (st->prev)
        st->prev->next = st->next;
    else
        s->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    s->nstreams--;
    release_pair(st);
    if (st->path != st->path_buf)
        free(st->path);
    if (st->authority != st->auth_buf)
        free(st->authority);
    if (st->trailers)
        evbuffer_free(st->trailers);
    if (st->req_trailers)
        evbuffer_free(st->req_trailers);
    struct worker *w = s->w;
    if (w->h2_nspare < H2_SPARE_STREAMS && !w->draining && st->hdrs && st->body) {
        /* Kept for the next stream, as new: zeroed, with its evbuffers emptied. */
        struct evbuffer *h = st->hdrs, *b = st->body, *c = st->cookie;
        evbuffer_drain(h, evbuffer_get_length(h));
        evbuffer_drain(b, evbuffer_get_length(b));
        if (c)
            evbuffer_drain(c, evbuffer_get_length(c));
        memset(st, 0, sizeof *st);
        st->hdrs = h;
        st->body = b;
        st->cookie = c;
        st->next = w->h2_spare;
        w->h2_spare = st;
        w->h2_nspare++;
        return;
    }
    stream_dispose(st);
}

static void update_idle_timeout(struct h2_session *s)
{
    /* Read timeout only while idle: a stream may legitimately wait long for the upstream
     * without any frame from the client. Writes always time out (a reader that stalls). Set
     * only when the session goes from idle to busy or back (re-arming both timers costs about
     * 700 instructions, once per stream open and close before). */
    bool idle = s->nstreams == 0;
    if (s->timeouts_set && s->timeouts_idle == idle)
        return;
    s->timeouts_set = true;
    s->timeouts_idle = idle;
    tls_conn_set_busy(s->bev, !idle);
    unsigned ms = sopts(s)->idle_timeout_ms;
    struct timeval tv = {ms / 1000, (suseconds_t)(ms % 1000) * 1000};
    bufferevent_set_timeouts(s->bev, s->nstreams ? NULL : &tv, &tv);
}

/* ---- output ---- */

/* Commits the bytes written into the open reservation. Nothing else may touch the TLS output
 * while a reservation is open (libevent's rule), so only session_flush opens one and closes it
 * before returning. */
static void out_commit(struct h2_session *s)
{
    if (s->wopen && s->wused) {
        struct evbuffer *out = bufferevent_get_output(s->bev);
        s->tail_room = s->wv.iov_len - s->wused;
        s->wv.iov_len = s->wused;
        evbuffer_commit_space(out, &s->wv, 1);
        s->tail_mark = evbuffer_get_length(out);
    }
    s->wopen = false;
    s->wused = 0;
}

/* Room for at least one byte in the open reservation, opening a new H2_OUT_CHAIN one if needed.
 * Returns the room, or 0 on allocation failure. */
static size_t out_room(struct h2_session *s)
{
    if (s->wopen && s->wused < s->wv.iov_len)
        return s->wv.iov_len - s->wused;
    out_commit(s);
    struct evbuffer *out = bufferevent_get_output(s->bev);
    size_t want = H2_OUT_CHAIN;
    if (s->tail_room >= H2_OUT_TAIL_MIN && s->tail_mark && evbuffer_get_length(out) == s->tail_mark)
        want = s->tail_room; /* what the last chain has: libevent reserves in it */
    if (evbuffer_reserve_space(out, (ev_ssize_t)want, &s->wv, 1) != 1)
        return 0;
    s->tail_room = 0;
    s->wopen = true;
    return s->wv.iov_len;
}

/* Appends n bytes to the TLS output through the reservation. 0 or -1 (out of memory). */
static int out_put(struct h2_session *s, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        size_t room = out_room(s);
        if (!room)
            return -1;
        size_t k = n < room ? n : room;
        memcpy((uint8_t *)s->wv.iov_base + s->wused, b, k);
        s->wused += k;
        b += k;
        n -= k;
    }
    return 0;
}

/* Moves n bytes from src to the TLS output through the reservation. 0 or -1. */
static int out_move(struct h2_session *s, struct evbuffer *src, size_t n)
{
    while (n) {
        size_t room = out_room(s);
        if (!room)
            return -1;
        size_t k = n < room ? n : room;
        if (evbuffer_remove(src, (uint8_t *)s->wv.iov_base + s->wused, k) != (int)k)
            return -1;
        s->wused += k;
        n -= k;
    }
    return 0;
}

/* Submits the response's trailer section (RFC 9113 section 8.1: a HEADERS frame with
 * END_STREAM after the last DATA) with lower-case names, leaving out what must not travel in
 * trailers (h1_trailer_forbidden: pseudo-fields, connection-specific and framing fields, ...).
 * Returns 0 when a HEADERS frame was queued, -1 when there was nothing to send or no memory. */
static int submit_trailers(nghttp2_session *ng, struct h2_stream *st)
{
    size_t len = st->trailers ? evbuffer_get_length(st->trailers) : 0;
    char *b = len ? (char *)evbuffer_pullup(st->trailers, -1) : NULL;
    if (!b)
        return -1;
    /* Each field line takes at least 4 bytes ("n:" CRLF), which bounds the array. */
    size_t cap = len / 4 + 1, k = 0, off = 0, nl, vl;
    nghttp2_nv *nva = malloc(cap * sizeof *nva);
    if (!nva)
        return -1;
    const char *n, *v;
    while (k < cap && h1_trailer_next(b, len, &off, &n, &nl, &v, &vl)) {
        if (h1_trailer_forbidden(n, nl))
            continue;
        char *ln = b + (n - b); /* our own copy: lower-cased in place */
        for (size_t i = 0; i < nl; i++)
            ln[i] = (char)tolower((unsigned char)ln[i]);
        nva[k++] = (nghttp2_nv){(uint8_t *)ln, (uint8_t *)(b + (v - b)), nl, vl,
                                NGHTTP2_NV_FLAG_NONE};
    }
    int rc = k ? nghttp2_submit_trailer(ng, st->id, nva, k) : -1;
    free(nva);
    return rc == 0 ? 0 : -1;
}

/* Sizes the next DATA frame; its bytes move later, without a copy, in send_body_cb. */
static ssize_t body_read_cb(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len,
                            uint32_t *flags, nghttp2_data_source *src, void *user)
{
    (void)id;
    (void)buf;
    (void)user;
    struct h2_stream *st = src->ptr;
    size_t have = evbuffer_get_length(st->body);
    if (have == 0 && !st->resp_done) {
        st->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    size_t n = have < len ? have : len;
    *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (st->resp_done && n == have) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (st->trailers && submit_trailers(ng, st) == 0)
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM; /* the trailers' HEADERS ends it */
        if (!st->req_ended) /* the response is complete: stop the upload (RFC 9113 8.1) */
            nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
    }
    return (ssize_t)n;
}

/* Writes one DATA frame: the 9-byte header, then the payload taken out of st->body, both into
 * the open output reservation (called from nghttp2_session_mem_send inside session_flush). */
static int send_body_cb(nghttp2_session *ng, nghttp2_frame *f, const uint8_t *framehd,
                        size_t length, nghttp2_data_source *src, void *user)
{
    (void)ng;
    struct h2_session *s = user;
    struct h2_stream *st = src->ptr;
    if (f->data.padlen > 0 || evbuffer_get_length(st->body) < length ||
        out_put(s, framehd, 9) != 0 || out_move(s, st->body, length) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (st->read_paused && st->pair && !st->pair_closed &&
        evbuffer_get_length(st->body) < H2_BODY_LOW) {
        st->read_paused = false;
        bufferevent_enable(st->pair, EV_READ);
        bufferevent_trigger(st->pair, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
    }
    return 0;
}

static void resume(struct h2_stream *st)
{
    if (st->deferred && st->resp_submitted) {
        st->deferred = false;
        nghttp2_session_resume_data(st->s->ng, st->id);
    }
}

/* A response made here (no upstream involved): 400, 431, 501, 502, 503. */
static void reply_local(struct h2_stream *st, int status, const char *text)
{
    st->reusable = false;
    if (st->resp_submitted)
        return;
    char sbuf[8], lbuf[24];
    snprintf(sbuf, sizeof sbuf, "%d", status);
    size_t tl = strlen(text);
    snprintf(lbuf, sizeof lbuf, "%zu", tl);
    if (!st->body)
        st->body = evbuffer_new();
    if (!st->body) {
        nghttp2_submit_rst_stream(st->s->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    evbuffer_drain(st->body, evbuffer_get_length(st->body));
    evbuffer_add(st->body, text, tl);
#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE}
    nghttp2_nv nva[] = {NV(":status", sbuf), NV("content-type", "text/plain; charset=utf-8"),
                        NV("content-length", lbuf), NV("cache-control", "no-store")};
#undef NV
    st->resp_done = true;
    st->resp_submitted = true;
    nghttp2_data_provider dp = {.source.ptr = st, .read_callback = body_read_cb};
    if (nghttp2_submit_response(st->s->ng, st->id, nva, 4, st->is_head ? NULL : &dp) != 0)
        nghttp2_submit_rst_stream(st->s->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
}

/* Where the head in `in` ends. Returns its contiguous bytes (*len: through the empty line), or
 * NULL with *len 0 when it is not complete yet, or NULL with *len 1 when it cannot be one (over
 * PROXY_RESP_HEAD_MAX, or no memory for the pull-up). */
static const char *pair_head_find(struct evbuffer *in, size_t *len)
{
    struct evbuffer_iovec v;
    *len = 0;
    if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
        return NULL;
    const char *b = v.iov_base, *e = h2_head_end(b, v.iov_len);
    size_t total = evbuffer_get_length(in);
    if (!e && total > v.iov_len) { /* the head spans chains: make it contiguous */
        size_t n = total < PROXY_RESP_HEAD_MAX ? total : PROXY_RESP_HEAD_MAX;
        b = (const char *)evbuffer_pullup(in, (ssize_t)n);
        if (!b) {
            *len = 1;
            return NULL;
        }
        e = h2_head_end(b, n);
    }
    if (!e || (size_t)(e - b) > PROXY_RESP_HEAD_MAX) {
        *len = !e && total < PROXY_RESP_HEAD_MAX ? 0 : 1;
        return NULL;
    }
    *len = (size_t)(e - b);
    return b;
}

/* Turns the response head into HEADERS: a final response, or (interim) a 1xx such as 103 Early
 * Hints, which goes out as its own HEADERS frame before the final one. */
static void submit_head(struct h2_stream *st, const struct h2_head *h, bool interim)
{
    if (interim) {
        nghttp2_submit_headers(st->s->ng, NGHTTP2_FLAG_NONE, st->id, NULL, h->nva, h->nv, NULL);
        return;
    }
    st->resp_submitted = true;
    nghttp2_data_provider dp = {.source.ptr = st, .read_callback = body_read_cb};
    bool body = st->framing != H1_BODY_NONE;
    if (!body)
        st->resp_done = true;
    if (nghttp2_submit_response(st->s->ng, st->id, h->nva, h->nv, body ? &dp : NULL) != 0)
        nghttp2_submit_rst_stream(st->s->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
    else if (!body && !st->req_ended)
        nghttp2_submit_rst_stream(st->s->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
}

/* Parses what conn_h1 sent back; false when the response is broken (stream reset/answered). */
static bool take_response(struct h2_stream *st)
{
    struct evbuffer *in = bufferevent_get_input(st->pair);
    while (!st->resp_submitted && evbuffer_get_length(in) > 0) {
        size_t hl;
        const char *b = pair_head_find(in, &hl);
        if (!b && hl == 0)
            break; /* the rest of the head comes with the next write */
        struct h2_head h;
        if (!b || !h2_head_parse(b, hl, &h)) {
            if (b)
                h2_head_dispose(&h);
            evbuffer_drain(in, evbuffer_get_length(in));
            reply_local(st, 502, "502 Bad Gateway: invalid response\n");
            return false;
        }
        if (h.status < 200) {
            /* Interim: 103 Early Hints goes on as HEADERS; 100 Continue means nothing in h2. */
            if (h.status == 103)
                submit_head(st, &h, true);
            h2_head_dispose(&h);
            evbuffer_drain(in, hl);
            continue;
        }
        /* The framing RFC 9112 section 6.3 gives the response, as conn_h1 framed it. */
        if (st->is_head || h.status == 204 || h.status == 304)
            st->framing = H1_BODY_NONE;
        else if (h.chunked)
            st->framing = H1_BODY_CHUNKED;
        else if (h.has_cl)
            st->framing = h.cl > 0 ? H1_BODY_LENGTH : H1_BODY_NONE;
        else
            st->framing = H1_BODY_CLOSE;
        st->left = st->framing == H1_BODY_LENGTH ? h.cl : 0;
        st->reusable = st->reusable && !h.close && st->framing != H1_BODY_CLOSE;
        h1_chunked_init(&st->chunk, PROXY_RESP_HEAD_MAX);
        h1_chunked_keep_trailers(&st->chunk);
        submit_head(st, &h, false);
        h2_head_dispose(&h);
        evbuffer_drain(in, hl);
    }
    while (st->resp_submitted && !st->resp_done && evbuffer_get_length(in) > 0 &&
           evbuffer_get_length(st->body) < H2_BODY_HIGH) {
        if (st->framing == H1_BODY_LENGTH) {
            size_t n = evbuffer_get_length(in);
            if (n > st->left)
                n = (size_t)st->left;
            evbuffer_remove_buffer(in, st->body, n);
            st->left -= n;
            st->resp_done = st->left == 0;
        } else if (st->framing == H1_BODY_CHUNKED) {
            struct evbuffer_iovec v;
            if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
                break;
            size_t used, dl;
            int rc = h1_chunked_feed(&st->chunk, v.iov_base, v.iov_len, &used, &dl);
            if (rc < 0) {
                evbuffer_drain(in, evbuffer_get_length(in));
                nghttp2_submit_rst_stream(st->s->ng, NGHTTP2_FLAG_NONE, st->id,
                                          NGHTTP2_INTERNAL_ERROR);
                return false;
            }
            evbuffer_drain(in, used - dl);
            if (rc != H1_CHUNK_TRAILER)
                evbuffer_remove_buffer(in, st->body, dl);
            else if ((!st->trailers && !(st->trailers = evbuffer_new())) ||
                     evbuffer_remove_buffer(in, st->trailers, dl) != (int)dl)
                evbuffer_drain(in, dl); /* out of memory: the trailers are lost, not the body */
            if (rc == H1_CHUNK_END) {
                st->resp_done = true;
                if (h1_chunked_cut(&st->chunk)) { /* conn_h1 never sends that: not reused */
                    st->reusable = false;
                    if (st->trailers)
                        evbuffer_drain(st->trailers, evbuffer_get_length(st->trailers));
                }
            }
        } else { /* close-delimited: until conn_h1 closes its end */
            evbuffer_add_buffer(st->body, in);
        }
    }
    if (st->resp_done) {
        if (evbuffer_get_length(in))
            st->reusable = false; /* bytes after the response: conn_h1 is not where we think */
        evbuffer_drain(in, evbuffer_get_length(in));
        if (st->unconsumed) {
            nghttp2_session_consume(st->s->ng, st->id, st->unconsumed);
            st->unconsumed = 0;
        }
        release_pair(st); /* conn_h1 would otherwise linger on its end */
    }
    return true;
}

static void pair_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct h2_stream *st = arg;
    struct h2_session *s = st->s;
    if (!take_response(st)) {
        st->reusable = false;
        release_pair(st);
    }
    else if (!st->resp_done && evbuffer_get_length(st->body) >= H2_BODY_HIGH) {
        st->read_paused = true;
        bufferevent_disable(st->pair, EV_READ);
    }
    if (evbuffer_get_length(st->body) || st->resp_done)
        resume(st);
    session_flush(s);
}

static void pair_write_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct h2_stream *st = arg;
    /* conn_h1 took the request bytes: give the client its window back. */
    if (st->unconsumed && evbuffer_get_length(bufferevent_get_output(st->pair)) == 0) {
        nghttp2_session_consume(st->s->ng, st->id, st->unconsumed);
        st->unconsumed = 0;
        session_flush(st->s);
    }
}

static void pair_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    struct h2_stream *st = arg;
    struct h2_session *s = st->s;
    st->reusable = false;
    /* conn_h1 closed its end: finish from what it sent. */
    if (!st->resp_done)
        take_response(st);
    release_pair(st);
    if (st->unconsumed) {
        nghttp2_session_consume(s->ng, st->id, st->unconsumed);
        st->unconsumed = 0;
    }
    if (!st->resp_submitted) {
        reply_local(st, 502, "502 Bad Gateway: no response\n");
    } else if (!st->resp_done) {
        if (st->framing == H1_BODY_CLOSE) {
            st->resp_done = true;
        } else {
            /* Never a truncated body that looks complete. */
            nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
        }
    }
    resume(st);
    session_flush(s);
}

static void start_exchange(struct h2_stream *st, bool end_stream)
{
    struct h2_session *s = st->s;
    st->req_ended = end_stream;
    if (st->too_large) {
        reply_local(st, 431, "431 Request Header Fields Too Large\n");
        return;
    }
    if (strcmp(st->method, "CONNECT") == 0) {
        reply_local(st, 501, "501 Not Implemented: CONNECT\n");
        return;
    }
    if (st->bad || !st->method[0] || !st->path || st->path[0] != '/') {
        reply_local(st, 400, "400 Bad Request\n");
        return;
    }
    st->is_head = strcmp(st->method, "HEAD") == 0;
    if (!st->body)
        st->body = evbuffer_new();
    if (!st->body) {
        reply_local(st, 503, "503 Service Unavailable: out of memory\n");
        return;
    }
    /* Only body-less requests leave conn_h1 certainly waiting for the next head afterwards. */
    st->reusable = end_stream;
    st->pair = take_parked(s);
    if (!st->pair) {
        struct bufferevent *pair[2];
        if (bufferevent_pair_new(s->w->base, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS,
                                 pair)) {
            reply_local(st, 503, "503 Service Unavailable: out of memory\n");
            return;
        }
        if (conn_h1_attach(s->w, pair[0], s->peer, "h2",
                           s->tls_version[0] ? s->tls_version : NULL)) {
            bufferevent_free(pair[0]);
            bufferevent_free(pair[1]);
            reply_local(st, 503, "503 Service Unavailable: out of memory\n");
            return;
        }
        st->pair = pair[1];
    }
    /* The head is completed around the header lines in st->hdrs and moves into the pair in one
     * piece: each write into a pair end hands the bytes over to conn_h1's end at once (about a
     * thousand instructions per transfer). */
    struct evbuffer *h = st->hdrs;
    char line[2048];
    size_t ml = strlen(st->method), pl = strlen(st->path);
    size_t al = st->authority ? strlen(st->authority) : 0;
    if (ml + pl + al + 24 <= sizeof line) {
        size_t o = 0;
        memcpy(line + o, st->method, ml);
        o += ml;
        line[o++] = ' ';
        memcpy(line + o, st->path, pl);
        o += pl;
        memcpy(line + o, " HTTP/1.1\r\n", 11);
        o += 11;
        if (st->authority) {
            memcpy(line + o, "Host: ", 6);
            o += 6;
            memcpy(line + o, st->authority, al);
            o += al;
            line[o++] = '\r';
            line[o++] = '\n';
        }
        evbuffer_prepend(h, line, o);
    } else {
        struct evbuffer *t = evbuffer_new();
        if (!t) {
            reply_local(st, 503, "503 Service Unavailable: out of memory\n");
            return;
        }
        evbuffer_add_printf(t, "%s %s HTTP/1.1\r\n", st->method, st->path);
        if (st->authority)
            evbuffer_add_printf(t, "Host: %s\r\n", st->authority);
        evbuffer_prepend_buffer(h, t);
        evbuffer_free(t);
    }
    if (st->cookie && evbuffer_get_length(st->cookie)) {
        evbuffer_add(h, "Cookie: ", 8);
        evbuffer_add_buffer(h, st->cookie);
        evbuffer_add(h, "\r\n", 2);
    }
    if (end_stream) {
        if (st->has_cl)
            evbuffer_add(h, "Content-Length: 0\r\n", 19);
    } else if (st->has_cl) {
        evbuffer_add_printf(h, "Content-Length: %llu\r\n", (unsigned long long)st->cl);
    } else {
        st->chunked_up = true;
        evbuffer_add(h, "Transfer-Encoding: chunked\r\n", 28);
    }
    if (st->reusable)
        evbuffer_add(h, "\r\n", 2);
    else
        evbuffer_add(h, "Connection: close\r\n\r\n", 21);
    evbuffer_add_buffer(bufferevent_get_output(st->pair), h);
    bufferevent_setcb(st->pair, pair_read_cb, pair_write_cb, pair_event_cb, st);
    bufferevent_enable(st->pair, EV_READ | EV_WRITE);
}

static void end_request(struct h2_stream *st)
{
    if (st->req_ended)
        return;
    st->req_ended = true;
    if (st->pair && !st->pair_closed && st->chunked_up) {
        struct evbuffer *h = st->hdrs; /* one write into the pair, as for the chunks */
        evbuffer_add(h, "0\r\n", 3);
        if (st->req_trailers && !st->req_trailers_over)
            evbuffer_add_buffer(h, st->req_trailers);
        evbuffer_add(h, "\r\n", 2);
        evbuffer_add_buffer(bufferevent_get_output(st->pair), h);
    }
}

/* One field of the client's trailer section (nghttp2 has checked it: no pseudo-fields, valid
 * names and values, END_STREAM). It follows a chunked upload to conn_h1 and the upstream. A
 * request that announced its length goes up with Content-Length framing, which has no room for
 * trailers: they are dropped, as RFC 9110 section 6.5.1 permits. The section is bounded like a
 * head (--max-header-bytes, less the framing conn_h1 counts with it); beyond, all of it is
 * dropped. */
static void request_trailer(struct h2_stream *st, const uint8_t *name, size_t nl,
                            const uint8_t *value, size_t vl)
{
    if (!st->chunked_up || st->req_ended || !st->pair || st->pair_closed ||
        st->req_trailers_over || h1_trailer_forbidden((const char *)name, nl))
        return;
    st->req_trailer_bytes += nl + vl + 4;
    if (st->req_trailer_bytes + 3 > sopts(st->s)->max_header_bytes ||
        memchr(value, '\r', vl) || memchr(value, '\n', vl) || memchr(value, '\0', vl) ||
        (!st->req_trailers && !(st->req_trailers = evbuffer_new()))) {
        st->req_trailers_over = true;
        return;
    }
    evbuffer_add(st->req_trailers, name, nl);
    evbuffer_add(st->req_trailers, ": ", 2);
    evbuffer_add(st->req_trailers, value, vl);
    evbuffer_add(st->req_trailers, "\r\n", 2);
}

/* ---- nghttp2 callbacks ---- */

static struct h2_stream *stream_of(nghttp2_session *ng, int32_t id)
{
    return nghttp2_session_get_stream_user_data(ng, id);
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
    struct h2_session *s = user;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct worker *w = s->w;
    struct h2_stream *st = w->h2_spare;
    if (st) {
        w->h2_spare = st->next;
        w->h2_nspare--;
        st->next = NULL;
    } else {
        st = calloc(1, sizeof *st);
        if (!st)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        st->hdrs = evbuffer_new();
        if (!st->hdrs) {
            free(st);
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
    }
    st->s = s;
    st->id = f->hd.stream_id;
    st->next = s->streams;
    if (s->streams)
        s->streams->prev = st;
    s->streams = st;
    s->nstreams++;
    nghttp2_session_set_stream_user_data(ng, st->id, st);
    update_idle_timeout(s);
    return 0;
}

/* Sets *dst to a NUL-terminated copy of v[0..l): in buf (cap bytes) when it fits, else on the
 * heap. False when out of memory (*dst is then NULL). */
static bool set_slice(char **dst, char *buf, size_t cap, const uint8_t *v, size_t l)
{
    if (*dst != buf)
        free(*dst);
    char *p = l < cap ? buf : malloc(l + 1);
    if (p) {
        memcpy(p, v, l);
        p[l] = '\0';
    }
    *dst = p;
    return p != NULL;
}

static bool slice_is(const uint8_t *n, size_t nl, const char *lit)
{
    return nl == strlen(lit) && memcmp(n, lit, nl) == 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                     size_t nl, const uint8_t *value, size_t vl, uint8_t flags, void *user)
{
    (void)flags;
    struct h2_session *s = user;
    if (f->hd.type != NGHTTP2_HEADERS)
        return 0;
    struct h2_stream *st = stream_of(ng, f->hd.stream_id);
    if (st && f->headers.cat == NGHTTP2_HCAT_HEADERS) {
        request_trailer(st, name, nl, value, vl);
        return 0;
    }
    if (!st || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    /* Same budget as an HTTP/1.1 head: bytes of "name: value\r\n" and the field count. */
    st->hdr_bytes += nl + vl + 4;
    if (st->too_large || st->hdr_bytes > sopts(s)->max_header_bytes ||
        ++st->nhdr > sopts(s)->max_headers) {
        st->too_large = true;
        return 0;
    }
    if (memchr(value, '\r', vl) || memchr(value, '\n', vl) || memchr(value, '\0', vl)) {
        st->bad = true; /* nghttp2 refuses these already; never let one reach a head */
        return 0;
    }
    if (nl && name[0] == ':') {
        if (slice_is(name, nl, ":method")) {
            if (vl == 0 || vl >= sizeof st->method)
                st->bad = true;
            else {
                memcpy(st->method, value, vl);
                st->method[vl] = '\0';
            }
        } else if (slice_is(name, nl, ":path")) {
            st->bad |= !set_slice(&st->path, st->path_buf, sizeof st->path_buf, value, vl);
        } else if (slice_is(name, nl, ":authority")) {
            st->bad |= !set_slice(&st->authority, st->auth_buf, sizeof st->auth_buf, value, vl);
        } else if (!slice_is(name, nl, ":scheme")) {
            st->bad = true; /* :protocol (extended CONNECT is not offered) */
        }
        return 0;
    }
    if (slice_is(name, nl, "host")) {
        if (!st->authority)
            st->bad |= !set_slice(&st->authority, st->auth_buf, sizeof st->auth_buf, value, vl);
        return 0;
    }
    if (slice_is(name, nl, "cookie")) {
        if (!st->cookie && !(st->cookie = evbuffer_new())) {
            st->bad = true;
            return 0;
        }
        if (evbuffer_get_length(st->cookie))
            evbuffer_add(st->cookie, "; ", 2);
        evbuffer_add(st->cookie, value, vl);
        return 0;
    }
    if (slice_is(name, nl, "content-length")) {
        /* nghttp2 checked it is a number and will check it against the DATA received. */
        uint64_t v = 0;
        for (size_t i = 0; i < vl; i++) {
            if (value[i] < '0' || value[i] > '9' || v > (UINT64_MAX - 9) / 10) {
                st->bad = true;
                return 0;
            }
            v = v * 10 + (uint64_t)(value[i] - '0');
        }
        st->has_cl = true;
        st->cl = v;
        return 0;
    }
    if (slice_is(name, nl, "te") || slice_is(name, nl, "connection") ||
        slice_is(name, nl, "keep-alive") || slice_is(name, nl, "transfer-encoding") ||
        slice_is(name, nl, "upgrade") || slice_is(name, nl, "proxy-connection"))
        return 0;
    char lb[512]; /* "name: value" CRLF in one append when it fits */
    if (nl + vl + 4 <= sizeof lb) {
        memcpy(lb, name, nl);
        memcpy(lb + nl, ": ", 2);
        memcpy(lb + nl + 2, value, vl);
        memcpy(lb + nl + 2 + vl, "\r\n", 2);
        evbuffer_add(st->hdrs, lb, nl + vl + 4);
    } else {
        evbuffer_add(st->hdrs, name, nl);
        evbuffer_add(st->hdrs, ": ", 2);
        evbuffer_add(st->hdrs, value, vl);
        evbuffer_add(st->hdrs, "\r\n", 2);
    }
    return 0;
}

/* Spends one unit of a per-10 s budget; over budget ends the session (ENHANCE_YOUR_CALM). */
static bool over_budget(struct h2_session *s, unsigned *counter, unsigned max)
{
    int64_t now = exchange_now_us();
    if (now - s->win_start_us > H2_WINDOW_US) {
        s->win_start_us = now;
        s->resets = s->control = 0;
    }
    if (++*counter <= max)
        return false;
    nghttp2_session_terminate_session(s->ng, NGHTTP2_ENHANCE_YOUR_CALM);
    return true;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
    struct h2_session *s = user;
    struct h2_stream *st = f->hd.stream_id ? stream_of(ng, f->hd.stream_id) : NULL;
    switch (f->hd.type) {
    case NGHTTP2_HEADERS:
        if (!st)
            break;
        if (f->headers.cat == NGHTTP2_HCAT_REQUEST)
            start_exchange(st, f->hd.flags & NGHTTP2_FLAG_END_STREAM);
        else if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
            end_request(st);
        break;
    case NGHTTP2_DATA:
        if (f->hd.length == 0 && !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
            over_budget(s, &s->control, sopts(s)->h2_max_control);
        if (st && (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
            end_request(st);
        break;
    case NGHTTP2_RST_STREAM:
        over_budget(s, &s->resets, sopts(s)->h2_max_resets);
        break;
    case NGHTTP2_PING:
    case NGHTTP2_SETTINGS:
        if (!(f->hd.flags & NGHTTP2_FLAG_ACK))
            over_budget(s, &s->control, sopts(s)->h2_max_control);
        break;
    case NGHTTP2_PRIORITY:
        over_budget(s, &s->control, sopts(s)->h2_max_control);
        break;
    default:
        break;
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *user)
{
    (void)flags;
    (void)user;
    struct h2_stream *st = stream_of(ng, id);
    if (!st || !st->pair || st->pair_closed || st->resp_done) {
        nghttp2_session_consume(ng, id, len); /* nobody will read it: drop, keep windows open */
        return 0;
    }
    struct evbuffer *out = bufferevent_get_output(st->pair);
    if (st->chunked_up) {
        /* The chunk is assembled in st->hdrs (emptied by start_exchange) and enters the pair in
         * one write, as the request head did. */
        evbuffer_add_printf(st->hdrs, "%zx\r\n", len);
        evbuffer_add(st->hdrs, data, len);
        evbuffer_add(st->hdrs, "\r\n", 2);
        evbuffer_add_buffer(out, st->hdrs);
    } else {
        evbuffer_add(out, data, len);
    }
    st->unconsumed += len;
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t err, void *user)
{
    (void)err;
    struct h2_session *s = user;
    struct h2_stream *st = stream_of(ng, id);
    if (st) {
        nghttp2_session_set_stream_user_data(ng, id, NULL);
        stream_free(st);
        update_idle_timeout(s);
    }
    return 0;
}

/* ---- session ---- */

static void session_free(struct h2_session *s)
{
    struct worker *w = s->w;
    while (s->streams)
        stream_free(s->streams);
    while (s->nidle)
        close_pair(s->idle[--s->nidle]);
    if (s->prev)
        s->prev->next = s->next;
    else
        w->h2_sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    nghttp2_session_del(s->ng);
    bufferevent_free(s->bev);
    free(s);
    w->nconns--;
    atomic_fetch_sub(&w->px->nconns, 1);
    if (w->draining && w->nconns == 0)
        event_base_loopexit(w->base, NULL);
}

/* Moves frames from nghttp2 to the socket while the output is below H2_OUT_HIGH. Returns false
 * when the session was freed. */
static bool session_flush(struct h2_session *s)
{
    struct evbuffer *out = bufferevent_get_output(s->bev);
    while (evbuffer_get_length(out) + s->wused < H2_OUT_HIGH) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(s->ng, &data);
        if (n < 0 || (n > 0 && out_put(s, data, (size_t)n) != 0)) {
            out_commit(s);
            session_free(s);
            return false;
        }
        if (n == 0)
            break;
    }
    out_commit(s);
    if (!nghttp2_session_want_read(s->ng) && !nghttp2_session_want_write(s->ng))
        s->closing = true;
    if (s->closing) {
        bufferevent_disable(s->bev, EV_READ);
        if (evbuffer_get_length(out) == 0) {
            session_free(s);
            return false;
        }
    }
    /* Called back when the output drains to H2_OUT_HIGH / 2 to send more. */
    bufferevent_setwatermark(s->bev, EV_WRITE, H2_OUT_HIGH / 2, 0);
    /* The bufferevent would only turn its write event on here and write once epoll_wait says
     * the socket is writable: an epoll_ctl to add EPOLLOUT, a loop iteration, the write, an
     * epoll_ctl to remove it again, for every flush of a session that keeps up. Activating its
     * write event runs its write callback later in this loop iteration instead, after the
     * callbacks queued so far; when that write takes everything, the event's add and delete
     * meet in libevent's changelist and no epoll_ctl is made. What the socket does not take
     * waits for EPOLLOUT as before. */
    if (evbuffer_get_length(out) > 0)
        event_active(&s->bev->ev_write, EV_WRITE, 1);
    return true;
}

static void sess_read_cb(struct bufferevent *bev, void *arg)
{
    struct h2_session *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer *out = bufferevent_get_output(bev);
    while (evbuffer_get_length(in) > 0 && !s->closing) {
        if (evbuffer_get_length(out) >= H2_OUT_HIGH && nghttp2_session_want_write(s->ng)) {
            s->in_paused = true;
            bufferevent_disable(bev, EV_READ);
            break;
        }
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        ssize_t n = nghttp2_session_mem_recv(s->ng, v.iov_base, v.iov_len);
        if (n < 0) {
            /* Bad preface, flood or fatal protocol error: say why in a GOAWAY (nghttp2 may
             * have queued one already; then this is a no-op), send it, close. */
            uint32_t code = n == NGHTTP2_ERR_FLOODED || n == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS
                                ? NGHTTP2_ENHANCE_YOUR_CALM
                                : NGHTTP2_PROTOCOL_ERROR;
            if (n != NGHTTP2_ERR_BAD_CLIENT_MAGIC)
                nghttp2_session_terminate_session(s->ng, code);
            s->closing = true;
            break;
        }
        evbuffer_drain(in, (size_t)n);
    }
    if (s->closing)
        evbuffer_drain(in, evbuffer_get_length(in));
    if (!session_flush(s))
        return;
    /* A busy session reads ahead (tls_conn_set_busy): bufferevent_openssl stops reading when a
     * record is used up even though more records may wait inside OpenSSL, which no socket event
     * will announce; its read event is run again for them. */
    if (!s->closing && !s->in_paused && tls_conn_has_pending(bev))
        event_active(&bev->ev_read, EV_READ, 1);
}

static void sess_write_cb(struct bufferevent *bev, void *arg)
{
    struct h2_session *s = arg;
    if (!session_flush(s))
        return;
    if (s->in_paused && !s->closing &&
        evbuffer_get_length(bufferevent_get_output(bev)) < H2_OUT_HIGH) {
        s->in_paused = false;
        bufferevent_enable(bev, EV_READ);
        if (evbuffer_get_length(bufferevent_get_input(bev)) > 0)
            sess_read_cb(bev, s);
        else if (tls_conn_has_pending(bev))
            event_active(&bev->ev_read, EV_READ, 1);
    }
}

static void sess_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct h2_session *s = arg;
    if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) && !s->closing) {
        /* Idle (the read timeout only runs without streams): say goodbye properly. */
        nghttp2_session_terminate_session(s->ng, NGHTTP2_NO_ERROR);
        s->closing = true;
        session_flush(s);
        return;
    }
    session_free(s); /* EOF, error, write timeout */
}

int h2_session_start(struct worker *w, struct bufferevent *bev, const char *peer,
                     const char *tls_version)
{
    const struct vp_options *o = w->px->opt;
    struct h2_session *s = calloc(1, sizeof *s);
    nghttp2_session_callbacks *cb = NULL;
    nghttp2_option *opt = NULL;
    if (!s || nghttp2_session_callbacks_new(&cb) != 0 || nghttp2_option_new(&opt) != 0)
        goto fail;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_send_data_callback(cb, send_body_cb);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_outbound_ack(opt, 1000);
    nghttp2_option_set_max_settings(opt, 32);
    nghttp2_option_set_max_continuations(opt, 8);
    nghttp2_option_set_stream_reset_rate_limit(opt, 1000, 33);
    if (nghttp2_session_server_new2(&s->ng, cb, s, opt) != 0) {
        s->ng = NULL;
        goto fail;
    }
    nghttp2_session_callbacks_del(cb);
    nghttp2_option_del(opt);
    cb = NULL;
    opt = NULL;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, o->h2_max_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)o->max_header_bytes},
    };
    if (nghttp2_submit_settings(s->ng, NGHTTP2_FLAG_NONE, iv, 3) != 0 ||
        nghttp2_session_set_local_window_size(s->ng, NGHTTP2_FLAG_NONE, 0, H2_CONN_WINDOW) != 0)
        goto fail;
    s->w = w;
    s->bev = bev;
    snprintf(s->peer, sizeof s->peer, "%s", peer ? peer : "-");
    snprintf(s->tls_version, sizeof s->tls_version, "%s", tls_version ? tls_version : "");
    s->win_start_us = exchange_now_us();
    s->next = w->h2_sessions;
    if (w->h2_sessions)
        w->h2_sessions->prev = s;
    w->h2_sessions = s;
    w->nconns++;
    bufferevent_setcb(bev, sess_read_cb, sess_write_cb, sess_event_cb, s);
    update_idle_timeout(s);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    /* With nothing to write yet the write event waits for output (libevent adds it again when
     * the output gains bytes, as after each flush that empties it) instead of firing on the
     * socket's writability: when the preface is read in a later loop iteration (a burst of
     * handshakes defers callbacks there), that cost an epoll_ctl to add EPOLLOUT and one to
     * remove it. */
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        event_del(&bev->ev_write);
    if (w->draining)
        nghttp2_submit_goaway(s->ng, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0);
    if (evbuffer_get_length(bufferevent_get_input(bev)))
        sess_read_cb(bev, s);
    else if (tls_conn_has_pending(bev))
        /* The client's preface arrived with its last handshake flight and waits inside OpenSSL
         * (read ahead during the handshake, tls.c), where no socket event announces it: its
         * read runs in this loop iteration, and the server's SETTINGS leave with the reply to
         * the client's (one record and one write(2) instead of two). */
        event_active(&bev->ev_read, EV_READ, 1);
    else
        session_flush(s);
    return 0;
fail:
    if (cb)
        nghttp2_session_callbacks_del(cb);
    if (opt)
        nghttp2_option_del(opt);
    if (s && s->ng)
        nghttp2_session_del(s->ng);
    free(s);
    bufferevent_free(bev);
    atomic_fetch_sub(&w->px->nconns, 1);
    return VP_ERR_NOMEM;
}

void h2_drain_all(struct worker *w)
{
    struct h2_session *s = w->h2_sessions, *next;
    for (; s; s = next) {
        next = s->next;
        nghttp2_submit_goaway(s->ng, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(s->ng), NGHTTP2_NO_ERROR,
                              NULL, 0);
        session_flush(s);
    }
}

void h2_free_all(struct worker *w)
{
    while (w->h2_sessions)
        session_free(w->h2_sessions);
    while (w->h2_spare) {
        struct h2_stream *st = w->h2_spare;
        w->h2_spare = st->next;
        stream_dispose(st);
    }
    w->h2_nspare = 0;
    /* conn_h1_free_all ran first: what streams gave back since is freed here. */
    while (w->nspare[1])
        h1_parser_free(w->spare[1][--w->nspare[1]]);
}
