/* store/: the SQLite store. Writes go through a bounded queue to one writer thread that commits in
 * batches; the event loop only enqueues (store_record_request, store_ingest_beacon) and never
 * touches SQLite. Reads for the report use a separate read-only handle (store/query.h).
 * Thread-safety: store_record_request / store_ingest_beacon / store_stats may be called from any
 * thread concurrently; store_open / store_free from one thread. */
#ifndef VP_STORE_H
#define VP_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

struct store_options {
    size_t queue_max;     /* max queued items before VP_ERR_FULL (default 100000) */
    unsigned batch_ms;    /* commit at least every batch_ms (default 50) */
    unsigned batch_rows;  /* or every batch_rows items (default 1000) */
    int retention_days;   /* delete data older than this; 0 = keep forever */
    bool keep_query;      /* keep query strings in stored URLs */
    unsigned max_lag_ms;  /* admission control: an acknowledged item is committed within about
                           * this long. New items are refused with VP_ERR_FULL while the oldest
                           * uncommitted item is older, or while the queued work, at the measured
                           * commit rate, would take longer than max_lag_ms - batch_ms to commit.
                           * 0 = 2 x batch_ms (the default). */
    unsigned close_grace_ms; /* store_close: how long a batch the database refuses (full disk) is
                              * retried before its items go to the side file (default 3000) */
};

void store_options_default(struct store_options *opt);

/* Opens (creating if needed) the database at path, runs migrations, writes in the items of a side
 * file path-pending left by a shutdown on a full disk (see store_close; then deletes it), and
 * starts the writer thread. On failure writes a one-line reason into err (errlen bytes) and
 * returns VP_ERR_IO, VP_ERR_DB, VP_ERR_VERSION (database made by a newer build: left untouched)
 * or VP_ERR_NOMEM. A side file that cannot be read, fails its checks or cannot be written in
 * does not fail the open: it stays in place, and store_open_notice says why. */
int store_open(struct store **out, const char *path, const struct store_options *opt, char *err,
               size_t errlen) __attribute__((warn_unused_result));

/* One line about the side file found by store_open (replayed, or left in place and why); "" when
 * there was none. Valid until store_close. */
const char *store_open_notice(const struct store *s);

/* Commits everything queued, stops the writer thread, closes the database and frees s. A batch the
 * database refuses (full disk) is retried for close_grace_ms; what it still refuses then is
 * written to the side file path-pending, which the next store_open writes into the database.
 * msg (cap bytes, may be NULL with cap 0) gets one line when the database refused anything at
 * shutdown (written after all, saved to the side file, or lost when that cannot be written
 * either), else "". NULL s is a no-op. */
void store_close(struct store *s, char *msg, size_t cap);

/* store_close without the message. */
void store_free(struct store *s);

/* The proxy's timing record of one forwarded exchange. Times are epoch microseconds (0 = did
 * not happen). Strings borrowed, NUL-terminated, may be NULL; they are copied. */
struct store_request_rec {
    int64_t accept_us;        /* connection accepted (first request), the request's first byte
                               * (later requests on a kept-alive connection), or stream opened */
    int64_t head_done_us;     /* request head fully parsed */
    int64_t connect_start_us; /* upstream connect started (0 when a pooled connection was reused) */
    int64_t connect_end_us;
    int64_t sent_us;          /* request head written to the upstream */
    int64_t first_byte_us;    /* first response byte from the upstream */
    int64_t last_byte_us;     /* last response byte sent to the client */
    uint64_t bytes_in;        /* request bytes from the client (head + body) */
    uint64_t bytes_out;       /* response bytes to the client (head + body) */
    uint64_t upstream_bytes;  /* response body bytes from the upstream (before transformation) */
    int status;
    bool injected;            /* the beacon tag was injected */
    bool reused;              /* a pooled upstream connection was reused */
    const char *method;
    const char *url;          /* request target as received */
    const char *host;
    const char *protocol;     /* "h1", "h2" */
    const char *tls_version;  /* NULL for plain */
    const char *view_id;      /* the view id of an injected HTML response */
    const char *referer;
    const char *user_agent;
    const char *content_type;     /* response */
    const char *content_encoding; /* response */
    const char *cache_control;    /* response */
    const char *error;            /* proxy-side error ("upstream timeout", ...) or NULL */
    const char *label;            /* current run label or NULL */
};

/* Copies rec into the queue. Never blocks. Returns 0 or VP_ERR_FULL (store overloaded: the record
 * is dropped and counted in requests_dropped and the health section) / VP_ERR_NOMEM. */
int store_record_request(struct store *s, const struct store_request_rec *rec)
    __attribute__((warn_unused_result));

struct store_beacon_ctx {
    const char *peer;        /* client address as text */
    const char *user_agent;  /* for browser family/major */
    int64_t now_ms;          /* receive time */
    const char *label;       /* current run label or NULL */
    double sample_rate;      /* 0..1, recorded with the view */
};

/* Validates one beacon body (body_len bytes, borrowed; see web/beacon-protocol.md) and enqueues
 * it. Returns 0 (answer 204), VP_ERR_LIMIT (body too large: 413), VP_ERR_INVALID (400; a short
 * reason, safe to send to the client, is written into reason), VP_ERR_FULL (503: the store is
 * over its lag budget, see max_lag_ms; checked before parsing, so cheap), VP_ERR_IO (503: the
 * last batch could not be written, e.g. a full disk; reason names the SQLite error; refused
 * rather than acknowledged while the writer retries that batch every second), VP_ERR_NOMEM. */
int store_ingest_beacon(struct store *s, const char *body, size_t body_len,
                        const struct store_beacon_ctx *ctx, char *reason, size_t reasonlen)
    __attribute__((warn_unused_result));

/* Records a rejection by the proxy itself (e.g. "rate-limited") so the report's health section
 * counts it. reason is a short static-like string, copied. */
void store_count_rejection(struct store *s, const char *reason);

struct store_stats {
    uint64_t queued;          /* current queue depth */
    uint64_t committed_rows;
    uint64_t batches;
    uint64_t beacons_accepted;
    uint64_t beacons_rejected;
    uint64_t dropped_full;    /* items refused with VP_ERR_FULL */
    uint64_t write_errors;    /* items the writer failed to store (SQLite errors) */
    /* Added with admission control: */
    uint64_t requests_dropped; /* request records dropped under overload (in dropped_full too) */
    uint64_t lag_max_us;       /* largest enqueue-to-commit time of any committed item */
    uint64_t row_cost_ns;      /* the writer's measured cost per row (moving average) */
    uint64_t requests_grouped; /* request rows committed by multi-row INSERTs */
    /* The last batch could not be written (full disk, read-only file): beacons get 503. */
    bool write_failing;
    uint64_t wal_frames;       /* pages in the write-ahead log after the last commit */
    uint64_t checkpoints;      /* checkpoints that copied the whole WAL into the database file */
    uint64_t claims_run;       /* claim UPDATEs run (those the per-path bounds did not skip) */
};

void store_get_stats(struct store *s, struct store_stats *out);

/* Route template of a URL path: numeric, UUID, hex-hash and long opaque segments become [id]
 * (`/products/123` -> `/products/[id]`); query string dropped. Writes NUL-terminated into out.
 * Returns the length or VP_ERR_LIMIT when out is too small. */
int store_route_of(const char *path, size_t path_len, char *out, size_t cap);

#endif
