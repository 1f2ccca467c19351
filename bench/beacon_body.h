/* The beacon body the in-process benchmarks send (bench/store_bench, bench/jtree_bench): the
 * beacon.js wire format with five metrics (LCP with attribution), about 440 bytes, and with
 * `resources` 60 resource entries more, about 11.6 KB. i varies the ids and values. Returns
 * the length written (snprintf's, so a cap too small shows as a length >= cap). */
#ifndef VP_BENCH_BEACON_BODY_H
#define VP_BENCH_BEACON_BODY_H

#include <stdbool.h>
#include <stdio.h>

static inline int beacon_body(char *b, size_t cap, const char *vid, long long t0, int i,
                              bool resources)
{
    int o = snprintf(b, cap,
                     "{\"v\":1,\"vid\":\"%s\",\"url\":\"/products/%d\",\"t0\":%lld,"
                     "\"nav\":\"navigate\",\"dev\":\"desktop\",\"ect\":\"4g\",\"m\":["
                     "{\"n\":\"LCP\",\"id\":\"l%d\",\"v\":%d.5,\"d\":1,\"r\":\"good\",\"a\":{"
                     "\"target\":\"img.hero\",\"url\":\"/hero.jpg\",\"ttfb\":100}},"
                     "{\"n\":\"CLS\",\"id\":\"c%d\",\"v\":0.0%d,\"d\":0.01,\"r\":\"good\"},"
                     "{\"n\":\"INP\",\"id\":\"i%d\",\"v\":%d,\"d\":1,\"r\":\"good\"},"
                     "{\"n\":\"FCP\",\"id\":\"f%d\",\"v\":900,\"d\":900,\"r\":\"good\"},"
                     "{\"n\":\"TTFB\",\"id\":\"t%d\",\"v\":120,\"d\":120,\"r\":\"good\"}]",
                     vid, i % 1000, t0, i, 1000 + i % 3000, i, i % 10, i, 50 + i % 400, i, i);
    if (resources) {
        o += snprintf(b + o, cap - (size_t)o, ",\"ri\":0,\"res\":[");
        for (int r = 0; r < 60; r++)
            o += snprintf(b + o, cap - (size_t)o,
                          "%s{\"u\":\"/_next/static/chunks/%d-%08x.js\",\"i\":\"script\",\"s\":%d.1,"
                          "\"d\":40.2,\"fs\":%d,\"rqs\":%d,\"rps\":%d,\"rpe\":%d,\"ts\":12000,"
                          "\"eb\":11700,\"db\":40000,\"p\":\"h2\",\"rb\":\"non-blocking\",\"st\":200}",
                          r ? "," : "", r, (unsigned)(i * 7919 + r), 100 + r, 100 + r, 110 + r,
                          130 + r, 140 + r);
        o += snprintf(b + o, cap - (size_t)o, "]");
    }
    o += snprintf(b + o, cap - (size_t)o, "}");
    return o;
}

#endif
