/* proxy/ internals shared by listener, conn_h1, upstream, route and exchange (module-private:
 * nothing outside proxy/ includes this).
 *
 * Threading: one struct proxy, read-only after start-up except the atomic connection count;
 * one struct worker per event-loop thread, owning its conns and its upstream pool. Nothing in a
 * worker is touched by another thread; the main thread only event_active()s stop_ev. */
#ifndef VP_PROXY_INTERNAL_H
#define VP_PROXY_INTERNAL_H

#include "proxy/h1_parse.h"
#include "proxy/options.h"

#include <event2/event.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct api_job;
struct api_pool;
struct bufferevent;
struct rate_limiter;
struct evbuffer;
struct evconnlistener;
struct conn;
struct tls_server;
struct tls_client;
struct ssl_session_st;
struct tls_pending;
struct h2_session;
struct h2_stream;
struct injector;

#define PROXY_MAX_ADDRS 8
/* Output bytes queued for one side before the other side stops being read, and the level at
 * which reading resumes. Bounds per-connection memory whatever the body size. */
#define PROXY_HIGH_WM (256 * 1024)
#define PROXY_LOW_WM (64 * 1024)
/* Largest single read/write on a socket bufferevent (libevent's default is 16 KiB). */
#define PROXY_MAX_SINGLE_IO (256 * 1024)
/* Largest direct read of a response body (conn_h1.c up_read_more). */
#define PROXY_UP_READ_MAX (128 * 1024)
/* Idle pooled upstream connections are dropped after this (below Node's 5 s keepAliveTimeout,
 * so the proxy, not the app, closes first in the common case). */
#define PROXY_UPSTREAM_IDLE_MS 4000
/* Longest a request waits for a busy upstream connection to be released before it connects
 * one of its own (upstream.c, wait_us, says how long it waits below this). */
#define PROXY_UPSTREAM_WAIT_MAX_US 1000000
#define PROXY_RESP_HEAD_MAX (64 * 1024)
/* Spare head parsers kept per worker and kind (request, response), so a keep-alive exchange
 * does not malloc/free two parsers; idle connections still hold none. */
#define PROXY_SPARE_PARSERS 64
/* Spare evbuffers kept per worker for the injector's input and output (conn_h1.c buf_get). */
#define PROXY_SPARE_BUFS 32
/* Spare identity injectors kept per worker (conn_h1.c inj_get). */
#define PROXY_SPARE_INJ 16

struct proxy {
    const struct vp_options *opt;
    struct sockaddr_storage up_addr[PROXY_MAX_ADDRS];
    socklen_t up_len[PROXY_MAX_ADDRS];
    int n_up;
    int listen_fd;
    atomic_uint nconns;
    struct worker *workers;
    unsigned nworkers;
    struct h1_limits req_limits;
    struct h1_limits resp_limits;
    struct store *store;        /* may be NULL */
    atomic_ulong records_dropped; /* timing records refused by a full store queue */
    struct api_pool *api;       /* JSON API threads; NULL without a store */
    const char *beacon_src;     /* "/__vitals/beacon.js?v=HASH", NULL without the asset */
    char beacon_src_buf[128];
    int tls_fd;             /* TLS listening socket, -1 = none (proxy/tls.c) */
    struct tls_server *tls; /* shared server context, NULL = none */
    struct tls_client *up_tls; /* https:// upstream: shared client context, NULL = plain */
};

struct upstream {
    struct worker *w;
    struct bufferevent *bev;
    struct upstream *next, *prev; /* idle list, or the wait list while waiting */
    int addr_idx;
    bool reused;    /* taken from the pool */
    bool connected;
    bool waiting; /* on the worker's wait list: no bev yet (upstream_acquire) */
    bool busy;    /* owned by an exchange that may release it (counted in the worker's nbusy) */
    int64_t busy_since_us; /* when it became busy (the loop's cached time) */
    bool tls; /* bev is an OpenSSL bufferevent (https:// upstream) */
    bool read_cb; /* conn_h1's input callback is registered (plain connections, once) */
    /* Timeouts last set on bev: 0 unknown, UPSTREAM_TMO_* (upstream_set_timeouts). */
    signed char tmo;
    struct conn *owner; /* NULL while idle */
    /* In the pool: when it went in; waiting: when it started to (the loop's cached time). */
    int64_t idle_since_us;
};

/* Timeout sets of an owned upstream connection: an exchange's (read and write), and while a
 * request body is uploading (write only: the app legitimately stays silent). */
#define UPSTREAM_TMO_EXCHANGE 1
#define UPSTREAM_TMO_UPLOAD 2

