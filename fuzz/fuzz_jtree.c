/* libFuzzer target: store/jtree's parser against jansson on arbitrary bytes (fuzz/jtree_diff.h):
 * the same accept or refuse, and the same tree when both accept (types, integers, reals bit for
 * bit, strings byte for byte, member order). Any difference aborts, printing the reason. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz/jtree_diff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[256];
    if (!jtree_diff((const char *)data, size, why, sizeof why)) {
        fprintf(stderr, "jtree differs from jansson: %s\n", why);
        abort();
    }
    return 0;
}
