/* Allocation hooks for inject/: see inject_alloc.h. Two global function pointers; the default
 * is the C library. */
#include "config.h"

#include "inject/inject_alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inject_malloc_cb hook_malloc = malloc;
static inject_free_cb hook_free = free;

void inject_alloc_set(inject_malloc_cb m, inject_free_cb f)
{
    hook_malloc = m ? m : malloc;
    hook_free = f ? f : free;
}

void *inject_malloc(size_t size)
{
    return hook_malloc(size ? size : 1);
}

void *inject_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = inject_malloc(n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void inject_free(void *ptr)
{
    if (ptr)
        hook_free(ptr);
}
