/* A test double of store/query.h serving fixed JSON fixtures, so the API routing and the CLI can
 * be tested without a store (the real-database tests live in test_report_db.c). A "database" is
 * any regular file whose first line is "FAKE-VITALS"; "NEWER" opens as VP_ERR_VERSION, anything
 * else as VP_ERR_DB. Fixture routes carry hostile strings on purpose. */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/vp_err.h"
#include "store/query.h"
#include "store/query_report.h"
#include "tests/unit/fake_query.h"

struct store_reader {
    int dummy;
};

struct fake_query_log fake_query_log;

int store_reader_open(struct store_reader **out, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open");
        return VP_ERR_IO;
    }
    char line[32] = "";
    if (!fgets(line, sizeof line, f))
        line[0] = '\0';
    fclose(f);
    if (strncmp(line, "NEWER", 5) == 0)
        return VP_ERR_VERSION;
    if (strncmp(line, "FAKE-VITALS", 11) != 0) {
        snprintf(err, errlen, "file is not a database");
        return VP_ERR_DB;
    }
    struct store_reader *r = calloc(1, sizeof *r);
    if (!r)
        return VP_ERR_NOMEM;
    *out = r;
    return 0;
}

void store_reader_free(struct store_reader *r)
{
    free(r);
}

static int load(const char *text, json_t **out)
{
    json_error_t e;
    *out = json_loads(text, 0, &e);
    if (!*out) {
        fprintf(stderr, "fixture: %s\n", e.text);
        return VP_ERR_INVALID;
    }
    return 0;
}

static void remember(const struct query_filter *f)
{
    fake_query_log.calls++;
    fake_query_log.since_ms = f->since_ms;
    fake_query_log.limit = f->limit;
    snprintf(fake_query_log.route, sizeof fake_query_log.route, "%s", f->route ? f->route : "");
}

int query_summary(struct store_reader *r, const struct query_filter *f, json_t **out)
{
    (void)r;
    remember(f);
    if (f->label && strcmp(f->label, "empty") == 0)
        return load("{\"routes\":[]}", out);
    return load(
        "{\"routes\":["
        "{\"route\":\"/\",\"views\":12,\"metrics\":{"
        "\"LCP\":{\"n\":12,\"p50\":1200,\"p75\":2100,\"p95\":3900,\"p99\":4100,\"good\":0.8,"
        "\"ni\":0.1,\"poor\":0.1},"
        "\"CLS\":{\"n\":12,\"p50\":0.01,\"p75\":0.05,\"p95\":0.2,\"p99\":0.3,\"good\":0.9,"
        "\"ni\":0.05,\"poor\":0.05}}},"
        "{\"route\":\"/checkout/\\u001b[31mred\\u001b[0m/and/a/very/long/tail\",\"views\":3,"
        "\"metrics\":{\"LCP\":{\"n\":3,\"p50\":4000,\"p75\":5000,\"p95\":6000,\"p99\":6100,"
        "\"good\":0,\"ni\":0.34,\"poor\":0.66},\"INP\":{\"n\":3,\"p50\":150,\"p75\":300,"
        "\"p95\":700,\"p99\":800,\"good\":0.34,\"ni\":0.33,\"poor\":0.33}}}]}",
        out);
}

static const char view_one[] =
    "{\"id\":\"view0001\",\"started_at\":\"2026-11-24T10:00:00.000Z\","
    "\"url\":\"/?q=<img src=x onerror=alert(1)>\",\"route\":\"/\",\"navigation_type\":\"navigate\","
    "\"metrics\":{\"LCP\":2100,\"CLS\":0.05,\"INP\":120},"
    "\"attribution\":{\"LCP\":{\"target\":\"img.hero\"},\"INP\":{\"target\":\"button#buy\"}},"
    "\"navigation\":{\"u\":\"/\",\"s\":0,\"d\":900,\"ls\":800},"
    "\"resources\":[{\"u\":\"/app.js\",\"i\":\"script\",\"s\":50,\"d\":100,\"ts\":150000},"
    "{\"u\":\"/late.js\",\"i\":\"script\",\"s\":850,\"d\":10,\"ts\":999999}],\"requests\":[]}";
static const char view_two[] =
    "{\"id\":\"view0002\",\"started_at\":\"2026-11-24T09:00:00.000Z\",\"url\":\"/\","
    "\"route\":\"/\",\"navigation_type\":\"reload\",\"metrics\":{\"LCP\":1900},"
    "\"attribution\":{\"LCP\":{\"target\":\"img.hero\"}},"
    "\"navigation\":{\"u\":\"/\",\"s\":0,\"d\":700,\"ls\":600},"
    "\"resources\":[{\"u\":\"/app.js\",\"i\":\"script\",\"s\":50,\"d\":100,\"ts\":260000}],"
    "\"requests\":[]}";

