/* inject/ throughput bench (not a test): a ~1 MiB HTML page that compresses like a real one,
 * served by an "upstream" in each coding, run through the injector in 16 KiB upstream chunks.
 * Prints MB/s of decoded HTML, output/input size, and the peak heap of one response (through
 * the inject allocation hooks; evbuffer chains not included). Also: identity with and without
 * a tag to insert, compressed document (decode+scan+re-encode) versus fragment (raw pass-through
 * without decoding), the candidate encoder settings (zlib and igzip for gzip), and the CPU time
 * of one injected 50 KiB gzip response with each gzip re-encoder.
 * Run: bench/inject_bench [reps [page.html]] (the page replaces the generated 50 KiB one). */
#include "config.h"

#include <brotli/encode.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>
#include <zstd.h>

#include "inject/codec.h"
#include "inject/inject_alloc.h"
#include "inject/injector.h"

static size_t live, peak;

static void *b_malloc(size_t n)
{
    size_t *p = malloc(n + 16);
    if (!p)
        return NULL;
    p[0] = n;
    live += n;
    if (live > peak)
        peak = live;
    return (char *)p + 16;
}

static void b_free(void *q)
{
    size_t *p = (size_t *)(void *)((char *)q - 16);
    live -= p[0];
    free(p);
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A page of about size bytes: a Next.js-like head, then table rows with varied ids, prices,
 * words and inline JSON; gzip -6 gets about 4:1 on it, like a real rendered page. */
static size_t make_page(char *buf, size_t cap, size_t size, bool document)
{
    static const char *const words[] = {"alpha",  "shipping", "pending",  "delivered", "invoice",
                                        "orange", "kitchen",  "customer", "return",    "bundle",
                                        "fast",   "express",  "warranty", "discount",  "voucher"};
    size_t n = 0;
    if (document)
        n += (size_t)snprintf(buf, cap,
                              "<!DOCTYPE html><html lang=\"en\"><head><meta charSet=\"utf-8\"/>"
                              "<meta name=\"viewport\" content=\"width=device-width, "
                              "initial-scale=1\"/><link rel=\"stylesheet\" href=\"/_next/static/"
                              "css/app/layout.css?v=1732\"/><title>Orders</title></head><body>");
    n += (size_t)snprintf(buf + n, cap - n, "<main><table class=\"orders\">");
    unsigned x = 2166136261u;
    while (n + 400 < size && n + 400 < cap) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        n += (size_t)snprintf(
            buf + n, cap - n,
            "<tr data-id=\"%u\" data-h=\"%08x%04x\"><td><a "
            "href=\"/orders/%u\">#%08x</a></td><td>%s %s</td>"
            "<td class=\"num\">%u.%02u</td><td><script type=\"application/json\">{\"sku\":\"%x\","
            "\"q\":%u}</script></td></tr>\n",
            x % 1000000, x * 2654435761u, (x >> 7) & 0xffff, x % 99991, x, words[x % 15],
            words[(x >> 8) % 15], (x >> 4) % 9000, x % 100, x >> 12, x % 13);
    }
    n += (size_t)snprintf(buf + n, cap - n, "</table></main></body></html>");
    return n;
}

static size_t compress_upstream(enum inject_coding c, const char *in, size_t n, unsigned char *out,
                                size_t cap)
{
    if (c == INJECT_CODING_IDENTITY) {
        memcpy(out, in, n);
        return n;
    }
    if (c == INJECT_CODING_BR) {
        size_t on = cap;
        BrotliEncoderCompress(5, 22, BROTLI_MODE_TEXT, n, (const uint8_t *)in, &on, out);
        return on;
    }
    if (c == INJECT_CODING_ZSTD)
        return ZSTD_compress(out, cap, in, n, 3);
    z_stream z;
    memset(&z, 0, sizeof z);
    deflateInit2(&z, 6, Z_DEFLATED, c == INJECT_CODING_GZIP ? 31 : 15, 8, Z_DEFAULT_STRATEGY);
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    deflate(&z, Z_FINISH);
    size_t on = cap - z.avail_out;
    deflateEnd(&z);
    return on;
}

