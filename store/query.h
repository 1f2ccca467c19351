/* store/query: read-only queries for the report page, the JSON API and the CLI.
 * A store_reader is one read-only SQLite connection; use one per thread. Results are jansson
 * objects owned by the caller (json_decref). All user-supplied filter strings are bound
 * parameters, never SQL text. */
#ifndef VP_QUERY_H
#define VP_QUERY_H

#include <jansson.h>
#include <stdbool.h>
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

/* Summary JSON per the contract: {"routes":[{"route","views","metrics":{"LCP":{n,p50,p75,p95,
 * p99,good,ni,poor},...}}]}. */
int query_summary(struct store_reader *r, const struct query_filter *f, json_t **out)
    __attribute__((warn_unused_result));

/* {"views":[{id, started_at (ISO-8601 UTC ms), url, route, navigation_type, device, browser,
 * ect, label, metrics:{LCP:..}}]} newest first. */
int query_views(struct store_reader *r, const struct query_filter *f, json_t **out)
    __attribute__((warn_unused_result));

/* One view: the views-list fields plus "attribution":{LCP:{...}}, "navigation":{...},
 * "resources":[...], "requests":[proxy timing records tied to the view]. VP_ERR_NOTFOUND. */
int query_view(struct store_reader *r, const char *id, json_t **out)
    __attribute__((warn_unused_result));

/* HAR 1.2 document of one view (no cookies, no auth headers). VP_ERR_NOTFOUND. */
int query_view_har(struct store_reader *r, const char *id, json_t **out)
    __attribute__((warn_unused_result));

/* The id of the newest view, written into out (cap bytes). VP_ERR_NOTFOUND when empty. */
int query_last_view_id(struct store_reader *r, char *out, size_t cap)
    __attribute__((warn_unused_result));

/* Proxy-timed latency of API routes (paths under prefix, e.g. "/api/"):
 * {"routes":[{"route","method","n","p50","p95","p99","errors"}]}. */
int query_api_latency(struct store_reader *r, const struct query_filter *f, const char *prefix,
                      json_t **out) __attribute__((warn_unused_result));

/* Health: {"beacons_accepted","beacons_rejected","rejections":{reason:count},"views",
 * "requests","oldest","newest","db_bytes"}. */
int query_health(struct store_reader *r, json_t **out) __attribute__((warn_unused_result));

#endif
