/* The run label (issue 8, proxy/label): name validation, set/get/clear, the JSON-body POST
 * handler (validation, size limit, reply), the web_api_config callbacks behind
 * GET/POST /__vitals/api/label?name=X (through web_api_handle itself), and four threads
 * switching and reading the label concurrently: a reader only ever sees one whole label. */
#include "config.h"

#include "proxy/label.h"

#include <event2/buffer.h>
#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/vp_err.h"
#include "tap.h"
#include "web/web.h"

static struct evbuffer *body;
static struct web_reply reply;

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
    TAP_OK(label_valid("baseline") && label_valid("lazy-hero_v2.1") && label_valid("A") &&
               label_valid(s65 + 1),
           "label/valid");
    TAP_OK(!label_valid("") && !label_valid(NULL) && !label_valid("a b") &&
               !label_valid("<script>") && !label_valid("a/b") && !label_valid("caf\xc3\xa9") &&
               !label_valid(s65),
           "label/invalid");
}

/* GET/POST api/label through web_api_handle with the callbacks configured (no database needed:
 * the label is proxy state). */
static int api(const char *method, const char *query)
{
    evbuffer_drain(body, evbuffer_get_length(body));
    memset(&reply, 0, sizeof reply);
    reply.body = body;
    if (web_api_handle(NULL, method, "label", query, &reply) != 0)
        return -1;
    return reply.status;
}

static void test_api(void)
{
    struct web_api_config wc = {.label_get = label_cb_get, .label_set = label_cb_set};
    web_api_configure(&wc);
    char buf[LABEL_MAX + 1];
    TAP_OK(api("POST", "name=run-7") == 200 && label_get(buf, sizeof buf) &&
               strcmp(buf, "run-7") == 0,
           "label_api/post_name_switches");
    json_t *j = reply_json();
    TAP_OK(j && strcmp(json_string_value(json_object_get(j, "label")), "run-7") == 0 &&
               json_is_true(json_object_get(j, "switchable")),
           "label_api/post_reply");
    json_decref(j);
    TAP_OK(api("GET", NULL) == 200, "label_api/get_200");
    j = reply_json();
    TAP_OK(j && strcmp(json_string_value(json_object_get(j, "label")), "run-7") == 0,
           "label_api/get_current");
    json_decref(j);
    TAP_OK(api("POST", "name=a%20b") == 400 && label_get(buf, sizeof buf) &&
               strcmp(buf, "run-7") == 0,
           "label_api/invalid_name_400_keeps_label");
    j = reply_json();
    const char *e = j ? json_string_value(json_object_get(j, "error")) : NULL;
    TAP_OK(e && strstr(e, "name: expected 1 to 64 characters of A-Z a-z 0-9 . _ -"),
           "label_api/invalid_name_reason: %s", e ? e : "(none)");
    json_decref(j);
    TAP_OK(api("POST", "name=") == 200 && !label_get(buf, sizeof buf), "label_api/empty_clears");
    j = reply_json();
    TAP_OK(j && json_is_null(json_object_get(j, "label")), "label_api/cleared_reply_null");
    json_decref(j);
    TAP_OK(label_cb_get(NULL, buf, 8) == VP_ERR_LIMIT, "label_api/cb_small_buffer");
    web_api_configure(NULL);
}

int main(void)
{
    body = evbuffer_new();
    test_valid();
    test_label();
    test_api();
    evbuffer_free(body);
    TAP_DONE();
}