struct result {
    double mbs;
    size_t out_bytes;
    size_t peak;
    bool injected;
};

static struct result run(enum inject_coding c, const unsigned char *in, size_t n, size_t plain,
                         const struct injector_options *opt, unsigned flags, int reps)
{
    struct result best = {0, 0, 0, false};
    static const char tag[] = "<script src=\"/__vitals/beacon.js?v=0123456789ab\" "
                              "data-vid=\"0123456789abcdef0123456789abcdef\" async=\"\"></script>";
    for (int r = 0; r < reps; r++) {
        struct evbuffer *ib = evbuffer_new(), *ob = evbuffer_new();
        struct injector *inj;
        live = peak = 0;
        double t0 = now();
        if (injector_new(&inj, c, tag, sizeof tag - 1, opt) != 0)
            exit(1);
        for (size_t off = 0; off < n; off += 16384) {
            size_t k = n - off < 16384 ? n - off : 16384;
            evbuffer_add(ib, in + off, k);
            if (injector_feed(inj, ib, ob, flags) != 0)
                exit(1);
            evbuffer_drain(ob, evbuffer_get_length(ob)); /* the sink takes it */
        }
        size_t before_end = 0;
        (void)before_end;
        if (injector_feed(inj, ib, ob, INJECTOR_END) != 0)
            exit(1);
        double dt = now() - t0;
        struct result res = {(double)plain / dt / 1e6, 0, peak, injector_injected(inj)};
        injector_free(inj);
        evbuffer_free(ib);
        evbuffer_free(ob);
        if (res.mbs > best.mbs)
            best = res;
    }
    /* output size, once, without draining */
    struct evbuffer *ib = evbuffer_new(), *ob = evbuffer_new();
    struct injector *inj;
    if (injector_new(&inj, c, tag, sizeof tag - 1, opt) != 0)
        exit(1);
    for (size_t off = 0; off < n; off += 16384) {
        size_t k = n - off < 16384 ? n - off : 16384;
        evbuffer_add(ib, in + off, k);
        if (injector_feed(inj, ib, ob, flags) != 0)
            exit(1);
    }
    if (injector_feed(inj, ib, ob, INJECTOR_END) != 0)
        exit(1);
    best.out_bytes = evbuffer_get_length(ob);
    injector_free(inj);
    evbuffer_free(ib);
    evbuffer_free(ob);
    return best;
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    if (reps < 1 || reps > 100)
        reps = 5;
    inject_alloc_set(b_malloc, b_free);
    static char page[1200 * 1024], frag[1200 * 1024];
    static unsigned char enc[1300 * 1024];
    size_t pn = make_page(page, sizeof page, 1024 * 1024, true);
    size_t fn = make_page(frag, sizeof frag, 1024 * 1024, false);
    static const char *const names[] = {"identity", "gzip", "deflate", "br", "zstd"};
    struct injector_options opt;
    injector_options_default(&opt);
    printf("fixture: %zu bytes of HTML; 16 KiB upstream chunks; best of %d\n", pn, reps);
    printf("defaults: gzip/deflate level %d, brotli quality %d lgwin %d, zstd level %d "
           "windowLog %d\n\n",
           opt.gzip_level, opt.br_quality, opt.br_lgwin, opt.zstd_level, opt.zstd_window_log);
    printf("%-9s %-22s %9s %9s %8s %10s %s\n", "coding", "case", "in", "out", "MB/s", "peak_heap",
           "injected");
    for (int c = 0; c < 5; c++) {
        size_t en = compress_upstream((enum inject_coding)c, page, pn, enc, sizeof enc);
        struct result r = run((enum inject_coding)c, enc, en, pn, NULL, INJECTOR_FLUSH, reps);
        printf("%-9s %-22s %9zu %9zu %8.1f %10zu %s\n", names[c], "document, flush/chunk", en,
               r.out_bytes, r.mbs, r.peak, r.injected ? "yes" : "no");
        r = run((enum inject_coding)c, enc, en, pn, NULL, 0, reps);
        printf("%-9s %-22s %9zu %9zu %8.1f %10zu %s\n", names[c], "document, no flush", en,
               r.out_bytes, r.mbs, r.peak, r.injected ? "yes" : "no");
        size_t fen = compress_upstream((enum inject_coding)c, frag, fn, enc, sizeof enc);
        r = run((enum inject_coding)c, enc, fen, fn, NULL, 0, reps);
        printf("%-9s %-22s %9zu %9zu %8.1f %10zu %s\n", names[c], "fragment (gives up)", fen,
               r.out_bytes, r.mbs, r.peak, r.injected ? "yes" : "no");
        r = run((enum inject_coding)c, enc, fen, fn, NULL, INJECTOR_FLUSH, reps);
        printf("%-9s %-22s %9zu %9zu %8.1f %10zu %s\n", names[c], "fragment, flush/chunk", fen,
               r.out_bytes, r.mbs, r.peak, r.injected ? "yes" : "no");
    }
    /* first-byte latency: a streamed shell arrives as one flushed chunk; time from the
     * injector's creation to the encoded shell (with the tag) being in the output */
    printf("\nfirst chunk latency (injector_new + feed of a %zu-byte shell with FLUSH):\n",
           (size_t)1400);
    for (int c = 0; c < 5; c++) {
        size_t sn = 1400;
        size_t en = compress_upstream((enum inject_coding)c, page, sn, enc, sizeof enc);
        /* a whole small stream stands in for the flushed prefix: same decode work */
        double bestdt = 1e9;
        for (int r = 0; r < reps * 20; r++) {
            static const char tag[] = "<script src=\"/__vitals/beacon.js?v=0123456789ab\" "
                                      "data-vid=\"0123456789abcdef0123456789abcdef\" "
                                      "async=\"\"></script>";
            struct evbuffer *ib = evbuffer_new(), *ob = evbuffer_new();
            evbuffer_add(ib, enc, en);
            struct injector *inj;
            double t0 = now();
            if (injector_new(&inj, (enum inject_coding)c, tag, sizeof tag - 1, NULL) != 0 ||
                injector_feed(inj, ib, ob, INJECTOR_FLUSH) != 0)
                exit(1);
            double dt = now() - t0;
            if (evbuffer_get_length(ob) == 0)
                exit(1);
            if (dt < bestdt)
                bestdt = dt;
            injector_free(inj);
            evbuffer_free(ib);
            evbuffer_free(ob);
        }
        printf("  %-9s %7.1f us\n", names[c], bestdt * 1e6);
    }

    printf("\nencoder settings (document, flush per 16 KiB chunk):\n");
    /* gzip: wlog -1 marks zlib at that level, otherwise igzip at that level */
    static const struct {
        enum inject_coding c;
        int level, wlog;
    } cand[] = {
        {INJECT_CODING_GZIP, 1, -1}, {INJECT_CODING_GZIP, 5, -1}, {INJECT_CODING_GZIP, 6, -1},
        {INJECT_CODING_GZIP, 9, -1}, {INJECT_CODING_GZIP, 0, 0},  {INJECT_CODING_GZIP, 1, 0},
        {INJECT_CODING_GZIP, 2, 0},  {INJECT_CODING_GZIP, 3, 0},  {INJECT_CODING_BR, 3, 22},
        {INJECT_CODING_BR, 4, 22},   {INJECT_CODING_BR, 5, 22},   {INJECT_CODING_BR, 6, 22},
        {INJECT_CODING_BR, 4, 18},   {INJECT_CODING_BR, 5, 18},   {INJECT_CODING_BR, 5, 20},
        {INJECT_CODING_ZSTD, 1, 0},  {INJECT_CODING_ZSTD, 3, 0},  {INJECT_CODING_ZSTD, 6, 0},
        {INJECT_CODING_ZSTD, 3, 19}, {INJECT_CODING_ZSTD, 3, 20}};
    for (size_t i = 0; i < sizeof cand / sizeof cand[0]; i++) {
        struct injector_options o = opt;
        bool zfam = cand[i].c == INJECT_CODING_GZIP;
        o.gzip_level = o.br_quality = o.zstd_level = cand[i].level;
        o.igzip_level = zfam && cand[i].wlog >= 0 ? cand[i].level : -1;
        o.br_lgwin = cand[i].wlog > 0 ? cand[i].wlog : 22;
        o.zstd_window_log = cand[i].wlog > 0 ? cand[i].wlog : 0;
        size_t en = compress_upstream(cand[i].c, page, pn, enc, sizeof enc);
        struct result r = run(cand[i].c, enc, en, pn, &o, INJECTOR_FLUSH, reps);
        printf("  %-5s %-5s level %-2d window_log %-2d %8.1f MB/s  ratio %.2f:1  peak heap %zu\n",
               names[cand[i].c], zfam ? (cand[i].wlog < 0 ? "zlib" : "igzip") : "", cand[i].level,
               cand[i].wlog > 0 ? cand[i].wlog : 0, r.mbs, (double)pn / (double)r.out_bytes,
               r.peak);
    }

    /* One response of a 50 KiB page, as bench/inject.sh serves it (gzip, compressed once at
     * level 1 by the origin, arriving in one piece): CPU time per response for the whole
     * injector (create, decode, scan, insert, re-encode, free), with each gzip re-encoder. */
    size_t sn = make_page(page, sizeof page, 50 * 1024, true);
    if (argc > 2) { /* a page of one's own, e.g. bench/inject.py's (see inject/README.md) */
        FILE *pf = fopen(argv[2], "rb");
        if (!pf) {
            perror(argv[2]);
            return 2;
        }
        sn = fread(page, 1, sizeof page, pf);
        fclose(pf);
    }
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    deflateInit2(&zs, 1, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
    zs.next_in = (Bytef *)page;
    zs.avail_in = (uInt)sn;
    zs.next_out = enc;
    zs.avail_out = (uInt)sizeof enc;
    deflate(&zs, Z_FINISH);
    size_t sen = sizeof enc - zs.avail_out;
    deflateEnd(&zs);
    printf("\nper response, %zu-byte page%s, gzip level 1 upstream, CPU us (best of %d x 500):\n",
           sn, argc > 2 ? " (file)" : "", reps);
    static const char tag[] = "<script src=\"/__vitals/beacon.js?v=0123456789ab\" "
                              "data-vid=\"0123456789abcdef0123456789abcdef\" async=\"\"></script>";
    for (int igz = -1; igz <= 1; igz += 2) {
        struct injector_options o = opt;
        o.igzip_level = igz;
        double best = 1e9;
        size_t outn = 0;
        for (int r = 0; r < reps; r++) {
            double t0 = cpu_now();
            for (int k = 0; k < 500; k++) {
                struct evbuffer *ib = evbuffer_new(), *ob = evbuffer_new();
                struct injector *inj;
                evbuffer_add(ib, enc, sen);
                if (injector_new(&inj, INJECT_CODING_GZIP, tag, sizeof tag - 1, &o) != 0 ||
                    injector_feed(inj, ib, ob, INJECTOR_FLUSH) != 0 ||
                    injector_feed(inj, ib, ob, INJECTOR_END) != 0 || !injector_injected(inj))
                    exit(1);
                outn = evbuffer_get_length(ob);
                injector_free(inj);
                evbuffer_free(ib);
                evbuffer_free(ob);
            }
            double dt = (cpu_now() - t0) / 500;
            if (dt < best)
                best = dt;
        }
        printf("  re-encode %-12s %7.1f us  %zu -> %zu bytes\n", igz < 0 ? "zlib 1" : "igzip 1",
               best * 1e6, sen, outn);
    }
    return 0;
}
