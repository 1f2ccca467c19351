/* store/jtree against jansson: for a table of edge cases, the beacon fuzz corpus and seeded random
 * mutations of beacon bodies and JSON edge cases, jtree_load must accept exactly what
 * json_loadb(JSON_REJECT_DUPLICATES) accepts and copy the same values (jtree_dump read back by
 * jansson is json_equal to jansson's own tree: exact doubles, decoded strings, order-free
 * objects), and beacon_check must answer as beacon_parse (same code, same reason). Bodies larger
 * than the thread's bump buffer (jansson's allocations partly from malloc) and loads on several
 * threads while other threads build, share and free jansson trees with the same allocation
 * functions are checked too (the ASan build is where a wrong free would show). Written reals
 * read back as the same double. */
#include "config.h"

#include "store/jtree.h"

#include <dirent.h>
#include <pthread.h>
#include <math.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/vp_err.h"
#include "store/beacon.h"
#include "tap.h"

#ifndef SRCDIR
#define SRCDIR "."
#endif

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Compares one input on both parsers; returns false (and says why in why) on a difference. */
static bool same(const char *in, size_t len, char *why, size_t cap)
{
    json_error_t jerr;
    json_t *j = json_loadb(in, len, JSON_REJECT_DUPLICATES, &jerr);
    struct jtree_doc *doc = NULL;
    const struct jtree *root = NULL;
    int rc = jtree_load(in, len, &doc, &root);
    bool ok = true;
    if ((j != NULL) != (rc == 0)) {
        snprintf(why, cap, "jansson %s, jtree rc %d (%s)", j ? "accepts" : "refuses", rc,
                 j ? "" : jerr.text);
        ok = false;
    } else if (j) {
        size_t max = jtree_dump_max(root);
        char *txt = malloc(max + 1);
        json_t *back = NULL;
        if (txt) {
            size_t n = jtree_dump(root, txt);
            back = n <= max ? json_loadb(txt, n, JSON_REJECT_DUPLICATES, NULL) : NULL;
        }
        if (!back || !json_equal(back, j)) {
            snprintf(why, cap, "values differ");
            ok = false;
        }
        json_decref(back);
        free(txt);
    }
    json_decref(j);
    jtree_doc_free(doc);
    if (!ok)
        return false;
    /* and the beacon checks on top of them */
    char r1[96] = "", r2[96] = "";
    json_t *p = NULL;
    int a = beacon_parse(in, len, &p, r1, sizeof r1);
    json_decref(p);
    doc = NULL;
    int b = beacon_check(in, len, &doc, &root, r2, sizeof r2);
    jtree_doc_free(doc);
    if (a != b || strcmp(r1, r2) != 0) {
        snprintf(why, cap, "beacon_parse %d \"%s\", beacon_check %d \"%s\"", a, r1, b, r2);
        return false;
    }
    return true;
}

