/* Unit tests for inject/codec: our encoders against the reference decoders and our decoders
 * against the reference encoders, round trips at every split point, flush semantics (what was
 * flushed decodes before the end), caps (total, ratio), sink errors, truncation and misuse. */
#include "config.h"
#include "inject/codec.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "common/vp_err.h"
#include "tests/support/tap.h"
#include "tests/unit/inject_test_util.h"

struct collect {
    struct tbuf b;
    int fail_after; /* return VP_ERR_IO once this many bytes were seen (-1: never) */
};

static int collect_sink(void *arg, const char *p, size_t n)
{
    struct collect *c = arg;
    tbuf_append(&c->b, p, n);
    if (c->fail_after >= 0 && c->b.n >= (size_t)c->fail_after)
        return VP_ERR_IO;
    return 0;
}

/* Our decoder over in cut at cuts. */
static int dec_run(enum inject_coding cd, const struct codec_limits *lim, const void *in, size_t n,
                   const size_t *cuts, size_t ncuts, struct collect *col)
{
    struct codec_dec *d;
    col->b.p = malloc(1);
    col->b.n = 0;
    int e = codec_dec_new(&d, cd, lim);
    if (e)
        return e;
    size_t start = 0;
    for (size_t k = 0; k <= ncuts && !e; k++) {
        size_t end = k < ncuts ? cuts[k] : n;
        e = codec_dec_feed(d, (const char *)in + start, end - start, collect_sink, col);
        start = end;
    }
    if (!e)
        e = codec_dec_finish(d);
    codec_dec_free(d);
    return e;
}

static size_t make_text(char *buf, size_t cap)
{
    size_t n = 0;
    unsigned x = 99;
    while (n + 80 < cap) {
        x = x * 1103515245u + 12345u;
        n += (size_t)snprintf(buf + n, cap - n, "<li data-id=\"%u\">item %x &amp; %u</li>\n",
                              x % 1000, x, (x >> 10) % 77);
    }
    return n;
}

static void test_roundtrip(void)
{
    static char text[64 * 1024];
    size_t tn = make_text(text, sizeof text);
    for (size_t k = 1; k < sizeof all_codings / sizeof all_codings[0]; k++) {
        enum inject_coding c = all_codings[k];
        /* gzip and deflate: zlib (variant 0) and igzip at levels 0..3 (variants 1..4) */
        bool zfam = c == INJECT_CODING_GZIP || c == INJECT_CODING_DEFLATE;
        for (int var = 0; var <= (zfam ? 4 : 0); var++)
            for (int raw = 0; raw <= (c == INJECT_CODING_DEFLATE); raw++) {
                struct codec_enc *e;
                int lvl = c == INJECT_CODING_BR ? 5 : c == INJECT_CODING_ZSTD ? 3 : 6;
                int r = var ? codec_enc_new_igzip(&e, c, var - 1, raw != 0)
                            : codec_enc_new(&e, c, lvl, 0, raw != 0);
                char name[32];
                snprintf(name, sizeof name, "%s%s%s", coding_names[k], raw ? "_raw" : "",
                         var ? (const char *[]){"", "_igzip0", "_igzip1", "_igzip2", "_igzip3"}[var]
                             : "");
                struct evbuffer *o = evbuffer_new();
                /* feed in pieces with a flush in the middle */
                if (!r)
                    r = codec_enc_feed(e, text, 1000, 0, o);
                if (!r)
                    r = codec_enc_feed(e, text + 1000, 5000, CODEC_FLUSH, o);
                size_t flushed = evbuffer_get_length(o);
                unsigned char *fp = malloc(flushed + 1);
                evbuffer_copyout(o, fp, flushed);
                struct tbuf d;
                bool ok = !r && ref_decompress(c, fp, flushed, false, &d) == 0 && d.n == 6000 &&
                          memcmp(d.p, text, 6000) == 0;
                TAP_OK(ok, "codec/%s/flush_decodes_prefix", name);
                if (ok)
                    tbuf_free(&d);
                free(fp);
                size_t before = evbuffer_get_length(o);
                if (!r)
                    r = codec_enc_feed(e, NULL, 0, CODEC_FLUSH, o);
                TAP_OK(!r && evbuffer_get_length(o) == before, "codec/%s/empty_flush_silent", name);
                if (!r)
                    r = codec_enc_feed(e, text + 6000, tn - 6000, CODEC_END, o);
                TAP_OK(codec_enc_feed(e, "x", 1, 0, o) == VP_ERR_INVALID, "codec/%s/after_end",
                       name);
                size_t len = evbuffer_get_length(o);
                unsigned char *all = malloc(len + 1);
                evbuffer_copyout(o, all, len);
                ok = !r && ref_decompress(c, all, len, true, &d) == 0 && d.n == tn &&
                     memcmp(d.p, text, tn) == 0;
                TAP_OK(ok, "codec/%s/encode_ref_decode (%zu -> %zu)", name, tn, len);
                if (ok)
                    tbuf_free(&d);
                if (c == INJECT_CODING_DEFLATE)
                    TAP_OK(raw == !((all[0] & 0x0f) == 8 && (all[0] * 256u + all[1]) % 31 == 0),
                           "codec/%s/framing", name);
                /* our decoder over our encoder's output, whole and in 7-byte steps */
                struct collect col = {{NULL, 0}, -1};
                r = dec_run(c, NULL, all, len, NULL, 0, &col);
                TAP_OK(!r && col.b.n == tn && memcmp(col.b.p, text, tn) == 0,
                       "codec/%s/roundtrip_whole", name);
                tbuf_free(&col.b);
                size_t cuts[8192], nc = 0;
                for (size_t p = 7; p < len && nc < 8192; p += 7)
                    cuts[nc++] = p;
                r = dec_run(c, NULL, all, len, cuts, nc, &col);
                TAP_OK(!r && col.b.n == tn && memcmp(col.b.p, text, tn) == 0,
                       "codec/%s/roundtrip_steps", name);
                tbuf_free(&col.b);
                free(all);
                evbuffer_free(o);
                codec_enc_free(e);
            }
    }
}

