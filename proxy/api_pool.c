/* Fixed thread pool for the JSON API (see api_pool.h). The queue is bounded (API_QUEUE_MAX) so a
 * burst of report requests cannot grow memory without limit: excess requests get 503. */
#include "config.h"
#include "proxy/api_pool.h"

#include "common/vp_err.h"
#include "proxy/proxy_internal.h"
#include "store/query.h"

#include <event2/buffer.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define API_QUEUE_MAX 256
#define API_THREADS_MAX 16

struct api_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct api_job *head, *tail;
    unsigned queued;
    bool stop;
    const char *db;
    pthread_t th[API_THREADS_MAX];
    unsigned nth;
};

struct api_job *api_job_new(struct conn *c, struct worker *w, const char *method,
                            const char *rest, size_t rest_len, const char *query)
{
    struct api_job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->conn = c;
    j->w = w;
    size_t ml = strnlen(method, sizeof j->method - 1);
    memcpy(j->method, method, ml);
    j->rest = strndup(rest, rest_len);
    j->query = query ? strdup(query) : NULL;
    j->reply.body = evbuffer_new();
    if (!j->rest || (query && !j->query) || !j->reply.body) {
        api_job_free(j);
        return NULL;
    }
    return j;
}

void api_job_free(struct api_job *j)
{
    if (!j)
        return;
    free(j->rest);
    free(j->query);
    if (j->reply.body)
        evbuffer_free(j->reply.body);
    free(j);
}

static void deliver(struct api_job *j)
{
    struct worker *w = j->w;
    pthread_mutex_lock(&w->api_mu);
    j->next = w->api_done;
    w->api_done = j;
    pthread_mutex_unlock(&w->api_mu);
    worker_wake(w, WORKER_WAKE_API);
}

static void *pool_main(void *arg)
{
    struct api_pool *p = arg;
    struct store_reader *r = NULL;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->stop && !p->head)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->stop) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        struct api_job *j = p->head;
        p->head = j->next;
        if (!p->head)
            p->tail = NULL;
        p->queued--;
        pthread_mutex_unlock(&p->mu);
        j->next = NULL;
        char err[200] = "";
        if (!r && store_reader_open(&r, p->db, err, sizeof err) != 0) {
            r = NULL;
            j->reply.status = 503;
            j->reply.content_type = "application/json";
            evbuffer_add_printf(j->reply.body, "{\"error\":\"database unavailable\"}\n");
            j->rc = 0;
        } else {
            j->rc = web_api_handle(r, j->method, j->rest, j->query, &j->reply);
        }
        deliver(j);
    }
    store_reader_free(r);
    return NULL;
}

int api_pool_new(struct api_pool **out, unsigned nthreads, const char *db_path)
{
    if (nthreads == 0 || nthreads > API_THREADS_MAX)
        return VP_ERR_INVALID;
    struct api_pool *p = calloc(1, sizeof *p);
    if (!p)
        return VP_ERR_NOMEM;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->db = db_path;
    for (; p->nth < nthreads; p->nth++)
        if (pthread_create(&p->th[p->nth], NULL, pool_main, p) != 0)
            break;
    if (p->nth == 0) {
        api_pool_free(p);
        return VP_ERR_IO;
    }
    *out = p;
    return 0;
}

void api_pool_free(struct api_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->nth; i++)
        pthread_join(p->th[i], NULL);
    while (p->head) {
        struct api_job *j = p->head;
        p->head = j->next;
        api_job_free(j);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}

int api_pool_submit(struct api_pool *p, struct api_job *j)
{
    pthread_mutex_lock(&p->mu);
    if (p->queued >= API_QUEUE_MAX || p->stop) {
        pthread_mutex_unlock(&p->mu);
        return VP_ERR_FULL;
    }
    j->next = NULL;
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    p->queued++;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return 0;
}
