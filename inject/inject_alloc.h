/* inject/ allocation hooks (module-internal; used by the codecs and the failmalloc test).
 *
 * Every heap allocation made by inject/ itself or by zlib/brotli/zstd on its behalf goes through
 * inject_malloc/inject_free, so a test can count allocations and fail the Nth. The hooks are
 * process-global and meant to be set once before use (tests only); default is malloc/free. */
#ifndef VP_INJECT_ALLOC_H
#define VP_INJECT_ALLOC_H
#include <stddef.h>

typedef void *(*inject_malloc_cb)(size_t size);
typedef void (*inject_free_cb)(void *ptr);

/* Replaces the allocator (NULL, NULL restores malloc/free). Not thread-safe: call at start-up. */
void inject_alloc_set(inject_malloc_cb m, inject_free_cb f);

/* malloc/calloc/free through the hooks. inject_calloc checks n*size for overflow. */
void *inject_malloc(size_t size);
void *inject_calloc(size_t n, size_t size);
void inject_free(void *ptr);

#endif
