/* Test double of store/labels for the unit tests that run web_api_handle against
 * fake_query.c instead of a real store (test_api): web_api_handle reaches the labels handler,
 * which these tests do not exercise. Listing reports an unusable database (a 503 reply). */
#include "config.h"

#include "store/labels.h"

#include "common/vp_err.h"

int labels_list(struct store_reader *r, json_t **out)
{
    (void)r;
    (void)out;
    return VP_ERR_DB;
}
