/* Streaming decoders and encoders for the content codings the injector re-encodes.
 *
 * Design: each decoder inflates into one CODEC_BLOCK buffer it owns and hands every full (or
 * final) block to the sink, so memory stays at the library state plus one block whatever the
 * ratio; the caps are checked before the sink sees a block. Encoders write straight into space
 * reserved in the output evbuffer (evbuffer_reserve_space/commit_space), no staging copy.
 *
 * Allocation: zlib, brotli and zstd all take custom allocators, routed to inject_malloc. The
 * brotli encoder (1.0.x) calls exit() when an allocation fails; to keep one response's OOM from
 * killing the server, its allocator records every block in a per-encoder list and, on failure,
 * longjmp()s back to the codec_enc_feed/codec_enc_new frame that called into brotli, which frees
 * the whole list (the brotli state with it) and returns VP_ERR_NOMEM. No brotli frame holds
 * resources other than those blocks, so nothing leaks.
 *
 * gzip/deflate go through ISA-L's igzip both ways: its inflate decodes (gzip CRC and zlib
 * Adler-32 checked, as zlib does), and re-encoding uses its deflate by default
 * (codec_enc_new_igzip; zlib's stays available). On a 50 KiB page igzip level 1 is about 4x
 * faster than zlib level 1 for the same size, and its inflate about 2x (inject/README.md). igzip
 * never allocates: its states and level buffer come from inject_malloc here, and its SYNC_FLUSH /
 * end_of_stream give the same byte-aligned flush points and framing as zlib's Z_SYNC_FLUSH /
 * Z_FINISH (gzip and zlib wrappers written by igzip itself). */
#include "config.h"

#include "inject/codec.h"

#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_create?Ctx_advanced: custom allocators */
#include <brotli/decode.h>
#include <brotli/encode.h>
#include <event2/buffer.h>
#include <isa-l/igzip_lib.h>
#include <setjmp.h>
#include <stdalign.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "common/vp_err.h"
#include "inject/inject_alloc.h"

#define ZSTD_WINDOW_LOG_MAX 23

/* ---- allocator adapters ---- */

static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    return inject_calloc(items, size);
}

static void z_free(voidpf opaque, voidpf p)
{
    (void)opaque;
    inject_free(p);
}

static void *lib_alloc(void *opaque, size_t size)
{
    (void)opaque;
    return inject_malloc(size);
}

static void lib_free(void *opaque, void *p)
{
    (void)opaque;
    inject_free(p);
}

static const ZSTD_customMem zstd_mem = {lib_alloc, lib_free, NULL};

/* ---- decoders ---- */

enum dec_state { D_START, D_RUN, D_BETWEEN, D_DONE, D_GARBAGE, D_FAILED };

struct codec_dec {
    enum inject_coding coding;
    struct codec_limits lim;
    enum dec_state state;
    bool raw_deflate;
    struct inflate_state *is; /* gzip/deflate: igzip inflate state (ours) */
    unsigned char first;      /* deflate: first byte, kept until the second arrives */
    bool have_first;
    bool member_output; /* gzip: the current member produced output */
    unsigned members;   /* gzip: complete members so far */
    uint64_t in_total, out_total;
    BrotliDecoderState *br;
    ZSTD_DCtx *zd;
    unsigned char block[CODEC_BLOCK];
};

/* gzip/deflate decoding with igzip's inflate (2-3x zlib's speed on HTML): wrapper = ISAL_GZIP,
 * ISAL_ZLIB or ISAL_DEFLATE (raw). It checks the gzip CRC / zlib Adler-32 like zlib does. */
static int isal_start(struct codec_dec *d, uint32_t wrapper)
{
    if (!d->is && !(d->is = inject_malloc(sizeof *d->is)))
        return VP_ERR_NOMEM;
    isal_inflate_init(d->is);
    d->is->crc_flag = wrapper;
    d->state = D_RUN;
    return 0;
}

