/* Budget queries (see budget.h): the database side of budgets, kept apart from budget.c so
 * that parsing and evaluation link and test without a store. The initial-JS distribution is
 * computed from the newest views' resource lists (at most 1000 views per call), since the
 * store keeps resources per view rather than a per-view JS total. */
#include "config.h"

#include "web/budget.h"

#include <stdlib.h>
#include <string.h>

#include "common/vp_err.h"
#include "store/query.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

struct js_route {
    const char *route; /* borrowed from the views JSON */
    double *v;
    size_t n;
};

int budget_collect_js(struct store_reader *rd, const struct query_filter *f, json_t **out)
{
    struct query_filter qf = *f;
    qf.limit = 1000;
    json_t *views = NULL, *routes = NULL;
    struct js_route *acc = NULL;
    size_t nacc = 0;
    int rc = query_views(rd, &qf, &views);
    if (rc)
        return rc;
    const json_t *list = json_object_get(views, "views");
    size_t nv = json_array_size(list);
    acc = calloc(nv ? nv : 1, sizeof *acc);
    if (!acc) {
        rc = VP_ERR_NOMEM;
        goto done;
    }
    size_t i;
    const json_t *v;
    json_array_foreach(list, i, v) {
        const char *id = json_string_value(json_object_get(v, "id"));
        const char *route = json_string_value(json_object_get(v, "route"));
        if (!id || !route)
            continue;
        json_t *detail = NULL;
        rc = query_view(rd, id, &detail);
        if (rc == VP_ERR_NOTFOUND) { /* deleted by retention meanwhile */
            rc = 0;
            continue;
        }
        if (rc)
            goto done;
        double bytes;
        bool have = budget_view_js_bytes(detail, &bytes);
        json_decref(detail);
        if (!have)
            continue;
        size_t k = 0;
        while (k < nacc && strcmp(acc[k].route, route) != 0)
            k++;
        if (k == nacc) {
            acc[nacc].route = route;
            acc[nacc].v = malloc(nv * sizeof(double));
            if (!acc[nacc].v) {
                rc = VP_ERR_NOMEM;
                goto done;
            }
            nacc++;
        }
        acc[k].v[acc[k].n++] = bytes;
    }
    routes = json_array();
    if (!routes) {
        rc = VP_ERR_NOMEM;
        goto done;
    }
    for (size_t k = 0; k < nacc; k++) {
        qsort(acc[k].v, acc[k].n, sizeof(double), cmp_double);
        json_t *o = json_pack("{s:s, s:I, s:f, s:f, s:f, s:f}", "route", acc[k].route, "n",
                              (json_int_t)acc[k].n, "p50", budget_percentile(acc[k].v, acc[k].n, 50),
                              "p75", budget_percentile(acc[k].v, acc[k].n, 75), "p95",
                              budget_percentile(acc[k].v, acc[k].n, 95), "p99",
                              budget_percentile(acc[k].v, acc[k].n, 99));
        if (!o || json_array_append_new(routes, o)) {
            rc = VP_ERR_NOMEM;
            goto done;
        }
    }
    *out = json_pack("{s:O}", "routes", routes);
    if (!*out)
        rc = VP_ERR_NOMEM;
done:
    json_decref(routes);
    for (size_t k = 0; k < nacc; k++)
        free(acc[k].v);
    free(acc);
    json_decref(views);
    return rc;
}

int budget_check(struct store_reader *r, const struct query_filter *f, const struct budget *b,
                 const char *api_prefix, json_t **out)
{
    json_t *summary = NULL, *api = NULL, *js = NULL;
    int rc = query_summary(r, f, &summary);
    if (rc == 0 && budget_has_metric(b, "API"))
        rc = query_api_latency(r, f, api_prefix ? api_prefix : "/api/", &api);
    if (rc == 0 && budget_has_metric(b, "JS"))
        rc = budget_collect_js(r, f, &js);
    if (rc == 0)
        rc = budget_eval(b, summary, api, js, out);
    json_decref(summary);
    json_decref(api);
    json_decref(js);
    return rc;
}

