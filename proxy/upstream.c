/* Upstream connections: connect with a timeout, trying each resolved address in turn (so
 * "localhost" works whether the app listens on ::1 or 127.0.0.1), and a per-worker LIFO pool of
 * idle HTTP/1.1 keep-alive connections. Invariants: an idle connection has no owner, reads
 * enabled (any byte or EOF from it means it is unusable: freed at once) and an idle timeout; an
 * owned connection's callbacks belong to the owner (conn_h1), which sets them on hand-over.
 *
 * An https:// upstream connects the same way through an OpenSSL bufferevent (proxy/tls.c): the
 * connection counts as connected once the handshake is done, and a handshake failure names its
 * reason ("upstream TLS: certificate verify failed: ..."). An established TLS connection sends
 * close_notify when it is dropped.
 *
 * --upstream-connect-timeout is a deadline for the whole set-up, every address tried and the
 * TLS handshake included, kept by one timer per pending connection: the bufferevent's own
 * timeouts restart with every byte, so an upstream that accepted and then sent its handshake a
 * byte at a time would hold the request for as long as it kept trickling.
 *
 * Waiting for a busy connection: when a burst of new client connections keeps the loop busy
 * (TLS handshakes), each new request finds the pool empty because the responses that would free
 * pooled connections have arrived but not been read yet; connecting at once would open an
 * upstream connection per request, most of them closed again beyond --upstream-idle. So a
 * request that finds no idle connection while this worker has connections busy with exchanges
 * (`busy`: owned, connecting or connected, and expected back), and while the loop is behind
 * (its current iteration has run callbacks for WAIT_LAG_US since the poll), waits on the worker's
 * wait list instead, as long as there are fewer than WAITERS_PER_BUSY waiters per busy connection:
 * a release puts the connection in the pool and activates the wait event, which hands pooled
 * connections to the oldest waiters. A waiter connects when its wait is over (wait_us), at most
 * PROXY_UPSTREAM_WAIT_MAX_US: twice the recent connect time (connect_avg_us, loop time from
 * connect to connected: what connecting would cost, the delays of a loop kept busy by
 * handshakes included), or twice the time exchanges have lately held a connection (busy_avg_us)
 * if that is longer and either short (WAIT_SHORT_US) or a few connect times (then the loop, not
 * the upstream, is what is slow, and responses come as late as connects). An exchange time of
 * its own (a slow upstream on a loop that is not busy) is not worth waiting for: a waiter then
 * connects after twice the connect time, at the earliest after the loop's next poll (the loop's
 * cached time changes only there). A wait also ends at once when closed busy connections leave
 * too many waiters. On a loop that keeps up, busy connections are busy with the upstream: a
 * page's burst of requests over one HTTP/2 connection then runs side by side as before (30
 * streams of 20 ms after 20 sequential ones: 30 upstream connections and the last answer at
 * 29-33 ms, where waiting without the lag condition gave 11 connections and 68 ms). A request
 * with no busy connection, a retry on a fresh connection
 * (allow_pool false), drain mode and --upstream-idle 0 connect without waiting. A waiter is a
 * pending connection without a bufferevent: its owner sees it as connecting, its set-up
 * deadline runs from the request, and upstream_free takes it off the list. */
#include "config.h"
#include "proxy/proxy_internal.h"
#include "proxy/tls.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Waiters allowed per busy connection: the second is served by the connection's next release. */
#define WAITERS_PER_BUSY 2
/* Exchanges this short are always worth waiting for (twice this at most). */
#define WAIT_SHORT_US 25000
/* Requests wait only while the loop is at least this far behind (loop_lag_us): on a loop that
 * keeps up, busy connections are busy with the upstream, and a page's burst of requests (an
 * HTTP/2 page load) would queue behind one another instead of running side by side. */
#define WAIT_LAG_US 2000

struct pending {
    struct upstream u;
    upstream_ready_cb cb;
    int tried;
    struct event *deadline; /* while connecting: the set-up's deadline; NULL once connected */
    int64_t connect_us;     /* loop time the connect started */
};

static void ms_tv(struct timeval *tv, unsigned ms)
{
    tv->tv_sec = ms / 1000;
    tv->tv_usec = (suseconds_t)(ms % 1000) * 1000;
}

static void us_tv(struct timeval *tv, int64_t us)
{
    tv->tv_sec = (time_t)(us / 1000000);
    tv->tv_usec = (suseconds_t)(us % 1000000);
}

