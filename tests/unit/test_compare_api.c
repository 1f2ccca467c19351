/* web/compare_api against a real temporary database (compare, labels, export.html: statuses,
 * validation of every parameter, the download header, paths that are not ours left alone) and
 * proxy/label (POST body validation, set/get/clear, and four threads switching and reading the
 * label concurrently: a reader only ever sees one whole label). */
#include "config.h"

#include "web/compare_api.h"

#include <event2/buffer.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/vp_err.h"
#include "proxy/label.h"
#include "store/query.h"
#include "store/store.h"
#include "store/store_internal.h"
#include "tap.h"
#include "web/web.h"

#define T0 1764000000000LL

static struct evbuffer *body;
static struct web_reply reply;

static int call(struct store_reader *r, const char *method, const char *rest, const char *query,
                bool *handled)
{
    evbuffer_drain(body, evbuffer_get_length(body));
    memset(&reply, 0, sizeof reply);
    reply.body = body;
    return web_compare_handle(r, method, rest, query, &reply, handled);
}

static json_t *reply_json(void)
{
    size_t n = evbuffer_get_length(body);
    return json_loadb((const char *)evbuffer_pullup(body, -1), n, 0, NULL);
}

static const char *text(void)
{
    evbuffer_add(body, "", 1);
    return (const char *)evbuffer_pullup(body, -1);
}

static int status_of(struct store_reader *r, const char *rest, const char *query)
{
    bool h = false;
    if (call(r, "GET", rest, query, &h) != 0 || !h)
        return -1;
    return reply.status;
}

static const char *const names[] = {"alpha", "bravo-2", "charlie.3", "delta_four_is_longer"};
static volatile int stop;
static int torn;

static void *setter(void *arg)
{
    int k = (int)(intptr_t)arg;
    for (int i = 0; i < 20000; i++)
        if (label_set(names[(i + k) % 4]) != 0)
            torn++;
    return NULL;
}

