/* proxy/api_pool: runs web_api_handle (SQLite reads) off the event loops. A fixed set of
 * threads, each with its own store_reader opened lazily; finished jobs go back to the worker
 * that submitted them (a mutex-protected list plus event_active, which needs
 * evthread_use_pthreads). The pool thread never touches job->conn: only the owning loop reads
 * or clears it, so a connection that dies meanwhile just sets job->conn = NULL. */
#ifndef VP_API_POOL_H
#define VP_API_POOL_H

#include "web/web.h"

#include <stdbool.h>

struct conn;
struct worker;
struct api_pool;

struct api_job {
    struct conn *conn;   /* loop-thread only; NULL once the connection is gone */
    struct worker *w;
    char method[16];
    char *rest;          /* owned */
    char *query;         /* owned, may be NULL */
    struct web_reply reply; /* reply.body owned */
    int rc;
    struct api_job *next;
};

/* Starts nthreads threads reading db_path (borrowed, must outlive the pool). */
int api_pool_new(struct api_pool **out, unsigned nthreads, const char *db_path)
    __attribute__((warn_unused_result));
/* Stops and joins the threads; queued jobs are freed unanswered. NULL is a no-op. */
void api_pool_free(struct api_pool *p);

/* Creates a job (strings copied). NULL on OOM. */
struct api_job *api_job_new(struct conn *c, struct worker *w, const char *method,
                            const char *rest, size_t rest_len, const char *query);
void api_job_free(struct api_job *j);

/* Queues j (takes ownership). Returns 0 or VP_ERR_FULL when too many jobs wait. */
int api_pool_submit(struct api_pool *p, struct api_job *j) __attribute__((warn_unused_result));

#endif