static void test_decoder_splits(void)
{
    const char *doc = "<!doctype html><html><head><title>split</title></head><body>x</body></html>";
    size_t n = strlen(doc);
    for (size_t k = 1; k < sizeof all_codings / sizeof all_codings[0]; k++) {
        enum inject_coding c = all_codings[k];
        struct tbuf enc;
        ref_compress(c, doc, n, &enc);
        size_t bad = 0;
        for (size_t i = 0; i <= enc.n; i++)
            for (size_t j = i; j <= enc.n; j++) {
                size_t cuts[2] = {i, j};
                struct collect col = {{NULL, 0}, -1};
                int r = dec_run(c, NULL, enc.p, enc.n, cuts, 2, &col);
                if (r || col.b.n != n || memcmp(col.b.p, doc, n) != 0)
                    bad++;
                tbuf_free(&col.b);
            }
        TAP_OK(bad == 0, "codec/%s/decode_every_two_splits (%zu bad)", coding_names[k], bad);
        tbuf_free(&enc);
    }
    /* zlib-wrapped deflate whose first two bytes arrive separately */
    struct tbuf z;
    ref_zlib_compress(15, 6, doc, n, &z);
    size_t one = 1;
    struct collect col = {{NULL, 0}, -1};
    struct codec_dec *d;
    int r = dec_run(INJECT_CODING_DEFLATE, NULL, z.p, z.n, &one, 1, &col);
    TAP_OK(!r && col.b.n == n, "codec/deflate/zlib_header_split");
    tbuf_free(&col.b);
    TAP_OK(codec_dec_new(&d, INJECT_CODING_DEFLATE, NULL) == 0, "codec/deflate/new");
    col.b.p = malloc(1);
    r = codec_dec_feed(d, z.p, z.n, collect_sink, &col);
    TAP_OK(!r && !codec_dec_raw_deflate(d) && codec_dec_total_in(d) == z.n &&
               codec_dec_total_out(d) == n,
           "codec/deflate/zlib_detected");
    codec_dec_free(d);
    tbuf_free(&col.b);
    tbuf_free(&z);
}

