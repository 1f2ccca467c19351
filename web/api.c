/* The JSON API under /__vitals/api/ (see web.h; paths and the summary / views shapes are the ◆
 * contracts in design.md).
 *
 * Routing is a fixed table of exact names plus the views/{id}[/har|/csv] family; nothing else
 * matches (404), only GET and HEAD are served (405), and every parameter goes through
 * web/params before any query runs (400 with {"error": "..."}). Handlers run on an off-loop
 * thread and may block on SQLite. Every reply body is compact JSON or CSV; strings from the
 * database reach the client only through jansson's encoder or the CSV escaper. */
#include "config.h"

#include "web/web.h"

#include <event2/buffer.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/vp_buf.h"
#include "common/vp_err.h"
#include "store/query.h"
#include "web/budget.h"
#include "web/export.h"
#include "web/params.h"

#define VIEW_ID_MIN 8
#define VIEW_ID_MAX 64
#define TARGETS_VIEWS_MAX 200 /* views examined for the top attribution targets */
#define TARGETS_TOP 10

static const struct budget *cfg_budget;
static const char *cfg_api_prefix = "/api/";

void web_api_configure(const struct web_api_config *cfg)
{
    cfg_budget = cfg ? cfg->budget : NULL;
    cfg_api_prefix = cfg && cfg->api_prefix ? cfg->api_prefix : "/api/";
}

static int reply_error(struct web_reply *reply, int status, const char *msg)
{
    reply->status = status;
    reply->content_type = "application/json";
    reply->content_disposition[0] = '\0';
    evbuffer_drain(reply->body, evbuffer_get_length(reply->body));
    json_t *o = json_pack("{s:s}", "error", msg);
    if (!o)
        return VP_ERR_NOMEM;
    int rc = export_json(reply->body, o);
    json_decref(o);
    return rc;
}

/* Maps a query / export failure to a reply. */
static int reply_rc(struct web_reply *reply, int rc)
{
    switch (rc) {
    case VP_ERR_NOTFOUND: return reply_error(reply, 404, "not found");
    case VP_ERR_NOMEM: return reply_error(reply, 500, "out of memory");
    case VP_ERR_INVALID: return reply_error(reply, 400, "invalid request");
    case VP_ERR_LIMIT: return reply_error(reply, 413, "result too large");
    default: return reply_error(reply, 503, "database unavailable");
    }
}

static void attach(struct web_reply *reply, const char *filename)
{
    if (snprintf(reply->content_disposition, sizeof reply->content_disposition,
                 "attachment; filename=\"%s\"", filename) < 0)
        reply->content_disposition[0] = '\0';
}

/* Consumes j (takes ownership). */
static int reply_json(struct web_reply *reply, json_t *j)
{
    reply->status = 200;
    reply->content_type = "application/json";
    int rc = export_json(reply->body, j);
    json_decref(j);
    return rc ? reply_rc(reply, rc) : 0;
}

static int reply_csv(struct web_reply *reply, json_t *j, int (*fn)(struct evbuffer *, const json_t *),
                     const char *filename)
{
    reply->status = 200;
    reply->content_type = "text/csv; charset=utf-8";
    attach(reply, filename);
    int rc = fn(reply->body, j);
    json_decref(j);
    if (rc) {
        reply->content_disposition[0] = '\0';
        return reply_rc(reply, rc);
    }
    return 0;
}

