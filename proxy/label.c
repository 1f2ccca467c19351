/* The current run label (see label.h). One global buffer under a mutex; set and get copy the
 * bytes inside the lock, so no caller ever holds a pointer into the buffer. */
#include "config.h"

#include "proxy/label.h"

#include <event2/buffer.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/vp_err.h"
#include "web/web.h"

#define LABEL_BODY_MAX 1024

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char current[LABEL_MAX + 1];

bool label_valid(const char *s)
{
    size_t n = 0;
    for (; s && s[n]; n++) {
        char c = s[n];
        if (n >= LABEL_MAX ||
            !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return n >= 1;
}

int label_set(const char *name)
{
    if (name && *name && !label_valid(name))
        return VP_ERR_INVALID;
    size_t n = name ? strlen(name) : 0;
    pthread_mutex_lock(&lock);
    memcpy(current, name ? name : "", n);
    current[n] = '\0';
    pthread_mutex_unlock(&lock);
    return 0;
}

bool label_get(char *out, size_t cap)
{
    if (cap == 0)
        return false;
    pthread_mutex_lock(&lock);
    size_t n = strlen(current);
    bool ok = n > 0 && n < cap;
    memcpy(out, current, ok ? n + 1 : 1);
    if (!ok)
        out[0] = '\0';
    pthread_mutex_unlock(&lock);
    return ok;
}

static int reply(struct web_reply *r, int status, json_t *j)
{
    r->status = status;
    r->content_type = "application/json";
    r->content_disposition[0] = '\0';
    evbuffer_drain(r->body, evbuffer_get_length(r->body));
    char *t = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!t)
        return VP_ERR_NOMEM;
    int rc = evbuffer_add(r->body, t, strlen(t)) == 0 ? 0 : VP_ERR_NOMEM;
    free(t);
    return rc;
}

static int reply_error(struct web_reply *r, int status, const char *msg)
{
    return reply(r, status, json_pack("{s:s}", "error", msg));
}

int label_handle_post(const char *body, size_t len, struct web_reply *r)
{
    if (len > LABEL_BODY_MAX)
        return reply_error(r, 413, "body too large (at most 1 KiB)");
    json_error_t jerr;
    json_t *j = body ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    const json_t *v = json_object_get(j, "label");
    if (!json_is_object(j) || !v || json_object_size(j) != 1 ||
        !(json_is_string(v) || json_is_null(v))) {
        json_decref(j);
        return reply_error(r, 400, "expected {\"label\":\"name\"} or {\"label\":null}");
    }
    const char *name = json_string_value(v); /* NULL for null */
    if (name && (json_string_length(v) != strlen(name) || !label_valid(name))) {
        json_decref(j);
        return reply_error(r, 400, "label: expected 1 to 64 characters of A-Z a-z 0-9 . _ -");
    }
    char prev[LABEL_MAX + 1];
    bool had = label_get(prev, sizeof prev);
    int rc = label_set(name);
    json_t *out = rc ? NULL
                     : json_pack("{s:s?,s:b,s:s?}", "label", name, "switchable", 1, "previous",
                                 had ? prev : NULL);
    json_decref(j);
    if (rc)
        return reply_error(r, 400, "label: not valid");
    return reply(r, 200, out);
}

int label_cb_get(void *arg, char *out, size_t cap)
{
    (void)arg;
    if (cap < LABEL_MAX + 1)
        return VP_ERR_LIMIT;
    label_get(out, cap); /* "" when there is none */
    return 0;
}

int label_cb_set(void *arg, const char *name)
{
    (void)arg;
    return label_set(name);
}