struct worker {
    struct proxy *px;
    unsigned id;
    struct event_base *base;
    pthread_t thread;
    struct evconnlistener *lev;
    struct event *stop_ev;
    struct event *grace_ev;
    bool draining;
    struct conn *conns; /* all client connections */
    unsigned nconns;
    struct upstream *idle; /* pool, most recently used first */
    unsigned nidle;
    /* upstream.c: closes pooled connections idle for PROXY_UPSTREAM_IDLE_MS (pool_sweep). */
    struct event *pool_ev;
    bool pool_armed;
    int up_pref; /* address index that last connected */
    /* upstream.c: requests waiting for a busy connection to come back to the pool (oldest
     * first, a few per busy connection), the event that serves them (a release activates it;
     * its timer connects those whose wait is over). */
    struct upstream *wait_head, *wait_tail;
    unsigned nwait;
    unsigned nbusy; /* connections owned by exchanges, connecting ones included */
    struct event *wait_ev;
    /* Moving averages (1/8 per sample) of loop time: from the start of a connect to its
     * connected callback (what a new connection costs in latency, the loop's own delays
     * included), and from an exchange taking a connection to its release. */
    int64_t connect_avg_us;
    int64_t busy_avg_us;
    /* proxy/tls.c: a copy of the newest upstream TLS session, which every new upstream
     * connection of this worker resumes from. */
    struct ssl_session_st *up_sess;
    char up_err[256]; /* the reason of the last failed upstream TLS handshake */
    struct rate_limiter *beacon_rl;
    uint64_t rng; /* xorshift state for --sample decisions */
    pthread_mutex_t api_mu; /* guards api_done (pool threads push, this loop pops) */
    struct api_job *api_done;
    struct event *api_ev;
    /* The base has no lock (EVENT_BASE_FLAG_NOLOCK): other threads never touch it, they call
     * worker_wake, which sets wake_bits and writes the eventfd wake_fd that wake_ev reads. */
    int wake_fd;
    struct event *wake_ev;
    atomic_uint wake_bits;
    /* proxy/tls.c and proxy/conn_h2.c: the TLS listener, handshakes in progress and HTTP/2
     * sessions. Each of those counts once in nconns, so drain waits for them too. */
    struct evconnlistener *tls_lev;
    struct tls_pending *tls_pending;
    struct h2_session *h2_sessions;
    /* conn_h2.c: finished streams kept for reuse (at most H2_SPARE_STREAMS), owned here. */
    struct h2_stream *h2_spare;
    unsigned h2_nspare;
    /* conn_h1.c: spare parsers (index 0 requests, 1 responses), reset, owned by the worker. */
    struct h1_parser *spare[2][PROXY_SPARE_PARSERS];
    unsigned nspare[2];
    /* conn_h1.c: spare evbuffers for the injector's input and output, empty. */
    struct evbuffer *spare_buf[PROXY_SPARE_BUFS];
    unsigned nspare_buf;
    /* conn_h1.c: spare identity injectors (inj_get). */
    struct injector *spare_inj[PROXY_SPARE_INJ];
    unsigned nspare_inj;
    /* conn_h1.c: plain-socket connections with output to write, and the event that writes it
     * at the end of the current loop iteration (created with the first such connection). */
    struct conn *flush_head;
    struct event *flush_ev;
    /* conn_h1.c plain_tag: the beacon tag without a nonce, built once (tag_len 0: not yet,
     * -1: cannot be templated), and where its view id goes. */
    char tag_tpl[1024];
    int tag_len;
    size_t tag_vid_off;
};

/* listener.c */
/* What worker_wake asks of a worker's loop: the finished API jobs (conn_h1_api_done), drain
 * (the first signal), stop at once. */
#define WORKER_WAKE_API 1u
#define WORKER_WAKE_STOP 2u
#define WORKER_WAKE_STOP_NOW 4u
/* From any thread: runs `what` (WORKER_WAKE_*) on w's loop thread, once for any number of calls
 * before it gets there. */
void worker_wake(struct worker *w, unsigned what);
/* After an accept error (EMFILE/ENFILE): disables the listener in *slot (a field of w) and
 * re-enables whatever *slot holds 100 ms later. */
void listener_accept_backoff(struct worker *w, struct evconnlistener **slot);

/* conn_h1.c */
void conn_h1_accept(struct worker *w, int fd, const struct sockaddr *sa, int salen);
/* Drain mode: close idle connections now; the rest close after their exchange. */
void conn_h1_drain_all(struct worker *w);
void conn_h1_free_all(struct worker *w);
/* api_ev callback: hands finished API jobs to their connections. */
void conn_h1_api_done(evutil_socket_t fd, short what, void *arg);

/* upstream.c: the per-worker pool and connection set-up. */
typedef void (*upstream_ready_cb)(struct conn *c, struct upstream *u, int err, const char *why);
/* Gets a pooled connection (calls back synchronously with u->reused; returns NULL) or starts a
 * connect (returns the pending connection, which upstream_free aborts; the callback runs from
 * the loop). Synchronous failures also call back and return NULL. allow_pool = false forces a
 * fresh connection. With no idle connection while others are busy with exchanges, the request
 * first waits (the returned pending connection, on the wait list) for one of those to be
 * released, at most PROXY_UPSTREAM_WAIT_MAX_US (upstream.c says how long); then it connects. */
struct upstream *upstream_acquire(struct worker *w, struct conn *c, bool allow_pool, upstream_ready_cb cb);
/* Returns a healthy connection to the pool (or frees it when the pool is full/draining). */
void upstream_release(struct upstream *u);
/* The owner keeps u for good (a tunnel): it no longer counts as a connection a waiting request
 * may get back soon. */
void upstream_keep(struct upstream *u);
void upstream_free(struct upstream *u);
void upstream_pool_clear(struct worker *w);
/* Sets the timeouts of an owned connection to the set `which` (UPSTREAM_TMO_*) unless they are
 * already that set: each bufferevent_set_timeouts re-adds the connection's events. */
void upstream_set_timeouts(struct upstream *u, int which);

/* exchange.c: timing and the request log. */
int64_t exchange_now_us(void);

#endif
