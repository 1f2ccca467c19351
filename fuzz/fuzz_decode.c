/* libFuzzer target: each decoder, through the codec and through the injector. Input: byte 0
 * picks the coding (low 2 bits: gzip, deflate, br, zstd), bit 2 FLUSH at cuts, bits 4-7 the
 * chunk size (1 << (b >> 4) bytes); the rest is the (hostile) compressed body. Caps are small so
 * bombs end quickly. Oracles: no crash, errors are VP_ERR_PROTO/LIMIT only, and when both the
 * plain decode and the injector succeed, decoding the injector's output gives the plain decode,
 * plus exactly one tag when it reports an insertion. */
#include "config.h"

#include <event2/buffer.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/vp_err.h"
#include "inject/codec.h"
#include "inject/injector.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char TAG[] = "<script src=\"/__vitals/beacon.js\" data-vid=\"d\" async=\"\"></script>";

#define CAP (256u * 1024u) /* small caps: bombs end fast */

struct acc {
    char *p;
    size_t n;
};

static int acc_sink(void *arg, const char *p, size_t n)
{
    struct acc *a = arg;
    if (a->n + n > CAP)
        return VP_ERR_LIMIT;
    memcpy(a->p + a->n, p, n);
    a->n += n;
    return 0;
}

static int decode_all(enum inject_coding c, const void *in, size_t n, size_t step, struct acc *a)
{
    struct codec_dec *d;
    struct codec_limits lim = {CAP, 500, 64 * 1024};
    if (codec_dec_new(&d, c, &lim) != 0)
        abort();
    int e = 0;
    for (size_t off = 0; off < n && !e; off += step)
        e = codec_dec_feed(d, (const char *)in + off, n - off < step ? n - off : step, acc_sink, a);
    if (!e)
        e = codec_dec_finish(d);
    codec_dec_free(d);
    return e;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum inject_coding map[] = {INJECT_CODING_GZIP, INJECT_CODING_DEFLATE,
                                             INJECT_CODING_BR, INJECT_CODING_ZSTD};
    if (size < 1)
        return 0;
    enum inject_coding c = map[data[0] & 3u];
    unsigned flags = (data[0] & 4u) ? INJECTOR_FLUSH : 0;
    size_t step = (size_t)1 << (data[0] >> 4);
    const uint8_t *in = data + 1;
    size_t n = size - 1;

    struct acc plain = {malloc(CAP), 0};
    int e1 = decode_all(c, in, n, step, &plain);
    if (e1 && e1 != VP_ERR_PROTO && e1 != VP_ERR_LIMIT)
        abort();

    struct injector_options opt;
    injector_options_default(&opt);
    opt.max_decoded = CAP;
    opt.max_ratio = 500;
    struct injector *inj;
    if (injector_new(&inj, c, TAG, sizeof TAG - 1, &opt) != 0)
        abort();
    struct evbuffer *ib = evbuffer_new(), *ob = evbuffer_new();
    int e2 = 0;
    for (size_t off = 0; off < n && !e2; off += step) {
        evbuffer_add(ib, in + off, n - off < step ? n - off : step);
        e2 = injector_feed(inj, ib, ob, flags);
    }
    if (!e2)
        e2 = injector_feed(inj, ib, ob, INJECTOR_END);
    if (e2 && e2 != VP_ERR_PROTO && e2 != VP_ERR_LIMIT)
        abort();
    if (!e1 && !e2) {
        size_t on = evbuffer_get_length(ob);
        unsigned char *o = malloc(on + 1);
        evbuffer_remove(ob, o, on);
        struct acc again = {malloc(CAP + sizeof TAG), 0};
        int e3 = decode_all(c, o, on, 4096, &again);
        size_t want = plain.n + (injector_injected(inj) ? sizeof TAG - 1 : 0);
        if (e3 == 0 && again.n != want)
            abort();
        if (e3 == 0 && !injector_injected(inj) && memcmp(again.p, plain.p, plain.n) != 0)
            abort();
        if (e3 && e3 != VP_ERR_LIMIT) /* our own output must always decode */
            abort();
        free(again.p);
        free(o);
    }
    evbuffer_free(ib);
    evbuffer_free(ob);
    injector_free(inj);
    free(plain.p);
    return 0;
}
