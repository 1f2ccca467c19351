/* store/jtree internals, for tests/unit/test_jtree.c only. */
#ifndef VP_JTREE_INTERNAL_H
#define VP_JTREE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* Key comparisons made by the duplicate-key check on this thread since it started (each pair
 * compared, each comparison of the sort): what bounds an object's cost in its member count. */
extern _Thread_local uint64_t jtree_key_compares;

/* The hash of the n bytes of key k that places it in a large object's duplicate check (one with
 * more than 16 members), so that a test can build keys that collide. */
uint64_t jtree_key_hash(const char *k, size_t n);

#endif
