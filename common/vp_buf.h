/* Small string helpers: case-insensitive slice comparison, bounded formatting.
 * Strings are (ptr, len) slices unless a function says NUL-terminated. */
#ifndef VP_BUF_H
#define VP_BUF_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* true when the n bytes at a and b are equal, ASCII case-insensitively. */
bool vp_mem_ieq(const char *a, const char *b, size_t n);
/* true when the slice a/alen equals the NUL-terminated lit, ASCII case-insensitively. Inline: with
 * a literal, the length test is a constant comparison and a mismatch costs no call (header
 * names are compared this way dozens of times per proxied request). */
static inline bool vp_slice_ieq(const char *a, size_t alen, const char *lit)
{
    size_t n = strlen(lit);
    return n == alen && vp_mem_ieq(a, lit, n);
}
/* FNV-1a (64-bit) of n bytes: hash slots (claim bounds, rate-limit table), asset version hashes. */
static inline uint64_t vp_fnv1a(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}
/* true when the slice begins with lit (case-insensitive). */
bool vp_slice_iprefix(const char *a, size_t alen, const char *lit);
/* Finds token tok in a comma-separated header value (case-insensitive, OWS trimmed). */
bool vp_header_has_token(const char *v, size_t vlen, const char *tok);
/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t vp_now_ms(void);
/* Microseconds from CLOCK_MONOTONIC. */
int64_t vp_mono_us(void);
/* Writes 2*n lowercase hex digits of n random bytes (getrandom(2), buffered per thread) plus NUL
 * into out (cap >= 2n+1, n <= 64). 0, VP_ERR_INVALID or VP_ERR_IO. Thread-safe. */
int vp_random_hex(char *out, size_t cap, size_t n);

#endif
