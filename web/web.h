/* web/: embedded static assets (beacon, report page) and the JSON API / export handlers.
 * Assets are generated at build time into web_assets.c from the files in web/ (raw, gzip and
 * brotli variants precompressed, content hash for cache busting). API handlers are synchronous
 * and run SQLite queries: the proxy calls them on an off-loop thread, never the event loop. */
#ifndef VP_WEB_H
#define VP_WEB_H

#include <stdbool.h>
#include <stddef.h>

struct evbuffer;
struct store_reader;

struct web_asset {
    const char *name;          /* "beacon.js", "report.html", ... */
    const char *content_type;  /* with charset where relevant */
    const unsigned char *data; /* identity bytes */
    size_t len;
    const unsigned char *gz;   /* gzip -9 variant */
    size_t gz_len;
    const unsigned char *br;   /* brotli q11 variant */
    size_t br_len;
    const char *hash;          /* 16 hex digits of the content hash; also the ETag value */
};

/* Looks up an embedded asset by name (len bytes). NULL when absent. */
const struct web_asset *web_asset_find(const char *name, size_t len);

/* A reply produced by web_api_handle. body is created by the caller and filled by the handler. */
struct web_reply {
    int status;
    const char *content_type;         /* static string */
    char content_disposition[160];    /* "" when none */
    struct evbuffer *body;            /* borrowed: the handler appends */
};

/* Handles one request under /__vitals/api/ (rest = what follows "/__vitals/api/", no query;
 * query = raw query string or NULL). Fills reply (errors become 4xx/5xx JSON bodies with a
 * reason). Returns 0, or VP_ERR_NOMEM when even the error reply could not be built. */
int web_api_handle(struct store_reader *r, const char *method, const char *rest,
                   const char *query, struct web_reply *reply)
    __attribute__((warn_unused_result));

/* Configuration of the API handlers, set once at start-up before any web_api_handle call
 * (not thread-safe against concurrent handlers; the struct is copied). budget: borrowed, must outlive every handler
 * call; NULL = the default budget (web/budget.h). api_prefix: paths counted as API routes for
 * the latency table and the API budget (borrowed; NULL = "/api/"). */
struct budget;
/* Counters of the running store, since start-up. */
struct web_live_stats {
    unsigned long long queued;         /* items waiting for the writer */
    unsigned long long refused_busy;   /* beacons and records refused (503) under overload */
    unsigned long long write_errors;   /* items the writer failed to store */
    unsigned long long committed_rows;
    unsigned long long lag_max_us;     /* largest enqueue-to-commit time */
    bool write_failing;                /* the database cannot be written (beacons get 503) */
    unsigned long long wal_frames;     /* pages in the write-ahead log after the last commit */
};
struct web_api_config {
    const struct budget *budget;
    const char *api_prefix;
    /* Run label switching (issue 8), optional: GET api/label reads it, POST api/label?name=X
     * sets it (empty name clears it). Both are called on API threads, so they must be
     * thread-safe. label_get writes the current label (NUL-terminated, "" = none) into out
     * (cap bytes) and returns 0; label_set receives a validated label (1..64 bytes, no control
     * characters) or NULL and returns 0 or a negative vp_err. Replies {"label":..,"switchable":..};
     * unset: GET gives {"label":null,"switchable":false}, POST 501. */
    int (*label_get)(void *arg, char *out, size_t cap);
    int (*label_set)(void *arg, const char *label);
    void *label_arg;
    /* The writer's live counters for GET api/health, optional (called on API threads, so
     * thread-safe). Unset: health carries only what the database holds. */
    void (*live_stats)(void *arg, struct web_live_stats *out);
    void *live_arg;
};
void web_api_configure(const struct web_api_config *cfg);

#endif