int codec_dec_new(struct codec_dec **out, enum inject_coding coding, const struct codec_limits *lim)
{
    if (coding != INJECT_CODING_GZIP && coding != INJECT_CODING_DEFLATE &&
        coding != INJECT_CODING_BR && coding != INJECT_CODING_ZSTD)
        return VP_ERR_INVALID;
    struct codec_dec *d = inject_calloc(1, sizeof *d);
    if (!d)
        return VP_ERR_NOMEM;
    d->coding = coding;
    if (lim)
        d->lim = *lim;
    d->state = D_START;
    if (coding == INJECT_CODING_GZIP) {
        if (isal_start(d, ISAL_GZIP))
            goto fail;
    } else if (coding == INJECT_CODING_BR) {
        d->br = BrotliDecoderCreateInstance(lib_alloc, lib_free, NULL);
        if (!d->br)
            goto fail;
        d->state = D_RUN;
    } else if (coding == INJECT_CODING_ZSTD) {
        d->zd = ZSTD_createDCtx_advanced(zstd_mem);
        if (!d->zd)
            goto fail;
        if (ZSTD_isError(ZSTD_DCtx_setParameter(d->zd, ZSTD_d_windowLogMax, ZSTD_WINDOW_LOG_MAX)))
            goto fail;
        d->state = D_RUN;
    }
    *out = d;
    return 0;
fail:
    codec_dec_free(d);
    return VP_ERR_NOMEM;
}

void codec_dec_free(struct codec_dec *d)
{
    if (!d)
        return;
    inject_free(d->is);
    if (d->br)
        BrotliDecoderDestroyInstance(d->br);
    if (d->zd)
        ZSTD_freeDCtx(d->zd);
    inject_free(d);
}

bool codec_dec_raw_deflate(const struct codec_dec *d)
{
    return d->raw_deflate;
}

uint64_t codec_dec_total_out(const struct codec_dec *d)
{
    return d->out_total;
}

uint64_t codec_dec_total_in(const struct codec_dec *d)
{
    return d->in_total;
}

/* Checks the caps for n more decoded bytes, then passes them on. */
static int emit(struct codec_dec *d, size_t n, codec_sink_cb sink, void *arg)
{
    if (n == 0)
        return 0;
    d->out_total += n;
    if (d->lim.max_decoded && d->out_total > d->lim.max_decoded)
        return VP_ERR_LIMIT;
    if (d->lim.max_ratio && d->out_total > d->lim.ratio_grace &&
        d->out_total / d->lim.max_ratio > d->in_total)
        return VP_ERR_LIMIT;
    return sink(arg, (const char *)d->block, n);
}

/* deflate: choose zlib or raw framing from the first two bytes (RFC 1950 section 2.2: CM 8,
 * CINFO <= 7, FCHECK makes the pair a multiple of 31). */
static int deflate_start(struct codec_dec *d, unsigned char b0, unsigned char b1)
{
    bool zlib = (b0 & 0x0f) == 8 && (b0 >> 4) <= 7 && ((unsigned)b0 * 256u + b1) % 31u == 0;
    d->raw_deflate = !zlib;
    return isal_start(d, zlib ? ISAL_ZLIB : ISAL_DEFLATE);
}

static int inflate_some(struct codec_dec *d, const unsigned char *in, size_t n, codec_sink_cb sink,
                        void *arg)
{
    struct inflate_state *st = d->is;
    while (n > 0) {
        if (d->state == D_DONE || d->state == D_GARBAGE)
            return 0; /* trailing bytes after the end: ignored */
        if (d->state == D_BETWEEN) {
            isal_inflate_reset(st); /* keeps crc_flag: the next member is gzip again */
            d->member_output = false;
            d->state = D_RUN;
        }
        uint32_t chunk = n > (size_t)UINT32_MAX ? UINT32_MAX : (uint32_t)n;
        st->next_in = (uint8_t *)(uintptr_t)in;
        st->avail_in = chunk;
        int r;
        bool finished;
        do {
            st->next_out = d->block;
            st->avail_out = CODEC_BLOCK;
            r = isal_inflate(st);
            size_t got = CODEC_BLOCK - st->avail_out;
            if (r < 0 && d->coding == INJECT_CODING_GZIP && d->members > 0 && !d->member_output &&
                got == 0) {
                /* not a gzip member after a complete one: trailing garbage */
                d->state = D_GARBAGE;
                return 0;
            }
            if (r < 0 || r == ISAL_NEED_DICT)
                return VP_ERR_PROTO;
            if (got)
                d->member_output = true;
            int e = emit(d, got, sink, arg);
            if (e)
                return e;
            finished = st->block_state == ISAL_BLOCK_FINISH;
        } while (!finished && st->avail_out == 0);
        size_t used = chunk - st->avail_in;
        in += used;
        n -= used;
        if (finished) {
            d->members++;
            d->state = d->coding == INJECT_CODING_GZIP ? D_BETWEEN : D_DONE;
        } else if (used == 0)
            return VP_ERR_PROTO;
    }
    return 0;
}

