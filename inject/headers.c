/* Header-time decisions for the injector: which responses get the tag, which content coding,
 * and the tag itself. Pure functions over borrowed strings; no allocation.
 *
 * Content-Encoding (RFC 9110 section 8.4): a comma-separated list of codings applied in order;
 * "identity" entries are ignored, one remaining coding is supported, stacked codings are not
 * (we would have to undo them all: never inject). Media types (RFC 9110 section 8.3.1) compare
 * case-insensitively and ignore parameters. */
#include "config.h"
#include "inject/injector.h"

#include <stdio.h>
#include <string.h>

#include "common/vp_buf.h"
#include "common/vp_err.h"

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static void trim(const char **p, size_t *n)
{
    while (*n && is_ows(**p)) {
        (*p)++;
        (*n)--;
    }
    while (*n && is_ows((*p)[*n - 1]))
        (*n)--;
}

static enum inject_coding one_coding(const char *t, size_t n)
{
    if (vp_slice_ieq(t, n, "gzip") || vp_slice_ieq(t, n, "x-gzip"))
        return INJECT_CODING_GZIP;
    if (vp_slice_ieq(t, n, "deflate"))
        return INJECT_CODING_DEFLATE;
    if (vp_slice_ieq(t, n, "br"))
        return INJECT_CODING_BR;
    if (vp_slice_ieq(t, n, "zstd"))
        return INJECT_CODING_ZSTD;
    return INJECT_CODING_UNSUPPORTED;
}

enum inject_coding inject_coding_parse(const char *value, size_t len)
{
    enum inject_coding found = INJECT_CODING_IDENTITY;
    if (!value)
        return found;
    size_t i = 0;
    while (i <= len) {
        size_t j = i;
        while (j < len && value[j] != ',')
            j++;
        const char *t = value + i;
        size_t n = j - i;
        trim(&t, &n);
        if (n && !vp_slice_ieq(t, n, "identity")) {
            if (found != INJECT_CODING_IDENTITY)
                return INJECT_CODING_UNSUPPORTED; /* stacked codings */
            found = one_coding(t, n);
            if (found == INJECT_CODING_UNSUPPORTED)
                return found;
        }
        i = j + 1;
    }
    return found;
}

/* true when the Content-Type's media type is HTML (parameters ignored). */
static bool is_html_type(const char *ct)
{
    size_t n = strcspn(ct, ";");
    const char *t = ct;
    trim(&t, &n);
    return vp_slice_ieq(t, n, "text/html") || vp_slice_ieq(t, n, "application/xhtml+xml");
}

/* true when the Content-Disposition's type is attachment. */
static bool is_attachment(const char *cd)
{
    size_t n = strcspn(cd, ";");
    const char *t = cd;
    trim(&t, &n);
    return vp_slice_ieq(t, n, "attachment");
}

bool inject_wanted(const struct inject_response_info *info)
{
    if (!info || !info->method || strcmp(info->method, "GET") != 0 || info->upgraded)
        return false;
    int st = info->status;
    if (st < 200 || st > 599 || st == 204 || st == 205 || st == 206 || st == 304)
        return false;
    if (info->content_range || !info->content_type || !is_html_type(info->content_type))
        return false;
    if (info->content_disposition && is_attachment(info->content_disposition))
        return false;
    if (info->cache_control &&
        vp_header_has_token(info->cache_control, strlen(info->cache_control), "no-transform"))
        return false;
    if (info->request_path && (strncmp(info->request_path, "/__vitals/", 10) == 0 ||
                               strcmp(info->request_path, "/__vitals") == 0))
        return false;
    const char *ce = info->content_encoding;
    return inject_coding_parse(ce, ce ? strlen(ce) : 0) != INJECT_CODING_UNSUPPORTED;
}

/* true when s can go into a double-quoted attribute unescaped. */
static bool attr_safe(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f || c == '"' || c == '\'' || c == '<' || c == '>' || c == '&')
            return false;
    }
    return true;
}

int inject_build_tag(char *out, size_t cap, const char *src, const char *vid, const char *nonce)
{
    if (!out || !src || !vid || !*src || !attr_safe(src) || !attr_safe(vid) ||
        (nonce && (!*nonce || !attr_safe(nonce))))
        return VP_ERR_INVALID;
    int n;
    if (nonce)
        n = snprintf(out, cap,
                     "<script src=\"%s\" data-vid=\"%s\" nonce=\"%s\" async=\"\"></script>", src,
                     vid, nonce);
    else
        n = snprintf(out, cap, "<script src=\"%s\" data-vid=\"%s\" async=\"\"></script>", src, vid);
    if (n < 0)
        return VP_ERR_INVALID;
    if ((size_t)n >= cap)
        return VP_ERR_LIMIT;
    return n;
}