static const char *const edge[] = {
    "{}", "[]", " {} ", "{}x", "{},", "[1,]", "[,1]", "{\"a\":1,}", "{\"a\" 1}", "{\"a\":}",
    "{1:2}", "{\"a\":1,\"a\":2}", "{\"a\":{\"b\":1,\"b\":1}}", "{\"a\":1,\"A\":2}", "\"str\"",
    "1", "true", "null", "[true,false,null]", "[tru]", "[truex]", "[nul]", "[True]", "[0]",
    "[-0]", "[-0.0]", "[01]", "[-01]", "[1.]", "[.5]", "[1.5e]", "[1e+]", "[1E-2]", "[1e2]",
    "[+1]", "[-]", "[1e999]", "[-1e999]", "[1e-999]", "[9223372036854775807]",
    "[9223372036854775808]", "[-9223372036854775808]", "[-9223372036854775809]",
    "[123456789012345678901234567890]", "[0.1]", "[0.30000000000000004]", "[1764000000000.5]",
    "[3599999.9]", "[2.2250738585072014e-308]", "[4.9e-324]", "[1.7976931348623157e308]",
    "[0.000000000000000000000000000001]", "[12345678901234567890.5]", "[1.23456789012345678]",
    "[\"\\u0000\"]", "[\"a\\u0000b\"]", "{\"\\u0000\":1}", "[\"\\ud800\"]", "[\"\\udc00\"]",
    "[\"\\ud800\\udc00\"]", "[\"\\ud83d\\ude00\"]", "[\"\\ud800\\u0041\"]", "[\"\\ud800x\"]",
    "[\"\\u00e9\\u20AC\"]", "[\"\\uZZZZ\"]", "[\"\\u12\"]", "[\"\\x\"]", "[\"\\/\\b\\f\\n\\r\\t\"]",
    "[\"\t\"]", "[\"\x7f\"]", "[\"\xc3\xa9\"]", "[\"\xc0\x80\"]", "[\"\xc1\xbf\"]",
    "[\"\xe0\x80\x80\"]", "[\"\xed\xa0\x80\"]", "[\"\xef\xbf\xbf\"]", "[\"\xf0\x90\x80\x80\"]",
    "[\"\xf4\x8f\xbf\xbf\"]", "[\"\xf4\x90\x80\x80\"]", "[\"\xf5\x80\x80\x80\"]", "[\"\xff\"]",
    "[\"\xe2\x82\"]", "[\"\xc3\"]", "[\"abc", "[\"abc\\", "[1", "{\"a\"", "{\"a\":1", "\xef\xbb\xbf{}",
    "{\"a\":\"\xc3\xa9\",\"\xc3\xa9\":1}", "[1 2]", "{\"a\":1 \"b\":2}", "[\n\r\t 1 ]", "[\f1]",
    "{\"v\":1,\"vid\":\"abcdefgh12\",\"url\":\"/p\",\"t0\":1764000000000,\"m\":[{\"n\":\"LCP\",\"id\":\"x\","
    "\"v\":1.0,\"a\":{\"target\":\"a\\\"b\",\"url\":\"\\u00e9\",\"ttfb\":-0.0}}]}",
};

static const char *const seeds[] = {
    "{\"v\":1,\"vid\":\"abcdefgh12\",\"url\":\"/products/42?x=1\",\"nav\":\"navigate\",\"t0\":1764000000000.5,"
    "\"dev\":\"desktop\",\"ect\":\"4g\",\"mem\":8,\"pvid\":\"parent_01\",\"m\":[{\"n\":\"LCP\",\"id\":\"abcdefgh12-LCP\","
    "\"v\":1850.5,\"d\":1850.5,\"r\":\"good\",\"a\":{\"target\":\"main>img\",\"url\":\"/h.jpg\",\"ttfb\":80.1,"
    "\"loadDelay\":120.5,\"loadDuration\":310.2,\"renderDelay\":45.3}},{\"n\":\"CLS\",\"id\":\"abcdefgh12-CLS\","
    "\"v\":0.042,\"d\":0.01,\"a\":{\"target\":\"div\",\"time\":900.4,\"value\":0.01,\"loadState\":\"complete\"}},"
    "{\"n\":\"INP\",\"id\":\"i\",\"v\":136,\"d\":136,\"a\":{\"type\":\"pointer\",\"inputDelay\":3.2}},"
    "{\"n\":\"TTFB\",\"id\":\"t\",\"v\":120.3,\"a\":{\"waiting\":3.1,\"dns\":10.2}}],"
    "\"nt\":{\"u\":\"/products/42\",\"s\":0,\"d\":800,\"dcl\":500,\"ls\":700,\"ty\":\"navigate\",\"rc\":0,"
    "\"sv\":[{\"n\":\"db\",\"d\":12.5,\"de\":\"q\"}]},\"ri\":3,\"res\":[{\"u\":\"/a.js\",\"i\":\"script\",\"s\":120.1,"
    "\"d\":40.2,\"fs\":120.1,\"rqs\":151.1,\"rps\":170.3,\"rpe\":160.5,\"ts\":11000,\"eb\":10700,\"db\":40000,"
    "\"p\":\"h2\",\"rb\":\"blocking\",\"st\":200,\"sv\":[]},{\"u\":\"https://cdn.example/x.css\",\"i\":\"link\","
    "\"s\":5,\"dls\":5.1,\"dle\":13.2,\"cs\":13.2,\"ce\":35.5,\"scs\":19.1,\"st\":0,\"dt\":\"cache\"}]}",
    "{\"v\":1,\"vid\":\"x_-12345678\",\"url\":\"/\\u00e9\\n\\\"q\\\"\",\"t0\":1.7640000000005e12,"
    "\"m\":[],\"res\":null,\"nt\":null,\"unknown\":{\"deep\":[1,[2,{\"k\":[true,false,null]}]],\"s\":\"\\ud83d\\ude00\"}}",
};