static void test_caps(void)
{
    size_t bn = 3u << 20;
    char *zeros = calloc(1, bn);
    struct tbuf enc;
    ref_zlib_compress(31, 9, zeros, bn, &enc); /* ratio about 1000:1 */
    struct codec_limits lim = {0, 100, 1u << 20};
    struct collect col = {{NULL, 0}, -1};
    int r = dec_run(INJECT_CODING_GZIP, &lim, enc.p, enc.n, NULL, 0, &col);
    TAP_OK(r == VP_ERR_LIMIT && col.b.n <= (1u << 20) + CODEC_BLOCK,
           "codec/cap/ratio (stopped after %zu bytes)", col.b.n);
    tbuf_free(&col.b);
    lim = (struct codec_limits){2u << 20, 0, 0};
    r = dec_run(INJECT_CODING_GZIP, &lim, enc.p, enc.n, NULL, 0, &col);
    TAP_OK(r == VP_ERR_LIMIT && col.b.n <= (2u << 20), "codec/cap/total");
    tbuf_free(&col.b);
    lim = (struct codec_limits){3u << 20, 0, 0};
    r = dec_run(INJECT_CODING_GZIP, &lim, enc.p, enc.n, NULL, 0, &col);
    TAP_OK(r == 0 && col.b.n == bn, "codec/cap/total_exact_fits");
    tbuf_free(&col.b);
    lim = (struct codec_limits){0, 2000, 1u << 20};
    r = dec_run(INJECT_CODING_GZIP, &lim, enc.p, enc.n, NULL, 0, &col);
    TAP_OK(r == 0 && col.b.n == bn, "codec/cap/ratio_under");
    tbuf_free(&col.b);
    col.fail_after = 100;
    r = dec_run(INJECT_CODING_GZIP, NULL, enc.p, enc.n, NULL, 0, &col);
    TAP_OK(r == VP_ERR_IO, "codec/sink_error_propagates");
    tbuf_free(&col.b);
    tbuf_free(&enc);
    free(zeros);

    struct codec_dec *d;
    struct codec_enc *e;
    TAP_OK(codec_dec_new(&d, INJECT_CODING_IDENTITY, NULL) == VP_ERR_INVALID, "codec/dec_identity");
    TAP_OK(codec_enc_new(&e, INJECT_CODING_UNSUPPORTED, 1, 0, false) == VP_ERR_INVALID,
           "codec/enc_unsupported");
    TAP_OK(codec_enc_new(&e, INJECT_CODING_GZIP, 42, 0, false) == VP_ERR_INVALID,
           "codec/enc_bad_level");
    TAP_OK(codec_enc_new(&e, INJECT_CODING_BR, 12, 0, false) == VP_ERR_INVALID,
           "codec/enc_bad_quality");
    TAP_OK(codec_enc_new(&e, INJECT_CODING_BR, 5, 30, false) == VP_ERR_INVALID,
           "codec/enc_bad_lgwin");
    TAP_OK(codec_enc_new(&e, INJECT_CODING_ZSTD, 3, 40, false) == VP_ERR_INVALID,
           "codec/enc_bad_window_log");
    TAP_OK(codec_enc_new(&e, INJECT_CODING_ZSTD, 3, 18, false) == 0, "codec/enc_window_log");
    codec_enc_free(e);
    TAP_OK(codec_enc_new_igzip(&e, INJECT_CODING_GZIP, 4, false) == VP_ERR_INVALID &&
               codec_enc_new_igzip(&e, INJECT_CODING_GZIP, -1, false) == VP_ERR_INVALID,
           "codec/enc_igzip_bad_level");
    TAP_OK(codec_enc_new_igzip(&e, INJECT_CODING_BR, 1, false) == VP_ERR_INVALID &&
               codec_enc_new_igzip(&e, INJECT_CODING_IDENTITY, 1, false) == VP_ERR_INVALID,
           "codec/enc_igzip_not_zlib_family");
    codec_dec_free(NULL);
    codec_enc_free(NULL);
    /* after an error a decoder refuses more input */
    TAP_OK(codec_dec_new(&d, INJECT_CODING_GZIP, NULL) == 0, "codec/dec_new");
    col = (struct collect){{malloc(1), 0}, -1};
    TAP_OK(codec_dec_feed(d, "not gzip at all", 15, collect_sink, &col) == VP_ERR_PROTO,
           "codec/gzip_bad_magic");
    TAP_OK(codec_dec_feed(d, "x", 1, collect_sink, &col) == VP_ERR_INVALID, "codec/dec_dead");
    codec_dec_free(d);
    tbuf_free(&col.b);
}

/* zlib as the reference verdict for gzip: members in turn; an error or a cut after at least one
 * complete member counts as trailing garbage (accepted), as our decoder documents. Returns 0
 * (accepted, *on decoded bytes in out) or -1. */
