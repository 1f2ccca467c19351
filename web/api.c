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
#include "store/query_report.h"
#include "web/budget.h"
#include "web/compare.h"
#include "web/export.h"
#include "web/html_export.h"
#include "web/params.h"

#define VIEW_ID_MIN 8
#define VIEW_ID_MAX 64
#define TARGETS_TOP 10

static const struct budget *cfg_budget;
static const char *cfg_api_prefix = "/api/";
static struct web_api_config cfg_all;

void web_api_configure(const struct web_api_config *cfg)
{
    static const struct web_api_config none = {0};
    cfg_all = cfg ? *cfg : none;
    cfg_budget = cfg_all.budget;
    cfg_api_prefix = cfg_all.api_prefix ? cfg_all.api_prefix : "/api/";
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

/* Traffic findings (store/query_report.h) plus one "slow-api" finding per API route whose
 * latency is over its budget. */
static int findings(struct store_reader *r, const struct query_filter *f, json_t **out)
{
    json_t *fj = NULL, *bj = NULL;
    struct budget *def = NULL;
    const struct budget *b = cfg_budget;
    int rc = query_findings(r, f, cfg_api_prefix, &fj);
    if (rc == 0 && !b) {
        rc = budget_default(&def);
        b = def;
    }
    if (rc == 0 && budget_has_metric(b, "API")) {
        json_t *api = NULL;
        rc = query_api_latency(r, f, cfg_api_prefix, &api);
        if (rc == 0)
            rc = budget_eval(b, NULL, api, NULL, &bj);
        json_decref(api);
    }
    json_t *list = json_object_get(fj, "findings");
    size_t i;
    const json_t *x;
    json_array_foreach(json_object_get(bj, "results"), i, x) {
        char line[700];
        if (rc || json_is_true(json_object_get(x, "ok")) ||
            budget_format_result(x, line, sizeof line) != 0)
            continue;
        json_t *o = json_pack("{s:s,s:s,s:s,s:O}", "type", "slow-api", "title",
                              "Slow API over budget", "evidence", line, "count",
                              json_object_get(x, "n"));
        if (!o || json_array_append_new(list, o))
            rc = VP_ERR_NOMEM;
    }
    budget_free(def);
    json_decref(bj);
    if (rc) {
        json_decref(fj);
        return rc;
    }
    *out = fj;
    return 0;
}

/* compare?a=SIDE&b=SIDE[&route=][&min_views=][&seed=] (web/compare.h). */
static int compare_reply(struct store_reader *r, const struct web_params *p,
                         const struct query_filter *f, struct web_reply *reply)
{
    const char *a = web_params_get(p, "a"), *b = web_params_get(p, "b");
    const char *mv = web_params_get(p, "min_views"), *sd = web_params_get(p, "seed");
    struct query_filter fa, fb;
    char err[200], msg[220];
    if (!a || !b || !*a || !*b)
        return reply_error(reply, 400, "a, b: both sides are required (labels or FROM..TO)");
    int64_t now = vp_now_ms();
    const char *which = "a";
    if (compare_parse_side(a, now, &fa, err, sizeof err) != 0 ||
        (which = "b", compare_parse_side(b, now, &fb, err, sizeof err) != 0)) {
        if (snprintf(msg, sizeof msg, "%s: %s", which, err) < 0)
            msg[0] = '\0';
        return reply_error(reply, 400, msg);
    }
    long min_n = COMPARE_MIN_N_DEFAULT, seed = 1;
    char *end;
    if (mv && *mv && ((min_n = strtol(mv, &end, 10)) < 1 || min_n > 1000000 || *end))
        return reply_error(reply, 400, "min_views: expected an integer from 1 to 1000000");
    if (sd && *sd && ((seed = strtol(sd, &end, 10)) < 0 || seed > 2147483647L || *end))
        return reply_error(reply, 400, "seed: expected a non-negative integer");
    fa.route = fb.route = f->route;
    json_t *sa = NULL, *sb = NULL, *res = NULL;
    int rc = query_samples(r, &fa, cfg_api_prefix, &sa);
    if (rc == 0)
        rc = query_samples(r, &fb, cfg_api_prefix, &sb);
    if (rc == 0)
        rc = compare_samples(sa, sb, (uint64_t)seed, (int)min_n, &res);
    json_decref(sa);
    json_decref(sb);
    return rc ? reply_rc(reply, rc) : reply_json(reply, res);
}

/* GET label / POST label?name=X (web.h: label_get / label_set). */
static int label_reply(const char *method, const struct web_params *p, struct web_reply *reply)
{
    if (!cfg_all.label_get || !cfg_all.label_set) {
        if (strcmp(method, "POST") == 0)
            return reply_error(reply, 501, "label switching is not available");
        json_t *o = json_pack("{s:n,s:b}", "label", "switchable", 0);
        return o ? reply_json(reply, o) : reply_rc(reply, VP_ERR_NOMEM);
    }
    if (strcmp(method, "POST") == 0) {
        const char *name = web_params_get(p, "name");
        if (!name)
            return reply_error(reply, 400, "name: required (empty to clear the label)");
        size_t n = strlen(name);
        if (n > 64)
            return reply_error(reply, 400, "name: at most 64 bytes");
        int rc = cfg_all.label_set(cfg_all.label_arg, n ? name : NULL);
        if (rc == VP_ERR_INVALID)
            return reply_error(reply, 400,
                               "name: expected 1 to 64 characters of A-Z a-z 0-9 . _ -");
        if (rc)
            return reply_error(reply, 500, "could not set the label");
    }
    char cur[80] = "";
    if (cfg_all.label_get(cfg_all.label_arg, cur, sizeof cur) != 0)
        return reply_error(reply, 500, "could not read the label");
    cur[sizeof cur - 1] = '\0';
    json_t *o = json_pack("{s:o,s:b}", "label", cur[0] ? json_string(cur) : json_null(),
                          "switchable", 1);
    return o ? reply_json(reply, o) : reply_rc(reply, VP_ERR_NOMEM);
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
    if (sub && strcmp(sub, "har") != 0 && strcmp(sub, "csv") != 0 && strcmp(sub, "html") != 0)
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
    if (sub && strcmp(sub, "html") == 0) {
        if (snprintf(fname, sizeof fname, "vitals-%s.html", idz) < 0)
            fname[0] = '\0';
        reply->content_type = "text/html; charset=utf-8";
        attach(reply, fname);
        rc = html_export_view(reply->body, j);
        json_decref(j);
        if (rc) {
            reply->content_disposition[0] = '\0';
            return reply_rc(reply, rc);
        }
        return 0;
    }
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
    if (!rest)
        rest = "";
    bool is_post = method && strcmp(method, "POST") == 0 && strcmp(rest, "label") == 0;
    if (!method || (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 && !is_post))
        return reply_error(reply, 405, "method not allowed: use GET");

    struct web_params p;
    struct query_filter f;
    char err[160];
    int rc;
    if (web_params_parse(&p, query, err, sizeof err) != 0 ||
        web_filter_from_params(&p, vp_now_ms(), &f, err, sizeof err) != 0) {
        rc = reply_error(reply, 400, err);
        goto done;
    }
    if (strcmp(rest, "label") == 0) { /* proxy state, not the database */
        rc = label_reply(method, &p, reply);
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
        if ((rc = query_health(r, &j)) != 0) {
            rc = reply_rc(reply, rc);
        } else {
            if (cfg_all.live_stats) {
                struct web_live_stats ls = {0};
                cfg_all.live_stats(cfg_all.live_arg, &ls);
                json_t *live = json_pack(
                    "{s:I,s:I,s:I,s:I,s:f,s:b,s:I}", "queued", (json_int_t)ls.queued,
                    "refused_busy", (json_int_t)ls.refused_busy, "write_errors",
                    (json_int_t)ls.write_errors, "committed_rows", (json_int_t)ls.committed_rows,
                    "commit_lag_max_ms", (double)ls.lag_max_us / 1000.0, "write_failing",
                    (int)ls.write_failing, "wal_pages", (json_int_t)ls.wal_frames);
                if (!live || json_object_update(j, live) != 0) {
                    json_decref(live);
                    json_decref(j);
                    rc = reply_error(reply, 500, "out of memory");
                    goto done;
                }
                json_decref(live);
            }
            rc = reply_json(reply, j);
        }
    } else if (strcmp(rest, "budget") == 0) {
        rc = budget_reply(r, &f, reply);
    } else if (strcmp(rest, "targets") == 0) {
        rc = (rc = query_targets(r, &f, TARGETS_TOP, &j)) != 0 ? reply_rc(reply, rc)
                                                                : reply_json(reply, j);
    } else if (strcmp(rest, "labels") == 0) {
        rc = (rc = query_labels(r, &j)) != 0 ? reply_rc(reply, rc) : reply_json(reply, j);
    } else if (strcmp(rest, "compare") == 0) {
        rc = compare_reply(r, &p, &f, reply);
    } else if (strcmp(rest, "findings") == 0) {
        rc = (rc = findings(r, &f, &j)) != 0 ? reply_rc(reply, rc) : reply_json(reply, j);
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
