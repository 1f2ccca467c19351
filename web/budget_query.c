/* Budget queries (see budget.h): the database side of budgets, kept apart from budget.c so
 * that parsing and evaluation link and test without a store. */
#include "config.h"

#include "web/budget.h"

#include "common/vp_err.h"
#include "store/query.h"
#include "store/query_report.h"

int budget_collect_js(struct store_reader *r, const struct query_filter *f, json_t **out)
{
    return query_initial_js(r, f, 0, out);
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

