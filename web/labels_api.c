/* GET /__vitals/api/labels (see labels_api.h). Takes no parameters (a query string is
 * ignored, as the token travels there); the body is jansson's compact encoding. */
#include "config.h"

#include "web/labels_api.h"

#include <event2/buffer.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/vp_err.h"
#include "store/labels.h"
#include "web/web.h"

static int reply_json(struct web_reply *reply, int status, json_t *j)
{
    reply->status = status;
    reply->content_type = "application/json";
    reply->content_disposition[0] = '\0';
    evbuffer_drain(reply->body, evbuffer_get_length(reply->body));
    char *t = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!t)
        return VP_ERR_NOMEM;
    int rc = evbuffer_add(reply->body, t, strlen(t)) == 0 ? 0 : VP_ERR_NOMEM;
    free(t);
    return rc;
}

static int reply_error(struct web_reply *reply, int status, const char *msg)
{
    return reply_json(reply, status, json_pack("{s:s}", "error", msg));
}

int web_labels_handle(struct store_reader *r, const char *method, const char *rest,
                      struct web_reply *reply, bool *handled)
{
    if (!rest || strcmp(rest, "labels") != 0) {
        *handled = false;
        return 0;
    }
    *handled = true;
    if (!method || (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0))
        return reply_error(reply, 405, "method not allowed: use GET");
    if (!r)
        return reply_error(reply, 503, "database unavailable");
    json_t *j = NULL;
    int rc = labels_list(r, &j);
    if (rc == VP_ERR_NOMEM)
        return reply_error(reply, 500, "out of memory");
    if (rc)
        return reply_error(reply, 503, "database unavailable");
    return reply_json(reply, 200, j);
}