static int brotli_some(struct codec_dec *d, const unsigned char *in, size_t n, codec_sink_cb sink,
                       void *arg)
{
    size_t avail_in = n;
    const uint8_t *next_in = in;
    for (;;) {
        if (d->state == D_DONE)
            return 0;
        size_t avail_out = CODEC_BLOCK;
        uint8_t *next_out = d->block;
        BrotliDecoderResult r =
            BrotliDecoderDecompressStream(d->br, &avail_in, &next_in, &avail_out, &next_out, NULL);
        int e = emit(d, CODEC_BLOCK - avail_out, sink, arg);
        if (e)
            return e;
        switch (r) {
        case BROTLI_DECODER_RESULT_SUCCESS:
            d->state = D_DONE; /* trailing bytes ignored */
            return 0;
        case BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT:
            return 0;
        case BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT:
            continue;
        case BROTLI_DECODER_RESULT_ERROR:
        default: {
            BrotliDecoderErrorCode c = BrotliDecoderGetErrorCode(d->br);
            return c <= BROTLI_DECODER_ERROR_ALLOC_CONTEXT_MODES &&
                           c >= BROTLI_DECODER_ERROR_ALLOC_BLOCK_TYPE_TREES
                       ? VP_ERR_NOMEM
                       : VP_ERR_PROTO;
        }
        }
    }
}

static int zstd_some(struct codec_dec *d, const unsigned char *in, size_t n, codec_sink_cb sink,
                     void *arg)
{
    ZSTD_inBuffer ib = {in, n, 0};
    for (;;) {
        ZSTD_outBuffer ob = {d->block, CODEC_BLOCK, 0};
        size_t before = ib.pos;
        size_t r = ZSTD_decompressStream(d->zd, &ob, &ib);
        if (ZSTD_isError(r)) {
            ZSTD_ErrorCode c = ZSTD_getErrorCode(r);
            if (c == ZSTD_error_memory_allocation)
                return VP_ERR_NOMEM;
            if (c == ZSTD_error_frameParameter_windowTooLarge)
                return VP_ERR_LIMIT;
            return VP_ERR_PROTO;
        }
        if (r == 0)
            d->state = D_BETWEEN; /* a frame ended exactly here */
        else if (ib.pos > before || ob.pos > 0)
            d->state = D_RUN;
        int e = emit(d, ob.pos, sink, arg);
        if (e)
            return e;
        if (ib.pos == ib.size && ob.pos < ob.size)
            return 0;
    }
}

int codec_dec_feed(struct codec_dec *d, const void *in, size_t n, codec_sink_cb sink, void *arg)
{
    const unsigned char *p = in;
    if (d->state == D_FAILED)
        return VP_ERR_INVALID;
    if (n == 0)
        return 0;
    d->in_total += n;
    int e = 0;
    switch (d->coding) {
    case INJECT_CODING_GZIP:
        e = inflate_some(d, p, n, sink, arg);
        break;
    case INJECT_CODING_DEFLATE:
        if (d->state == D_START) {
            if (!d->have_first) {
                d->first = p[0];
                d->have_first = true;
                p++;
                n--;
                if (n == 0)
                    return 0;
            }
            unsigned char two[2] = {d->first, p[0]};
            e = deflate_start(d, two[0], two[1]);
            if (!e)
                e = inflate_some(d, two, 1, sink, arg);
        }
        if (!e)
            e = inflate_some(d, p, n, sink, arg);
        break;
    case INJECT_CODING_BR:
        e = brotli_some(d, p, n, sink, arg);
        break;
    case INJECT_CODING_ZSTD:
        e = zstd_some(d, p, n, sink, arg);
        break;
    default:
        e = VP_ERR_INVALID;
    }
    if (e)
        d->state = D_FAILED;
    return e;
}

