/* store/jtree's parser against jansson's json_loadb(JSON_REJECT_DUPLICATES) on the same bodies
 * (not a test): a metrics-only and a realistic beacon in bench/store_bench's shapes, and three
 * hostile 64 KiB bodies (thousands of short keys in one object, 100-byte keys sharing a prefix,
 * 2048-deep nesting). For each: CPU µs per parse of both (the median of 5 rounds of a fixed
 * number of parses each, clock_gettime(CLOCK_PROCESS_CPUTIME_ID)) and the ratio, which is what to
 * compare on a shared machine. Both must accept the bodies (the program says so and exits 1 if
 * not). Usage: bench/jtree_bench [SCALE]   (SCALE multiplies the parses per round; default 1) */
#include "config.h"

#include "bench/beacon_body.h"

#include "store/jtree.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ROUNDS 5

static double cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median CPU µs per parse of body with jtree (which = 0) or jansson (1); -1 if refused. */
static double per_parse(const char *body, size_t len, int which, int n)
{
    double r[ROUNDS];
    for (int k = 0; k < ROUNDS; k++) {
        double t0 = cpu_us();
        for (int i = 0; i < n; i++) {
            if (which == 0) {
                struct jtree_doc *doc = NULL;
                const struct jtree *root = NULL;
                if (jtree_load(body, len, &doc, &root) != 0)
                    return -1;
                jtree_doc_free(doc);
            } else {
                json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
                if (!j)
                    return -1;
                json_decref(j);
            }
        }
        r[k] = (cpu_us() - t0) / n;
    }
    qsort(r, ROUNDS, sizeof r[0], cmp_d);
    return r[ROUNDS / 2];
}

static size_t beacon(char *b, size_t cap, bool resources)
{
    return (size_t)beacon_body(b, cap, "7b6f3c2a1d9e8f4051a2b3c4d5e6f708", 1764000000000LL, 7,
                               resources);
}

static size_t keys(char *b, size_t cap, bool long_keys)
{
    size_t n = 0;
    b[n++] = '{';
    for (int k = 0;; k++) {
        char one[160];
        int w = long_keys ? snprintf(one, sizeof one, "%s\"%0100x\":0", k ? "," : "", k)
                          : snprintf(one, sizeof one, "%s\"%x\":0", k ? "," : "", k);
        if (w <= 0 || n + (size_t)w + 2 > cap)
            break;
        memcpy(b + n, one, (size_t)w);
        n += (size_t)w;
    }
    b[n++] = '}';
    return n;
}

static size_t deep(char *b, size_t cap)
{
    size_t n = 0;
    for (int i = 0; i < 2048 && n + 2 < cap; i++)
        b[n++] = '[';
    for (int i = 0; i < 2048; i++)
        b[n++] = ']';
    return n;
}

int main(int argc, char **argv)
{
    int scale = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 1;
    if (scale < 1)
        scale = 1;
    static char buf[65536];
    struct {
        const char *name;
        int n;
    } shapes[] = {{"metrics-only beacon", 4000}, {"realistic beacon", 400},
                  {"64 KiB, short keys", 40},    {"64 KiB, 100-byte keys", 40},
                  {"2048-deep arrays", 400}};
    printf("| body | bytes | jtree µs/parse | jansson µs/parse | jansson / jtree |\n");
    printf("|---|---:|---:|---:|---:|\n");
    int bad = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t len = s == 0   ? beacon(buf, sizeof buf, false)
                     : s == 1 ? beacon(buf, sizeof buf, true)
                     : s == 2 ? keys(buf, sizeof buf, false)
                     : s == 3 ? keys(buf, sizeof buf, true)
                              : deep(buf, sizeof buf);
        int n = shapes[s].n * scale;
        double a = per_parse(buf, len, 0, n), b = per_parse(buf, len, 1, n);
        if (a < 0 || b < 0) {
            printf("| %s | %zu | %s | %s | |\n", shapes[s].name, len, a < 0 ? "refused" : "",
                   b < 0 ? "refused" : "");
            bad++;
            continue;
        }
        printf("| %s | %zu | %.2f | %.2f | %.1f× |\n", shapes[s].name, len, a, b, b / a);
    }
    return bad ? 1 : 0;
}
