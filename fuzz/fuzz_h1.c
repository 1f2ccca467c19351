/* libFuzzer target for proxy/h1_parse: the first byte picks the parser (request, response, HEAD
 * response) and a split point; the rest is fed as a head, in two pieces, and whatever follows a
 * complete head is fed to the chunked decoder (which keeps the trailer section for odd input
 * sizes). Checks the parser's own invariants: consumed never exceeds the input, accessors return
 * strings after H1_DONE, payload runs lie inside the input, a kept trailer section stays within
 * its limit and reads back as whole field lines. */
#include "config.h"
#include "proxy/h1_parse.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_chunked(const char *d, size_t len, bool keep)
{
    struct h1_chunked c;
    h1_chunked_init(&c, 1024);
    if (keep)
        h1_chunked_keep_trailers(&c);
    char tr[1024];
    size_t tlen = 0;
    size_t off = 0;
    while (off < len) {
        size_t consumed = 0, dl = 0;
        int rc = h1_chunked_feed(&c, d + off, len - off, &consumed, &dl);
        if (rc < 0)
            return;
        if (consumed > len - off || dl > consumed || (rc == H1_CHUNK_TRAILER && !keep))
            abort();
        if (rc == H1_CHUNK_TRAILER) {
            /* the section never exceeds the limit */
            if (dl > sizeof tr - tlen)
                abort();
            memcpy(tr + tlen, d + off + consumed - dl, dl);
            tlen += dl;
        }
        off += consumed;
        if (rc == H1_CHUNK_END) {
            if (h1_chunked_cut(&c))
                return;
            /* A whole section is field lines, every one of them readable. */
            size_t at = 0, nl, vl;
            const char *n, *v;
            while (h1_trailer_next(tr, tlen, &at, &n, &nl, &v, &vl))
                if (nl == 0 || n < tr || v + vl > tr + tlen)
                    abort();
            if (at != tlen)
                abort();
            return;
        }
        if (consumed == 0 && rc != H1_CHUNK_DATA)
            return;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    const char *d = (const char *)data + 1;
    size_t len = size - 1;
    struct h1_limits lim = {.max_line = 512, .max_head = 4096, .max_headers = 32};
    struct h1_parser *p;
    enum h1_kind kind = (sel & 3) == 0 ? H1_REQUEST : H1_RESPONSE;
    if (h1_parser_new(&p, kind, &lim) != 0)
        return 0;
    h1_parser_reset(p, (sel & 3) == 2);
    size_t cut = len ? (size_t)(sel >> 2) % (len + 1) : 0;
    size_t used = 0, total = 0;
    int rc = h1_parser_feed(p, d, cut, &used);
    if (used > cut)
        abort();
    total = used;
    if (rc == H1_AGAIN) {
        rc = h1_parser_feed(p, d + cut, len - cut, &used);
        if (used > len - cut)
            abort();
        total += used;
    }
    if (rc == H1_DONE) {
        size_t n = h1_parser_header_count(p);
        if (n > lim.max_headers)
            abort();
        for (size_t i = 0; i < n; i++) {
            const char *k, *v;
            h1_parser_header(p, i, &k, &v);
            if (strlen(k) == 0 || strlen(k) + strlen(v) > lim.max_head)
                abort();
        }
        if (kind == H1_REQUEST && h1_parser_target(p)[0] == '\0')
            abort();
        if (h1_parser_framing(p) == H1_BODY_CHUNKED)
            check_chunked(d + total, len - total, (size & 1) != 0);
    } else if (rc < 0) {
        int st = h1_parser_status(p);
        if (st != 400 && st != 414 && st != 431 && st != 502)
            abort();
    }
    h1_parser_free(p);
    return 0;
}
