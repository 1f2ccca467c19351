/* The compare / labels / export.html endpoints (see compare_api.h). Parameters go through
 * web/params (length caps, escapes, duplicates refused) and then through the same validators
 * as the CLI (compare_parse_side, compare_label_valid); numbers are range-checked. The HTML
 * export's file name is built only from characters of a validated view id. */
#include "config.h"

#include "web/compare_api.h"

#include <errno.h>
#include <event2/buffer.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/vp_buf.h"
#include "common/vp_err.h"
#include "store/compare.h"
#include "store/query.h"
#include "web/export_html.h"
#include "web/params.h"
#include "web/web.h"

static int reply_json(struct web_reply *reply, int status, json_t *j)
{
    reply->status = status;
    reply->content_type = "application/json";
    evbuffer_drain(reply->body, evbuffer_get_length(reply->body));
    char *t = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(j);
    if (!t)
        return VP_ERR_NOMEM;
    int rc = evbuffer_add(reply->body, t, strlen(t)) == 0 ? 0 : VP_ERR_NOMEM;
    free(t);
    return rc;
}

static int reply_error(struct web_reply *reply, int status, const char *msg)
{
    reply->content_disposition[0] = '\0';
    return reply_json(reply, status, json_pack("{s:s}", "error", msg));
}

static int reply_rc(struct web_reply *reply, int rc)
{
    switch (rc) {
    case VP_ERR_NOTFOUND: return reply_error(reply, 404, "not found");
    case VP_ERR_NOMEM: return reply_error(reply, 500, "out of memory");
    case VP_ERR_INVALID: return reply_error(reply, 400, "invalid request");
    case VP_ERR_LIMIT: return reply_error(reply, 413, "too many samples: narrow the sides");
    default: return reply_error(reply, 503, "database unavailable");
    }
}

static bool get_uint(const struct web_params *p, const char *name, unsigned long long max,
                     unsigned long long *out)
{
    const char *v = web_params_get(p, name);
    if (!v)
        return true;
    if (*v < '0' || *v > '9')
        return false;
    errno = 0;
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || *end || x > max)
        return false;
    *out = x;
    return true;
}

static bool route_ok(const char *route)
{
    return route && route[0] == '/' && strlen(route) <= 2048;
}

static int do_compare(struct store_reader *r, const struct web_params *p,
                      struct web_reply *reply)
{
    const char *a = web_params_get(p, "a"), *b = web_params_get(p, "b");
    if (!a || !b)
        return reply_error(reply, 400, "a and b are required (labels or ranges FROM..TO)");
    struct compare_options o;
    compare_options_default(&o);
    o.route = web_params_get(p, "route");
    if (o.route && !route_ok(o.route))
        return reply_error(reply, 400, "route: expected a route template starting with /");
    unsigned long long resamples = o.resamples, seed = o.seed, min_n = o.min_n;
    if (!get_uint(p, "resamples", COMPARE_API_RESAMPLES_MAX, &resamples) || resamples < 1)
        return reply_error(reply, 400, "resamples: expected 1..10000");
    if (!get_uint(p, "seed", UINT64_MAX, &seed))
        return reply_error(reply, 400, "seed: expected a non-negative integer");
    if (!get_uint(p, "min_n", 1000000, &min_n) || min_n < 2)
        return reply_error(reply, 400, "min_n: expected 2..1000000");
    o.resamples = (unsigned)resamples;
    o.seed = seed;
    o.min_n = (unsigned)min_n;
    struct compare_side sa, sb;
    char err[256], msg[300];
    int64_t now = vp_now_ms();
    const char *which = "a";
    int prc = compare_parse_side(a, now, &sa, err, sizeof err);
    if (prc == 0) {
        which = "b";
        prc = compare_parse_side(b, now, &sb, err, sizeof err);
    }
    if (prc != 0) {
        if (snprintf(msg, sizeof msg, "%s: %s", which, err) < 0)
            msg[0] = '\0';
        return reply_error(reply, 400, msg);
    }
    json_t *j = NULL;
    int rc = compare_run(r, &sa, &sb, &o, &j);
    return rc ? reply_rc(reply, rc) : reply_json(reply, 200, j);
}

static bool view_id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n < 8 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

static int do_export(struct store_reader *r, const struct web_params *p, struct web_reply *reply)
{
    const char *view = web_params_get(p, "view"), *route = web_params_get(p, "route");
    const char *label = web_params_get(p, "label");
    if ((view != NULL) == (route != NULL))
        return reply_error(reply, 400, "give exactly one of view=ID or route=ROUTE");
    if (label && (!compare_label_valid(label) || view))
        return reply_error(reply, 400, "label: a valid label, with route= only");
    int rc;
    const char *name;
    char fname[96];
    if (view) {
        if (!view_id_ok(view))
            return reply_error(reply, 400, "view: expected a view id ([A-Za-z0-9_-]{8,64})");
        rc = export_html_write_view(r, view, reply->body);
        if (snprintf(fname, sizeof fname, "vitals-view-%s.html", view) < 0)
            memcpy(fname, "vitals-view.html", 17);
        name = fname;
    } else {
        if (!route_ok(route))
            return reply_error(reply, 400, "route: expected a route template starting with /");
        rc = export_html_write_route(r, route, label, reply->body);
        name = "vitals-route.html";
    }
    if (rc) {
        evbuffer_drain(reply->body, evbuffer_get_length(reply->body));
        return reply_rc(reply, rc);
    }
    reply->status = 200;
    reply->content_type = "text/html; charset=utf-8";
    if (snprintf(reply->content_disposition, sizeof reply->content_disposition,
                 "attachment; filename=\"%s\"", name) < 0)
        reply->content_disposition[0] = '\0';
    return 0;
}

int web_compare_handle(struct store_reader *r, const char *method, const char *rest,
                       const char *query, struct web_reply *reply, bool *handled)
{
    if (!rest || (strcmp(rest, "compare") != 0 && strcmp(rest, "labels") != 0 &&
                  strcmp(rest, "export.html") != 0)) {
        *handled = false;
        return 0;
    }
    *handled = true;
    reply->content_disposition[0] = '\0';
    if (!method || (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0))
        return reply_error(reply, 405, "method not allowed: use GET");
    struct web_params p;
    char err[160];
    int rc;
    if (web_params_parse(&p, query, err, sizeof err) != 0) {
        rc = reply_error(reply, 400, err);
        goto done;
    }
    if (!r) {
        rc = reply_error(reply, 503, "database unavailable");
        goto done;
    }
    if (strcmp(rest, "compare") == 0) {
        rc = do_compare(r, &p, reply);
    } else if (strcmp(rest, "labels") == 0) {
        json_t *j = NULL;
        rc = compare_labels(r, &j);
        rc = rc ? reply_rc(reply, rc) : reply_json(reply, 200, j);
    } else {
        rc = do_export(r, &p, reply);
    }
done:
    web_params_dispose(&p);
    return rc;
}
