/* Upstream connections: connect with a timeout, trying each resolved address in turn (so
 * "localhost" works whether the app listens on ::1 or 127.0.0.1), and a per-worker LIFO pool of
 * idle HTTP/1.1 keep-alive connections. Invariants: an idle connection has no owner, reads
 * enabled (any byte or EOF from it means it is unusable: freed at once) and an idle timeout; an
 * owned connection's callbacks belong to the owner (conn_h1), which sets them on hand-over.
 *
 * An https:// upstream connects the same way through an OpenSSL bufferevent (proxy/tls.c): the
 * connection counts as connected once the handshake is done, the connect timeout also bounds the
 * handshake (no progress for that long), and a handshake failure names its reason
 * ("upstream TLS: certificate verify failed: ..."). An established TLS connection sends
 * close_notify when it is dropped. */
#include "config.h"
#include "proxy/proxy_internal.h"
#include "proxy/tls.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>

struct pending {
    struct upstream u;
    upstream_ready_cb cb;
    int tried;
};

static void ms_tv(struct timeval *tv, unsigned ms)
{
    tv->tv_sec = ms / 1000;
    tv->tv_usec = (suseconds_t)(ms % 1000) * 1000;
}

static void idle_unlink(struct upstream *u)
{
    struct worker *w = u->w;
    if (u->prev)
        u->prev->next = u->next;
    else if (w->idle == u)
        w->idle = u->next;
    if (u->next)
        u->next->prev = u->prev;
    u->next = u->prev = NULL;
}

void upstream_free(struct upstream *u)
{
    if (!u)
        return;
    if (!u->owner && (u->prev || u->w->idle == u)) {
        idle_unlink(u);
        u->w->nidle--;
    }
    if (u->bev) {
        if (u->tls)
            tls_client_close_notify(u->bev, false);
        bufferevent_free(u->bev);
    }
    free(u); /* struct upstream is the first member of struct pending */
}

static void idle_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    upstream_free(arg); /* unsolicited bytes: the connection is out of sync */
}

static void idle_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    upstream_free(arg);
}

void upstream_release(struct upstream *u)
{
    struct worker *w = u->w;
    const struct vp_options *o = w->px->opt;
    u->owner = NULL;
    if (w->draining || w->nidle >= o->upstream_idle_max ||
        evbuffer_get_length(bufferevent_get_input(u->bev)) > 0) {
        upstream_free(u);
        return;
    }
    struct timeval tv;
    ms_tv(&tv, PROXY_UPSTREAM_IDLE_MS);
    bufferevent_setcb(u->bev, idle_read_cb, NULL, idle_event_cb, u);
    bufferevent_setwatermark(u->bev, EV_READ, 0, 0);
    bufferevent_setwatermark(u->bev, EV_WRITE, 0, 0);
    bufferevent_set_timeouts(u->bev, &tv, NULL);
    if (!(bufferevent_get_enabled(u->bev) & EV_READ)) /* else a needless re-add of the event */
        bufferevent_enable(u->bev, EV_READ);
    u->next = w->idle;
    u->prev = NULL;
    if (w->idle)
        w->idle->prev = u;
    w->idle = u;
    w->nidle++;
}

void upstream_pool_clear(struct worker *w)
{
    while (w->idle)
        upstream_free(w->idle);
}

static int start_connect(struct pending *p);

static void connect_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct pending *p = arg;
    struct upstream *u = &p->u;
    struct conn *c = u->owner;
    struct worker *w = u->w;
    if (what & BEV_EVENT_CONNECTED) {
        int one = 1;
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        u->connected = true;
        w->up_pref = u->addr_idx;
        bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
        p->cb(c, u, 0, NULL);
        return;
    }
    bool timeout = (what & BEV_EVENT_TIMEOUT) != 0;
    const char *tls_why = NULL;
    bool handshaking = false; /* TLS: the TCP connection was up */
    if (u->tls) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        handshaking = getpeername(bufferevent_getfd(bev), (struct sockaddr *)&ss, &sl) == 0;
        if (!timeout)
            tls_why = tls_client_failure(bev, w->up_err, sizeof w->up_err);
        if (!timeout && !tls_why && handshaking)
            tls_why = "upstream TLS: connection closed during the handshake";
    }
    bufferevent_free(u->bev);
    u->bev = NULL;
    if (!timeout && !tls_why && ++p->tried < w->px->n_up) {
        u->addr_idx = (u->addr_idx + 1) % w->px->n_up;
        if (start_connect(p) == 0)
            return;
    }
    upstream_ready_cb cb = p->cb;
    free(p);
    cb(c, NULL, -1, tls_why         ? tls_why
                    : handshaking ? "upstream TLS: handshake timeout"
                    : timeout     ? "connect timeout"
                                  : "connection refused");
}

static int start_connect(struct pending *p)
{
    struct upstream *u = &p->u;
    struct worker *w = u->w;
    const int bo = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;
    u->tls = w->px->up_tls != NULL;
    u->bev = u->tls ? tls_client_bufferevent(w->px->up_tls, w, bo)
                    : bufferevent_socket_new(w->base, -1, bo);
    if (!u->bev)
        return -1;
    bufferevent_set_max_single_read(u->bev, PROXY_MAX_SINGLE_IO);
    bufferevent_set_max_single_write(u->bev, PROXY_MAX_SINGLE_IO);
    struct timeval tv;
    ms_tv(&tv, w->px->opt->upstream_connect_timeout_ms);
    /* A handshake waits on reads as well as writes. */
    bufferevent_set_timeouts(u->bev, u->tls ? &tv : NULL, &tv);
    bufferevent_setcb(u->bev, NULL, NULL, connect_event_cb, p);
    if (bufferevent_socket_connect(u->bev, (struct sockaddr *)&w->px->up_addr[u->addr_idx],
                                   (int)w->px->up_len[u->addr_idx]) != 0) {
        bufferevent_free(u->bev);
        u->bev = NULL;
        return -1;
    }
    return 0;
}

struct upstream *upstream_acquire(struct worker *w, struct conn *c, bool allow_pool,
                                  upstream_ready_cb cb)
{
    if (allow_pool && w->idle) {
        struct upstream *u = w->idle;
        idle_unlink(u);
        w->nidle--;
        u->owner = c;
        u->reused = true;
        bufferevent_setcb(u->bev, NULL, NULL, NULL, NULL);
        /* The idle timeout is replaced by the owner's, set in the callback. */
        cb(c, u, 0, NULL);
        return NULL;
    }
    struct pending *p = calloc(1, sizeof *p);
    if (!p) {
        cb(c, NULL, -1, "out of memory");
        return NULL;
    }
    p->u.w = w;
    p->u.owner = c;
    p->u.addr_idx = w->up_pref;
    p->cb = cb;
    while (start_connect(p) != 0) {
        if (++p->tried >= w->px->n_up) {
            free(p);
            cb(c, NULL, -1, "connect failed");
            return NULL;
        }
        p->u.addr_idx = (p->u.addr_idx + 1) % w->px->n_up;
    }
    return &p->u;
}

void upstream_cancel(struct upstream *u) { upstream_free(u); }
