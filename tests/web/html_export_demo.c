/* Writes the shareable HTML export of a hostile fixture view (XSS payloads in the URL,
 * attribution targets, label and resource URLs; 200 resources; proxy timings) to argv[1], and
 * of a route report to argv[2], for tests/web/test_html_export.py to open in headless Chromium
 * with JavaScript disabled. */
#include "config.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>

#include "web/html_export.h"

#define XSS "<img src=x onerror=\"document.title='PWNED'\">"

static json_t *fixture(void)
{
    json_t *res = json_array();
    for (int i = 0; i < 200; i++) {
        double s = 10 + i * 4;
        char url[128];
        snprintf(url, sizeof url, i % 50 == 0 ? "/static/c%d.js?q=" XSS : "/static/c%d.js", i);
        json_array_append_new(
            res, json_pack("{s:i,s:s,s:s,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:i,s:s}",
                           "idx", i, "url", url, "initiator", "script", "start_ms", s,
                           "duration_ms", 40.0, "dns_start", s + 1, "dns_end", s + 3,
                           "connect_start", s + 3, "secure_start", s + 5, "connect_end", s + 8,
                           "request_start", s + 9, "response_start", s + 25, "response_end",
                           s + 40, "fetch_start", s + 1, "transfer_size", 1200, "render_blocking",
                           i < 3 ? "blocking" : "non-blocking"));
    }
    json_t *v = json_pack(
        "{s:s,s:s,s:f,s:s,s:s,s:s,s:s,s:{s:f,s:f,s:f,s:f,s:f},"
        "s:{s:{s:s,s:s},s:{s:s}},s:{s:s,s:f,s:f,s:f,s:f,s:f,s:f,s:f},s:o,"
        "s:[{s:s,s:s,s:i,s:f,s:f,s:f,s:f,s:i}]}",
        "id", "view0001", "started_at", "2026-11-24T10:00:00.000Z", "started_at_ms",
        1795514400000.0, "url", "/?q=" XSS, "route", "/", "navigation_type", "navigate", "label",
        "\"><script>document.title='PWNED2'</script>", "metrics", "LCP", 2100.0, "CLS", 0.05,
        "INP", 120.0, "FCP", 900.0, "TTFB", 200.0, "attribution", "LCP", "target", XSS, "url",
        "/hero.jpg", "INP", "target", "<svg onload=alert(1)>", "navigation", "url", "/",
        "start_ms", 0.0, "duration_ms", 900.0, "request_start", 5.0, "response_start", 200.0,
        "response_end", 260.0, "dcl_start", 700.0, "load_start", 1000.0, "resources", res,
        "requests", "method", "GET", "url", "/?q=" XSS, "status", 200, "head_done_us",
        1795514400002000.0, "sent_us", 1795514400002500.0, "first_byte_us",
        1795514400150000.0, "last_byte_us", 1795514400255000.0, "bytes_out", 30000);
    return v;
}

static int write_file(const char *path, struct evbuffer *b)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return 1;
    size_t n = evbuffer_get_length(b);
    int bad = fwrite(evbuffer_pullup(b, -1), 1, n, f) != n;
    return fclose(f) != 0 || bad;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    json_t *v = fixture();
    struct evbuffer *b = evbuffer_new();
    if (!v || !b || html_export_view(b, v) != 0 || write_file(argv[1], b))
        return 1;
    evbuffer_drain(b, evbuffer_get_length(b));
    json_t *rs = json_loads("{\"route\":\"/p/<b>bold</b>\",\"views\":3,\"metrics\":{\"LCP\":{"
                            "\"n\":3,\"p50\":1000,\"p75\":2600,\"p95\":5000,\"p99\":5000,"
                            "\"good\":0.34,\"ni\":0.33,\"poor\":0.33}}}",
                            0, NULL);
    json_t *views = json_pack("[O]", v);
    if (!rs || !views || html_export_route(b, rs, views, "<i>run</i>") != 0 ||
        write_file(argv[2], b))
        return 1;
    evbuffer_free(b);
    json_decref(views);
    json_decref(rs);
    json_decref(v);
    return 0;
}
