/* web/api: routing (404 / 405 / 400), parameter validation, reply shapes, CSV and HAR
 * attachments, budgets and top targets, against the store/query.h test double. */
#include "config.h"

#include "web/web.h"

#include <event2/buffer.h>
#include <string.h>

#include "common/vp_err.h"
#include "store/query.h"
#include "tap.h"
#include "tests/unit/fake_query.h"

static struct web_reply reply;
static char body[16384];
static json_t *json;

/* Runs one request; the body lands in `body` and, when it parses, in `json`. */
static int req(struct store_reader *r, const char *method, const char *rest, const char *query)
{
    json_decref(json);
    json = NULL;
    memset(&reply, 0, sizeof reply);
    reply.body = evbuffer_new();
    int rc = web_api_handle(r, method, rest, query, &reply);
    size_t n = evbuffer_get_length(reply.body);
    if (n >= sizeof body)
        n = sizeof body - 1;
    evbuffer_remove(reply.body, body, n);
    body[n] = '\0';
    evbuffer_free(reply.body);
    json = json_loads(body, JSON_DECODE_ANY, NULL);
    return rc == 0 ? reply.status : rc;
}

static char current_label[80];

static int fake_label_get(void *arg, char *out, size_t cap)
{
    (void)arg;
    return snprintf(out, cap, "%s", current_label) < (int)cap ? 0 : VP_ERR_LIMIT;
}

static int fake_label_set(void *arg, const char *label)
{
    *(int *)arg += 1;
    return snprintf(current_label, sizeof current_label, "%s", label ? label : "") < 80
               ? 0
               : VP_ERR_LIMIT;
}

static const char *err_text(void)
{
    const char *s = json_string_value(json_object_get(json, "error"));
    return s ? s : "";
}

static const json_t *result(const char *route, const char *metric)
{
    size_t i;
    const json_t *r;
    json_array_foreach(json_object_get(json, "results"), i, r) {
        if (strcmp(json_string_value(json_object_get(r, "route")), route) == 0 &&
            strcmp(json_string_value(json_object_get(r, "metric")), metric) == 0)
            return r;
    }
    return NULL;
}