int codec_dec_finish(struct codec_dec *d)
{
    if (d->in_total == 0)
        return 0; /* an empty body is fine in any coding */
    switch (d->state) {
    case D_DONE:
    case D_GARBAGE:
    case D_BETWEEN:
        return 0;
    case D_RUN:
        /* a few bytes of a next gzip member's header at the very end: trailing garbage too */
        if (d->coding == INJECT_CODING_GZIP && d->members > 0 && !d->member_output)
            return 0;
        return VP_ERR_PROTO;
    default:
        return VP_ERR_PROTO;
    }
}

/* ---- encoders ---- */

/* brotli encoder allocations: a list per encoder so an OOM longjmp can free them all. */
struct br_link {
    struct br_link *prev, *next;
};

struct br_blk {
    struct br_link link; /* first member: a block is its link */
    alignas(max_align_t) unsigned char data[];
};

struct codec_enc {
    enum inject_coding coding;
    bool zinit, dirty, ended, failed;
    z_stream z;
    struct isal_zstream *is; /* igzip: stream state and its level buffer (ours) */
    unsigned char *is_buf;
    BrotliEncoderState *br;
    struct br_link br_list; /* sentinel of the brotli block list */
    jmp_buf *br_jmp;        /* set while brotli runs */
    ZSTD_CCtx *zc;
};

static void *br_alloc(void *opaque, size_t size)
{
    struct codec_enc *e = opaque;
    struct br_blk *b = inject_malloc(sizeof *b + size);
    if (!b) {
        if (e->br_jmp)
            longjmp(*e->br_jmp, 1);
        return NULL;
    }
    b->link.next = e->br_list.next;
    b->link.prev = &e->br_list;
    e->br_list.next->prev = &b->link;
    e->br_list.next = &b->link;
    return b->data;
}

static void br_free(void *opaque, void *p)
{
    (void)opaque;
    if (!p)
        return;
    struct br_blk *b =
        (struct br_blk *)(void *)((unsigned char *)p - offsetof(struct br_blk, data));
    b->link.prev->next = b->link.next;
    b->link.next->prev = b->link.prev;
    inject_free(b);
}

/* After a longjmp out of brotli: its state is inconsistent; free every block it owned. */
static void br_release_all(struct codec_enc *e)
{
    struct br_link *l = e->br_list.next;
    while (l != &e->br_list) {
        struct br_link *next = l->next;
        inject_free(l); /* the link is the block's first member */
        l = next;
    }
    e->br_list.next = e->br_list.prev = &e->br_list;
    e->br = NULL;
}

static int br_create(struct codec_enc *e, int quality, int lgwin)
{
    jmp_buf jb;
    if (setjmp(jb)) {
        e->br_jmp = NULL;
        br_release_all(e);
        return VP_ERR_NOMEM;
    }
    e->br_jmp = &jb;
    e->br = BrotliEncoderCreateInstance(br_alloc, br_free, e);
    e->br_jmp = NULL;
    if (!e->br)
        return VP_ERR_NOMEM;
    if (!BrotliEncoderSetParameter(e->br, BROTLI_PARAM_QUALITY, (uint32_t)quality) ||
        !BrotliEncoderSetParameter(e->br, BROTLI_PARAM_LGWIN, (uint32_t)(lgwin ? lgwin : 22)) ||
        !BrotliEncoderSetParameter(e->br, BROTLI_PARAM_MODE, BROTLI_MODE_TEXT))
        return VP_ERR_INVALID;
    return 0;
}

