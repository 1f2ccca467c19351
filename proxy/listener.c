/* Start-up and the worker threads. The listening socket is bound once by the main thread (so
 * "address in use" is reported reliably: SO_REUSEPORT would silently share a port with another
 * instance), then each worker accepts from a dup of it on its own event_base. The main thread
 * only handles signals: the first SIGINT/SIGTERM puts every worker in drain mode (stop
 * accepting, close idle connections, finish in-flight exchanges, then a hard stop after
 * --grace); a second signal stops at once. Upstream addresses are resolved here, at start-up,
 * so no event-loop thread ever blocks in getaddrinfo. */
#include "config.h"
#include "proxy/proxy.h"

#include "proxy/api_pool.h"
#include "proxy/conn_h1.h"
#include "proxy/limits.h"
#include "proxy/proxy_internal.h"
#include "web/web.h"
#include "proxy/tls.h"

#include <errno.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

struct main_ctx {
    struct proxy *px;
    struct event_base *base;
    struct event *done_ev;
    atomic_uint done; /* workers whose loop ended (one event activation may cover several) */
    int signals;
};

static struct main_ctx *g_main; /* for worker threads to report completion */

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *arg)
{
    (void)l;
    struct worker *w = arg;
    unsigned n = atomic_fetch_add(&w->px->nconns, 1) + 1;
    if (n > w->px->opt->max_connections || w->draining) {
        atomic_fetch_sub(&w->px->nconns, 1);
        close(fd);
        return;
    }
    conn_h1_accept(w, fd, sa, len);
}

static void reenable_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct evconnlistener **slot = arg; /* a field of the worker, which outlives its base */
    if (*slot)
        evconnlistener_enable(*slot);
}

void listener_accept_backoff(struct worker *w, struct evconnlistener **slot)
{
    /* EMFILE/ENFILE: back off instead of spinning on a readable listener. The slot is read
     * again when the timer fires, so a listener closed meanwhile is not touched. */
    evconnlistener_disable(*slot);
    struct timeval tv = {0, 100000};
    event_base_once(w->base, -1, EV_TIMEOUT, reenable_cb, slot, &tv);
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    (void)l;
    struct worker *w = arg;
    listener_accept_backoff(w, &w->lev);
}

static void grace_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct worker *w = arg;
    conn_h1_free_all(w);
    tls_worker_free_all(w);
    event_base_loopexit(w->base, NULL);
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    struct worker *w = arg;
    if (w->draining || what == 0) {
        /* Second signal: stop now. */
        conn_h1_free_all(w);
        tls_worker_free_all(w);
        event_base_loopexit(w->base, NULL);
        return;
    }
    w->draining = true;
    if (w->lev) {
        evconnlistener_free(w->lev);
        w->lev = NULL;
    }
    upstream_pool_clear(w);
    conn_h1_drain_all(w);
    tls_worker_drain(w);
    if (w->nconns == 0) {
        event_base_loopexit(w->base, NULL);
        return;
    }
    struct timeval tv = {w->px->opt->grace_ms / 1000, (suseconds_t)(w->px->opt->grace_ms % 1000) * 1000};
    evtimer_add(w->grace_ev, &tv);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    event_base_dispatch(w->base);
    atomic_fetch_add(&g_main->done, 1);
    event_active(g_main->done_ev, EV_READ, 0);
    return NULL;
}

static void done_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct main_ctx *m = arg;
    if (atomic_load(&m->done) >= m->px->nworkers)
        event_base_loopexit(m->base, NULL);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    struct main_ctx *m = arg;
    m->signals++;
    /* Stop accepting at once: the socket closes when the workers drop their dups too, and
     * new connections are refused rather than left unserved in the backlog. */
    if (m->px->listen_fd >= 0) {
        close(m->px->listen_fd);
        m->px->listen_fd = -1;
    }
    if (m->px->tls_fd >= 0) {
        close(m->px->tls_fd);
        m->px->tls_fd = -1;
    }
    for (unsigned i = 0; i < m->px->nworkers; i++)
        worker_wake(&m->px->workers[i], m->signals > 1 ? WORKER_WAKE_STOP_NOW : WORKER_WAKE_STOP);
}