static void *getter(void *arg)
{
    (void)arg;
    char buf[LABEL_MAX + 1];
    while (!stop) {
        if (!label_get(buf, sizeof buf))
            continue;
        bool known = false;
        for (int i = 0; i < 4; i++)
            known |= strcmp(buf, names[i]) == 0;
        if (!known)
            __atomic_add_fetch(&torn, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static int post(const char *b)
{
    evbuffer_drain(body, evbuffer_get_length(body));
    memset(&reply, 0, sizeof reply);
    reply.body = body;
    if (label_handle_post(b, b ? strlen(b) : 0, &reply) != 0)
        return -1;
    return reply.status;
}

static void test_label(void)
{
    char buf[LABEL_MAX + 1];
    TAP_OK(!label_get(buf, sizeof buf) && buf[0] == '\0', "label/none_initially");
    TAP_OK(label_set("baseline") == 0 && label_get(buf, sizeof buf) &&
               strcmp(buf, "baseline") == 0,
           "label/set_get");
    TAP_OK(label_set("bad label") == VP_ERR_INVALID && label_get(buf, sizeof buf) &&
               strcmp(buf, "baseline") == 0,
           "label/invalid_keeps_current");
    TAP_OK(!label_get(buf, 4), "label/small_buffer_refused");
    TAP_OK(post("{\"label\":\"lazy-hero\"}") == 200 && label_get(buf, sizeof buf) &&
               strcmp(buf, "lazy-hero") == 0,
           "label/post_switches");
    json_t *j = reply_json();
    TAP_OK(j && strcmp(json_string_value(json_object_get(j, "previous")), "baseline") == 0,
           "label/post_reply_previous");
    json_decref(j);
    TAP_OK(post("{\"label\":\"<script>\"}") == 400 && post("{\"label\":\"\"}") == 400 &&
               post("{\"label\":42}") == 400 && post("[\"x\"]") == 400 && post("not json") == 400 &&
               post(NULL) == 400 && post("{\"label\":\"a\",\"x\":1}") == 400 &&
               post("{\"label\":\"a\",\"label\":\"b\"}") == 400 &&
               post("{\"label\":\"a\\u0000b\"}") == 400,
           "label/post_refusals");
    char big[2000];
    memset(big, ' ', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    TAP_OK(post(big) == 413, "label/post_too_large");
    char long_label[100];
    snprintf(long_label, sizeof long_label, "{\"label\":\"%065d\"}", 0);
    TAP_OK(post(long_label) == 400 && label_get(buf, sizeof buf) && strcmp(buf, "lazy-hero") == 0,
           "label/post_65_chars_refused");
    TAP_OK(post("{\"label\":null}") == 200 && !label_get(buf, sizeof buf), "label/post_clear");
    pthread_t t[4];
    stop = 0;
    torn = 0;
    pthread_create(&t[0], NULL, setter, (void *)0);
    pthread_create(&t[1], NULL, setter, (void *)1);
    pthread_create(&t[2], NULL, getter, NULL);
    pthread_create(&t[3], NULL, getter, NULL);
    pthread_join(t[0], NULL);
    pthread_join(t[1], NULL);
    stop = 1;
    pthread_join(t[2], NULL);
    pthread_join(t[3], NULL);
    TAP_OK(torn == 0, "label/concurrent_reads_whole (%d torn)", torn);
    TAP_OK(label_set(NULL) == 0, "label/clear");
}

int main(void)
{
    body = evbuffer_new();
    test_label();

    char dir[] = "/tmp/vp_test_compare_api.XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char path[160], err[256], b[1024];
    snprintf(path, sizeof path, "%s/a.db", dir);
    struct store_options opt;
    store_options_default(&opt);
    opt.retention_days = 0;
    struct store *s = NULL;
    if (store_open(&s, path, &opt, err, sizeof err) != 0) {
        TAP_OK(0, "compare_api/open: %s", err);
        TAP_DONE();
    }
    int rc = 0;
    for (int i = 0; i < 40; i++) {
        for (int side = 0; side < 2; side++) {
            const char *label = side ? "after" : "before";
            int w = snprintf(b, sizeof b,
                             "{\"v\":1,\"vid\":\"%s%06d\",\"url\":\"/p\",\"t0\":%lld,"
                             "\"m\":[{\"n\":\"LCP\",\"id\":\"l\",\"v\":%d}],"
                             "\"nt\":{\"u\":\"/p\",\"s\":0,\"d\":300,\"rqs\":2,\"rps\":50,"
                             "\"rpe\":90}}",
                             label, i, (long long)(T0 + side * 3600000 + i * 1000),
                             1000 + i * 10 + side * 2000);
            struct store_beacon_ctx ctx = {"127.0.0.1", "Chrome/131.0", T0 + side * 3600000 + i,
                                           label, 1.0};
            char reason[96];
            rc |= store_ingest_beacon(s, b, (size_t)w, &ctx, reason, sizeof reason);
        }
    }
    TAP_OK(rc == 0 && store_sync(s) == 0, "compare_api/data");
    store_free(s);
    struct store_reader *r = NULL;
    if (store_reader_open(&r, path, err, sizeof err) != 0) {
        TAP_OK(0, "compare_api/reader: %s", err);
        TAP_DONE();
    }
    bool h = true;
    TAP_OK(call(r, "GET", "summary", NULL, &h) == 0 && !h && evbuffer_get_length(body) == 0,
           "compare_api/not_ours_untouched");
    TAP_OK(status_of(r, "compare", "a=before&b=after") == 200, "compare_api/compare_200");
    json_t *j = reply_json();
    const json_t *m = json_array_get(
        json_object_get(json_array_get(json_object_get(j, "routes"), 0), "metrics"), 0);
    TAP_OK(m && strcmp(json_string_value(json_object_get(m, "verdict")), "worse") == 0 &&
               strcmp(reply.content_type, "application/json") == 0,
           "compare_api/compare_verdict");
    json_decref(j);
    TAP_OK(status_of(r, "compare", "a=2025-11-24T16:00..17:00&b=-1h..now&route=%2Fp") == 200,
           "compare_api/compare_ranges_route");
    TAP_OK(status_of(r, "compare", "a=before") == 400 &&
               status_of(r, "compare", "a=before&b=a%20b") == 400 &&
               strstr(text(), "\"b: ") != NULL &&
               status_of(r, "compare", "a=before&b=after&resamples=0") == 400 &&
               status_of(r, "compare", "a=before&b=after&resamples=10001") == 400 &&
               status_of(r, "compare", "a=before&b=after&seed=x") == 400 &&
               status_of(r, "compare", "a=before&b=after&min_n=1") == 400 &&
               status_of(r, "compare", "a=before&b=after&route=p") == 400 &&
               status_of(r, "compare", "a=before&a=after") == 400 &&
               status_of(r, "compare", "a=%zz&b=x") == 400,
           "compare_api/compare_refusals");
    TAP_OK(status_of(r, "labels", NULL) == 200, "compare_api/labels_200");
    j = reply_json();
    TAP_OK(json_array_size(json_object_get(j, "labels")) == 2 &&
               json_integer_value(json_object_get(json_array_get(json_object_get(j, "labels"), 1),
                                                  "views")) == 40,
           "compare_api/labels_content");
    json_decref(j);
    TAP_OK(status_of(r, "export.html", "view=before000003") == 200 &&
               strcmp(reply.content_type, "text/html; charset=utf-8") == 0 &&
               strcmp(reply.content_disposition,
                      "attachment; filename=\"vitals-view-before000003.html\"") == 0 &&
               strncmp(text(), "<!DOCTYPE html>", 15) == 0 && strstr(text(), "<svg"),
           "compare_api/export_view");
    TAP_OK(status_of(r, "export.html", "route=%2Fp&label=after") == 200 &&
               strstr(text(), "after000039") && !strstr(text(), "before0000"),
           "compare_api/export_route_label");
    TAP_OK(status_of(r, "export.html", "view=nosuchview") == 404 &&
               status_of(r, "export.html", "view=x%22%3E") == 400 &&
               status_of(r, "export.html", "") == 400 &&
               status_of(r, "export.html", "view=before000003&route=%2Fp") == 400 &&
               status_of(r, "export.html", "route=%2Fp&label=%3Cb%3E") == 400 &&
               status_of(r, "export.html", "route=%2Fnone") == 404,
           "compare_api/export_refusals");
    TAP_OK(call(r, "POST", "compare", "a=x&b=y", &h) == 0 && h && reply.status == 405,
           "compare_api/method_405");
    TAP_OK(call(NULL, "GET", "labels", NULL, &h) == 0 && h && reply.status == 503,
           "compare_api/no_db_503");
    store_reader_free(r);
    evbuffer_free(body);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        TAP_OK(0, "cleanup");
    TAP_DONE();
}
