/* store/query: read-only queries for the report page, the JSON API and the CLI.
 * A store_reader is one read-only SQLite connection; use one per thread. Results are jansson
 * objects owned by the caller (json_decref). All user-supplied filter strings are bound
 * parameters, never SQL text. */
#ifndef VP_QUERY_H
#define VP_QUERY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store_reader;

/* Opens path read-only. Returns 0, VP_ERR_IO (no such file / unreadable: reason in err),
 * VP_ERR_DB (not a vitals database), VP_ERR_VERSION (newer schema), VP_ERR_NOMEM. */
int store_reader_open(struct store_reader **out, const char *path, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void store_reader_free(struct store_reader *r);

struct query_filter {
    int64_t since_ms;      /* 0 = no lower bound (epoch ms) */
    int64_t until_ms;      /* 0 = no upper bound */
    const char *route;     /* exact route template, or NULL */
    const char *device;    /* mobile|tablet|desktop or NULL */
    const char *browser;   /* browser family or NULL */
    const char *ect;       /* effective connection type or NULL */
    const char *label;     /* run label or NULL */
    int limit;             /* max rows for lists (0 = default 50, capped at 1000) */
};

/* Definitions used by every query below:
 *   - a view's value for a metric is the largest value stored for it (any metric id);
 *   - percentiles are nearest-rank: the value at 1-based rank ceil(p/100 * n) of the n sorted
 *     values (always an observed value);
 *   - good/ni/poor: value <= good threshold, <= poor threshold, above (inclusive-better);
 *   - JSON reals are plain doubles: dump with JSON_REAL_PRECISION(n) for short output. */

/* Nearest-rank percentile p (0..100) of sorted[0..n-1] (ascending); NAN when n == 0. */
double query_percentile(const double *sorted, size_t n, double p);

/* The good/poor thresholds of a metric (LCP 2500/4000, CLS 0.1/0.25, INP 200/500,
 * FCP 1800/3000, TTFB 800/1800). 0 or VP_ERR_NOTFOUND for an unknown name. */
int query_thresholds(const char *metric, double *good, double *poor);

/* Summary JSON per the contract: {"routes":[{"route","views","metrics":{"LCP":{n,p50,p75,p95,
 * p99,good,ni,poor},...}}]}. */
int query_summary(struct store_reader *r, const struct query_filter *f, json_t **out)
    __attribute__((warn_unused_result));

/* {"views":[{id, started_at (ISO-8601 UTC ms, "Z"), started_at_ms, url, route, navigation_type,
 * device, browser, browser_major, ect, device_memory, label, parent_id, sample_rate,
 * metrics:{LCP:1234.5,..}, ratings:{LCP:"good",..}}]} newest first; absent fields are omitted.
 * f->limit rows (default 50, at most 1000). */
int query_views(struct store_reader *r, const struct query_filter *f, json_t **out)
    __attribute__((warn_unused_result));

/* One view: the views-list fields plus "attribution":{LCP:{target,url,...}} (the filtered
 * attribution object of the beacon, per metric), "navigation":{url, start_ms, ..., dcl_start,
 * load_start, type, redirect_count} and "resources":[{idx, url, initiator, start_ms, duration_ms,
 * redirect_start, redirect_end, fetch_start, dns_start, dns_end, connect_start, connect_end,
 * secure_start, request_start, response_start, response_end, transfer_size, encoded_size,
 * decoded_size, protocol, render_blocking, status, delivery_type, server_timing:[{n,d,de}]}]
 * (column names of store/beacon.c's field table; times in ms from the view start),
 * "requests":[{id, method, url, route, host, status, protocol, tls_version, injected, reused,
 * accept_us ... last_byte_us (epoch us), bytes_in, bytes_out, upstream_bytes, content_type,
 * content_encoding, cache_control, error}] (proxy records tied to the view).
 * VP_ERR_NOTFOUND (also for a malformed id). */
int query_view(struct store_reader *r, const char *id, json_t **out)
    __attribute__((warn_unused_result));

/* HAR 1.2 document of one view (no cookies, no headers at all). One page (pageTimings
 * onContentLoad/onLoad from the navigation entry, -1 when unknown); entries = navigation entry
 * then resources, timings blocked/dns/connect/ssl/send/wait/receive (-1 when the phase is
 * absent; send is 0: Resource Timing cannot see it), "_serverTiming", "_initiator",
 * "_renderBlocking", "_transferSize" and "_proxy":{connect, upstream_wait, total, transfer (ms),
 * status, reused, ...} when the proxy recorded that URL for the view. VP_ERR_NOTFOUND. */
int query_view_har(struct store_reader *r, const char *id, json_t **out)
    __attribute__((warn_unused_result));

/* The id of the newest view, written into out (cap bytes). VP_ERR_NOTFOUND when empty. */
int query_last_view_id(struct store_reader *r, char *out, size_t cap)
    __attribute__((warn_unused_result));

/* Proxy-timed latency of API routes (paths under prefix, e.g. "/api/"):
 * {"routes":[{"route","method","n","p50","p95","p99","errors"}]}. Latency = last response byte
 * sent - request head parsed (ms); errors = status 0 or >= 500 or a proxy-side error. Filters
 * used: since_ms, until_ms, route, label. */
int query_api_latency(struct store_reader *r, const struct query_filter *f, const char *prefix,
                      json_t **out) __attribute__((warn_unused_result));

/* Health: {"beacons_accepted","beacons_rejected","rejections":{reason:count},"views",
 * "requests","oldest","newest" (ISO-8601 or null),"db_bytes"} (persisted counters). */
int query_health(struct store_reader *r, json_t **out) __attribute__((warn_unused_result));

#endif
