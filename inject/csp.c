/* Content-Security-Policy reading for the injected tag (CSP Level 3, W3C,
 * https://www.w3.org/TR/CSP3/#parse-serialized-policy).
 *
 * A header value may carry several policies separated by ','; each is a list of directives
 * separated by ';', a directive being a name (ASCII case-insensitive) followed by source
 * expressions separated by ASCII whitespace; only the first occurrence of a directive name in a
 * policy counts. Our tag is a script element with a src, so the directive that governs it is
 * script-src-elem, else script-src, else default-src (CSP3 section 6.8.3, "effective directive"
 * fallback list). A nonce source is 'nonce-<base64-value>' with the value made of base64 or
 * base64url characters and optional '=' padding; anything else is not a nonce and is not copied
 * (it ends up in an HTML attribute). */
#include "config.h"
#include "inject/injector.h"

#include <string.h>

#include "common/vp_buf.h"

static bool csp_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

static bool b64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/' || c == '-' || c == '_';
}

/* A source expression t[0..n): 'nonce-VALUE'. Sets *v, *vn to VALUE when it is a valid nonce. */
static bool nonce_source(const char *t, size_t n, const char **v, size_t *vn)
{
    if (n < 9 || !vp_slice_iprefix(t, n, "'nonce-") || t[n - 1] != '\'')
        return false;
    const char *p = t + 7;
    size_t len = n - 8, i = 0;
    while (i < len && b64_char(p[i]))
        i++;
    if (i == 0)
        return false;
    size_t pad = 0;
    while (i + pad < len && p[i + pad] == '=' && pad < 2)
        pad++;
    if (i + pad != len)
        return false;
    *v = p;
    *vn = len;
    return true;
}

/* Finds directive `name` in one policy p[0..n); sets its value slice. */
static bool find_directive(const char *p, size_t n, const char *name, const char **val,
                           size_t *vlen)
{
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && p[j] != ';')
            j++;
        size_t a = i;
        while (a < j && csp_ws(p[a]))
            a++;
        size_t b = a;
        while (b < j && !csp_ws(p[b]))
            b++;
        if (b > a && vp_slice_ieq(p + a, b - a, name)) {
            *val = p + b;
            *vlen = j - b;
            return true;
        }
        i = j + 1;
    }
    return false;
}

/* Looks for a nonce in the effective directive of one policy. */
static bool policy_nonce(const char *p, size_t n, const char **v, size_t *vn)
{
    static const char *const order[] = {"script-src-elem", "script-src", "default-src"};
    for (size_t k = 0; k < 3; k++) {
        const char *d;
        size_t dn;
        if (!find_directive(p, n, order[k], &d, &dn))
            continue;
        size_t i = 0;
        while (i < dn) {
            while (i < dn && csp_ws(d[i]))
                i++;
            size_t j = i;
            while (j < dn && !csp_ws(d[j]))
                j++;
            if (j > i && nonce_source(d + i, j - i, v, vn))
                return true;
            i = j;
        }
        return false; /* the effective directive has no nonce */
    }
    return false;
}

bool inject_csp_nonce(const char *csp, size_t csp_len, char *nonce_out, size_t nonce_cap)
{
    if (!csp || !nonce_out)
        return false;
    size_t i = 0;
    while (i < csp_len) {
        size_t j = i;
        while (j < csp_len && csp[j] != ',')
            j++;
        const char *v;
        size_t vn;
        if (policy_nonce(csp + i, j - i, &v, &vn)) {
            if (vn + 1 > nonce_cap)
                return false;
            memcpy(nonce_out, v, vn);
            nonce_out[vn] = '\0';
            return true;
        }
        i = j + 1;
    }
    return false;
}
