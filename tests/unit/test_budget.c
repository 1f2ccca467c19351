/* web/budget: parsing (every usage error names its problem), pattern matching and precedence,
 * evaluation within / over, the initial-JS measure and the percentile helper. */
#include "config.h"

#include "web/budget.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/vp_err.h"
#include "tap.h"

static int parse(const char *s, struct budget **b, char *err, size_t errlen)
{
    *b = NULL;
    return budget_parse(b, s, strlen(s), err, errlen);
}

static void parsing(void)
{
    struct budget *b;
    char err[256] = "";
    TAP_OK(parse("{\"*\":{\"LCP\":{\"p75\":2500},\"INP\":{\"p75\":200}},"
                 "\"/checkout\":{\"LCP\":{\"p75\":2000}}}",
                 &b, err, sizeof err) == 0 && b,
           "parse/contract_example");
    json_t *j = budget_to_json(b);
    char *s = json_dumps(j, JSON_COMPACT);
    TAP_OK(s && strcmp(s, "{\"*\":{\"LCP\":{\"p75\":2500.0},\"INP\":{\"p75\":200.0}},"
                          "\"/checkout\":{\"LCP\":{\"p75\":2000.0}}}") == 0,
           "parse/round_trip (%s)", s ? s : "");
    free(s);
    json_decref(j);
    TAP_OK(budget_has_metric(b, "LCP") && !budget_has_metric(b, "JS"), "parse/has_metric");
    budget_free(b);
    budget_free(NULL);

    TAP_OK(parse("{\"*\":{\"LCP\":{\"p75\":25", &b, err, sizeof err) == VP_ERR_INVALID &&
               strstr(err, "invalid JSON") && strstr(err, "line 1") && !b,
           "parse/bad_json (%s)", err);
    TAP_OK(parse("[]", &b, err, sizeof err) == VP_ERR_INVALID, "parse/not_object");
    TAP_OK(parse("{\"*\":{\"LCPX\":{\"p75\":1}}}", &b, err, sizeof err) == VP_ERR_INVALID &&
               strstr(err, "unknown metric \"LCPX\""),
           "parse/unknown_metric (%s)", err);
    TAP_OK(parse("{\"*\":{\"LCP\":{\"p90\":1}}}", &b, err, sizeof err) == VP_ERR_INVALID &&
               strstr(err, "unknown percentile \"p90\""),
           "parse/unknown_percentile (%s)", err);
    TAP_OK(parse("{\"*\":{\"API\":{\"p75\":1}}}", &b, err, sizeof err) == VP_ERR_INVALID &&
               strstr(err, "p50, p95 or p99"),
           "parse/api_has_no_p75 (%s)", err);
    TAP_OK(parse("{\"*\":{\"LCP\":{\"p75\":-1}}}", &b, err, sizeof err) == VP_ERR_INVALID,
           "parse/negative_limit");
    TAP_OK(parse("{\"*\":{\"LCP\":{\"p75\":\"2500\"}}}", &b, err, sizeof err) == VP_ERR_INVALID,
           "parse/string_limit");
    TAP_OK(parse("{\"checkout\":{\"LCP\":{\"p75\":1}}}", &b, err, sizeof err) == VP_ERR_INVALID &&
               strstr(err, "route pattern"),
           "parse/relative_route (%s)", err);
    TAP_OK(parse("{\"*\":{\"LCP\":7}}", &b, err, sizeof err) == VP_ERR_INVALID,
           "parse/metric_not_object");
    TAP_OK(parse("{\"*\":{\"LCP\":{\"p75\":1}},\"*\":{}}", &b, err, sizeof err) == VP_ERR_INVALID,
           "parse/duplicate_key");
    TAP_OK(parse("{\"*\":{\"LC\\nP\":{\"p75\":1}}}", &b, err, sizeof err) == VP_ERR_INVALID &&
               !strchr(err, '\n') && strstr(err, "LC?P"),
           "parse/error_one_line (%s)", err);
    TAP_OK(parse("{}", &b, err, sizeof err) == 0 && b, "parse/empty_ok");
    budget_free(b);
    TAP_OK(budget_load(&b, "/nonexistent/budget.json", err, sizeof err) == VP_ERR_IO &&
               strstr(err, "/nonexistent/budget.json"),
           "load/missing (%s)", err);
}