static int zlib_verdict(const unsigned char *in, size_t n, unsigned char *out, size_t cap,
                        size_t *on)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 31) != Z_OK)
        return -1;
    int members = 0, verdict = 0;
    size_t got = 0;
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)n;
    for (;;) {
        z.next_out = out + got;
        z.avail_out = (uInt)(cap - got);
        int r = inflate(&z, Z_NO_FLUSH);
        got = cap - z.avail_out;
        if (r == Z_STREAM_END) {
            members++;
            if (z.avail_in == 0)
                break;
            inflateReset(&z);
        } else if (r != Z_OK) {
            verdict = members > 0 ? 0 : -1; /* after a member: trailing garbage */
            break;
        }
    }
    inflateEnd(&z);
    *on = got;
    return verdict;
}

/* Hostile gzip: bit flips, cuts and random bytes in a real stream; our decoder must give the
 * same verdict and the same bytes as zlib on every one. */
static void test_gzip_mutations(void)
{
    static char text[32 * 1024];
    static unsigned char ref_out[256 * 1024];
    size_t tn = make_text(text, sizeof text);
    struct tbuf enc;
    ref_zlib_compress(31, 6, text, tn, &enc);
    unsigned char *mut = malloc(enc.n);
    unsigned x = 12345;
    size_t bad = 0, rejected = 0;
    for (int it = 0; it < 1500; it++) {
        memcpy(mut, enc.p, enc.n);
        size_t m = enc.n;
        for (int j = 0; j < 1 + it % 3; j++) {
            x = x * 1103515245u + 12345u;
            size_t pos = (x >> 8) % m;
            unsigned kind = (x >> 4) % 3;
            if (kind == 0)
                mut[pos] ^= (unsigned char)(1u << (x % 8));
            else if (kind == 1)
                m = pos + 1;
            else
                mut[pos] = (unsigned char)(x >> 16);
        }
        size_t rn = 0;
        int rv = zlib_verdict(mut, m, ref_out, sizeof ref_out, &rn);
        struct collect col = {{NULL, 0}, -1};
        int e = dec_run(INJECT_CODING_GZIP, NULL, mut, m, NULL, 0, &col);
        if ((rv == 0) != (e == 0) || (e == 0 && (col.b.n != rn || memcmp(col.b.p, ref_out, rn))))
            bad++;
        if (e)
            rejected++;
        tbuf_free(&col.b);
    }
    TAP_OK(bad == 0 && rejected > 100, "codec/gzip/mutations_match_zlib (%zu differ, %zu rejected)",
           bad, rejected);
    free(mut);
    tbuf_free(&enc);
}

/* Two gzip members then trailing garbage, cut at every pair of points: the decoder must not
 * lose or reuse bytes read ahead across the member boundary. */
static void test_gzip_members_splits(void)
{
    static char a[3000], b[5000];
    for (size_t i = 0; i < sizeof a; i++)
        a[i] = "<p>alpha beta</p>\n"[i % 18];
    for (size_t i = 0; i < sizeof b; i++)
        b[i] = "<li>gamma %d</li>"[i % 17];
    struct tbuf m1, m2;
    ref_zlib_compress(31, 6, a, sizeof a, &m1);
    ref_zlib_compress(31, 6, b, sizeof b, &m2);
    tbuf_append(&m1, m2.p, m2.n);
    tbuf_append(&m1, "\0\0junk", 6);
    size_t bad = 0;
    for (size_t i = 0; i <= m1.n; i++)
        for (size_t j = i; j <= m1.n; j++) {
            size_t cuts[2] = {i, j};
            struct collect col = {{NULL, 0}, -1};
            int r = dec_run(INJECT_CODING_GZIP, NULL, m1.p, m1.n, cuts, 2, &col);
            if (r || col.b.n != sizeof a + sizeof b || memcmp(col.b.p, a, sizeof a) ||
                memcmp(col.b.p + sizeof a, b, sizeof b))
                bad++;
            tbuf_free(&col.b);
        }
    TAP_OK(bad == 0, "codec/gzip/two_members_garbage_every_split (%zu bad)", bad);
    tbuf_free(&m1);
    tbuf_free(&m2);
}

int main(void)
{
    test_gzip_members_splits();
    test_roundtrip();
    test_gzip_mutations();
    test_decoder_splits();
    test_caps();
    TAP_DONE();
}
