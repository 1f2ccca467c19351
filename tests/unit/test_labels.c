/* Run labels (issue 8): store/labels (name validation, the labels list from a real database
 * filled through the store), web/labels_api (GET /__vitals/api/labels: statuses, paths that are
 * not its own left alone) and proxy/label (POST body validation, set/get/clear, and four
 * threads switching and reading the label concurrently: a reader only ever sees one whole
 * label). */
#include "config.h"

#include "web/labels_api.h"

#include <event2/buffer.h>
#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/vp_err.h"
#include "proxy/label.h"
#include "store/labels.h"
#include "store/query.h"
#include "store/store.h"
#include "store/store_internal.h"
#include "tap.h"
#include "web/web.h"

#define T0 1764000000000LL

static struct evbuffer *body;
static struct web_reply reply;

static int call(struct store_reader *r, const char *method, const char *rest, bool *handled)
{
    evbuffer_drain(body, evbuffer_get_length(body));
    memset(&reply, 0, sizeof reply);
    reply.body = body;
    return web_labels_handle(r, method, rest, &reply, handled);
}

static json_t *reply_json(void)
{
    size_t n = evbuffer_get_length(body);
    return json_loadb((const char *)evbuffer_pullup(body, -1), n, 0, NULL);
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

static void test_valid(void)
{
    char s65[70];
    memset(s65, 'a', 65);
    s65[65] = '\0';
    TAP_OK(labels_valid("baseline") && labels_valid("lazy-hero_v2.1") && labels_valid("A") &&
               labels_valid(s65 + 1),
           "labels/valid");
    TAP_OK(!labels_valid("") && !labels_valid(NULL) && !labels_valid("a b") &&
               !labels_valid("<script>") && !labels_valid("a/b") && !labels_valid("caf\xc3\xa9") &&
               !labels_valid(s65),
           "labels/invalid");
}

int main(void)
{
    body = evbuffer_new();
    test_valid();
    test_label();

    char dir[] = "/tmp/vp_test_labels.XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char path[160], err[256], b[1024];
    snprintf(path, sizeof path, "%s/a.db", dir);
    struct store_options opt;
    store_options_default(&opt);
    opt.retention_days = 0;
    struct store *s = NULL;
    if (store_open(&s, path, &opt, err, sizeof err) != 0) {
        TAP_OK(0, "labels/open: %s", err);
        TAP_DONE();
    }
    int rc = 0;
    /* "before": 3 views at T0+0..2 s and 2 requests; "after": 2 views an hour later; one view
     * without a label; "api-only": requests only. */
    const struct {
        const char *label;
        int64_t t;
    } v[] = {{"before", T0}, {"before", T0 + 1000}, {"before", T0 + 2000},
             {"after", T0 + 3600000}, {"after", T0 + 3601000}, {NULL, T0 + 500}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        int w = snprintf(b, sizeof b,
                         "{\"v\":1,\"vid\":\"view%06zu\",\"url\":\"/p\",\"t0\":%lld,"
                         "\"m\":[{\"n\":\"LCP\",\"id\":\"l\",\"v\":1000}]}",
                         i, (long long)v[i].t);
        struct store_beacon_ctx ctx = {"127.0.0.1", "Chrome/131.0", v[i].t + 10, v[i].label, 1.0};
        char reason[96];
        rc |= store_ingest_beacon(s, b, (size_t)w, &ctx, reason, sizeof reason);
    }
    const struct {
        const char *label;
        int64_t t;
    } q[] = {{"before", T0 - 5000}, {"before", T0 + 2500}, {"api-only", T0 + 9000}};
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
        struct store_request_rec rec = {0};
        rec.accept_us = q[i].t * 1000;
        rec.last_byte_us = rec.accept_us + 5000;
        rec.status = 200;
        rec.method = "GET";
        rec.url = "/api/x";
        rec.label = q[i].label;
        rc |= store_record_request(s, &rec);
    }
    TAP_OK(rc == 0 && store_sync(s) == 0, "labels/data");
    store_free(s);
    struct store_reader *r = NULL;
    if (store_reader_open(&r, path, err, sizeof err) != 0) {
        TAP_OK(0, "labels/reader: %s", err);
        TAP_DONE();
    }
    json_t *j = NULL;
    TAP_OK(labels_list(r, &j) == 0, "labels/list_rc");
    const json_t *l = json_object_get(j, "labels");
    const json_t *l0 = json_array_get(l, 0), *l1 = json_array_get(l, 1), *l2 = json_array_get(l, 2);
    TAP_OK(json_array_size(l) == 3 && l0 && l1 && l2 &&
               strcmp(json_string_value(json_object_get(l0, "label")), "before") == 0 &&
               strcmp(json_string_value(json_object_get(l1, "label")), "api-only") == 0 &&
               strcmp(json_string_value(json_object_get(l2, "label")), "after") == 0,
           "labels/ordered_by_first_appearance");
    TAP_OK(l0 && json_integer_value(json_object_get(l0, "views")) == 3 &&
               json_integer_value(json_object_get(l0, "requests")) == 2 &&
               json_integer_value(json_object_get(l0, "first_ms")) == T0 - 5000 &&
               json_integer_value(json_object_get(l0, "last_ms")) == T0 + 2500 &&
               strcmp(json_string_value(json_object_get(l0, "first")),
                      "2025-11-24T15:59:55.000Z") == 0,
           "labels/span_and_counts");
    TAP_OK(l1 && json_integer_value(json_object_get(l1, "views")) == 0 &&
               json_integer_value(json_object_get(l1, "requests")) == 1 && l2 &&
               json_integer_value(json_object_get(l2, "views")) == 2,
           "labels/requests_only_label_listed");
    json_decref(j);

    bool h = true;
    TAP_OK(call(r, "GET", "summary", &h) == 0 && !h && evbuffer_get_length(body) == 0,
           "labels_api/not_ours_untouched");
    TAP_OK(call(r, "GET", "labels", &h) == 0 && h && reply.status == 200 &&
               strcmp(reply.content_type, "application/json") == 0,
           "labels_api/200");
    j = reply_json();
    TAP_OK(json_array_size(json_object_get(j, "labels")) == 3, "labels_api/body");
    json_decref(j);
    TAP_OK(call(r, "POST", "labels", &h) == 0 && h && reply.status == 405,
           "labels_api/method_405");
    TAP_OK(call(NULL, "GET", "labels", &h) == 0 && h && reply.status == 503,
           "labels_api/no_db_503");
    store_reader_free(r);
    evbuffer_free(body);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        TAP_OK(0, "cleanup");
    TAP_DONE();
}
