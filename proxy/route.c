/* Reserved paths (design.md, "Reserved paths"): /__vitals/healthz answers "ok"; the rest of the
 * namespace answers 404 JSON until a handler exists for it. The prefix test is done on the
 * raw path, before any decoding, so "/__vitals/x" never reaches the app whatever follows. */
#include "config.h"
#include "proxy/route.h"

#include "proxy/conn_h1.h"

#include <string.h>

bool route_is_reserved(const char *target)
{
    size_t n = strlen("/__vitals");
    if (strncmp(target, "/__vitals", n) != 0)
        return false;
    char next = target[n];
    return next == '\0' || next == '/' || next == '?' || next == '#';
}

static bool path_is(const char *target, const char *path)
{
    size_t n = strlen(path);
    return strncmp(target, path, n) == 0 && (target[n] == '\0' || target[n] == '?');
}

void route_handle(struct conn *c, const char *method, const char *target, struct evbuffer *body)
{
    (void)body;
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (path_is(target, "/__vitals/healthz")) {
        if (!get) {
            static const char m[] = "{\"error\":\"method not allowed\"}\n";
            conn_reply(c, 405, "Method Not Allowed", "application/json", "Allow: GET, HEAD\r\n",
                       m, sizeof m - 1);
            return;
        }
        conn_reply(c, 200, "OK", "text/plain; charset=utf-8", "Cache-Control: no-store\r\n",
                   "ok", 2);
        return;
    }
    static const char nf[] = "{\"error\":\"not found\"}\n";
    conn_reply(c, 404, "Not Found", "application/json", "Cache-Control: no-store\r\n", nf,
               sizeof nf - 1);
}
