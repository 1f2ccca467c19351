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
#include "common/vp_err.h"

static bool csp_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

static bool b64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/' || c == '-' || c == '_';
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

/* ---- rewriting ---- */

struct wbuf {
    char *p;
    size_t cap, n;
    bool over;
};

static void put(struct wbuf *w, const char *s, size_t n)
{
    if (w->over || n > w->cap - w->n || w->cap - w->n - n < 1) {
        w->over = true;
        return;
    }
    memcpy(w->p + w->n, s, n);
    w->n += n;
}

static void put_str(struct wbuf *w, const char *s)
{
    put(w, s, strlen(s));
}

/* Iterates source expressions of a directive value: returns false at the end. */
static bool next_token(const char *v, size_t vn, size_t *i, const char **t, size_t *tn)
{
    while (*i < vn && csp_ws(v[*i]))
        (*i)++;
    if (*i >= vn)
        return false;
    size_t j = *i;
    while (j < vn && !csp_ws(v[j]))
        j++;
    *t = v + *i;
    *tn = j - *i;
    *i = j;
    return true;
}

static bool list_has(const char *v, size_t vn, const char *lit)
{
    size_t i = 0, tn;
    const char *t;
    while (next_token(v, vn, &i, &t, &tn))
        if (vp_slice_ieq(t, tn, lit))
            return true;
    return false;
}

static bool list_has_nonce(const char *v, size_t vn, const char *nonce)
{
    size_t i = 0, tn, nl = strlen(nonce);
    const char *t;
    while (next_token(v, vn, &i, &t, &tn))
        if (tn == nl + 8 && vp_slice_iprefix(t, tn, "'nonce-") && memcmp(t + 7, nonce, nl) == 0 &&
            t[tn - 1] == '\'')
            return true;
    return false;
}

static bool allows_self(const char *v, size_t vn, bool script)
{
    if (script && list_has(v, vn, "'strict-dynamic'"))
        return false; /* host and 'self' sources are ignored then */
    return list_has(v, vn, "'self'") || list_has(v, vn, "*");
}

/* Writes the source list v with `add` appended; a lone 'none' is dropped. */
static void put_list_plus(struct wbuf *w, const char *v, size_t vn, const char *add)
{
    size_t i = 0, tn;
    const char *t;
    while (next_token(v, vn, &i, &t, &tn)) {
        if (vp_slice_ieq(t, tn, "'none'"))
            continue;
        put(w, " ", 1);
        put(w, t, tn);
    }
    put(w, " ", 1);
    put_str(w, add);
}

/* Rewrites one policy p[0..n) into w. */
static void rewrite_policy(struct wbuf *w, const char *p, size_t n, const char *nonce_src,
                           const char *nonce, bool *tag_nonce)
{
    static const char *const sorder[] = {"script-src-elem", "script-src", "default-src"};
    const char *sv = NULL, *cv = NULL, *dv = NULL;
    size_t svn = 0, cvn = 0, dvn = 0;
    int sk = -1;
    for (int k = 0; k < 3; k++)
        if (find_directive(p, n, sorder[k], &sv, &svn)) {
            sk = k;
            break;
        }
    bool has_default = find_directive(p, n, "default-src", &dv, &dvn);
    bool has_connect = find_directive(p, n, "connect-src", &cv, &cvn);
    bool fix_script = sk >= 0 && !list_has_nonce(sv, svn, nonce) && !allows_self(sv, svn, true);
    if (sk >= 0)
        *tag_nonce = true;
    const char *conn = has_connect ? cv : (has_default ? dv : NULL);
    size_t connn = has_connect ? cvn : dvn;
    bool fix_connect = conn && !allows_self(conn, connn, false);
    if (!fix_script && !fix_connect) {
        put(w, p, n);
        return;
    }
    /* copy directive by directive, editing the governing ones in place */
    const char *script_name = sk >= 0 ? sorder[sk] : NULL;
    bool first = true;
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
        size_t e = j;
        while (e > b && csp_ws(p[e - 1]))
            e--;
        if (b > a) {
            if (!first)
                put(w, "; ", 2);
            first = false;
            put(w, p + a, b - a);
            const char *v = p + b;
            size_t vn = e - b;
            bool is_script = fix_script && sk < 2 && v == sv;
            bool is_conn = fix_connect && has_connect && v == cv;
            if (is_script)
                put_list_plus(w, v, vn, nonce_src);
            else if (is_conn)
                put_list_plus(w, v, vn, "'self'");
            else
                put(w, v, vn);
        }
        i = j + 1;
    }
    if (fix_script && script_name && sk == 2) { /* governed by default-src: a script-src */
        put_str(w, first ? "script-src" : "; script-src");
        first = false;
        put_list_plus(w, dv, dvn, nonce_src);
    }
    if (fix_connect && !has_connect) {
        put_str(w, first ? "connect-src" : "; connect-src");
        put_list_plus(w, dv, dvn, "'self'");
    }
}

int inject_csp_rewrite(const char *csp, size_t csp_len, const char *nonce, char *out, size_t cap,
                       bool *tag_nonce)
{
    bool tn = false;
    if (!nonce || !*nonce || !out || cap == 0)
        return VP_ERR_INVALID;
    size_t nl = strlen(nonce);
    const char *v;
    size_t vn;
    char src[160];
    if (nl + 9 > sizeof src)
        return VP_ERR_INVALID;
    memcpy(src, "'nonce-", 7);
    memcpy(src + 7, nonce, nl);
    src[7 + nl] = '\'';
    src[8 + nl] = '\0';
    if (!nonce_source(src, nl + 8, &v, &vn))
        return VP_ERR_INVALID;
    for (size_t k = 0; k < csp_len; k++) /* a header value: no CTLs but HTAB (RFC 9110 5.5) */
        if (((unsigned char)csp[k] < 0x20 && csp[k] != '\t') || csp[k] == 0x7f)
            return VP_ERR_INVALID;
    struct wbuf w = {out, cap, 0, false};
    size_t i = 0;
    while (i <= csp_len && csp) {
        size_t j = i;
        while (j < csp_len && csp[j] != ',')
            j++;
        if (i > 0)
            put(&w, ",", 1);
        rewrite_policy(&w, csp + i, j - i, src, nonce, &tn);
        i = j + 1;
    }
    if (w.over)
        return VP_ERR_LIMIT;
    out[w.n] = '\0';
    if (tag_nonce)
        *tag_nonce = tn;
    return (int)w.n;
}
