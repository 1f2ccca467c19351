/* Test double of store/compare for the unit tests that run web/ and the CLI against
 * fake_query.c instead of a real store (test_api, test_cli): they link web_api_handle and
 * cli_main, which reach the compare code, but never exercise it. Every entry point reports an
 * unusable database, so a test that did reach one would see a 503 / exit 2, never data.
 * query_thresholds is the one store function export_html needs beyond fake_query.c. */
#include "config.h"

#include <string.h>

#include "common/vp_err.h"
#include "store/compare.h"
#include "store/query.h"

bool compare_label_valid(const char *s)
{
    (void)s;
    return false;
}

int compare_parse_side(const char *spec, int64_t now_ms, struct compare_side *out, char *err,
                       size_t errlen)
{
    (void)spec;
    (void)now_ms;
    (void)out;
    if (errlen)
        strncpy(err, "compare is not available in this test", errlen - 1)[errlen - 1] = '\0';
    return VP_ERR_INVALID;
}

void compare_options_default(struct compare_options *o)
{
    memset(o, 0, sizeof *o);
}

int compare_run(struct store_reader *r, const struct compare_side *a, const struct compare_side *b,
                const struct compare_options *o, json_t **out)
{
    (void)r;
    (void)a;
    (void)b;
    (void)o;
    (void)out;
    return VP_ERR_DB;
}

int compare_labels(struct store_reader *r, json_t **out)
{
    (void)r;
    (void)out;
    return VP_ERR_DB;
}

int query_thresholds(const char *metric, double *good, double *poor)
{
    (void)metric;
    (void)good;
    (void)poor;
    return VP_ERR_NOTFOUND;
}
