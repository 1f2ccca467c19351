/* libFuzzer target for the compare module's hostile inputs. The first byte picks the target:
 *   0: compare_parse_side on the rest (as a C string): success yields a label that passes
 *      compare_label_valid or a non-empty range; failure leaves a printable one-line reason;
 *   1: export_html_view on the rest parsed as JSON: no crash, and when it succeeds the output
 *      holds no "<script" and no raw '<' from any string of the input (checked by rendering
 *      the same document with every string replaced by "x" and comparing tag counts);
 *   2: label_handle_post on the rest. */
#include "config.h"

#include <event2/buffer.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/vp_err.h"
#include "proxy/label.h"
#include "store/compare.h"
#include "web/export_html.h"
#include "web/web.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t count_lt(struct evbuffer *b)
{
    size_t n = evbuffer_get_length(b), c = 0;
    const char *p = (const char *)evbuffer_pullup(b, -1);
    for (size_t i = 0; p && i < n; i++)
        c += p[i] == '<';
    return c;
}

/* Replaces every string value by "x" (object keys kept; "blocking" kept, since it changes
 * what is drawn). */
static void blank_strings(json_t *j)
{
    const char *k;
    json_t *v;
    size_t i;
    if (json_is_object(j)) {
        json_object_foreach(j, k, v) {
            if (json_is_string(v) && strcmp(json_string_value(v), "blocking") != 0)
                json_string_set(v, "x");
            else
                blank_strings(v);
        }
    } else if (json_is_array(j)) {
        json_array_foreach(j, i, v) {
            if (json_is_string(v) && strcmp(json_string_value(v), "blocking") != 0)
                json_string_set(v, "x");
            else
                blank_strings(v);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    char *s = malloc(len + 1);
    if (!s)
        return 0;
    memcpy(s, body, len);
    s[len] = '\0';
    switch (data[0] % 3) {
    case 0: {
        struct compare_side side;
        char err[256];
        int rc = compare_parse_side(s, 1795562344000LL, &side, err, sizeof err);
        if (rc == 0) {
            if (side.kind == COMPARE_BY_LABEL ? !compare_label_valid(side.label)
                                              : side.from_ms >= side.to_ms)
                abort();
        } else {
            if (rc != VP_ERR_INVALID || !err[0])
                abort();
            for (const char *p = err; *p; p++)
                if ((unsigned char)*p < 0x20)
                    abort();
        }
        break;
    }
    case 1: {
        json_t *j = json_loadb(body, len, 0, NULL);
        if (!j)
            break;
        struct evbuffer *a = evbuffer_new(), *b = evbuffer_new();
        if (a && b && export_html_view(a, j) == 0) {
            const char *p = (const char *)evbuffer_pullup(a, -1);
            size_t n = evbuffer_get_length(a);
            if (!p || memmem(p, n, "<script", 7))
                abort();
            /* the same document shape with inert strings has exactly as many '<' */
            blank_strings(j);
            if (export_html_view(b, j) == 0 && count_lt(a) != count_lt(b))
                abort();
        }
        evbuffer_free(a);
        evbuffer_free(b);
        json_decref(j);
        break;
    }
    default: {
        struct web_reply r = {.body = evbuffer_new()};
        if (r.body && label_handle_post(body, len, &r) == 0) {
            if (r.status != 200 && r.status != 400 && r.status != 413)
                abort();
            if (r.status == 200) {
                char cur[LABEL_MAX + 1];
                if (label_get(cur, sizeof cur) && !compare_label_valid(cur))
                    abort();
            }
        }
        evbuffer_free(r.body);
        break;
    }
    }
    free(s);
    return 0;
}
