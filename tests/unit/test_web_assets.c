/* web/gen_assets output and web/asset_strip: what the build embeds is the source (a JavaScript
 * file minus its leading block comment, nothing else), the gzip and brotli variants decode to
 * exactly those bytes, the hash is theirs, and the beacon stays within its brotli budget. */
#include "config.h"

#include "common/vp_buf.h"
#include "web/asset_strip.h"

#include <brotli/decode.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "tap.h"
#include "web/web.h"

#ifndef SRCDIR
#define SRCDIR "."
#endif

/* Issue 4: the beacon is at most 4,000 bytes as served with brotli. */
#define BEACON_BR_MAX 4000

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    unsigned char *b = malloc(cap);
    while (b) {
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
        if (n == cap) {
            unsigned char *nb = realloc(b, cap * 2);
            if (!nb) {
                free(b);
                b = NULL;
                break;
            }
            b = nb;
            cap *= 2;
        }
    }
    fclose(f);
    *len = n;
    return b;
}

static size_t strip(const char *s, bool is_js)
{
    return asset_strip_len((const unsigned char *)s, strlen(s), is_js);
}

static void strip_cases(void)
{
    TAP_OK(strip("/* a */\nx=1", true) == 8, "strip/comment_and_newline");
    TAP_OK(strip("/**/\nx", true) == 5, "strip/empty_comment");
    TAP_OK(strip("/**/\n", true) == 5, "strip/comment_only");
    TAP_OK(strip("/*/ a */\nx", true) == 9, "strip/slash_after_open_is_not_the_end");
    TAP_OK(strip("/* a */\n/* b */\nx", true) == 8, "strip/first_comment_only");
    TAP_OK(strip("/* a */ x=1\n", true) == 0, "strip/code_on_the_comment_line");
    TAP_OK(strip("/* a */\r\nx", true) == 0, "strip/crlf_kept");
    TAP_OK(strip("/* a */", true) == 0, "strip/no_newline_at_eof");
    TAP_OK(strip("/* unterminated\nx", true) == 0, "strip/unterminated");
    TAP_OK(strip("/*", true) == 0, "strip/open_only");
    TAP_OK(strip(" /* a */\nx", true) == 0, "strip/not_at_byte_0");
    TAP_OK(strip("// a\nx", true) == 0, "strip/line_comment_kept");
    TAP_OK(strip("x=1 /* a */\n", true) == 0, "strip/no_leading_comment");
    TAP_OK(strip("/* a */\nx", false) == 0, "strip/not_javascript");
    TAP_OK(asset_strip_len(NULL, 0, true) == 0, "strip/empty");
}

static bool gunzip_equals(const struct web_asset *a)
{
    unsigned char *out = malloc(a->len + 1);
    z_stream z;
    memset(&z, 0, sizeof z);
    if (!out || inflateInit2(&z, 31) != Z_OK) {
        free(out);
        return false;
    }
    z.next_in = (unsigned char *)(uintptr_t)a->gz;
    z.avail_in = (uInt)a->gz_len;
    z.next_out = out;
    z.avail_out = (uInt)(a->len + 1);
    int rc = inflate(&z, Z_FINISH);
    bool same = rc == Z_STREAM_END && z.total_out == a->len && z.avail_in == 0 &&
                memcmp(out, a->data, a->len) == 0;
    inflateEnd(&z);
    free(out);
    return same;
}

static bool unbrotli_equals(const struct web_asset *a)
{
    size_t n = a->len + 1;
    unsigned char *out = malloc(n);
    if (!out)
        return false;
    bool same =
        BrotliDecoderDecompress(a->br_len, a->br, &n, out) == BROTLI_DECODER_RESULT_SUCCESS &&
        n == a->len && memcmp(out, a->data, a->len) == 0;
    free(out);
    return same;
}

static bool hash_matches(const struct web_asset *a)
{
    uint64_t h = vp_fnv1a(a->data, a->len);
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
    return strcmp(hex, a->hash) == 0;
}

static void embedded(const char *name, const char *path, bool is_js)
{
    size_t n = 0;
    unsigned char *src = slurp(path, &n);
    const struct web_asset *a = web_asset_find(name, strlen(name));
    TAP_OK(src && n > 0, "%s/source_read (%s)", name, path);
    TAP_OK(a != NULL, "%s/embedded", name);
    if (!src || !a) {
        free(src);
        return;
    }
    size_t skip = asset_strip_len(src, n, is_js);
    if (is_js)
        TAP_OK(skip > 0 && a->len < n, "%s/source_comment_left_out (%zu of %zu bytes)", name, skip,
               n);
    else
        TAP_OK(skip == 0 && a->len == n, "%s/embedded_whole", name);
    TAP_OK(a->len == n - skip && memcmp(a->data, src + skip, a->len) == 0,
           "%s/identity_is_source_minus_leading_comment", name);
    TAP_OK(a->len >= 2 && !(a->data[0] == '/' && a->data[1] == '*'), "%s/no_leading_comment", name);
    TAP_OK(gunzip_equals(a), "%s/gzip_decodes_to_identity (%zu bytes)", name, a->gz_len);
    TAP_OK(unbrotli_equals(a), "%s/brotli_decodes_to_identity (%zu bytes)", name, a->br_len);
    TAP_OK(hash_matches(a), "%s/hash_of_identity (%s)", name, a->hash);
    free(src);
}

int main(void)
{
    strip_cases();
    embedded("beacon.js", SRCDIR "/web/beacon.js", true);
    embedded("report.html", SRCDIR "/web/report.html", false);
    const struct web_asset *b = web_asset_find("beacon.js", 9);
    TAP_OK(b && b->br_len <= BEACON_BR_MAX, "beacon.js/brotli_at_most_%d_bytes (%zu)",
           BEACON_BR_MAX, b ? b->br_len : 0);
    TAP_DONE();
}
