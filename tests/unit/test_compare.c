/* web/compare: side parsing, the bootstrap and the verdicts on synthetic data with known
 * distributions: a real shift is detected, no shift gives "no detectable change" in at least
 * 95 % of seeds, tiny samples give "not enough data"; output is reproducible per seed. */
#include "config.h"

#include "web/compare.h"

#include <math.h>
#include <string.h>

#include "common/vp_err.h"
#include "tap.h"

static uint64_t rs;

/* Deterministic log-normal-ish samples (LCP-like): median about m. */
static double draw(double m)
{
    rs = rs * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
    double u1 = ((double)(rs >> 11) + 0.5) / 9007199254740992.0;
    rs = rs * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
    double u2 = ((double)(rs >> 11) + 0.5) / 9007199254740992.0;
    double z = sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2);
    return m * exp(0.4 * z);
}

static json_t *side(double median, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_real(draw(median)));
    return json_pack("{s:[{s:s,s:o}],s:[]}", "routes", "route", "/p", "LCP", a, "api");
}

static const char *verdict(const json_t *res)
{
    const char *v = json_string_value(json_object_get(json_array_get(json_object_get(res, "rows"), 0),
                                                      "verdict"));
    return v ? v : "";
}

int main(void)
{
    struct query_filter f;
    char err[200] = "";
    const int64_t now = INT64_C(1795514400000); /* 2026-11-24T10:00:00Z */
    TAP_OK(compare_parse_side("baseline", now, &f, err, sizeof err) == 0 &&
               strcmp(f.label, "baseline") == 0 && f.since_ms == 0,
           "side/label");
    TAP_OK(compare_parse_side("-2h..-1h", now, &f, err, sizeof err) == 0 &&
               f.since_ms == now - 7200000 && f.until_ms == now - 3600000 && !f.label,
           "side/relative_range");
    TAP_OK(compare_parse_side("2026-11-24T10:00..11:00", now, &f, err, sizeof err) == 0 &&
               f.since_ms == now && f.until_ms == now + 3600000,
           "side/time_of_day_end (%s)", err);
    TAP_OK(compare_parse_side("2026-11-24T10:00Z..2026-11-24T12:00Z", now, &f, err, sizeof err) ==
                   0 &&
               f.until_ms == now + 7200000,
           "side/iso_range");
    TAP_OK(compare_parse_side("-1h..now", now, &f, err, sizeof err) == 0 &&
               f.since_ms == now - 3600000 && f.until_ms == now,
           "side/until_now");
    TAP_OK(compare_parse_side("-1h..-2h", now, &f, err, sizeof err) == VP_ERR_INVALID &&
               strstr(err, "TO later than FROM"),
           "side/reversed (%s)", err);
    TAP_OK(compare_parse_side("..-1h", now, &f, err, sizeof err) == VP_ERR_INVALID, "side/no_from");
    TAP_OK(compare_parse_side("yesterday..today", now, &f, err, sizeof err) == VP_ERR_INVALID,
           "side/words");
    TAP_OK(compare_parse_side("", now, &f, err, sizeof err) == VP_ERR_INVALID, "side/empty");
    TAP_OK(compare_parse_side("x\n..y", now, &f, err, sizeof err) == VP_ERR_INVALID &&
               !strchr(err, '\n') && strstr(err, "x?..y"),
           "side/error_one_line (%s)", err);

    double a[] = {1, 2, 3, 4, 5, 6, 7, 8}, b[] = {11, 12, 13, 14, 15, 16, 17, 18};
    double d, lo, hi;
    TAP_OK(compare_bootstrap(a, 8, b, 8, 75, 7, &d, &lo, &hi) == 0 && d == 10 && lo > 0 &&
               lo <= hi,
           "bootstrap/shift_point_and_ci (%g [%g, %g])", d, lo, hi);
    TAP_OK(compare_bootstrap(a, 8, a, 8, 75, 7, &d, &lo, &hi) == 0 && d == 0 && lo <= 0 && hi >= 0,
           "bootstrap/same_contains_zero");
    TAP_OK(compare_bootstrap(a, 0, b, 8, 75, 7, &d, &lo, &hi) == VP_ERR_INVALID, "bootstrap/empty");

    /* a real shift: median 2000 -> 2600 ms, 200 views a side */
    rs = 42;
    json_t *sa = side(2000, 200), *sb = side(2600, 200), *res = NULL;
    TAP_OK(compare_samples(sa, sb, 1, 30, &res) == 0 && strcmp(verdict(res), "worse") == 0,
           "verdict/shift_up_worse (%s)", verdict(res));
    json_decref(res);
    TAP_OK(compare_samples(sb, sa, 1, 30, &res) == 0 && strcmp(verdict(res), "better") == 0,
           "verdict/shift_down_better");
    const json_t *row = json_array_get(json_object_get(res, "rows"), 0);
    TAP_OK(json_integer_value(json_object_get(json_object_get(row, "a"), "n")) == 200 &&
               strcmp(json_string_value(json_object_get(row, "stat")), "p75") == 0 &&
               json_array_size(json_object_get(row, "ci")) == 2,
           "verdict/row_shape");
    char *s1 = json_dumps(res, JSON_COMPACT);
    json_decref(res);
    TAP_OK(compare_samples(sb, sa, 1, 30, &res) == 0, "repro/again");
    char *s2 = json_dumps(res, JSON_COMPACT);
    TAP_OK(s1 && s2 && strcmp(s1, s2) == 0, "repro/same_seed_same_output");
    free(s1);
    free(s2);
    json_decref(res);
    json_decref(sa);
    json_decref(sb);

    /* no shift: both sides from the same distribution, 100 independent data sets */
    int nochange = 0;
    for (int k = 0; k < 100; k++) {
        rs = 1000 + (uint64_t)k;
        sa = side(2000, 100);
        sb = side(2000, 100);
        if (compare_samples(sa, sb, (uint64_t)k, 30, &res) == 0 &&
            strcmp(verdict(res), "no detectable change") == 0)
            nochange++;
        json_decref(res);
        json_decref(sa);
        json_decref(sb);
    }
    TAP_OK(nochange >= 95, "verdict/no_shift_95_percent (%d of 100)", nochange);

    /* tiny samples */
    rs = 7;
    sa = side(2000, 5);
    sb = side(9000, 5);
    TAP_OK(compare_samples(sa, sb, 1, 30, &res) == 0 && strcmp(verdict(res), "not enough data") == 0 &&
               !json_object_get(json_array_get(json_object_get(res, "rows"), 0), "ci"),
           "verdict/tiny_not_enough");
    json_decref(res);
    TAP_OK(compare_samples(sa, sb, 1, 3, &res) == 0 && strcmp(verdict(res), "worse") == 0,
           "verdict/min_n_configurable");
    json_decref(res);
    json_decref(sa);
    json_decref(sb);

    /* API rows compare p95; routes only on one side are skipped */
    json_t *xa = json_loads("{\"routes\":[{\"route\":\"/only-a\",\"LCP\":[1,2,3]}],"
                            "\"api\":[{\"route\":\"/api/x\",\"method\":\"GET\",\"ms\":[10,11,12,13]}]}",
                            0, NULL);
    json_t *xb = json_loads("{\"routes\":[],\"api\":[{\"route\":\"/api/x\",\"method\":\"GET\","
                            "\"ms\":[20,21,22,23]}]}",
                            0, NULL);
    TAP_OK(compare_samples(xa, xb, 1, 2, &res) == 0 &&
               json_array_size(json_object_get(res, "rows")) == 1,
           "api/one_row");
    row = json_array_get(json_object_get(res, "rows"), 0);
    TAP_OK(strcmp(json_string_value(json_object_get(row, "stat")), "p95") == 0 &&
               strcmp(json_string_value(json_object_get(row, "method")), "GET") == 0 &&
               json_number_value(json_object_get(row, "diff")) == 10,
           "api/p95_diff");
    json_decref(res);
    json_decref(xa);
    json_decref(xb);
    TAP_DONE();
}
