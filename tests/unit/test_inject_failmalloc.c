/* Allocation-failure test for inject/ (after nghttp2's failmalloc_test): every allocation made
 * by the injector, its codecs, zlib/brotli/zstd (through inject_alloc_set) and libevent's
 * evbuffers (through event_set_mem_functions) is counted, and for N = 1, 2, ... the Nth fails.
 * Each run must end in VP_ERR_NOMEM or in a correct result, never a crash or a leak (the
 * sanitizer build checks leaks at exit); the loop ends when a run makes fewer than N
 * allocations. Scenarios: every coding, a document (inject), a fragment (raw pass-through) and
 * a chained page (skip), fed in three calls with FLUSH and END. */
#include "config.h"
#include "inject/injector.h"

#include <event2/event.h>
#include <stdio.h>
#include <string.h>

#include "common/vp_err.h"
#include "inject/inject_alloc.h"
#include "tests/support/tap.h"
#include "tests/unit/inject_test_util.h"

static long n_alloc, fail_at;
static bool armed;

static bool should_fail(void)
{
    return armed && ++n_alloc == fail_at;
}

static void *t_malloc(size_t n)
{
    return should_fail() ? NULL : malloc(n);
}

static void *t_realloc(void *p, size_t n)
{
    return should_fail() ? NULL : realloc(p, n);
}

static const char TAG[] = "<script src=\"/__vitals/beacon.js\" data-vid=\"f\" async=\"\"></script>";

struct scenario {
    const char *name;
    const char *doc;
    size_t doc_len;
    bool expect_tag;
};

/* One armed run; returns 0 (correct output), VP_ERR_NOMEM, or WRONG. */
#define WRONG (-1000)
static int one_run(enum inject_coding c, const struct tbuf *enc, const struct scenario *s)
{
    struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
    if (!in || !out)
        return WRONG;
    struct injector *inj = NULL;
    size_t cut1 = enc->n / 3, cut2 = 2 * enc->n / 3;
    armed = true;
    int e = injector_new(&inj, c, TAG, sizeof TAG - 1, NULL);
    if (!e && evbuffer_add(in, enc->p, cut1))
        e = VP_ERR_NOMEM;
    if (!e)
        e = injector_feed(inj, in, out, INJECTOR_FLUSH);
    if (!e && evbuffer_add(in, enc->p + cut1, cut2 - cut1))
        e = VP_ERR_NOMEM;
    if (!e)
        e = injector_feed(inj, in, out, 0);
    if (!e && evbuffer_add(in, enc->p + cut2, enc->n - cut2))
        e = VP_ERR_NOMEM;
    if (!e)
        e = injector_feed(inj, in, out, INJECTOR_END);
    armed = false;
    int result = e;
    if (!e) {
        size_t len = evbuffer_get_length(out);
        unsigned char *p = malloc(len + 1);
        evbuffer_copyout(out, p, len);
        struct tbuf d;
        size_t want = s->doc_len + (s->expect_tag ? sizeof TAG - 1 : 0);
        if (ref_decompress(c, p, len, true, &d) != 0 || d.n != want)
            result = WRONG;
        tbuf_free(&d);
        free(p);
    } else if (e != VP_ERR_NOMEM) {
        result = WRONG;
    }
    injector_free(inj);
    evbuffer_free(in);
    evbuffer_free(out);
    return result;
}

int main(void)
{
    event_set_mem_functions(t_malloc, t_realloc, free);
    inject_alloc_set(t_malloc, free);

    static char big[96 * 1024];
    size_t bn = (size_t)snprintf(big, sizeof big, "<!DOCTYPE html><html><head><title>t</title>");
    unsigned x = 1;
    while (bn + 100 < sizeof big) {
        x = x * 1103515245u + 12345u;
        bn += (size_t)snprintf(big + bn, sizeof big - bn, "<p class=c%u>%08x %u</p>\n", x % 9, x,
                               x >> 20);
    }
    const char *frag = "<div><p>fragment</p><script src=/x.js></script></div>";
    const char *chained = "<!doctype html><head><script src=\"/__vitals/beacon.js\" "
                          "async=\"\"></script><title>c</title>";
    const struct scenario sc[] = {
        {"document", big, bn, true},
        {"fragment", frag, strlen(frag), false},
        {"chained", chained, strlen(chained), false},
    };
    for (size_t k = 0; k < sizeof all_codings / sizeof all_codings[0]; k++) {
        for (size_t s = 0; s < sizeof sc / sizeof sc[0]; s++) {
            struct tbuf enc;
            ref_compress(all_codings[k], sc[s].doc, sc[s].doc_len, &enc);
            long runs = 0, nomem = 0, wrong = 0;
            for (fail_at = 1;; fail_at++) {
                n_alloc = 0;
                int r = one_run(all_codings[k], &enc, &sc[s]);
                runs++;
                if (r == VP_ERR_NOMEM)
                    nomem++;
                else if (r != 0) {
                    wrong++;
                    printf("# fail_at %ld: result %d\n", fail_at, r);
                }
                if (n_alloc < fail_at) /* nothing failed: every allocation point was covered */
                    break;
                if (fail_at > 100000)
                    break;
            }
            TAP_OK(wrong == 0 && nomem > 0,
                   "failmalloc/%s/%s (%ld allocation points, %ld gave NOMEM, %ld wrong)",
                   coding_names[k], sc[s].name, runs - 1, nomem, wrong);
            tbuf_free(&enc);
        }
    }
    TAP_DONE();
}
