/* libFuzzer target: the HTML scanner and the identity injector, with the fuzzer choosing the
 * chunk boundaries. Input: byte 0 = number of cuts (low 4 bits) and whether cuts also FLUSH
 * (bit 7); then 2 bytes per cut (little-endian offset into the document, sorted here); the rest
 * is the document. Oracles: the scanner's decision and offset do not depend on the chunking;
 * the injector (no flushes) outputs exactly the document with the tag at that offset (or the
 * document untouched); with flushes, the output is the document with at most one tag spliced in
 * at a position not beyond the one decided without flushes. The bytes also go through the CSP
 * helpers as a header value (bounds, and no 'unsafe-' source ever added). */
#include "config.h"

#include <event2/buffer.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inject/html_scan.h"
#include "inject/injector.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char TAG[] = "<script src=\"/__vitals/beacon.js\" data-vid=\"z\" async=\"\"></script>";

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

static enum html_scan_result scan(const char *doc, size_t n, const size_t *cuts, size_t nc,
                                  uint64_t *at)
{
    struct html_scan *s;
    if (html_scan_new(&s, 4096, 512) != 0)
        abort();
    enum html_scan_result r = HTML_SCAN_MORE;
    size_t start = 0;
    for (size_t k = 0; k <= nc && r == HTML_SCAN_MORE; k++) {
        size_t end = k < nc ? cuts[k] : n, used;
        r = html_scan_feed(s, doc + start, end - start, &used);
        if (r == HTML_SCAN_MORE && used != end - start)
            abort();
        start = end;
    }
    if (r == HTML_SCAN_MORE)
        r = html_scan_flush(s, true);
    *at = html_scan_insert_offset(s);
    html_scan_free(s);
    return r;
}

/* Runs the identity injector; returns the output (malloc'd) and its length. */
static char *inject(const char *doc, size_t n, const size_t *cuts, size_t nc, unsigned flags,
                    size_t *outn)
{
    struct injector_options opt;
    injector_options_default(&opt);
    opt.scan_limit = 4096;
    opt.max_tag = 512;
    struct injector *inj;
    if (injector_new(&inj, INJECT_CODING_IDENTITY, TAG, sizeof TAG - 1, &opt) != 0)
        abort();
    struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
    size_t start = 0;
    for (size_t k = 0; k <= nc; k++) {
        size_t end = k < nc ? cuts[k] : n;
        evbuffer_add(in, doc + start, end - start);
        if (injector_feed(inj, in, out, k < nc ? flags : INJECTOR_END) != 0)
            abort();
        start = end;
    }
    *outn = evbuffer_get_length(out);
    char *p = malloc(*outn + 1);
    evbuffer_remove(out, p, *outn);
    evbuffer_free(in);
    evbuffer_free(out);
    injector_free(inj);
    return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t nc = data[0] & 15u;
    unsigned flags = (data[0] & 0x80) ? INJECTOR_FLUSH : 0;
    if (size < 1 + 2 * nc)
        return 0;
    const char *doc = (const char *)data + 1 + 2 * nc;
    size_t n = size - 1 - 2 * nc;
    size_t cuts[16];
    for (size_t k = 0; k < nc; k++)
        cuts[k] = ((size_t)data[1 + 2 * k] | (size_t)data[2 + 2 * k] << 8) % (n + 1);
    qsort(cuts, nc, sizeof cuts[0], cmp_size);

    /* the same bytes as a CSP header value: nonce extraction and rewriting stay in bounds */
    char nonce[64], csp_out[4096];
    bool tag_nonce;
    const char *use = inject_csp_nonce(doc, n, nonce, sizeof nonce) ? nonce : "Zm9vYmFy";
    int w = inject_csp_rewrite(doc, n, use, csp_out, sizeof csp_out, &tag_nonce);
    if (w >= 0 && (strlen(csp_out) != (size_t)w ||
                   (strstr(csp_out, "unsafe-") && !memmem(doc, n, "unsafe-", 7))))
        abort();

    uint64_t at_whole, at_cut;
    enum html_scan_result r_whole = scan(doc, n, NULL, 0, &at_whole);
    enum html_scan_result r_cut = scan(doc, n, cuts, nc, &at_cut);
    if (r_whole != r_cut || (r_whole == HTML_SCAN_INSERT && at_whole != at_cut))
        abort();
    if (r_whole == HTML_SCAN_INSERT && at_whole > n)
        abort();

    size_t on;
    char *o = inject(doc, n, cuts, nc, 0, &on);
    if (r_whole == HTML_SCAN_INSERT) {
        if (on != n + sizeof TAG - 1 || memcmp(o, doc, at_whole) != 0 ||
            memcmp(o + at_whole, TAG, sizeof TAG - 1) != 0 ||
            memcmp(o + at_whole + sizeof TAG - 1, doc + at_whole, n - at_whole) != 0)
            abort();
    } else if (on != n || memcmp(o, doc, n) != 0) {
        abort();
    }
    free(o);

    if (flags) {
        o = inject(doc, n, cuts, nc, flags, &on);
        if (on == n) {
            if (memcmp(o, doc, n) != 0)
                abort();
        } else {
            /* one tag spliced in somewhere */
            if (on != n + sizeof TAG - 1)
                abort();
            size_t p = 0;
            while (p < n && o[p] == doc[p])
                p++;
            /* the tag starts at or before the first difference */
            int found = 0;
            for (size_t q = p + 1; q-- > 0;) {
                if (memcmp(o + q, TAG, sizeof TAG - 1) == 0 &&
                    memcmp(o + q + sizeof TAG - 1, doc + q, n - q) == 0 && memcmp(o, doc, q) == 0) {
                    found = 1;
                    if (r_whole == HTML_SCAN_INSERT && q > at_whole)
                        abort();
                    break;
                }
            }
            if (!found)
                abort();
        }
        free(o);
    }
    return 0;
}