static int resolve_upstream(struct proxy *px, const struct vp_options *o)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
    char port[8];
    snprintf(port, sizeof port, "%u", o->upstream_port);
    int rc = getaddrinfo(o->upstream_host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "vitals-proxy: --upstream: '%s': cannot resolve '%s' (%s)\n",
                o->upstream_url, o->upstream_host, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai && px->n_up < PROXY_MAX_ADDRS; ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof px->up_addr[0])
            continue;
        memcpy(&px->up_addr[px->n_up], ai->ai_addr, ai->ai_addrlen);
        px->up_len[px->n_up++] = ai->ai_addrlen;
    }
    freeaddrinfo(res);
    if (px->n_up == 0) {
        fprintf(stderr, "vitals-proxy: --upstream: '%s': no usable address\n", o->upstream_url);
        return -1;
    }
    return 0;
}

static int bind_listener_at(const char *opt, const char *host, uint16_t lport)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE},
                    *res;
    char port[8];
    snprintf(port, sizeof port, "%u", lport);
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "vitals-proxy: %s: '%s': cannot resolve (%s)\n", opt, host,
                gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "vitals-proxy: %s: socket: %s\n", opt, strerror(errno));
        freeaddrinfo(res);
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, res->ai_addr, res->ai_addrlen) != 0) {
        int e = errno;
        if (e == EADDRINUSE)
            fprintf(stderr, "vitals-proxy: %s: port %u is already in use\n", opt, lport);
        else if (e == EACCES)
            fprintf(stderr, "vitals-proxy: %s: port %u: permission denied\n",
                    opt, lport);
        else if (e == EADDRNOTAVAIL)
            fprintf(stderr, "vitals-proxy: %s: address %s is not available on this host\n",
                    opt, host);
        else
            fprintf(stderr, "vitals-proxy: %s: %s:%u: %s\n", opt, host, lport,
                    strerror(e));
        freeaddrinfo(res);
        close(fd);
        return -1;
    }
    freeaddrinfo(res);
    if (listen(fd, 1024) != 0 || evutil_make_socket_nonblocking(fd) != 0) {
        fprintf(stderr, "vitals-proxy: %s: listen: %s\n", opt, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static int bind_listener(const struct vp_options *o)
{
    return bind_listener_at("--listen", o->listen_host, o->listen_port);
}

static void print_banner(const struct vp_options *o)
{
    const char *h = o->listen_host;
    bool local = !strcmp(h, "127.0.0.1") || !strcmp(h, "::1") || !strcmp(h, "localhost") ||
                 !strcmp(h, "0.0.0.0") || !strcmp(h, "::");
    bool v6 = strchr(h, ':') != NULL;
    printf("vitals-proxy: listening on http://%s%s%s:%u/ (upstream %s, report at /__vitals/)\n",
           local ? "" : v6 ? "[" : "", local ? "localhost" : h, local ? "" : v6 ? "]" : "",
           o->listen_port, o->upstream_url);
    if (o->tls_listen_port) {
        const char *th = o->tls_listen_host;
        bool tlocal = !strcmp(th, "127.0.0.1") || !strcmp(th, "::1") ||
                      !strcmp(th, "localhost") || !strcmp(th, "0.0.0.0") || !strcmp(th, "::");
        bool tv6 = strchr(th, ':') != NULL;
        printf("vitals-proxy: listening on https://%s%s%s:%u/ (HTTP/2 and HTTP/1.1)\n",
               tlocal ? "" : tv6 ? "[" : "", tlocal ? "localhost" : th,
               tlocal ? "" : tv6 ? "]" : "", o->tls_listen_port);
    }
    fflush(stdout);
}

void worker_wake(struct worker *w, unsigned what)
{
    atomic_fetch_or(&w->wake_bits, what);
    uint64_t one = 1;
    /* Fails only when the counter is full, that is with a wake-up pending anyway. */
    ssize_t n = write(w->wake_fd, &one, sizeof one);
    (void)n;
}

/* The loop's side of worker_wake: the requests become activations of this base's own events,
 * as other threads used to make them directly when the base had a lock. The eventfd is read
 * before the bits are taken, so a wake-up after that makes it readable again. */
static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct worker *w = arg;
    uint64_t v;
    ssize_t n = read(fd, &v, sizeof v);
    (void)n;
    unsigned bits = atomic_exchange(&w->wake_bits, 0);
    if (bits & WORKER_WAKE_API)
        event_active(w->api_ev, EV_READ, 0);
    if (bits & (WORKER_WAKE_STOP | WORKER_WAKE_STOP_NOW))
        event_active(w->stop_ev, bits & WORKER_WAKE_STOP_NOW ? 0 : EV_READ, 0);
}

static int setup_worker(struct proxy *px, struct worker *w, unsigned id)
{
    w->px = px;
    w->id = id;
    w->wake_fd = -1;
    /* The epoll changelist coalesces the add/del pairs a bufferevent makes within one loop
     * iteration (write interest on, off, on again...) into at most one epoll_ctl per fd.
     * Without a lock, the base saves a mutex lock and unlock in every event operation (about
     * 27 per proxied request); only this thread touches it (worker_wake). */
    struct event_config *cfg = event_config_new();
    if (!cfg)
        return -1;
    event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
    w->base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (!w->base)
        return -1;
    int fd = fcntl(px->listen_fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    w->lev = evconnlistener_new(w->base, accept_cb, w, LEV_OPT_CLOSE_ON_FREE, 0, fd);
    if (!w->lev) {
        close(fd);
        return -1;
    }
    evconnlistener_set_error_cb(w->lev, accept_error_cb);
    if (px->tls && tls_worker_start(w) != 0)
        return -1;
    w->stop_ev = event_new(w->base, -1, 0, stop_cb, w);
    w->grace_ev = evtimer_new(w->base, grace_cb, w);
    w->api_ev = event_new(w->base, -1, 0, conn_h1_api_done, w);
    pthread_mutex_init(&w->api_mu, NULL);
    w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->wake_fd < 0)
        return -1;
    w->wake_ev = event_new(w->base, w->wake_fd, EV_READ | EV_PERSIST, wake_cb, w);
    if (!w->wake_ev || event_add(w->wake_ev, NULL) != 0)
        return -1;
    if (getrandom(&w->rng, sizeof w->rng, 0) != (ssize_t)sizeof w->rng || w->rng == 0)
        w->rng = 0x9e3779b97f4a7c15ull ^ ((uint64_t)id << 32) ^ (uint64_t)getpid();
    const struct vp_options *o = px->opt;
    if (rate_limiter_new(&w->beacon_rl, 4096, o->beacon_rate, o->beacon_burst) != 0)
        return -1;
    return w->stop_ev && w->grace_ev && w->api_ev ? 0 : -1;
}

/* Runs what is still queued on a stopped worker's base: every object is freed by now, but a
 * bufferevent freed while one of its deferred callbacks was queued lives on until that callback
 * has run (the callback holds a reference), and event_base_free cancels queued callbacks without
 * dropping their references. A loop that ends right after a burst of frees (the hard stop at the
 * end of --grace, a second signal, or a batch of more than libevent's 32 deferred callbacks per
 * iteration when the last connection closes) leaves such callbacks queued. The callbacks of freed
 * bufferevents are cleared, so running them only drops references and finalizes; each pass can
 * queue finalizers for the next, hence the bounded repeat. */
static void settle_base(struct event_base *base)
{
    for (int i = 0; i < 16 && event_base_get_num_events(base, EVENT_BASE_COUNT_ACTIVE) > 0; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
}

static void teardown_worker(struct worker *w)
{
    conn_h1_free_all(w);
    tls_worker_free_all(w);
    upstream_pool_clear(w);
    tls_client_worker_dispose(w);
    if (w->lev)
        evconnlistener_free(w->lev);
    if (w->stop_ev)
        event_free(w->stop_ev);
    if (w->grace_ev)
        event_free(w->grace_ev);
    if (w->api_ev) {
        /* Jobs finished after the loop stopped: their connections are gone. */
        while (w->api_done) {
            struct api_job *j = w->api_done;
            w->api_done = j->next;
            api_job_free(j);
        }
        event_free(w->api_ev);
        pthread_mutex_destroy(&w->api_mu);
    }
    rate_limiter_free(w->beacon_rl);
    if (w->wake_ev)
        event_free(w->wake_ev);
    if (w->wake_fd >= 0)
        close(w->wake_fd);
    if (w->base) {
        settle_base(w->base);
        event_base_free(w->base);
    }
}

int proxy_run(const struct vp_options *o, struct store *st)
{
    struct proxy px;
    memset(&px, 0, sizeof px);
    px.opt = o;
    px.store = st;
    px.listen_fd = -1;
    px.tls_fd = -1;
    px.req_limits = (struct h1_limits){o->max_request_line, o->max_header_bytes, o->max_headers};
    px.resp_limits = (struct h1_limits){PROXY_RESP_HEAD_MAX, PROXY_RESP_HEAD_MAX, 256};
    atomic_init(&px.nconns, 0);
    const struct web_asset *beacon = web_asset_find("beacon.js", 9);
    if (beacon) {
        int n = snprintf(px.beacon_src_buf, sizeof px.beacon_src_buf, "/__vitals/beacon.js?v=%s",
                         beacon->hash);
        if (n > 0 && (size_t)n < sizeof px.beacon_src_buf)
            px.beacon_src = px.beacon_src_buf;
    }
    signal(SIGPIPE, SIG_IGN);
    if (evthread_use_pthreads() != 0) {
        fprintf(stderr, "vitals-proxy: libevent threading unavailable\n");
        return 1;
    }
    if (resolve_upstream(&px, o) != 0)
        return 2;
    if (o->upstream_tls) {
        char err[1400];
        if (tls_client_new(&px.up_tls, o, err, sizeof err) != 0) {
            fprintf(stderr, "vitals-proxy: %s\n", err);
            return 2;
        }
        if (o->upstream_insecure)
            fprintf(stderr, "vitals-proxy: warning: --upstream-insecure: the certificate of %s "
                            "is not verified\n", o->upstream_url);
    }
    px.listen_fd = bind_listener(o);
    if (px.listen_fd < 0) {
        tls_client_free(px.up_tls);
        return 2;
    }
    if (o->tls_listen_port) {
        char err[1400];
        if (tls_server_new(&px.tls, o, err, sizeof err) != 0) {
            fprintf(stderr, "vitals-proxy: %s\n", err);
            close(px.listen_fd);
            tls_client_free(px.up_tls);
            return 2;
        }
        px.tls_fd = bind_listener_at("--tls-listen", o->tls_listen_host, o->tls_listen_port);
        if (px.tls_fd < 0) {
            tls_server_free(px.tls);
            close(px.listen_fd);
            tls_client_free(px.up_tls);
            return 2;
        }
    }

    int status = 1;
    struct main_ctx m = {.px = &px};
    struct event *sigint = NULL, *sigterm = NULL;
    px.workers = calloc(o->workers, sizeof *px.workers);
    m.base = event_base_new();
    if (!px.workers || !m.base)
        goto out;
    px.nworkers = o->workers;
    for (unsigned i = 0; i < px.nworkers; i++)
        px.workers[i].wake_fd = -1; /* teardown_worker closes it: also for workers not set up */
    if (st && api_pool_new(&px.api, 2, o->db) != 0) {
        fprintf(stderr, "vitals-proxy: cannot start the API threads\n");
        goto out;
    }
    for (unsigned i = 0; i < px.nworkers; i++) {
        if (setup_worker(&px, &px.workers[i], i) != 0) {
            fprintf(stderr, "vitals-proxy: cannot start worker %u\n", i);
            goto out;
        }
    }
    m.done_ev = event_new(m.base, -1, 0, done_cb, &m);
    sigint = evsignal_new(m.base, SIGINT, signal_cb, &m);
    sigterm = evsignal_new(m.base, SIGTERM, signal_cb, &m);
    if (!m.done_ev || !sigint || !sigterm || evsignal_add(sigint, NULL) != 0 ||
        evsignal_add(sigterm, NULL) != 0)
        goto out;
    g_main = &m;
    if (!o->quiet)
        print_banner(o);
    unsigned started = 0;
    for (; started < px.nworkers; started++)
        if (pthread_create(&px.workers[started].thread, NULL, worker_main,
                           &px.workers[started]) != 0)
            break;
    if (started < px.nworkers) {
        fprintf(stderr, "vitals-proxy: cannot start worker threads\n");
        for (unsigned i = 0; i < started; i++)
            worker_wake(&px.workers[i], WORKER_WAKE_STOP_NOW);
    } else {
        status = 0;
    }
    atomic_fetch_add(&m.done, px.nworkers - started);
    if (started && atomic_load(&m.done) < px.nworkers)
        event_base_dispatch(m.base);
    for (unsigned i = 0; i < started; i++)
        pthread_join(px.workers[i].thread, NULL);
out:
    api_pool_free(px.api); /* before the workers' teardown: late replies land in their lists */
    for (unsigned i = 0; px.workers && i < px.nworkers; i++)
        teardown_worker(&px.workers[i]);
    free(px.workers);
    if (sigint)
        event_free(sigint);
    if (sigterm)
        event_free(sigterm);
    if (m.done_ev)
        event_free(m.done_ev);
    if (m.base)
        event_base_free(m.base);
    if (px.listen_fd >= 0)
        close(px.listen_fd);
    if (px.tls_fd >= 0)
        close(px.tls_fd);
    tls_server_free(px.tls);
    tls_client_free(px.up_tls);
    return status;
}
