/* JSON API handlers (placeholder until the report lands). */
#include "config.h"
#include "web/web.h"
#include "common/vp_err.h"
#include <event2/buffer.h>

int web_api_handle(struct store_reader *r, const char *method, const char *rest, const char *query,
                   struct web_reply *reply)
{
    (void)r; (void)method; (void)rest; (void)query;
    reply->status = 404;
    reply->content_type = "application/json";
    reply->content_disposition[0] = '\0';
    return evbuffer_add_printf(reply->body, "{\"error\":\"not found\"}") < 0 ? VP_ERR_NOMEM : 0;
}