static void patterns(void)
{
    TAP_OK(budget_pattern_match("*", "/anything"), "match/star");
    TAP_OK(budget_pattern_match("/checkout", "/checkout"), "match/exact");
    TAP_OK(!budget_pattern_match("/checkout", "/checkout/2"), "match/exact_only");
    TAP_OK(budget_pattern_match("/products/*", "/products/[id]"), "match/glob");
    TAP_OK(!budget_pattern_match("/products/*", "/product"), "match/glob_miss");
    TAP_OK(budget_pattern_match("/products/[id]", "/products/[id]"), "match/brackets_literal");
    TAP_OK(!budget_pattern_match("/products/[id]", "/products/i"), "match/brackets_not_class");
    TAP_OK(budget_pattern_match("/a/*/c*", "/a/b/cde"), "match/two_stars");
    TAP_OK(!budget_pattern_match("/a/*/c", "/a/b/cd"), "match/anchored_end");
}

static json_t *summary(void)
{
    return json_loads(
        "{\"routes\":["
        "{\"route\":\"/\",\"views\":10,\"metrics\":{\"LCP\":{\"n\":10,\"p50\":1000,\"p75\":2400,"
        "\"p95\":5000,\"p99\":6000},\"CLS\":{\"n\":10,\"p50\":0.0,\"p75\":0.05,\"p95\":0.3,"
        "\"p99\":0.4}}},"
        "{\"route\":\"/checkout\",\"views\":4,\"metrics\":{\"LCP\":{\"n\":4,\"p50\":1800,"
        "\"p75\":2300,\"p95\":2600,\"p99\":2700}}},"
        "{\"route\":\"/products/[id]\",\"views\":7,\"metrics\":{\"LCP\":{\"n\":7,\"p50\":2000,"
        "\"p75\":2600,\"p95\":3000,\"p99\":3100}}}]}",
        0, NULL);
}

static const json_t *find(const json_t *res, const char *route, const char *metric,
                          const char *pct)
{
    size_t i;
    const json_t *r;
    json_array_foreach(json_object_get(res, "results"), i, r) {
        if (strcmp(json_string_value(json_object_get(r, "route")), route) == 0 &&
            strcmp(json_string_value(json_object_get(r, "metric")), metric) == 0 &&
            strcmp(json_string_value(json_object_get(r, "percentile")), pct) == 0)
            return r;
    }
    return NULL;
}