int codec_enc_new(struct codec_enc **out, enum inject_coding coding, int level, int window_log,
                  bool raw_deflate)
{
    if (coding != INJECT_CODING_GZIP && coding != INJECT_CODING_DEFLATE &&
        coding != INJECT_CODING_BR && coding != INJECT_CODING_ZSTD)
        return VP_ERR_INVALID;
    struct codec_enc *e = inject_calloc(1, sizeof *e);
    if (!e)
        return VP_ERR_NOMEM;
    e->coding = coding;
    e->br_list.next = e->br_list.prev = &e->br_list;
    int err = VP_ERR_NOMEM;
    if (coding == INJECT_CODING_GZIP || coding == INJECT_CODING_DEFLATE) {
        int wbits =
            coding == INJECT_CODING_GZIP ? 16 + MAX_WBITS : (raw_deflate ? -MAX_WBITS : MAX_WBITS);
        e->z.zalloc = z_alloc;
        e->z.zfree = z_free;
        int r = deflateInit2(&e->z, level, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY);
        if (r != Z_OK) {
            err = r == Z_STREAM_ERROR ? VP_ERR_INVALID : VP_ERR_NOMEM;
            goto fail;
        }
        e->zinit = true;
    } else if (coding == INJECT_CODING_BR) {
        if (level < BROTLI_MIN_QUALITY || level > BROTLI_MAX_QUALITY ||
            (window_log &&
             (window_log < BROTLI_MIN_WINDOW_BITS || window_log > BROTLI_MAX_WINDOW_BITS))) {
            err = VP_ERR_INVALID;
            goto fail;
        }
        err = br_create(e, level, window_log);
        if (err)
            goto fail;
    } else {
        e->zc = ZSTD_createCCtx_advanced(zstd_mem);
        if (!e->zc)
            goto fail;
        if (ZSTD_isError(ZSTD_CCtx_setParameter(e->zc, ZSTD_c_compressionLevel, level)) ||
            (window_log &&
             ZSTD_isError(ZSTD_CCtx_setParameter(e->zc, ZSTD_c_windowLog, window_log)))) {
            err = VP_ERR_INVALID;
            goto fail;
        }
    }
    *out = e;
    return 0;
fail:
    codec_enc_free(e);
    return err;
}

/* Level buffer igzip needs per level (the "small" sizes: on a 50 KiB page the larger ones are no
 * faster and only cost memory). */
static size_t igzip_buf_size(int level)
{
    switch (level) {
    case 0:
        return ISAL_DEF_LVL0_DEFAULT;
    case 1:
        return ISAL_DEF_LVL1_SMALL;
    case 2:
        return ISAL_DEF_LVL2_SMALL;
    default:
        return ISAL_DEF_LVL3_SMALL;
    }
}

int codec_enc_new_igzip(struct codec_enc **out, enum inject_coding coding, int level,
                        bool raw_deflate)
{
    if ((coding != INJECT_CODING_GZIP && coding != INJECT_CODING_DEFLATE) ||
        level < ISAL_DEF_MIN_LEVEL || level > ISAL_DEF_MAX_LEVEL)
        return VP_ERR_INVALID;
    struct codec_enc *e = inject_calloc(1, sizeof *e);
    if (!e)
        return VP_ERR_NOMEM;
    e->coding = coding;
    e->br_list.next = e->br_list.prev = &e->br_list;
    size_t bufsz = igzip_buf_size(level);
    /* no calloc: igzip initialises what it reads (isal_deflate_init, hash reset per level) */
    if (!(e->is = inject_malloc(sizeof *e->is)) || (bufsz && !(e->is_buf = inject_malloc(bufsz)))) {
        codec_enc_free(e);
        return VP_ERR_NOMEM;
    }
    isal_deflate_init(e->is);
    e->is->level = (uint32_t)level;
    e->is->level_buf = e->is_buf;
    e->is->level_buf_size = (uint32_t)bufsz;
    e->is->gzip_flag = coding == INJECT_CODING_GZIP ? IGZIP_GZIP
                       : raw_deflate                ? IGZIP_DEFLATE
                                                    : IGZIP_ZLIB;
    *out = e;
    return 0;
}

