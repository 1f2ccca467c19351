/* proxy/limits: per-peer token buckets (beacon ingestion rate limit). One table per worker, so
 * no locking; a peer spread over several workers' connections gets each worker's allowance.
 * Memory is fixed at creation: when the table is full the stalest entry of a probe window is
 * recycled, so a flood of distinct peers cannot grow it. */
#ifndef VP_LIMITS_H
#define VP_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rate_limiter;

/* rate: tokens per second (0 = unlimited), burst: bucket size. Returns 0 and sets *out, or
 * VP_ERR_NOMEM / VP_ERR_INVALID (slots == 0). */
int rate_limiter_new(struct rate_limiter **out, size_t slots, double rate, double burst)
    __attribute__((warn_unused_result));
void rate_limiter_free(struct rate_limiter *rl);

/* Takes one token for peer (NUL-terminated, borrowed; truncated to 63 bytes) at now_us
 * (monotonic). true = allowed. */
bool rate_limiter_allow(struct rate_limiter *rl, const char *peer, int64_t now_us);

#endif
