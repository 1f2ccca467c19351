/* Slice helpers and clocks; see vp_buf.h. */
#include "config.h"
#include "common/vp_buf.h"
#include "common/vp_err.h"

#include <string.h>
#include <sys/random.h>
#include <time.h>

/* ASCII lower case as a table: one load per byte instead of two range tests (header names are
 * compared this way many times per proxied request). */
#define LC_ROW(b) ((b) >= 'A' && (b) <= 'Z' ? (b) + 32 : (b))
#define LC4(b) LC_ROW(b), LC_ROW((b) + 1), LC_ROW((b) + 2), LC_ROW((b) + 3)
#define LC16(b) LC4(b), LC4((b) + 4), LC4((b) + 8), LC4((b) + 12)
static const unsigned char lc_tab[256] = {
    LC16(0),   LC16(16),  LC16(32),  LC16(48),  LC16(64),  LC16(80),  LC16(96),  LC16(112),
    LC16(128), LC16(144), LC16(160), LC16(176), LC16(192), LC16(208), LC16(224), LC16(240)};

bool vp_mem_ieq(const char *a, const char *b, size_t n)
{
    const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
    for (size_t i = 0; i < n; i++)
        if (lc_tab[x[i]] != lc_tab[y[i]])
            return false;
    return true;
}

bool vp_slice_iprefix(const char *a, size_t alen, const char *lit)
{
    size_t n = strlen(lit);
    return n <= alen && vp_slice_ieq(a, n, lit);
}

bool vp_header_has_token(const char *v, size_t vlen, const char *tok)
{
    size_t i = 0;
    while (i < vlen) {
        while (i < vlen && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < vlen && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e > s && vp_slice_ieq(v + s, e - s, tok))
            return true;
    }
    return false;
}

int64_t vp_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t vp_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Kernel randomness is fetched 512 bytes at a time into a per-thread pool: one getrandom(2)
 * serves 32 view ids instead of one. Bytes handed out are wiped from the pool. */
#define RANDOM_POOL 512
static _Thread_local unsigned char rnd_pool[RANDOM_POOL];
static _Thread_local size_t rnd_left;

static int random_bytes(unsigned char *out, size_t n)
{
    while (n > 0) {
        if (rnd_left == 0) {
            size_t got = 0;
            while (got < RANDOM_POOL) {
                ssize_t r = getrandom(rnd_pool + got, RANDOM_POOL - got, 0);
                if (r < 0)
                    return VP_ERR_IO;
                got += (size_t)r;
            }
            rnd_left = RANDOM_POOL;
        }
        size_t k = n < rnd_left ? n : rnd_left;
        unsigned char *src = rnd_pool + RANDOM_POOL - rnd_left;
        memcpy(out, src, k);
        memset(src, 0, k);
        rnd_left -= k;
        out += k;
        n -= k;
    }
    return 0;
}

int vp_random_hex(char *out, size_t cap, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[64];
    if (n > sizeof raw || cap < 2 * n + 1)
        return VP_ERR_INVALID;
    if (random_bytes(raw, n) != 0)
        return VP_ERR_IO;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[2 * n] = '\0';
    return 0;
}