/* One mutation of src (len bytes) into dst (cap bytes); returns the new length. */
static size_t mutate(const char *src, size_t len, char *dst, size_t cap)
{
    static const char alphabet[] = "{}[],:\"\\0123456789.eE+-tfnul \x80\xc3\xa9\xed\xf0\x00";
    size_t n = len < cap ? len : cap;
    memcpy(dst, src, n);
    int k = 1 + (int)(next() % 3);
    for (int m = 0; m < k && n > 0; m++) {
        size_t at = (size_t)(next() % n);
        switch (next() % 5) {
        case 0: /* replace a byte */
            dst[at] = alphabet[next() % (sizeof alphabet - 1)];
            break;
        case 1: /* insert a byte */
            if (n + 1 < cap) {
                memmove(dst + at + 1, dst + at, n - at);
                dst[at] = alphabet[next() % (sizeof alphabet - 1)];
                n++;
            }
            break;
        case 2: { /* delete a range */
            size_t l = 1 + (size_t)(next() % 8);
            if (at + l > n)
                l = n - at;
            memmove(dst + at, dst + at + l, n - at - l);
            n -= l;
            break;
        }
        case 3: { /* duplicate a range (keys, values) */
            size_t l = 1 + (size_t)(next() % 24);
            if (at + l > n)
                l = n - at;
            if (n + l < cap) {
                memmove(dst + at + l, dst + at, n - at);
                n += l;
            }
            break;
        }
        default: /* truncate */
            n = at;
            break;
        }
    }
    return n;
}

/* ---- jansson on several threads at once ---- */

#define T_ROUNDS 300

static pthread_mutex_t hand_mu = PTHREAD_MUTEX_INITIALIZER;
static json_t *hand; /* a tree built on one thread, freed on another */
static int thread_bad[3];

static void *loader(void *arg)
{
    (void)arg;
    static char big[40000];
    size_t n = 0;
    big[n++] = '{';
    for (int i = 0; i < 1500; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "%s\"key%d\":[%d,\"s%d\"]", i ? "," : "",
                              i, i, i);
    big[n++] = '}';
    char why[256];
    for (int r = 0; r < T_ROUNDS; r++) {
        const char *in = r % 3 == 2 ? big : seeds[r % 2];
        size_t len = r % 3 == 2 ? n : strlen(in);
        if (!same(in, len, why, sizeof why))
            thread_bad[0]++;
    }
    return NULL;
}