static void evaluation(void)
{
    struct budget *b;
    char err[256] = "";
    json_t *sum = summary(), *res = NULL;
    /* within: defaults-like limits that every route meets at p75 */
    TAP_OK(parse("{\"*\":{\"LCP\":{\"p75\":2600},\"CLS\":{\"p75\":0.1}}}", &b, err, sizeof err) == 0,
           "eval/within_parse");
    TAP_OK(budget_eval(b, sum, NULL, NULL, &res) == 0, "eval/within_ok");
    TAP_OK(json_integer_value(json_object_get(res, "violations")) == 0 &&
               json_integer_value(json_object_get(res, "checked")) == 4,
           "eval/within_counts");
    json_decref(res);
    budget_free(b);

    /* over: route rule overrides "*", glob beats "*", exact beats glob */
    TAP_OK(parse("{\"*\":{\"LCP\":{\"p75\":2500,\"p95\":10000}},"
                 "\"/checkout\":{\"LCP\":{\"p75\":2000}},"
                 "\"/products/*\":{\"LCP\":{\"p75\":3000}},\"/*\":{\"LCP\":{\"p75\":1}}}",
                 &b, err, sizeof err) == 0,
           "eval/over_parse (%s)", err);
    TAP_OK(budget_eval(b, sum, NULL, NULL, &res) == 0, "eval/over_ok");
    const json_t *r = find(res, "/checkout", "LCP", "p75");
    TAP_OK(r && json_number_value(json_object_get(r, "limit")) == 2000 &&
               json_is_false(json_object_get(r, "ok")),
           "eval/exact_overrides_star");
    r = find(res, "/products/[id]", "LCP", "p75");
    TAP_OK(r && json_number_value(json_object_get(r, "limit")) == 3000 &&
               json_is_true(json_object_get(r, "ok")),
           "eval/longer_glob_wins");
    r = find(res, "/", "LCP", "p75");
    TAP_OK(r && json_number_value(json_object_get(r, "limit")) == 1 &&
               strcmp(json_string_value(json_object_get(r, "pattern")), "/*") == 0,
           "eval/glob_beats_star");
    r = find(res, "/", "LCP", "p95");
    TAP_OK(r && json_is_true(json_object_get(r, "ok")), "eval/other_percentile_from_star");
    TAP_OK(json_integer_value(json_object_get(res, "violations")) == 2, "eval/over_count (%lld)",
           (long long)json_integer_value(json_object_get(res, "violations")));
    char line[200];
    r = find(res, "/checkout", "LCP", "p75");
    TAP_OK(budget_format_result(r, line, sizeof line) == 0 &&
               strcmp(line, "/checkout LCP p75 2300 ms > limit 2000 ms (n=4)") == 0,
           "format/over (%s)", line);
    json_decref(res);
    budget_free(b);

    /* API and JS items */
    json_t *api = json_loads("{\"routes\":[{\"route\":\"/api/slow\",\"method\":\"GET\",\"n\":9,"
                             "\"p50\":100,\"p95\":900,\"p99\":1500}]}",
                             0, NULL);
    json_t *js = json_loads("{\"routes\":[{\"route\":\"/\",\"n\":3,\"p50\":1,\"p75\":250000,"
                            "\"p95\":1,\"p99\":1}]}",
                            0, NULL);
    TAP_OK(budget_default(&b) == 0, "default/ok");
    TAP_OK(budget_eval(b, sum, api, js, &res) == 0, "default/eval");
    r = find(res, "/api/slow", "API", "p95");
    TAP_OK(r && json_is_false(json_object_get(r, "ok")) &&
               json_number_value(json_object_get(r, "limit")) == 500,
           "default/api_p95_500");
    TAP_OK(budget_format_result(r, line, sizeof line) == 0 &&
               strcmp(line, "GET /api/slow API p95 900 ms > limit 500 ms (n=9)") == 0,
           "format/api (%s)", line);
    r = find(res, "/", "JS", "p75");
    TAP_OK(r && json_is_false(json_object_get(r, "ok")) &&
               json_number_value(json_object_get(r, "limit")) == 200000,
           "default/js_200kb");
    r = find(res, "/", "CLS", "p75");
    TAP_OK(r && json_is_true(json_object_get(r, "ok")) &&
               budget_format_result(r, line, sizeof line) == 0 &&
               strcmp(line, "/ CLS p75 0.050 <= limit 0.100 (n=10)") == 0,
           "format/cls (%s)", line);
    TAP_OK(find(res, "/", "INP", "p75") == NULL, "default/no_data_no_result");
    json_decref(res);
    budget_free(b);
    json_decref(api);
    json_decref(js);
    json_decref(sum);
}

static void js_and_percentiles(void)
{
    json_t *view = json_loads(
        "{\"navigation\":{\"ls\":1000},\"resources\":["
        "{\"u\":\"/a.js\",\"i\":\"script\",\"s\":10,\"ts\":30000,\"eb\":29000},"
        "{\"u\":\"/b.js\",\"i\":\"script\",\"s\":20,\"ts\":0,\"eb\":5000},"
        "{\"u\":\"/late.js\",\"i\":\"script\",\"s\":1500,\"ts\":99999},"
        "{\"u\":\"/c.mjs?v=1\",\"i\":\"link\",\"s\":5,\"ts\":700},"
        "{\"u\":\"/s.css\",\"i\":\"link\",\"s\":5,\"ts\":800},"
        "{\"u\":\"/i.png\",\"i\":\"img\",\"s\":5,\"ts\":9000}]}",
        0, NULL);
    double bytes = -1;
    TAP_OK(budget_view_js_bytes(view, &bytes) && bytes == 35700, "js/initial (%g)", bytes);
    json_decref(view);
    view = json_object();
    TAP_OK(!budget_view_js_bytes(view, &bytes), "js/no_resources");
    json_decref(view);

    double v[] = {1, 2, 3, 4, 5};
    TAP_OK(budget_percentile(v, 5, 50) == 3, "pct/median");
    TAP_OK(budget_percentile(v, 5, 75) == 4, "pct/p75");
    TAP_OK(budget_percentile(v, 5, 95) == 5, "pct/p95_nearest_rank");
    TAP_OK(budget_percentile(v, 5, 20) == 1 && budget_percentile(v, 5, 21) == 2, "pct/rank_boundary");
    TAP_OK(budget_percentile(v, 1, 99) == 1, "pct/single");
    TAP_OK(isnan(budget_percentile(v, 0, 50)), "pct/empty");
}

int main(void)
{
    parsing();
    patterns();
    evaluation();
    js_and_percentiles();
    TAP_DONE();
}
