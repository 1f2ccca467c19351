/* store/jtree internals, for tests/unit/test_jtree.c only. */
#ifndef VP_JTREE_INTERNAL_H
#define VP_JTREE_INTERNAL_H

#include <stdint.h>

/* Key comparisons made by the duplicate-key check on this thread since it started (each pair
 * compared, each comparison of the sort): what bounds an object's cost in its member count. */
extern _Thread_local uint64_t jtree_key_compares;

#endif