static int64_t loop_now_us(struct worker *w)
{
    struct timeval tv;
    if (event_base_gettimeofday_cached(w->base, &tv) != 0)
        return 0;
    return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

/* How long the loop has been running callbacks since its last poll returned: a loop this far
 * behind has likely left responses unread that would free busy connections. */
static int64_t loop_lag_us(struct worker *w)
{
    struct timeval now;
    if (evutil_gettimeofday(&now, NULL) != 0)
        return 0;
    return (int64_t)now.tv_sec * 1000000 + now.tv_usec - loop_now_us(w);
}

/* Counts u in (or out of) the connections waiters may get back. */
static void busy_set(struct upstream *u, bool busy)
{
    if (u->busy == busy)
        return;
    u->busy = busy;
    if (busy) {
        u->w->nbusy++;
        u->busy_since_us = loop_now_us(u->w);
    } else {
        u->w->nbusy--;
    }
}

/* Has the wait event serve the waiters later in this loop iteration. */
static void wait_wake(struct worker *w)
{
    if (w->nwait && w->wait_ev)
        event_active(w->wait_ev, EV_TIMEOUT, 1);
}

/* More requests wait than the busy connections left may serve (WAITERS_PER_BUSY each). */
static bool waiters_over(const struct worker *w)
{
    return w->nwait > WAITERS_PER_BUSY * w->nbusy;
}

/* u stops counting as busy without going back to the pool (freed, or kept by a tunnel): the
 * waiters it would have served connect now if those left cannot serve them all. */
static void busy_end(struct upstream *u)
{
    busy_set(u, false);
    if (waiters_over(u->w))
        wait_wake(u->w);
}

static void wait_unlink(struct upstream *u)
{
    struct worker *w = u->w;
    if (u->prev)
        u->prev->next = u->next;
    else
        w->wait_head = u->next;
    if (u->next)
        u->next->prev = u->prev;
    else
        w->wait_tail = u->prev;
    u->next = u->prev = NULL;
    u->waiting = false;
    w->nwait--;
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
    struct worker *w = u->w;
    if (u->waiting) {
        wait_unlink(u);
    } else if (!u->owner && (u->prev || w->idle == u)) {
        idle_unlink(u);
        w->nidle--;
    }
    if (u->busy)
        busy_end(u);
    if (u->bev) {
        if (u->tls)
            tls_client_close_notify(u->bev, false);
        bufferevent_free(u->bev);
    }
    struct pending *p = (struct pending *)u; /* every upstream is a pending's first member */
    if (p->deadline)
        event_free(p->deadline);
    free(p);
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

void upstream_set_timeouts(struct upstream *u, int which)
{
    if (u->tmo == which)
        return;
    u->tmo = (signed char)which;
    struct timeval tv;
    ms_tv(&tv, u->w->px->opt->upstream_timeout_ms);
    bufferevent_set_timeouts(u->bev, which == UPSTREAM_TMO_EXCHANGE ? &tv : NULL, &tv);
}

/* Closes the pooled connections that have been idle for PROXY_UPSTREAM_IDLE_MS and runs again
 * when the next one will have. One timer per worker instead of an idle timeout per connection:
 * setting and clearing a connection's timeouts on every release and reuse re-added its events
 * each time. */
static void pool_sweep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct worker *w = arg;
    w->pool_armed = false;
    int64_t now = loop_now_us(w), next = INT64_MAX, idle_us = PROXY_UPSTREAM_IDLE_MS * 1000LL;
    struct upstream *u = w->idle, *nx;
    for (; u; u = nx) {
        nx = u->next;
        if (now - u->idle_since_us >= idle_us)
            upstream_free(u);
        else if (u->idle_since_us + idle_us < next)
            next = u->idle_since_us + idle_us;
    }
    if (next != INT64_MAX) {
        int64_t d = next - now;
        struct timeval tv = {(time_t)(d / 1000000), (suseconds_t)(d % 1000000)};
        if (evtimer_add(w->pool_ev, &tv) == 0)
            w->pool_armed = true;
    }
}

/* Starts the sweep of a pool that has just received a connection; false when the timer cannot
 * be set up (the connection then gets an idle timeout of its own). */
static bool pool_arm(struct worker *w)
{
    if (w->pool_armed)
        return true;
    if (!w->pool_ev && !(w->pool_ev = evtimer_new(w->base, pool_sweep, w)))
        return false;
    struct timeval tv;
    ms_tv(&tv, PROXY_UPSTREAM_IDLE_MS);
    if (evtimer_add(w->pool_ev, &tv) != 0)
        return false;
    w->pool_armed = true;
    return true;
}

void upstream_release(struct upstream *u)
{
    struct worker *w = u->w;
    const struct vp_options *o = w->px->opt;
    u->owner = NULL;
    if (u->busy) {
        int64_t held = loop_now_us(w) - u->busy_since_us;
        if (held >= 0)
            w->busy_avg_us += (held - w->busy_avg_us) / 8;
        busy_set(u, false);
    }
    /* A full pool still takes the connection a waiter is waiting for. */
    if (w->draining || (w->nidle >= o->upstream_idle_max && !w->nwait) ||
        evbuffer_get_length(bufferevent_get_input(u->bev)) > 0) {
        upstream_free(u);
        return;
    }
    bufferevent_setcb(u->bev, idle_read_cb, NULL, idle_event_cb, u);
    bufferevent_setwatermark(u->bev, EV_READ, 0, 0);
    bufferevent_setwatermark(u->bev, EV_WRITE, 0, 0);
    /* The exchange's read timeout stays (a pooled connection reads, to see the app close it):
     * it is at least the idle time, so the sweep closes the connection first. A shorter one
     * would cut the idle time: then the connection has the idle timeout instead, as when the
     * sweep cannot be set up. */
    if (o->upstream_timeout_ms < PROXY_UPSTREAM_IDLE_MS || !pool_arm(w)) {
        struct timeval tv;
        ms_tv(&tv, PROXY_UPSTREAM_IDLE_MS);
        bufferevent_set_timeouts(u->bev, &tv, NULL);
        u->tmo = 0;
    } else {
        upstream_set_timeouts(u, UPSTREAM_TMO_EXCHANGE);
    }
    u->idle_since_us = loop_now_us(w);
    if (!(bufferevent_get_enabled(u->bev) & EV_READ)) /* else a needless re-add of the event */
        bufferevent_enable(u->bev, EV_READ);
    u->next = w->idle;
    u->prev = NULL;
    if (w->idle)
        w->idle->prev = u;
    w->idle = u;
    w->nidle++;
    wait_wake(w);
}

void upstream_keep(struct upstream *u)
{
    busy_end(u);
}

void upstream_pool_clear(struct worker *w)
{
    while (w->idle)
        upstream_free(w->idle);
    if (w->pool_ev) {
        event_free(w->pool_ev);
        w->pool_ev = NULL;
        w->pool_armed = false;
    }
    /* Drain mode keeps the event of waiting requests: they still connect when their wait ends. */
    if (w->wait_ev && !w->wait_head) {
        event_free(w->wait_ev);
        w->wait_ev = NULL;
    }
}

static int start_connect(struct pending *p);

/* TLS: the TCP connection is established (the handshake is what is pending). */
static bool tcp_up(struct bufferevent *bev)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    return getpeername(bufferevent_getfd(bev), (struct sockaddr *)&ss, &sl) == 0;
}

