/* libFuzzer target for the hostile inputs of issue 8. The first byte picks the target:
 *   0: compare_parse_side (web/compare.h) on the rest as a C string: failure is VP_ERR_INVALID
 *      with a non-empty reason NUL-terminated inside the buffer (it may echo control bytes of
 *      the input: the CLI's fail() and the JSON encoder neutralise them);
 *   1: html_export_view (web/html_export.h) on the rest parsed as JSON: no crash, and the
 *      document never contains a raw "<script", "<img" or "<iframe" (every string of the input
 *      is escaped; the renderer itself emits none of these);
 *   2: label_handle_post (proxy/label.h) on the rest: a 200/400/413 reply, and after a 200 the
 *      current label is valid (label_valid). */
#include "config.h"

#include <event2/buffer.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/vp_err.h"
#include "proxy/label.h"
#include "store/query.h"
#include "web/compare.h"
#include "web/html_export.h"
#include "web/web.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int has_ci(const char *p, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (strncasecmp(p + i, needle, k) == 0)
            return 1;
    return 0;
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
        struct query_filter f;
        memset(&f, 0, sizeof f);
        char err[256] = "";
        int rc = compare_parse_side(s, 1795562344000LL, &f, err, sizeof err);
        if (rc != 0) {
            if (rc != VP_ERR_INVALID || !err[0] || strnlen(err, sizeof err) == sizeof err)
                abort();
        }
        break;
    }
    case 1: {
        json_t *j = json_loadb(body, len, 0, NULL);
        if (!j)
            break;
        struct evbuffer *out = evbuffer_new();
        if (out && html_export_view(out, j) == 0) {
            size_t n = evbuffer_get_length(out);
            const char *p = (const char *)evbuffer_pullup(out, -1);
            if (n && (!p || has_ci(p, n, "<script") || has_ci(p, n, "<img") ||
                      has_ci(p, n, "<iframe")))
                abort();
        }
        evbuffer_free(out);
        json_decref(j);
        break;
    }
    default: {
        struct web_reply r = {.body = evbuffer_new()};
        if (r.body && label_handle_post(body, len, &r) == 0) {
            if (r.status != 200 && r.status != 400 && r.status != 413)
                abort();
            char cur[LABEL_MAX + 1];
            if (r.status == 200 && label_get(cur, sizeof cur) && !label_valid(cur))
                abort();
        }
        evbuffer_free(r.body);
        break;
    }
    }
    free(s);
    return 0;
}