static void *builder(void *arg)
{
    (void)arg;
    for (int r = 0; r < T_ROUNDS; r++) {
        json_t *j = json_loads(seeds[r % 2], JSON_REJECT_DUPLICATES, NULL);
        char *txt = j ? json_dumps(j, JSON_COMPACT) : NULL;
        if (!txt)
            thread_bad[1]++;
        free(txt);
        pthread_mutex_lock(&hand_mu);
        json_decref(hand); /* the consumer did not take the last one */
        hand = j;
        pthread_mutex_unlock(&hand_mu);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    (void)arg;
    for (int r = 0; r < T_ROUNDS * 4; r++) {
        pthread_mutex_lock(&hand_mu);
        json_t *j = hand;
        hand = NULL;
        pthread_mutex_unlock(&hand_mu);
        if (j && !json_is_object(j))
            thread_bad[2]++;
        json_t *extra = json_pack("{s:i,s:s}", "n", r, "s", "x");
        if (!extra)
            thread_bad[2]++;
        json_decref(extra);
        json_decref(j);
    }
    return NULL;
}

static void threads_test(void)
{
    pthread_t t[3];
    void *(*fn[3])(void *) = {loader, builder, consumer};
    int started = 0;
    for (int i = 0; i < 3; i++)
        if (pthread_create(&t[i], NULL, fn[i], NULL) == 0)
            started++;
    for (int i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    json_decref(hand);
    hand = NULL;
    /* and the main thread still loads after the others ended */
    char why[256];
    bool after = same(seeds[0], strlen(seeds[0]), why, sizeof why);
    TAP_OK(started == 3 && thread_bad[0] == 0 && thread_bad[1] == 0 && thread_bad[2] == 0 && after,
           "jtree/threads: %d threads, differences %d/%d/%d", started, thread_bad[0],
           thread_bad[1], thread_bad[2]);
}

int main(void)
{
    char why[256];
    if (getenv("JTREE_SEED"))
        rng = strtoull(getenv("JTREE_SEED"), NULL, 0) | 1;
    for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++) {
        bool ok = same(edge[i], strlen(edge[i]), why, sizeof why);
        TAP_OK(ok, "jtree/edge_%zu%s%s", i, ok ? "" : ": ", ok ? "" : why);
    }
    /* nesting around jansson's 2048 limit, with and without a scalar inside */
    static char deep[8192];
    for (int d = 2045; d <= 2050; d++) {
        for (int scalar = 0; scalar < 2; scalar++) {
            size_t n = 0;
            for (int i = 0; i < d; i++)
                deep[n++] = '[';
            if (scalar)
                deep[n++] = '1';
            for (int i = 0; i < d; i++)
                deep[n++] = ']';
            TAP_OK(same(deep, n, why, sizeof why), "jtree/depth_%d%s: %s", d,
                   scalar ? "_scalar" : "", why);
        }
    }
    /* a large object (the sorted duplicate check) with and without a duplicate */
    {
        static char big[65536];
        for (int dup = 0; dup < 2; dup++) {
            size_t n = 0;
            big[n++] = '{';
            for (int i = 0; i < 3000; i++)
                n += (size_t)snprintf(big + n, sizeof big - n, "%s\"k%d\":%d", i ? "," : "",
                                      dup && i == 2999 ? 17 : i, i);
            big[n++] = '}';
            TAP_OK(same(big, n, why, sizeof why), "jtree/large_object%s: %s", dup ? "_dup" : "",
                   why);
        }
    }
    /* numbers: bit-identical doubles in several notations */
    {
        int bad = 0;
        char num[64], arr[80];
        for (int i = 0; i < 20000 && bad < 5; i++) {
            uint64_t r = next();
            double d;
            switch (i % 5) {
            case 0:
                memcpy(&d, &r, sizeof d);
                if (!isfinite(d))
                    continue;
                snprintf(num, sizeof num, "%.17g", d);
                break;
            case 1:
                snprintf(num, sizeof num, "%.1f", (double)(r % 36000000) / 10.0);
                break;
            case 2:
                snprintf(num, sizeof num, "%.4f", (double)(r % 1000000) / 10000.0);
                break;
            case 3:
                snprintf(num, sizeof num, "%.*e", (int)(r % 20), (double)(r >> 11) * 1e-9);
                break;
            default:
                snprintf(num, sizeof num, "%llu.%llue%d", (unsigned long long)(r % 100000000),
                         (unsigned long long)((r >> 27) % 10000000), (int)(r >> 60) - 8);
                break;
            }
            int w = snprintf(arr, sizeof arr, "[%s]", num);
            if (w <= 0 || (size_t)w >= sizeof arr)
                continue;
            json_t *j = json_loadb(arr, (size_t)w, 0, NULL);
            struct jtree_doc *doc = NULL;
            const struct jtree *root = NULL;
            int rc = jtree_load(arr, (size_t)w, &doc, &root);
            double a = j ? json_number_value(json_array_get(j, 0)) : 0;
            double b = rc == 0 ? jtree_number(&root->u.items[0]) : 0;
            if ((j != NULL) != (rc == 0) || memcmp(&a, &b, sizeof a) != 0) {
                bad++;
                fprintf(stderr, "# number %s: jansson %.17g, jtree %.17g (rc %d)\n", num, a, b,
                        rc);
            }
            /* and written back, it reads as the same double */
            char out[64];
            char *e = jtree_write_real(out, b);
            *e = '\0';
            if (rc == 0 && root->u.items[0].type == JTREE_REAL && strtod(out, NULL) != b) {
                bad++;
                fprintf(stderr, "# number %s written as %s\n", num, out);
            }
            json_decref(j);
            jtree_doc_free(doc);
        }
        TAP_OK(bad == 0, "jtree/numbers_bit_identical: %d differences", bad);
    }
    /* the beacon fuzz corpus */
    {
        int files = 0, bad = 0;
        DIR *d = opendir(SRCDIR "/fuzz/corpus/fuzz_beacon");
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            char path[1024];
            snprintf(path, sizeof path, "%s/fuzz/corpus/fuzz_beacon/%s", SRCDIR, e->d_name);
            FILE *f = fopen(path, "rb");
            if (!f)
                continue;
            static char buf[1 << 17];
            size_t n = fread(buf, 1, sizeof buf, f);
            fclose(f);
            files++;
            if (!same(buf, n, why, sizeof why)) {
                bad++;
                fprintf(stderr, "# corpus %s: %s\n", e->d_name, why);
            }
        }
        if (d)
            closedir(d);
        TAP_OK(files > 0 && bad == 0, "jtree/fuzz_corpus: %d files, %d differences", files, bad);
    }
    /* seeded mutations of beacon bodies and of the edge cases */
    {
        static char buf[8192];
        int bad = 0, accepted = 0, total = 0;
        int rounds = getenv("JTREE_ROUNDS") ? (int)strtol(getenv("JTREE_ROUNDS"), NULL, 10) : 30000;
        for (int i = 0; i < rounds && bad < 5; i++) {
            const char *src;
            if (i % 3 == 0)
                src = edge[next() % (sizeof edge / sizeof edge[0])];
            else
                src = seeds[next() % (sizeof seeds / sizeof seeds[0])];
            size_t n = mutate(src, strlen(src), buf, sizeof buf);
            total++;
            if (!same(buf, n, why, sizeof why)) {
                bad++;
                fprintf(stderr, "# mutation %d (%zu bytes): ", i, n);
                for (size_t k = 0; k < n && k < 400; k++)
                    fprintf(stderr, (unsigned char)buf[k] < 0x20 || (unsigned char)buf[k] >= 0x7f
                                        ? "\\x%02x" : "%c", (unsigned char)buf[k]);
                fprintf(stderr, " -- %s\n", why);
            } else {
                struct jtree_doc *doc = NULL;
                const struct jtree *root = NULL;
                char r[96];
                if (beacon_check(buf, n, &doc, &root, r, sizeof r) == 0)
                    accepted++;
                jtree_doc_free(doc);
            }
        }
        TAP_OK(bad == 0 && accepted > 100, "jtree/mutations: %d bodies, %d valid beacons, %d "
               "differences", total, accepted, bad);
    }
    threads_test();
    TAP_DONE();
}