/* The set-up's deadline passed (connect_event_cb has not run: it frees the timer): the pending
 * connection is closed and the owner told, as for a timeout. */
static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct pending *p = arg;
    struct upstream *u = &p->u;
    struct conn *c = u->owner;
    upstream_ready_cb cb = p->cb;
    bool handshaking = u->tls && u->bev && tcp_up(u->bev);
    upstream_free(u);
    cb(c, NULL, -1, handshaking ? "upstream TLS: handshake timeout" : "connect timeout");
}

static void connect_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct pending *p = arg;
    struct upstream *u = &p->u;
    struct conn *c = u->owner;
    struct worker *w = u->w;
    if (what & BEV_EVENT_CONNECTED) {
        event_free(p->deadline);
        p->deadline = NULL;
        int one = 1;
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        u->connected = true;
        w->up_pref = u->addr_idx;
        int64_t took = loop_now_us(w) - p->connect_us;
        if (took >= 0)
            w->connect_avg_us += (took - w->connect_avg_us) / 8;
        bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
        p->cb(c, u, 0, NULL);
        return;
    }
    bool timeout = (what & BEV_EVENT_TIMEOUT) != 0;
    const char *tls_why = NULL;
    bool handshaking = u->tls && tcp_up(bev); /* TLS: the TCP connection was up */
    if (u->tls) {
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
    upstream_free(u); /* its deadline; bev is gone */
    cb(c, NULL, -1,
       tls_why       ? tls_why
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

/* Takes the most recently used idle connection for c. */
static struct upstream *take_idle(struct worker *w, struct conn *c)
{
    struct upstream *u = w->idle;
    idle_unlink(u);
    w->nidle--;
    u->owner = c;
    u->reused = true;
    busy_set(u, true);
    bufferevent_setcb(u->bev, NULL, NULL, NULL, NULL);
    /* The owner sets its timeouts in the callback; those it finds already set count from
     * the connection's last read. After more than 1 % of the upstream timeout (at most
     * 0.1 s) in the pool they are set again, so the timeout runs from the request. */
    int64_t slack = (int64_t)w->px->opt->upstream_timeout_ms * 10;
    if (loop_now_us(w) - u->idle_since_us > (slack < 100000 ? slack : 100000))
        u->tmo = 0;
    return u;
}

/* Starts p's connect, trying each address in turn; false when none could start (p is then
 * freed and its owner called back). */
static bool begin_connect(struct pending *p)
{
    struct worker *w = p->u.w;
    busy_set(&p->u, true);
    p->connect_us = loop_now_us(w);
    while (start_connect(p) != 0) {
        if (++p->tried >= w->px->n_up) {
            struct conn *c = p->u.owner;
            upstream_ready_cb cb = p->cb;
            upstream_free(&p->u);
            cb(c, NULL, -1, "connect failed");
            return false;
        }
        p->u.addr_idx = (p->u.addr_idx + 1) % w->px->n_up;
    }
    return true;
}

/* How long a request waits for a busy connection (see the top of the file). */
static int64_t wait_us(const struct worker *w)
{
    int64_t c = w->connect_avg_us, b = w->busy_avg_us, t = 2 * c;
    if ((b <= WAIT_SHORT_US || b <= 4 * c) && 2 * b > t)
        t = 2 * b;
    return t < PROXY_UPSTREAM_WAIT_MAX_US ? t : PROXY_UPSTREAM_WAIT_MAX_US;
}

/* The wait event: released connections go to the oldest waiters; a waiter whose wait is over,
 * or one too many for the busy connections left, connects; the timer is set again for the
 * oldest waiter still waiting. Every callback may add or free waiters and take or return pooled
 * connections, so each step starts again from the list's head. */
static void wait_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct worker *w = arg;
    while (w->wait_head && w->idle) {
        struct pending *p = (struct pending *)w->wait_head;
        struct conn *c = p->u.owner;
        upstream_ready_cb cb = p->cb;
        upstream_free(&p->u);
        struct upstream *u = take_idle(w, c);
        cb(c, u, 0, NULL);
    }
    int64_t now = loop_now_us(w), wait = wait_us(w);
    while (w->wait_head && (now - w->wait_head->idle_since_us >= wait || waiters_over(w))) {
        struct upstream *u = w->wait_head;
        wait_unlink(u);
        begin_connect((struct pending *)u);
    }
    if (w->wait_head) {
        int64_t left = wait - (now - w->wait_head->idle_since_us);
        struct timeval tv;
        us_tv(&tv, left > 0 ? left : 0);
        if (evtimer_add(w->wait_ev, &tv) != 0) { /* cannot wait: connect them all now */
            while (w->wait_head) {
                struct upstream *u = w->wait_head;
                wait_unlink(u);
                begin_connect((struct pending *)u);
            }
        }
    }
}

/* Puts p on the wait list (see the top of the file); false when the wait event cannot be set. */
static bool wait_add(struct worker *w, struct pending *p)
{
    if (!w->wait_ev && !(w->wait_ev = evtimer_new(w->base, wait_cb, w)))
        return false;
    if (!w->wait_head) {
        struct timeval tv;
        us_tv(&tv, wait_us(w));
        if (evtimer_add(w->wait_ev, &tv) != 0)
            return false;
    }
    struct upstream *u = &p->u;
    u->waiting = true;
    u->idle_since_us = loop_now_us(w);
    u->prev = w->wait_tail;
    u->next = NULL;
    if (w->wait_tail)
        w->wait_tail->next = u;
    else
        w->wait_head = u;
    w->wait_tail = u;
    w->nwait++;
    return true;
}

struct upstream *upstream_acquire(struct worker *w, struct conn *c, bool allow_pool,
                                  upstream_ready_cb cb)
{
    if (allow_pool && w->idle) {
        struct upstream *u = take_idle(w, c);
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
    struct timeval tv;
    ms_tv(&tv, w->px->opt->upstream_connect_timeout_ms);
    if (!(p->deadline = evtimer_new(w->base, deadline_cb, p)) || evtimer_add(p->deadline, &tv)) {
        upstream_free(&p->u);
        cb(c, NULL, -1, "out of memory");
        return NULL;
    }
    if (allow_pool && w->nwait < WAITERS_PER_BUSY * w->nbusy && !w->draining &&
        w->px->opt->upstream_idle_max > 0 && loop_lag_us(w) >= WAIT_LAG_US && wait_add(w, p))
        return &p->u;
    return begin_connect(p) ? &p->u : NULL;
}
