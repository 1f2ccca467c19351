/* Fills a vitals database with N synthetic page views for the report benchmarks.
 *
 * The distributions imitate field data rather than a uniform spread, so that percentiles, rating
 * shares and the per-route / per-device skew look like a real site's:
 *   - 50 routes with Zipf-like popularity (route k gets weight 1/(k+1)^0.8) and their own speed
 *     (median LCP from 900 to 4,500 ms);
 *   - device mobile 55 % / desktop 40 % / tablet 5 % (mobile 1.4x slower), browser Chrome 64 %,
 *     Safari 20 %, Firefox 9 %, Edge 7 %, connection 4g 85 % / 3g 10 % / 2g 4 % / slow-2g 1 %
 *     (3g 1.8x, 2g 3x, slow-2g 5x slower); 8 % of views carry the label "canary";
 *   - started_at over DAYS days before now with a day/night cycle (traffic 4x higher at 14:00
 *     than at 02:00 UTC), inserted in time order as beacons arrive;
 *   - 5 metrics per view: TTFB, FCP >= TTFB and LCP >= FCP log-normal (ms, 0.1 ms steps), INP
 *     log-normal in 8 ms steps, CLS zero for 45 % of views and exponential otherwise (4
 *     decimals); LCP carries an attribution object. 3 % of views also hold an earlier, smaller
 *     LCP under a second metric id (the report takes the largest value of a view);
 *   - the proxy's records: the document request of every view (injected, gzip) and, for 30 % of
 *     views, one API call (/api/items/N, JSON, 5 % of them 500s) that the view made.
 * Deterministic for a given N, DAYS and now (xorshift64* seeded with 42).
 *
 * Usage: gen_db PATH N [DAYS (default 30)] [NOW_MS (default: the current time)]
 * PATH must not exist; the schema comes from store_open, the rows go in through prepared
 * statements in one transaction (about a minute per million views on the 2-core machine), then
 * the hourly rollups are built as the writer would (store/rollup.h) and the time printed.
 *        gen_db --rollup PATH   upgrades an existing database in place (store_open runs the
 *                               migrations) and builds its rollups, timing the backfill. */
#include "config.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/vp_buf.h"
#include "common/vp_err.h"
#include "store/rollup.h"
#include "store/store.h"
#include "store/store_internal.h"

#define NROUTES 50

static uint64_t rng_state = 42;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static double unif(void)
{
    return (double)(rnd() >> 11) / 9007199254740992.0;
}