void codec_enc_free(struct codec_enc *e)
{
    if (!e)
        return;
    inject_free(e->is_buf);
    inject_free(e->is);
    if (e->zinit)
        deflateEnd(&e->z);
    if (e->br)
        BrotliEncoderDestroyInstance(e->br);
    br_release_all(e); /* nothing left unless brotli failed mid-call */
    if (e->zc)
        ZSTD_freeCCtx(e->zc);
    inject_free(e);
}

static int reserve(struct evbuffer *out, struct evbuffer_iovec *v)
{
    return evbuffer_reserve_space(out, CODEC_BLOCK, v, 1) < 1 ? VP_ERR_NOMEM : 0;
}

static int commit(struct evbuffer *out, struct evbuffer_iovec *v, size_t used)
{
    v->iov_len = used;
    return evbuffer_commit_space(out, v, 1) != 0 ? VP_ERR_NOMEM : 0;
}

static int zlib_enc(struct codec_enc *e, const void *in, size_t n, unsigned flags,
                    struct evbuffer *out)
{
    int mode = (flags & CODEC_END) ? Z_FINISH : (flags & CODEC_FLUSH) ? Z_SYNC_FLUSH : Z_NO_FLUSH;
    const unsigned char *p = in;
    for (;;) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        bool last = chunk == n;
        e->z.next_in = (Bytef *)(uintptr_t)p;
        e->z.avail_in = chunk;
        int r;
        do {
            struct evbuffer_iovec v;
            if (reserve(out, &v))
                return VP_ERR_NOMEM;
            e->z.next_out = v.iov_base;
            e->z.avail_out = (uInt)(v.iov_len > (1u << 30) ? (1u << 30) : v.iov_len);
            uInt cap = e->z.avail_out;
            r = deflate(&e->z, last ? mode : Z_NO_FLUSH);
            if (commit(out, &v, cap - e->z.avail_out))
                return VP_ERR_NOMEM;
            if (r == Z_MEM_ERROR)
                return VP_ERR_NOMEM;
            if (r == Z_STREAM_ERROR)
                return VP_ERR_INVALID;
        } while (e->z.avail_out == 0 || (last && mode == Z_FINISH && r != Z_STREAM_END));
        if (last)
            return 0;
        p += chunk;
        n -= chunk;
    }
}

static int igzip_enc(struct codec_enc *e, const void *in, size_t n, unsigned flags,
                     struct evbuffer *out)
{
    struct isal_zstream *z = e->is;
    const unsigned char *p = in;
    for (;;) {
        uint32_t chunk = n > (1u << 30) ? (1u << 30) : (uint32_t)n;
        bool last = chunk == n;
        z->next_in = (uint8_t *)(uintptr_t)p;
        z->avail_in = chunk;
        z->flush = last && (flags & (CODEC_FLUSH | CODEC_END)) ? SYNC_FLUSH : NO_FLUSH;
        z->end_of_stream = last && (flags & CODEC_END) ? 1 : 0;
        for (;;) {
            struct evbuffer_iovec v;
            if (reserve(out, &v))
                return VP_ERR_NOMEM;
            z->next_out = v.iov_base;
            z->avail_out = (uint32_t)(v.iov_len > (1u << 30) ? (1u << 30) : v.iov_len);
            uint32_t cap = z->avail_out;
            int r = isal_deflate(z);
            if (commit(out, &v, cap - z->avail_out))
                return VP_ERR_NOMEM;
            if (r != COMP_OK)
                return VP_ERR_INVALID;
            /* Done with this piece once the input is taken and, for a flush, igzip returned
             * with output space left (igzip_lib.h: then all input is flushed), or for the end
             * once it reached its end state (trailer written). */
            if (z->end_of_stream ? z->internal_state.state == ZSTATE_END
                                 : z->avail_in == 0 && (z->flush == NO_FLUSH || z->avail_out > 0))
                break;
        }
        if (last)
            return 0;
        p += chunk;
        n -= chunk;
    }
}

