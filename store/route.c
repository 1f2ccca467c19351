/* Route templates: groups URL paths so percentiles are per route, not per URL.
 * Rules, per '/'-separated segment (query and fragment dropped first, absolute-form
 * "scheme://authority" stripped, empty segments and a trailing slash removed, percent-encoding
 * left as is):
 *   - all digits                                  -> [id]   (/products/123)
 *   - UUID 8-4-4-4-12 hex                         -> [id]
 *   - >= 16 hex digits                            -> [id]   (hashes, object ids)
 *   - long opaque token: >= 20 chars of [A-Za-z0-9_-] where some run between '-'/'_' is
 *     >= 10 chars mixing letters and digits       -> [id]   (base64url tokens, nanoids)
 *   - anything else is kept: slugs like "post-2024-my-trip-to-paris" stay readable.
 * The output is always a path beginning with '/'. */
#include "config.h"

#include "store/store.h"

#include <stdbool.h>
#include <string.h>

#include "common/vp_err.h"

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_digit(s[i]))
            return false;
    return n > 0;
}

static bool all_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_hex(s[i]))
            return false;
    return n > 0;
}

static bool is_uuid(const char *s, size_t n)
{
    if (n != 36)
        return false;
    for (size_t i = 0; i < n; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !is_hex(s[i]))
            return false;
    }
    return true;
}

static bool is_opaque(const char *s, size_t n)
{
    if (n < 20)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alpha(s[i]) && !is_digit(s[i]) && s[i] != '-' && s[i] != '_')
            return false;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '-' || s[i] == '_') {
            bool alpha = false, digit = false;
            for (size_t j = start; j < i; j++) {
                alpha |= is_alpha(s[j]);
                digit |= is_digit(s[j]);
            }
            if (i - start >= 10 && alpha && digit)
                return true;
            start = i + 1;
        }
    }
    return false;
}

static bool is_param(const char *s, size_t n)
{
    return all_digits(s, n) || is_uuid(s, n) || (n >= 16 && all_hex(s, n)) || is_opaque(s, n);
}

int store_route_of(const char *path, size_t path_len, char *out, size_t cap)
{
    size_t n = path_len;
    if (!path)
        n = 0;
    /* Absolute form: skip "scheme://authority". */
    if (n >= 3) {
        const char *sep = memchr(path, ':', n < 16 ? n : 16);
        if (sep && (size_t)(path + n - sep) >= 3 && sep[1] == '/' && sep[2] == '/') {
            const char *p = sep + 3;
            const char *end = path + n;
            while (p < end && *p != '/' && *p != '?' && *p != '#')
                p++;
            n = (size_t)(end - p);
            path = p;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (path[i] == '?' || path[i] == '#') {
            n = i;
            break;
        }
    }
    size_t o = 0;
    size_t i = 0;
    while (i < n) {
        while (i < n && path[i] == '/')
            i++;
        size_t st = i;
        while (i < n && path[i] != '/')
            i++;
        size_t len = i - st;
        if (len == 0)
            continue;
        const char *seg = path + st;
        if (is_param(seg, len)) {
            seg = "[id]";
            len = 4;
        }
        if (o + 1 + len + 1 > cap)
            return VP_ERR_LIMIT;
        out[o++] = '/';
        memcpy(out + o, seg, len);
        o += len;
    }
    if (o == 0) {
        if (cap < 2)
            return VP_ERR_LIMIT;
        out[o++] = '/';
    }
    out[o] = '\0';
    return (int)o;
}