static double normal(void)
{
    double u = unif(), v = unif();
    if (u < 1e-300)
        u = 1e-300;
    return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

static double lognormal(double median, double sigma)
{
    return median * exp(sigma * normal());
}

static int pick(const double *cum, int n)
{
    double u = unif();
    for (int i = 0; i < n; i++)
        if (u < cum[i])
            return i;
    return n - 1;
}

static const char *const route_names[10] = {
    "/products/[id]", "/blog/[id]", "/users/[id]", "/orders/[id]", "/docs",
    "/search",        "/cart",      "/checkout",   "/account",     "/category"};

static void route_name(int k, char *out, size_t cap)
{
    int w = k < 10 ? snprintf(out, cap, "%s", route_names[k])
                   : snprintf(out, cap, "/section%d%s", k / 10, route_names[k % 10]);
    if (w < 0 || (size_t)w >= cap)
        out[0] = '\0';
}

static double round_to(double v, double step)
{
    return floor(v / step + 0.5) * step;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* One proxy record; times in epoch us. */
static int add_request(sqlite3_stmt *st, const char *view_id, int64_t at_us, int64_t dur_us,
                       int status, bool injected, const char *method, const char *url,
                       const char *route, const char *ctype, const char *label)
{
    sqlite3_bind_text(st, 1, view_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, at_us);
    sqlite3_bind_int64(st, 3, at_us + 200);
    sqlite3_bind_int64(st, 4, at_us + 300);
    sqlite3_bind_int64(st, 5, at_us + dur_us * 2 / 3);
    sqlite3_bind_int64(st, 6, at_us + dur_us);
    sqlite3_bind_int(st, 7, status);
    sqlite3_bind_int(st, 8, injected);
    sqlite3_bind_text(st, 9, method, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 10, url, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 11, url, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 12, route, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 13, ctype, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 14, injected ? "gzip" : NULL, -1, SQLITE_STATIC);
    if (label)
        sqlite3_bind_text(st, 15, label, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 15);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* Builds every sealable hour's rollups of the database at path and prints the time taken. */
static int build_rollups(const char *path)
{
    sqlite3 *db = NULL;
    int64_t t0 = vp_mono_us();
    if (sqlite3_open(path, &db) != SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA cache_size=-65536", NULL, NULL, NULL) != SQLITE_OK ||
        rollup_catch_up(db, vp_now_ms()) != 0) {
        fprintf(stderr, "gen_db: rollups: %s\n", sqlite3_errmsg(db));
        sqlite3_close(db);
        return 1;
    }
    sqlite3_close(db);
    printf("gen_db: rollups built in %.1f s\n", (double)(vp_mono_us() - t0) / 1e6);
    return 0;
}

static int upgrade(const char *path)
{
    char err[256];
    struct store *st = NULL;
    struct store_options opt;
    store_options_default(&opt);
    opt.retention_days = 0;
    if (access(path, F_OK) != 0) {
        fprintf(stderr, "gen_db: %s: no such file\n", path);
        return 2;
    }
    int64_t t0 = vp_mono_us();
    if (store_open(&st, path, &opt, err, sizeof err) != 0) {
        fprintf(stderr, "gen_db: %s\n", err);
        return 1;
    }
    store_free(st); /* the writer may have started the backfill: build_rollups finishes it */
    printf("gen_db: migrated in %.1f s\n", (double)(vp_mono_us() - t0) / 1e6);
    return build_rollups(path);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--rollup") == 0)
        return upgrade(argv[2]);
    if (argc < 3) {
        fprintf(stderr, "usage: gen_db PATH N [DAYS] [NOW_MS]\n");
        return 2;
    }
    const char *path = argv[1];
    long n = strtol(argv[2], NULL, 10);
    long days = argc > 3 ? strtol(argv[3], NULL, 10) : 30;
    int64_t now = argc > 4 ? strtoll(argv[4], NULL, 10) : vp_now_ms();
    if (n < 1 || n > 100000000 || days < 1 || days > 3650 || now < 946684800000LL) {
        fprintf(stderr, "gen_db: N 1..1e8, DAYS 1..3650, NOW_MS after 2000\n");
        return 2;
    }
    if (access(path, F_OK) == 0) {
        fprintf(stderr, "gen_db: %s exists\n", path);
        return 2;
    }
    char err[256];
    struct store *st = NULL;
    struct store_options opt;
    store_options_default(&opt);
    opt.retention_days = 0;
    if (store_open(&st, path, &opt, err, sizeof err) != 0) {
        fprintf(stderr, "gen_db: %s\n", err);
        return 1;
    }
    store_free(st);

    sqlite3 *db = NULL;
    sqlite3_stmt *iv = NULL, *im = NULL, *iq = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA synchronous=OFF; PRAGMA cache_size=-524288; BEGIN;", NULL, NULL,
                     NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "INSERT INTO views(id,started_at,received_at,url,path,route,"
                           "navigation_type,device,ect,browser,browser_major,label,sample_rate) "
                           "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,1.0)",
                           -1, &iv, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "INSERT INTO metrics(view_seq,name,metric_id,value,delta,rating,"
                           "attribution,updated_at) VALUES(?,?,?,?,?,NULL,?,?)",
                           -1, &im, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "INSERT INTO requests(view_id,accept_us,head_done_us,sent_us,"
                           "first_byte_us,last_byte_us,bytes_in,bytes_out,upstream_bytes,status,"
                           "injected,reused,method,url,path,route,host,protocol,content_type,"
                           "content_encoding,cache_control,label) VALUES(?1,?2,?3,?4,?5,?6,600,"
                           "9000,30000,?7,?8,1,?9,?10,?11,?12,'localhost:3000','h1',?13,?14,"
                           "'private, no-cache',?15)",
                           -1, &iq, NULL) != SQLITE_OK) {
        fprintf(stderr, "gen_db: %s\n", sqlite3_errmsg(db));
        return 1;
    }

    double rcum[NROUTES], rw = 0, speed[NROUTES];
    for (int k = 0; k < NROUTES; k++) {
        rw += 1.0 / pow(k + 1, 0.8);
        rcum[k] = rw;
        speed[k] = 900.0 + 3600.0 * unif();
    }
    for (int k = 0; k < NROUTES; k++)
        rcum[k] /= rw;
    static const char *const devices[] = {"mobile", "desktop", "tablet"};
    static const double dcum[] = {0.55, 0.95, 1.0}, dslow[] = {1.4, 1.0, 1.15};
    static const char *const browsers[] = {"Chrome", "Safari", "Firefox", "Edge"};
    static const double bcum[] = {0.64, 0.84, 0.93, 1.0};
    static const int bmajor[] = {131, 18, 133, 131};
    static const char *const ects[] = {"4g", "3g", "2g", "slow-2g"};
    static const double ecum[] = {0.85, 0.95, 0.99, 1.0}, eslow[] = {1.0, 1.8, 3.0, 5.0};

    int64_t span = days * 86400000LL, t_start = vp_mono_us();
    int64_t *times = malloc((size_t)n * sizeof *times);
    if (!times)
        return 1;
    for (long i = 0; i < n; i++) {
        /* Day/night cycle by rejection: accept with probability (1 + 0.6 sin) / 1.6. */
        int64_t at;
        for (;;) {
            at = now - 1 - (int64_t)(unif() * (double)span);
            double hour = (double)(at % 86400000) / 3600000.0;
            if (unif() * 1.6 < 1.0 + 0.6 * sin((hour - 8.0) / 24.0 * 2.0 * M_PI))
                break;
        }
        times[i] = at;
    }
    qsort(times, (size_t)n, sizeof *times, cmp_i64);
    for (long i = 0; i < n; i++) {
        int64_t at = times[i];
        int rk = pick(rcum, NROUTES), dk = pick(dcum, 3), bk = pick(bcum, 4), ek = pick(ecum, 4);
        char id[24], route[64], url[96];
        uint64_t idv = rnd();
        if (snprintf(id, sizeof id, "%016llx", (unsigned long long)idv) != 16)
            return 1;
        route_name(rk, route, sizeof route);
        const char *ph = strstr(route, "[id]");
        int w = ph ? snprintf(url, sizeof url, "%.*s%llu", (int)(ph - route), route,
                              (unsigned long long)(rnd() % 100000))
                   : snprintf(url, sizeof url, "%s", route);
        if (w < 0 || (size_t)w >= sizeof url)
            return 1;
        sqlite3_bind_text(iv, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(iv, 2, at);
        sqlite3_bind_int64(iv, 3, at + 2000);
        sqlite3_bind_text(iv, 4, url, -1, SQLITE_STATIC);
        sqlite3_bind_text(iv, 5, url, -1, SQLITE_STATIC);
        sqlite3_bind_text(iv, 6, route, -1, SQLITE_STATIC);
        sqlite3_bind_text(iv, 7, unif() < 0.9 ? "navigate" : "reload", -1, SQLITE_STATIC);
        sqlite3_bind_text(iv, 8, devices[dk], -1, SQLITE_STATIC);
        sqlite3_bind_text(iv, 9, ects[ek], -1, SQLITE_STATIC);
        sqlite3_bind_text(iv, 10, browsers[bk], -1, SQLITE_STATIC);
        sqlite3_bind_int(iv, 11, bmajor[bk]);
        const char *label = unif() < 0.08 ? "canary" : NULL;
        if (label)
            sqlite3_bind_text(iv, 12, label, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(iv, 12);
        if (sqlite3_step(iv) != SQLITE_DONE) {
            fprintf(stderr, "gen_db: %s\n", sqlite3_errmsg(db));
            return 1;
        }
        sqlite3_reset(iv);
        sqlite3_clear_bindings(iv);
        int64_t seq = sqlite3_last_insert_rowid(db); /* the view's key in metrics (schema 6) */
        if (add_request(iq, id, at * 1000 - 150000, 40000 + (int64_t)(unif() * 200000), 200, true,
                        "GET", url, route, "text/html; charset=utf-8", label))
            return 1;
        if (unif() < 0.3) {
            char api[48];
            if (snprintf(api, sizeof api, "/api/items/%u", (unsigned)(rnd() % 1000)) < 0)
                return 1;
            if (add_request(iq, id, at * 1000 + 400000, (int64_t)lognormal(30000, 0.8),
                            unif() < 0.05 ? 500 : 200, false, "GET", api, "/api/items/[id]",
                            "application/json", label))
                return 1;
        }

        double slow = dslow[dk] * eslow[ek];
        double ttfb = round_to(lognormal(speed[rk] * 0.18 * slow, 0.6), 0.1);
        double fcp = round_to(ttfb + lognormal(speed[rk] * 0.45 * slow, 0.45), 0.1);
        double lcp = round_to(fcp + lognormal(speed[rk] * 0.35 * slow, 0.7), 0.1);
        double inp = round_to(lognormal(120.0 * dslow[dk], 0.8), 8.0);
        double cls = unif() < 0.45 ? 0 : round_to(-log(1.0 - unif()) * 0.09, 0.0001);
        if (inp < 8)
            inp = 8;
        struct {
            const char *name;
            double v;
        } ms[6] = {{"TTFB", ttfb}, {"FCP", fcp}, {"LCP", lcp}, {"INP", inp}, {"CLS", cls}};
        int nm = 5;
        if (unif() < 0.03) {
            ms[5].name = "LCP";
            ms[5].v = round_to(fcp + (lcp - fcp) * unif(), 0.1);
            nm = 6;
        }
        for (int k = 0; k < nm; k++) {
            char mid[48], attr[96];
            if (snprintf(mid, sizeof mid, "%s-%s%s", id, ms[k].name, k == 5 ? "-1" : "") < 0)
                return 1;
            sqlite3_bind_int64(im, 1, seq);
            sqlite3_bind_text(im, 2, ms[k].name, -1, SQLITE_STATIC);
            sqlite3_bind_text(im, 3, mid, -1, SQLITE_TRANSIENT);
            sqlite3_bind_double(im, 4, ms[k].v);
            sqlite3_bind_double(im, 5, ms[k].v);
            if (strcmp(ms[k].name, "LCP") == 0) {
                w = snprintf(attr, sizeof attr,
                             "{\"target\":\"main>img.hero\",\"url\":\"/img/%d.jpg\"}", rk);
                if (w < 0 || (size_t)w >= sizeof attr)
                    return 1;
                sqlite3_bind_text(im, 6, attr, -1, SQLITE_TRANSIENT);
            } else {
                sqlite3_bind_null(im, 6);
            }
            sqlite3_bind_int64(im, 7, at + 5000);
            if (sqlite3_step(im) != SQLITE_DONE) {
                fprintf(stderr, "gen_db: %s\n", sqlite3_errmsg(db));
                return 1;
            }
            sqlite3_reset(im);
        }
    }
    sqlite3_finalize(iv);
    sqlite3_finalize(im);
    sqlite3_finalize(iq);
    free(times);
    /* The rows went in behind the writer's back, possibly below a watermark its first rollup
     * step already moved to the present: rebuild every hour from the start. The requests' time
     * marks are the writer's too. */
    if (store_schema_mark_requests(db, NULL) != SQLITE_OK ||
        sqlite3_exec(db,
                     "DELETE FROM rollup; DELETE FROM rollup_dirty; UPDATE meta SET value = '0' "
                     "WHERE key = '" ROLLUP_META_KEY "'; COMMIT; PRAGMA optimize;",
                     NULL, NULL, NULL) != SQLITE_OK) {
        fprintf(stderr, "gen_db: %s\n", sqlite3_errmsg(db));
        return 1;
    }
    sqlite3_close(db);
    printf("gen_db: %ld views over %ld days in %.1f s -> %s\n", n, days,
           (double)(vp_mono_us() - t_start) / 1e6, path);
    return build_rollups(path);
}