int main(void)
{
    struct store_reader *r = NULL;
    char err[128] = "";
    FILE *f = fopen("test_api.fake.db", "wb");
    fputs("FAKE-VITALS\n", f);
    fclose(f);
    TAP_OK(store_reader_open(&r, "test_api.fake.db", err, sizeof err) == 0, "setup/reader");

    TAP_OK(req(r, "POST", "summary", NULL) == 405 && strstr(err_text(), "method"),
           "route/post_405");
    TAP_OK(req(r, "DELETE", "views/view0001", NULL) == 405, "route/delete_405");
    TAP_OK(req(r, "GET", "nope", NULL) == 404 && strcmp(err_text(), "not found") == 0,
           "route/unknown_404");
    TAP_OK(req(r, "GET", "", NULL) == 404, "route/empty_404");
    TAP_OK(req(r, "GET", "summary/", NULL) == 404, "route/trailing_slash_404");
    TAP_OK(req(r, "GET", "views/view0001/other", NULL) == 404, "route/view_sub_404");
    TAP_OK(req(r, "GET", "summary", "since=yesterday") == 400 &&
               strncmp(err_text(), "since:", 6) == 0,
           "params/bad_since_400 (%s)", body);
    TAP_OK(req(r, "GET", "views", "limit=5000") == 400 && strncmp(err_text(), "limit:", 6) == 0,
           "params/bad_limit_400");
    TAP_OK(req(r, "GET", "summary", "route=%zz") == 400, "params/bad_escape_400");
    TAP_OK(req(r, "GET", "summary", "route=a&route=b") == 400, "params/duplicate_400");
    TAP_OK(req(r, "GET", "views/bad!id!!", NULL) == 400, "params/bad_view_id_400");
    TAP_OK(req(r, "GET", "views/short", NULL) == 400, "params/short_view_id_400");
    TAP_OK(req(NULL, "GET", "summary", NULL) == 503, "db/no_reader_503");
    TAP_OK(req(r, "GET", "views/dbfailure", NULL) == 503 &&
               strcmp(err_text(), "database unavailable") == 0,
           "db/query_failure_503");
    TAP_OK(req(r, "GET", "views/zzzzzzzz", NULL) == 404, "db/not_found_404");

    fake_query_log.calls = 0;
    TAP_OK(req(r, "GET", "summary", "route=%2F&since=24h&token=secret&device=mobile") == 200,
           "summary/200");
    TAP_OK(strcmp(reply.content_type, "application/json") == 0 && !reply.content_disposition[0],
           "summary/json_inline");
    TAP_OK(json_array_size(json_object_get(json, "routes")) == 2 && !strchr(body, ' '),
           "summary/shape");
    TAP_OK(strncmp(body, "{\"routes\":[{\"route\":\"/\",\"views\":12,", 35) == 0,
           "summary/compact (%.40s)", body);
    TAP_OK(fake_query_log.calls == 1 && strcmp(fake_query_log.route, "/") == 0 &&
               fake_query_log.since_ms > 0,
           "summary/filter_passed");
    TAP_OK(req(r, "HEAD", "summary", NULL) == 200, "summary/head");
    TAP_OK(req(r, "GET", "summary.json", NULL) == 200 &&
               strstr(reply.content_disposition, "attachment"),
           "summary/json_attachment");
    TAP_OK(req(r, "GET", "summary.csv", NULL) == 200 &&
               strncmp(reply.content_type, "text/csv", 8) == 0 &&
               strncmp(body, "route,views,metric,", 19) == 0 &&
               strstr(reply.content_disposition, "vitals-summary.csv"),
           "summary/csv");

    TAP_OK(req(r, "GET", "views", "limit=10") == 200 &&
               json_array_size(json_object_get(json, "views")) == 2 && fake_query_log.limit == 10,
           "views/200");
    TAP_OK(req(r, "GET", "views.csv", NULL) == 200 && strncmp(body, "id,started_at,url,", 18) == 0,
           "views/csv");
    TAP_OK(req(r, "GET", "views/view0001", NULL) == 200 &&
               json_number_value(json_object_get(json, "initial_js_bytes")) == 150000,
           "view/200_with_js (%s)", body);
    TAP_OK(req(r, "GET", "views/view0001/har", NULL) == 200 &&
               strcmp(reply.content_disposition, "attachment; filename=\"vitals-view0001.har\"") ==
                   0 &&
               json_object_get(json_object_get(json, "log"), "version"),
           "view/har_attachment (%s)", reply.content_disposition);
    TAP_OK(req(r, "GET", "views/view0001/csv", NULL) == 200 && strstr(body, "/app.js,script"),
           "view/csv");

    TAP_OK(req(r, "GET", "api-latency", NULL) == 200 &&
               strcmp(fake_query_log.prefix, "/api/") == 0,
           "api_latency/default_prefix");
    struct web_api_config cfg = {.budget = NULL, .api_prefix = "/rpc/"};
    web_api_configure(&cfg);
    TAP_OK(req(r, "GET", "api-latency.csv", NULL) == 200 &&
               strcmp(fake_query_log.prefix, "/rpc/") == 0 &&
               strstr(body, "/api/items,GET,40,80,650,2500,2"),
           "api_latency/configured_prefix_csv");
    web_api_configure(NULL);
    TAP_OK(req(r, "GET", "health", NULL) == 200 &&
               json_integer_value(json_object_get(json, "beacons_accepted")) == 10,
           "health/200");

    TAP_OK(req(r, "GET", "budget", NULL) == 200, "budget/200");
    TAP_OK(json_integer_value(json_object_get(json, "violations")) == 4,
           "budget/default_violations (%s)", body);
    const json_t *x = result("/", "JS");
    TAP_OK(x && json_number_value(json_object_get(x, "actual")) == 260000,
           "budget/js_p75_over_views");
    x = result("/", "LCP");
    TAP_OK(x && json_is_true(json_object_get(x, "ok")), "budget/lcp_within");
    TAP_OK(json_object_get(json_object_get(json, "budget"), "*") != NULL, "budget/echoes_rules");

    TAP_OK(req(r, "GET", "targets", "route=%2F") == 200 &&
               json_array_size(json_object_get(json, "LCP")) == 1 &&
               strcmp(fake_query_log.route, "/") == 0 && fake_query_log.limit == 10,
           "targets/200 (%s)", body);
    TAP_OK(req(r, "GET", "js", NULL) == 200 &&
               json_array_size(json_object_get(json, "routes")) == 1,
           "js/200");
    TAP_OK(req(r, "GET", "findings", NULL) == 200, "findings/200");
    const json_t *fl = json_object_get(json, "findings");
    TAP_OK(json_array_size(fl) == 2 &&
               strcmp(json_string_value(json_object_get(json_array_get(fl, 1), "type")),
                      "slow-api") == 0 &&
               strstr(json_string_value(json_object_get(json_array_get(fl, 1), "evidence")),
                      "GET /api/items API p95 650 ms > limit 500 ms"),
           "findings/slow_api_from_budget (%s)", body);
    TAP_OK(req(r, "POST", "findings", NULL) == 405, "findings/post_405");

    TAP_OK(req(r, "GET", "labels", NULL) == 200 &&
               json_array_size(json_object_get(json, "labels")) == 1,
           "labels/200");
    TAP_OK(req(r, "GET", "compare", "a=slow&b=fast") == 200, "compare/200");
    const json_t *row = json_array_get(json_object_get(json, "rows"), 0);
    TAP_OK(row && strcmp(json_string_value(json_object_get(row, "verdict")), "better") == 0 &&
               json_number_value(json_object_get(row, "diff")) == -2000,
           "compare/better (%.200s)", body);
    TAP_OK(req(r, "GET", "compare", "a=fast&b=fast2&min_views=60") == 200 &&
               strcmp(json_string_value(json_object_get(
                          json_array_get(json_object_get(json, "rows"), 0), "verdict")),
                      "not enough data") == 0,
           "compare/min_views");
    TAP_OK(req(r, "GET", "compare", "a=slow") == 400 && strncmp(err_text(), "a, b", 4) == 0,
           "compare/missing_side_400");
    TAP_OK(req(r, "GET", "compare", "a=slow&b=-1h..-2h") == 400 &&
               strncmp(err_text(), "b: ", 3) == 0,
           "compare/bad_range_400 (%s)", err_text());
    TAP_OK(req(r, "GET", "compare", "a=x&b=y&seed=-4") == 400, "compare/bad_seed_400");

    /* run label switching */
    TAP_OK(req(r, "GET", "label", NULL) == 200 &&
               json_is_false(json_object_get(json, "switchable")),
           "label/not_configured_get");
    TAP_OK(req(r, "POST", "label", "name=x") == 501, "label/not_configured_post_501");
    int sets = 0;
    struct web_api_config lc = {.label_get = fake_label_get, .label_set = fake_label_set,
                                .label_arg = &sets};
    web_api_configure(&lc);
    TAP_OK(req(r, "GET", "label", NULL) == 200 && json_is_null(json_object_get(json, "label")) &&
               json_is_true(json_object_get(json, "switchable")),
           "label/none");
    TAP_OK(req(r, "POST", "label", "name=lazy-hero") == 200 &&
               strcmp(json_string_value(json_object_get(json, "label")), "lazy-hero") == 0 &&
               sets == 1,
           "label/set");
    TAP_OK(req(NULL, "GET", "label", NULL) == 200 &&
               strcmp(json_string_value(json_object_get(json, "label")), "lazy-hero") == 0,
           "label/get_without_db");
    TAP_OK(req(r, "POST", "label", "name=") == 200 && json_is_null(json_object_get(json, "label")),
           "label/clear");
    TAP_OK(req(r, "POST", "label", NULL) == 400, "label/name_required");
    TAP_OK(req(r, "POST", "label", "name=%0Abad") == 400 && sets == 2, "label/control_refused");
    char longq[128] = "name=";
    memset(longq + 5, 'x', 65);
    TAP_OK(req(r, "POST", "label", longq) == 400 && sets == 2, "label/too_long");
    TAP_OK(req(r, "PUT", "label", "name=x") == 405, "label/put_405");
    TAP_OK(req(r, "POST", "summary", NULL) == 405, "label/post_only_for_label");
    web_api_configure(NULL);

    json_decref(json);
    store_reader_free(r);
    remove("test_api.fake.db");
    TAP_DONE();
}