int query_views(struct store_reader *r, const struct query_filter *f, json_t **out)
{
    (void)r;
    remember(f);
    json_t *a, *b;
    if (load(view_one, &a))
        return VP_ERR_INVALID;
    if (load(view_two, &b)) {
        json_decref(a);
        return VP_ERR_INVALID;
    }
    json_object_del(a, "resources");
    json_object_del(b, "resources");
    *out = json_pack("{s:[o,o]}", "views", a, b);
    return *out ? 0 : VP_ERR_NOMEM;
}

int query_view(struct store_reader *r, const char *id, json_t **out)
{
    (void)r;
    if (strcmp(id, "view0001") == 0)
        return load(view_one, out);
    if (strcmp(id, "view0002") == 0)
        return load(view_two, out);
    if (strcmp(id, "dbfailure") == 0)
        return VP_ERR_DB;
    return VP_ERR_NOTFOUND;
}

int query_view_har(struct store_reader *r, const char *id, json_t **out)
{
    (void)r;
    if (strcmp(id, "view0001") != 0 && strcmp(id, "view0002") != 0)
        return VP_ERR_NOTFOUND;
    return load("{\"log\":{\"version\":\"1.2\",\"creator\":{\"name\":\"vitals-proxy\","
                "\"version\":\"0\"},\"pages\":[],\"entries\":[]}}",
                out);
}

int query_last_view_id(struct store_reader *r, char *out, size_t cap)
{
    (void)r;
    return snprintf(out, cap, "view0001") < (int)cap ? 0 : VP_ERR_LIMIT;
}

int query_api_latency(struct store_reader *r, const struct query_filter *f, const char *prefix,
                      json_t **out)
{
    (void)r;
    remember(f);
    snprintf(fake_query_log.prefix, sizeof fake_query_log.prefix, "%s", prefix);
    return load("{\"routes\":[{\"route\":\"/api/items\",\"method\":\"GET\",\"n\":40,\"p50\":80,"
                "\"p95\":650,\"p99\":2500,\"errors\":2}]}",
                out);
}

int query_health(struct store_reader *r, json_t **out)
{
    (void)r;
    return load("{\"beacons_accepted\":10,\"beacons_rejected\":1,\"rejections\":{\"too large\":1},"
                "\"views\":2,\"requests\":5,\"oldest\":null,\"newest\":null,\"db_bytes\":4096}",
                out);
}

int query_initial_js(struct store_reader *r, const struct query_filter *f, double over_bytes,
                     json_t **out)
{
    (void)r;
    (void)over_bytes;
    remember(f);
    return load("{\"routes\":[{\"route\":\"/\",\"n\":2,\"p50\":150000,\"p75\":260000,"
                "\"p95\":260000,\"p99\":260000,\"max\":260000}],"
                "\"over\":[{\"id\":\"view0002\",\"route\":\"/\",\"bytes\":260000}]}",
                out);
}

int query_targets(struct store_reader *r, const struct query_filter *f, int top, json_t **out)
{
    (void)r;
    remember(f);
    fake_query_log.limit = top;
    return load("{\"samples\":3,\"LCP\":[{\"target\":\"img.hero\",\"count\":2,\"p75\":2100}],"
                "\"CLS\":[],\"INP\":[{\"target\":\"button#buy\",\"count\":1,\"p75\":120}]}",
                out);
}

int query_findings(struct store_reader *r, const struct query_filter *f, const char *api_prefix,
                   json_t **out)
{
    (void)r;
    remember(f);
    snprintf(fake_query_log.prefix, sizeof fake_query_log.prefix, "%s", api_prefix);
    return load("{\"findings\":[{\"type\":\"large-json\",\"title\":\"JSON response over 1 MiB\","
                "\"evidence\":\"/api/big (up to 2000000 bytes)\",\"count\":3}]}",
                out);
}

int query_samples(struct store_reader *r, const struct query_filter *f, const char *api_prefix,
                  json_t **out)
{
    (void)r;
    (void)api_prefix;
    remember(f);
    /* side "slow" has LCP 3000..3099, any other side 1000..1099 (50 views each) */
    bool slow = f->label && strcmp(f->label, "slow") == 0;
    json_t *lcp = json_array();
    for (int i = 0; lcp && i < 50; i++)
        json_array_append_new(lcp, json_real((slow ? 3000 : 1000) + i * 2));
    *out = json_pack("{s:[{s:s,s:o}],s:[]}", "routes", "route", "/", "LCP", lcp, "api");
    return *out ? 0 : VP_ERR_NOMEM;
}

int query_labels(struct store_reader *r, json_t **out)
{
    (void)r;
    return load("{\"labels\":[{\"label\":\"lazy\",\"views\":50,\"first\":\"2026-11-24T10:00:00.000Z\","
                "\"last\":\"2026-11-24T11:00:00.000Z\"}]}",
                out);
}
