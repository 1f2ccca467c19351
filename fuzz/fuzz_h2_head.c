/* libFuzzer target for proxy/h2_head, the reader of the response head conn_h1 writes into an
 * HTTP/2 stream's pair. The input is taken whole (h2_head_parse must refuse anything that is not
 * a head, at any length) and up to the end h2_head_end finds. Checks: the field list lies inside
 * the input and the reader's own name copy, names are lower-case tokens; and wherever the
 * project's strict response parser accepts the same head, both agree on the status, the
 * framing, the length, keep-alive and every field outside the connection-specific ones. */
#include "config.h"
#include "proxy/h1_parse.h"
#include "proxy/h2_head.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool inside(const uint8_t *p, size_t n, const void *lo, size_t lon)
{
    const uint8_t *l = lo;
    return p >= l && n <= lon && (size_t)(p - l) <= lon - n;
}

static bool hop_name(const char *n, size_t nl)
{
    static const char *const hop[] = {
        "te",         "upgrade",          "trailer",           "connection",
        "keep-alive", "proxy-connection", "transfer-encoding", NULL};
    for (size_t i = 0; hop[i]; i++)
        if (strlen(hop[i]) == nl && strncasecmp(n, hop[i], nl) == 0)
            return true;
    return false;
}

static void check(const char *b, size_t len)
{
    struct h2_head h;
    bool ok = h2_head_parse(b, len, &h);
    if (!ok) {
        h2_head_dispose(&h);
        return;
    }
    if (h.nv < 1 || h.nv > H2_HEAD_FIELDS + 1 || h.status < 100 || h.status > 599 ||
        h.nva[0].valuelen != 3 || memcmp(h.nva[0].value, h.code, 3) != 0)
        abort();
    for (size_t i = 1; i < h.nv; i++) {
        const nghttp2_nv *f = &h.nva[i];
        if (!inside(f->value, f->valuelen, b, len) || f->namelen == 0 ||
            !inside(f->name, f->namelen, h.lower, len))
            abort();
        for (size_t j = 0; j < f->namelen; j++)
            if (!h1_is_tchar(f->name[j]) || (f->name[j] >= 'A' && f->name[j] <= 'Z'))
                abort();
    }
    /* The strict parser on the same bytes. */
    static const struct h1_limits lim = {64 * 1024, 64 * 1024, H2_HEAD_FIELDS};
    struct h1_parser *p;
    if (h1_parser_new(&p, H1_RESPONSE, &lim) != 0)
        abort();
    h1_parser_reset(p, false);
    size_t used = 0;
    if (h1_parser_feed(p, b, len, &used) == H1_DONE && used == len &&
        h1_parser_version_minor(p) == 1) {
        enum h1_framing fr = h.status < 200 || h.status == 204 || h.status == 304 ? H1_BODY_NONE
                             : h.chunked                                          ? H1_BODY_CHUNKED
                             : h.has_cl ? (h.cl ? H1_BODY_LENGTH : H1_BODY_NONE)
                                        : H1_BODY_CLOSE;
        bool ka = !h.close && fr != H1_BODY_CLOSE;
        if (h1_parser_status_code(p) != h.status || h1_parser_framing(p) != fr ||
            (fr == H1_BODY_LENGTH && h1_parser_content_length(p) != h.cl) ||
            h1_parser_keep_alive(p) != ka)
            abort();
        size_t k = 1;
        for (size_t i = 0; i < h1_parser_header_count(p); i++) {
            const char *n, *v;
            h1_parser_header(p, i, &n, &v);
            size_t nl = h1_parser_header_name_len(p, i), vl = strlen(v);
            if (hop_name(n, nl))
                continue;
            if (k >= h.nv || h.nva[k].namelen != nl ||
                strncasecmp((const char *)h.nva[k].name, n, nl) || h.nva[k].valuelen != vl ||
                memcmp(h.nva[k].value, v, vl) != 0)
                abort();
            k++;
        }
        if (k != h.nv)
            abort();
    }
    h1_parser_free(p);
    h2_head_dispose(&h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *b = (const char *)data;
    check(b, size);
    const char *e = h2_head_end(b, size);
    if (e) {
        if (e < b + 4 || e > b + size || memcmp(e - 4, "\r\n\r\n", 4) != 0)
            abort();
        check(b, (size_t)(e - b));
    }
    return 0;
}
