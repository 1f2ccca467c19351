/* Test helpers for inject/: reference compressors and decompressors built straight on zlib,
 * brotli and zstd (independent of inject/codec.c), and a driver that runs an injector over an
 * input cut at given offsets. Header-only; each test program includes it once. */
#ifndef VP_TEST_INJECT_UTIL_H
#define VP_TEST_INJECT_UTIL_H

#include <brotli/decode.h>
#include <brotli/encode.h>
#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "inject/injector.h"

struct tbuf {
    unsigned char *p;
    size_t n;
};

static inline void tbuf_free(struct tbuf *b)
{
    free(b->p);
    b->p = NULL;
    b->n = 0;
}

/* zlib framing for ref_zlib: 16+15 gzip, 15 zlib, -15 raw. */
static inline int ref_zlib_compress(int wbits, int level, const void *in, size_t n,
                                    struct tbuf *out)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, level, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    size_t cap = deflateBound(&z, (uLong)n) + 64;
    out->p = malloc(cap);
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)n;
    z.next_out = out->p;
    z.avail_out = (uInt)cap;
    int r = deflate(&z, Z_FINISH);
    out->n = cap - z.avail_out;
    deflateEnd(&z);
    return r == Z_STREAM_END ? 0 : -1;
}

static inline int ref_compress(enum inject_coding c, const void *in, size_t n, struct tbuf *out)
{
    out->p = NULL;
    out->n = 0;
    switch (c) {
    case INJECT_CODING_IDENTITY:
        out->p = malloc(n ? n : 1);
        memcpy(out->p, in, n);
        out->n = n;
        return 0;
    case INJECT_CODING_GZIP:
        return ref_zlib_compress(16 + 15, 1, in, n, out);
    case INJECT_CODING_DEFLATE:
        return ref_zlib_compress(15, 1, in, n, out);
    case INJECT_CODING_BR: {
        size_t cap = BrotliEncoderMaxCompressedSize(n) + 64;
        out->p = malloc(cap);
        out->n = cap;
        return BrotliEncoderCompress(9, 22, BROTLI_MODE_TEXT, n, in, &out->n, out->p) ? 0 : -1;
    }
    case INJECT_CODING_ZSTD: {
        size_t cap = ZSTD_compressBound(n);
        out->p = malloc(cap);
        size_t r = ZSTD_compress(out->p, cap, in, n, 19);
        if (ZSTD_isError(r))
            return -1;
        out->n = r;
        return 0;
    }
    default:
        return -1;
    }
}

