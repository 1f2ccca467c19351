/* libFuzzer target: beacon_parse on arbitrary bytes. Checks the contract: success gives an object,
 * failure gives no object and a NUL-terminated reason made of printable ASCII only; and
 * beacon_check (the store's path: store/jtree's parse) gives the same answer and reason. */
#include "config.h"

#include "store/beacon.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/vp_err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *out = NULL;
    char reason[96];
    int rc = beacon_parse((const char *)data, size, &out, reason, sizeof reason);
    /* The store's path (store/jtree) answers the same, with the same reason. */
    char reason2[96];
    struct jtree_doc *doc = NULL;
    const struct jtree *root = NULL;
    int rc2 = beacon_check((const char *)data, size, &doc, &root, reason2, sizeof reason2);
    jtree_doc_free(doc);
    if (rc2 != VP_ERR_NOMEM && rc != VP_ERR_NOMEM &&
        (rc2 != rc || strcmp(reason, reason2) != 0))
        abort();
    if (rc == 0) {
        if (!json_is_object(out))
            abort();
        json_decref(out);
    } else {
        if (out)
            abort();
        if (rc != VP_ERR_INVALID && rc != VP_ERR_LIMIT && rc != VP_ERR_NOMEM)
            abort();
        size_t n = strnlen(reason, sizeof reason);
        if (n == sizeof reason || n == 0)
            abort();
        for (size_t i = 0; i < n; i++)
            if (reason[i] < 0x20 || reason[i] > 0x7e || reason[i] == '<' || reason[i] == '"')
                abort();
    }
    return 0;
}