static int brotli_enc_run(struct codec_enc *e, const void *in, size_t n, BrotliEncoderOperation op,
                          struct evbuffer *out)
{
    size_t avail_in = n;
    const uint8_t *next_in = in;
    for (;;) {
        struct evbuffer_iovec v;
        if (reserve(out, &v))
            return VP_ERR_NOMEM;
        size_t avail_out = v.iov_len;
        uint8_t *next_out = v.iov_base;
        if (!BrotliEncoderCompressStream(e->br, op, &avail_in, &next_in, &avail_out, &next_out,
                                         NULL)) {
            (void)commit(out, &v, 0);
            return VP_ERR_INVALID;
        }
        if (commit(out, &v, v.iov_len - avail_out))
            return VP_ERR_NOMEM;
        if (avail_in == 0 && !BrotliEncoderHasMoreOutput(e->br) &&
            (op != BROTLI_OPERATION_FINISH || BrotliEncoderIsFinished(e->br)))
            return 0;
    }
}

static int brotli_enc(struct codec_enc *e, const void *in, size_t n, unsigned flags,
                      struct evbuffer *out)
{
    BrotliEncoderOperation op = (flags & CODEC_END)     ? BROTLI_OPERATION_FINISH
                                : (flags & CODEC_FLUSH) ? BROTLI_OPERATION_FLUSH
                                                        : BROTLI_OPERATION_PROCESS;
    jmp_buf jb;
    if (setjmp(jb)) {
        e->br_jmp = NULL;
        br_release_all(e);
        return VP_ERR_NOMEM;
    }
    e->br_jmp = &jb;
    int r = brotli_enc_run(e, in, n, op, out);
    e->br_jmp = NULL;
    return r;
}

static int zstd_enc(struct codec_enc *e, const void *in, size_t n, unsigned flags,
                    struct evbuffer *out)
{
    ZSTD_EndDirective op = (flags & CODEC_END)     ? ZSTD_e_end
                           : (flags & CODEC_FLUSH) ? ZSTD_e_flush
                                                   : ZSTD_e_continue;
    ZSTD_inBuffer ib = {in, n, 0};
    for (;;) {
        struct evbuffer_iovec v;
        if (reserve(out, &v))
            return VP_ERR_NOMEM;
        ZSTD_outBuffer ob = {v.iov_base, v.iov_len, 0};
        size_t r = ZSTD_compressStream2(e->zc, &ob, &ib, op);
        if (commit(out, &v, ob.pos))
            return VP_ERR_NOMEM;
        if (ZSTD_isError(r))
            return ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation ? VP_ERR_NOMEM
                                                                        : VP_ERR_INVALID;
        if (op == ZSTD_e_continue ? ib.pos == ib.size : r == 0)
            return 0;
    }
}

int codec_enc_feed(struct codec_enc *e, const void *in, size_t n, unsigned flags,
                   struct evbuffer *out)
{
    if (e->ended || e->failed)
        return VP_ERR_INVALID;
    if (n > 0)
        e->dirty = true;
    if ((flags & CODEC_FLUSH) && !(flags & CODEC_END) && !e->dirty)
        flags &= ~CODEC_FLUSH; /* nothing new to flush */
    if (n == 0 && flags == 0)
        return 0;
    int r;
    if (e->coding == INJECT_CODING_BR)
        r = brotli_enc(e, in, n, flags, out);
    else if (e->coding == INJECT_CODING_ZSTD)
        r = zstd_enc(e, in, n, flags, out);
    else if (e->is)
        r = igzip_enc(e, in, n, flags, out);
    else
        r = zlib_enc(e, in, n, flags, out);
    if (r) {
        e->failed = true;
        return r;
    }
    if (flags & (CODEC_FLUSH | CODEC_END))
        e->dirty = false;
    if (flags & CODEC_END)
        e->ended = true;
    return 0;
}