static inline void tbuf_append(struct tbuf *b, const void *p, size_t n)
{
    b->p = realloc(b->p, b->n + n + 1);
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

/* Decodes a whole stream; complete false allows a stream that is cut short (a flushed prefix).
 * Returns 0, or -1 on corrupt input. */
static inline int ref_decompress(enum inject_coding c, const void *in, size_t n, bool complete,
                                 struct tbuf *out)
{
    unsigned char blk[16384];
    out->p = malloc(1);
    out->n = 0;
    if (c == INJECT_CODING_IDENTITY) {
        tbuf_append(out, in, n);
        return 0;
    }
    if (c == INJECT_CODING_GZIP || c == INJECT_CODING_DEFLATE) {
        const unsigned char *b = in;
        int wbits = 16 + 15;
        if (c == INJECT_CODING_DEFLATE)
            wbits = (n >= 2 && (b[0] & 0x0f) == 8 && (b[0] * 256u + b[1]) % 31 == 0) ? 15 : -15;
        z_stream z;
        memset(&z, 0, sizeof z);
        if (inflateInit2(&z, wbits) != Z_OK)
            return -1;
        z.next_in = (Bytef *)(uintptr_t)in;
        z.avail_in = (uInt)n;
        int r;
        do {
            z.next_out = blk;
            z.avail_out = sizeof blk;
            r = inflate(&z, Z_SYNC_FLUSH);
            tbuf_append(out, blk, sizeof blk - z.avail_out);
            if (r == Z_STREAM_END && z.avail_in > 0 && c == INJECT_CODING_GZIP) {
                inflateReset(&z);
                r = Z_OK;
            }
        } while (r == Z_OK && (z.avail_in > 0 || z.avail_out == 0));
        inflateEnd(&z);
        if (r == Z_STREAM_END)
            return 0;
        return (!complete && (r == Z_OK || r == Z_BUF_ERROR)) ? 0 : -1;
    }
    if (c == INJECT_CODING_BR) {
        BrotliDecoderState *s = BrotliDecoderCreateInstance(NULL, NULL, NULL);
        size_t ai = n;
        const uint8_t *ni = in;
        BrotliDecoderResult r;
        do {
            size_t ao = sizeof blk;
            uint8_t *no = blk;
            r = BrotliDecoderDecompressStream(s, &ai, &ni, &ao, &no, NULL);
            tbuf_append(out, blk, sizeof blk - ao);
        } while (r == BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT);
        BrotliDecoderDestroyInstance(s);
        if (r == BROTLI_DECODER_RESULT_SUCCESS)
            return 0;
        return (!complete && r == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT) ? 0 : -1;
    }
    if (c == INJECT_CODING_ZSTD) {
        ZSTD_DCtx *d = ZSTD_createDCtx();
        ZSTD_inBuffer ib = {in, n, 0};
        size_t r = 0;
        for (;;) {
            ZSTD_outBuffer ob = {blk, sizeof blk, 0};
            r = ZSTD_decompressStream(d, &ob, &ib);
            if (ZSTD_isError(r))
                break;
            tbuf_append(out, blk, ob.pos);
            if (ib.pos == ib.size && ob.pos < ob.size)
                break;
        }
        ZSTD_freeDCtx(d);
        if (ZSTD_isError(r))
            return -1;
        return (r == 0 || !complete) ? 0 : -1;
    }
    return -1;
}

/* Runs one injector over in[0..n) cut at cuts[0..ncuts) (ascending), passing `flags_per_cut`
 * at each cut and INJECTOR_END at the end. Output bytes go to out. Returns the first error. */
static inline int run_injector(enum inject_coding c, const char *tag, const void *in, size_t n,
                               const size_t *cuts, size_t ncuts, unsigned flags_per_cut,
                               const struct injector_options *opt, struct tbuf *out, bool *injected)
{
    struct injector *inj;
    int e = injector_new(&inj, c, tag, strlen(tag), opt);
    out->p = malloc(1);
    out->n = 0;
    if (e)
        return e;
    struct evbuffer *ib = evbuffer_new(), *ob = evbuffer_new();
    size_t start = 0;
    for (size_t k = 0; k <= ncuts && !e; k++) {
        size_t end = k < ncuts ? cuts[k] : n;
        evbuffer_add(ib, (const char *)in + start, end - start);
        e = injector_feed(inj, ib, ob, k < ncuts ? flags_per_cut : INJECTOR_END);
        if (!e && evbuffer_get_length(ib) != 0)
            e = -100; /* must consume everything */
        start = end;
    }
    size_t len = evbuffer_get_length(ob);
    out->p = realloc(out->p, len + 1);
    evbuffer_remove(ob, out->p, len);
    out->n = len;
    if (injected)
        *injected = injector_injected(inj);
    evbuffer_free(ib);
    evbuffer_free(ob);
    injector_free(inj);
    return e;
}

static const enum inject_coding all_codings[] = {INJECT_CODING_IDENTITY, INJECT_CODING_GZIP,
                                                 INJECT_CODING_DEFLATE, INJECT_CODING_BR,
                                                 INJECT_CODING_ZSTD};
static const char *const coding_names[] = {"identity", "gzip", "deflate", "br", "zstd"};

#endif