static bool valid_view_id(const char *s, size_t n)
{
    if (n < VIEW_ID_MIN || n > VIEW_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

struct target {
    const char *name; /* borrowed from the view JSON kept alive in `keep` */
    double *v;
    size_t n, cap;
};

/* Appends value to target name's samples in t (n entries). */
static int target_add(struct target **t, size_t *n, size_t *cap, const char *name, double value)
{
    size_t k = 0;
    while (k < *n && strcmp((*t)[k].name, name) != 0)
        k++;
    if (k == *n) {
        if (*n == *cap) {
            size_t nc = *cap ? *cap * 2 : 16;
            struct target *nt = realloc(*t, nc * sizeof *nt);
            if (!nt)
                return VP_ERR_NOMEM;
            *t = nt;
            *cap = nc;
        }
        memset(&(*t)[k], 0, sizeof **t);
        (*t)[k].name = name;
        (*n)++;
    }
    struct target *g = &(*t)[k];
    if (g->n == g->cap) {
        size_t nc = g->cap ? g->cap * 2 : 8;
        double *nv = realloc(g->v, nc * sizeof *nv);
        if (!nv)
            return VP_ERR_NOMEM;
        g->v = nv;
        g->cap = nc;
    }
    g->v[g->n++] = value;
    return 0;
}

static int cmp_target(const void *a, const void *b)
{
    const struct target *x = a, *y = b;
    if (x->n != y->n)
        return x->n < y->n ? 1 : -1;
    return strcmp(x->name, y->name);
}

/* Top attribution targets (LCP element, CLS shift target, INP target) over the newest views
 * matching f: {"views":N,"LCP":[{"target","count","p75"}],"CLS":[..],"INP":[..]}. */
static int targets(struct store_reader *r, const struct query_filter *f, json_t **out)
{
    static const char *const names[] = {"LCP", "CLS", "INP"};
    struct query_filter qf = *f;
    qf.limit = TARGETS_VIEWS_MAX;
    json_t *views = NULL, *keep = json_array(), *res = NULL;
    struct target *t[3] = {NULL, NULL, NULL};
    size_t tn[3] = {0, 0, 0}, tc[3] = {0, 0, 0};
    if (!keep)
        return VP_ERR_NOMEM;
    int rc = query_views(r, &qf, &views);
    if (rc)
        goto done;
    size_t i;
    const json_t *v;
    json_array_foreach(json_object_get(views, "views"), i, v) {
        const char *id = json_string_value(json_object_get(v, "id"));
        json_t *d = NULL;
        if (!id)
            continue;
        rc = query_view(r, id, &d);
        if (rc == VP_ERR_NOTFOUND) {
            rc = 0;
            continue;
        }
        if (rc)
            goto done;
        if (json_array_append_new(keep, d)) {
            rc = VP_ERR_NOMEM;
            goto done;
        }
        const json_t *attr = json_object_get(d, "attribution");
        const json_t *metrics = json_object_get(d, "metrics");
        for (int m = 0; m < 3; m++) {
            const char *tg = json_string_value(json_object_get(json_object_get(attr, names[m]),
                                                               "target"));
            const json_t *val = json_object_get(metrics, names[m]);
            if (tg && *tg && json_is_number(val) &&
                (rc = target_add(&t[m], &tn[m], &tc[m], tg, json_number_value(val))))
                goto done;
        }
    }
    res = json_pack("{s:I}", "views", (json_int_t)json_array_size(keep));
    if (!res) {
        rc = VP_ERR_NOMEM;
        goto done;
    }
    for (int m = 0; m < 3; m++) {
        json_t *arr = json_array();
        if (!arr || json_object_set_new(res, names[m], arr)) {
            rc = VP_ERR_NOMEM;
            goto done;
        }
        qsort(t[m], tn[m], sizeof **t, cmp_target);
        for (size_t k = 0; k < tn[m] && k < TARGETS_TOP; k++) {
            qsort(t[m][k].v, t[m][k].n, sizeof(double), cmp_double);
            json_t *o = json_pack("{s:s, s:I, s:f}", "target", t[m][k].name, "count",
                                  (json_int_t)t[m][k].n, "p75",
                                  budget_percentile(t[m][k].v, t[m][k].n, 75));
            if (!o || json_array_append_new(arr, o)) {
                rc = VP_ERR_NOMEM;
                goto done;
            }
        }
    }
    *out = res;
    res = NULL;
done:
    for (int m = 0; m < 3; m++) {
        for (size_t k = 0; k < tn[m]; k++)
            free(t[m][k].v);
        free(t[m]);
    }
    json_decref(res);
    json_decref(views);
    json_decref(keep);
    return rc;
}

static int budget_reply(struct store_reader *r, const struct query_filter *f,
                        struct web_reply *reply)
{
    struct budget *def = NULL;
    const struct budget *b = cfg_budget;
    if (!b) {
        if (budget_default(&def))
            return reply_rc(reply, VP_ERR_NOMEM);
        b = def;
    }
    json_t *res = NULL;
    int rc = budget_check(r, f, b, cfg_api_prefix, &res);
    json_t *bj = rc == 0 ? budget_to_json(b) : NULL;
    budget_free(def);
    if (rc)
        return reply_rc(reply, rc);
    if (!bj || json_object_set_new(res, "budget", bj)) {
        json_decref(res);
        return reply_rc(reply, VP_ERR_NOMEM);
    }
    return reply_json(reply, res);
}

static int handle_view(struct store_reader *r, const char *rest, struct web_reply *reply)
{
    const char *id = rest;
    const char *slash = strchr(id, '/');
    size_t idlen = slash ? (size_t)(slash - id) : strlen(id);
    const char *sub = slash ? slash + 1 : NULL;
    if (sub && strcmp(sub, "har") != 0 && strcmp(sub, "csv") != 0)
        return reply_error(reply, 404, "not found");
    if (!valid_view_id(id, idlen))
        return reply_error(reply, 400, "view id: expected 8 to 64 characters [A-Za-z0-9_-]");
    char idz[VIEW_ID_MAX + 1];
    memcpy(idz, id, idlen);
    idz[idlen] = '\0';
    json_t *j = NULL;
    char fname[VIEW_ID_MAX + 32];
    if (sub && strcmp(sub, "har") == 0) {
        int rc = query_view_har(r, idz, &j);
        if (rc)
            return reply_rc(reply, rc);
        if (snprintf(fname, sizeof fname, "vitals-%s.har", idz) < 0)
            fname[0] = '\0';
        attach(reply, fname);
        return reply_json(reply, j);
    }
    int rc = query_view(r, idz, &j);
    if (rc)
        return reply_rc(reply, rc);
    if (sub) {
        if (snprintf(fname, sizeof fname, "vitals-%s.csv", idz) < 0)
            fname[0] = '\0';
        return reply_csv(reply, j, export_view_csv, fname);
    }
    double js;
    if (budget_view_js_bytes(j, &js) && json_object_set_new(j, "initial_js_bytes", json_real(js)))
        return json_decref(j), reply_rc(reply, VP_ERR_NOMEM);
    return reply_json(reply, j);
}

int web_api_handle(struct store_reader *r, const char *method, const char *rest,
                   const char *query, struct web_reply *reply)
{
    reply->status = 200;
    reply->content_type = "application/json";
    reply->content_disposition[0] = '\0';
    if (!method || (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0))
        return reply_error(reply, 405, "method not allowed: use GET");
    if (!rest)
        rest = "";

    struct web_params p;
    struct query_filter f;
    char err[160];
    int rc;
    if (web_params_parse(&p, query, err, sizeof err) != 0 ||
        web_filter_from_params(&p, vp_now_ms(), &f, err, sizeof err) != 0) {
        rc = reply_error(reply, 400, err);
        goto done;
    }
    if (!r) {
        rc = reply_error(reply, 503, "database unavailable");
        goto done;
    }

    json_t *j = NULL;
    if (strcmp(rest, "summary") == 0 || strcmp(rest, "summary.json") == 0 ||
        strcmp(rest, "summary.csv") == 0) {
        if ((rc = query_summary(r, &f, &j)) != 0)
            rc = reply_rc(reply, rc);
        else if (strcmp(rest, "summary.csv") == 0)
            rc = reply_csv(reply, j, export_summary_csv, "vitals-summary.csv");
        else {
            if (strcmp(rest, "summary.json") == 0)
                attach(reply, "vitals-summary.json");
            rc = reply_json(reply, j);
        }
    } else if (strcmp(rest, "views") == 0 || strcmp(rest, "views.json") == 0 ||
               strcmp(rest, "views.csv") == 0) {
        if ((rc = query_views(r, &f, &j)) != 0)
            rc = reply_rc(reply, rc);
        else if (strcmp(rest, "views.csv") == 0)
            rc = reply_csv(reply, j, export_views_csv, "vitals-views.csv");
        else {
            if (strcmp(rest, "views.json") == 0)
                attach(reply, "vitals-views.json");
            rc = reply_json(reply, j);
        }
    } else if (strncmp(rest, "views/", 6) == 0) {
        rc = handle_view(r, rest + 6, reply);
    } else if (strcmp(rest, "api-latency") == 0 || strcmp(rest, "api-latency.csv") == 0) {
        if ((rc = query_api_latency(r, &f, cfg_api_prefix, &j)) != 0)
            rc = reply_rc(reply, rc);
        else if (strcmp(rest, "api-latency.csv") == 0)
            rc = reply_csv(reply, j, export_api_csv, "vitals-api-latency.csv");
        else
            rc = reply_json(reply, j);
    } else if (strcmp(rest, "health") == 0) {
        rc = (rc = query_health(r, &j)) != 0 ? reply_rc(reply, rc) : reply_json(reply, j);
    } else if (strcmp(rest, "budget") == 0) {
        rc = budget_reply(r, &f, reply);
    } else if (strcmp(rest, "targets") == 0) {
        rc = (rc = targets(r, &f, &j)) != 0 ? reply_rc(reply, rc) : reply_json(reply, j);
    } else if (strcmp(rest, "js") == 0) {
        rc = (rc = budget_collect_js(r, &f, &j)) != 0 ? reply_rc(reply, rc)
                                                       : reply_json(reply, j);
    } else {
        rc = reply_error(reply, 404, "not found");
    }
done:
    web_params_dispose(&p);
    return rc;
}
