/* libFuzzer target: beacon_parse on arbitrary bytes. Checks the contract: success gives an object,
 * failure gives no object and a NUL-terminated reason made of printable ASCII only. */
#include "config.h"

#include "store/beacon.h"

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
