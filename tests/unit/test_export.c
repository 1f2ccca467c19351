/* web/export: CSV escaping (RFC 4180 quoting, formula neutralisation) and the fixed column
 * sets of the summary / views / view / API exports, fed with hand-built JSON. */
#include "config.h"

#include "web/export.h"

#include <event2/buffer.h>
#include <string.h>

#include "tap.h"

static char text[8192];

/* The buffer's bytes as a NUL-terminated string (drains it). */
static const char *take(struct evbuffer *b)
{
    size_t n = evbuffer_get_length(b);
    if (n >= sizeof text)
        n = sizeof text - 1;
    evbuffer_remove(b, text, n);
    text[n] = '\0';
    evbuffer_drain(b, evbuffer_get_length(b));
    return text;
}

static const char *field(struct evbuffer *b, const char *s)
{
    if (export_csv_field(b, s, strlen(s)) != 0)
        return "<error>";
    return take(b);
}

int main(void)
{
    struct evbuffer *b = evbuffer_new();
    TAP_OK(strcmp(field(b, "plain"), "plain") == 0, "csv/plain");
    TAP_OK(strcmp(field(b, ""), "") == 0, "csv/empty");
    TAP_OK(strcmp(field(b, "a,b"), "\"a,b\"") == 0, "csv/comma");
    TAP_OK(strcmp(field(b, "say \"hi\""), "\"say \"\"hi\"\"\"") == 0, "csv/quotes (%s)", text);
    TAP_OK(strcmp(field(b, "line1\nline2"), "\"line1\nline2\"") == 0, "csv/newline");
    TAP_OK(strcmp(field(b, "a\r\nb"), "\"a\r\nb\"") == 0, "csv/crlf");
    TAP_OK(strcmp(field(b, "=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"") == 0,
           "csv/formula_eq (%s)", text);
    TAP_OK(strcmp(field(b, "+1"), "\"'+1\"") == 0, "csv/formula_plus");
    TAP_OK(strcmp(field(b, "-2+3"), "\"'-2+3\"") == 0, "csv/formula_minus");
    TAP_OK(strcmp(field(b, "@SUM(A1)"), "\"'@SUM(A1)\"") == 0, "csv/formula_at");
    TAP_OK(strcmp(field(b, "\tx"), "\"'\tx\"") == 0, "csv/formula_tab");
    TAP_OK(strcmp(field(b, "a=b"), "a=b") == 0, "csv/eq_inside_ok");
    TAP_OK(strcmp(field(b, " lead"), "\" lead\"") == 0, "csv/leading_space");
    TAP_OK(export_csv_field(b, "a\0b", 3) == 0 && evbuffer_get_length(b) == 3, "csv/embedded_nul_len");
    take(b);

    json_t *v = json_real(-12.5);
    TAP_OK(export_csv_value(b, v) == 0 && strcmp(take(b), "-12.5") == 0,
           "csv/negative_number_not_neutralised");
    json_decref(v);
    v = json_integer(1234);
    TAP_OK(export_csv_value(b, v) == 0 && strcmp(take(b), "1234") == 0, "csv/integer");
    json_decref(v);
    TAP_OK(export_csv_value(b, NULL) == 0 && strcmp(take(b), "") == 0, "csv/absent");
    v = json_pack("{s:s}", "k", "v,");
    TAP_OK(export_csv_value(b, v) == 0 && strcmp(take(b), "\"{\"\"k\"\":\"\"v,\"\"}\"") == 0,
           "csv/object_as_json (%s)", text);
    json_decref(v);

    json_t *sum = json_loads(
        "{\"routes\":[{\"route\":\"=cmd|' /C calc'!A0\",\"views\":3,\"metrics\":{"
        "\"LCP\":{\"n\":3,\"p50\":1000,\"p75\":1500.5,\"p95\":2000,\"p99\":2100,\"good\":1,"
        "\"ni\":0,\"poor\":0},\"CLS\":{\"n\":2,\"p50\":0.01,\"p75\":0.02,\"p95\":0.1,\"p99\":0.1,"
        "\"good\":1,\"ni\":0,\"poor\":0}}}]}",
        0, NULL);
    TAP_OK(export_summary_csv(b, sum) == 0, "summary_csv/ok");
    take(b);
    TAP_OK(strcmp(text, "route,views,metric,n,p50,p75,p95,p99,good,ni,poor\r\n"
                        "\"'=cmd|' /C calc'!A0\",3,LCP,3,1000,1500.5,2000,2100,1,0,0\r\n"
                        "\"'=cmd|' /C calc'!A0\",3,CLS,2,0.01,0.02,0.1,0.1,1,0,0\r\n") == 0,
           "summary_csv/rows (%s)", text);
    json_decref(sum);
    json_t *bad = json_object();
    TAP_OK(export_summary_csv(b, bad) != 0, "summary_csv/bad_shape");
    TAP_OK(export_views_csv(b, bad) != 0, "views_csv/bad_shape");
    json_decref(bad);
    take(b);

    json_t *views = json_loads(
        "{\"views\":[{\"id\":\"abcdefgh\",\"started_at\":\"2026-11-24T10:00:00.000Z\","
        "\"url\":\"/p?q=<script>\",\"route\":\"/p\",\"navigation_type\":\"navigate\","
        "\"device\":\"mobile\",\"metrics\":{\"LCP\":1234.5,\"CLS\":0.02}}]}",
        0, NULL);
    TAP_OK(export_views_csv(b, views) == 0, "views_csv/ok");
    take(b);
    TAP_OK(strcmp(text, "id,started_at,url,route,navigation_type,device,browser,ect,label,"
                        "LCP,CLS,INP,FCP,TTFB\r\n"
                        "abcdefgh,2026-11-24T10:00:00.000Z,/p?q=<script>,/p,navigate,mobile,,,,"
                        "1234.5,0.02,,,\r\n") == 0,
           "views_csv/rows (%s)", text);
    json_decref(views);

    json_t *view = json_loads(
        "{\"navigation\":{\"u\":\"/\",\"i\":\"navigation\",\"s\":0,\"d\":900},"
        "\"resources\":[{\"url\":\"/a.js\",\"initiator\":\"script\",\"start_ms\":10,"
        "\"duration_ms\":20,\"transfer_size\":300,\"render_blocking\":\"blocking\"}]}",
        0, NULL);
    TAP_OK(export_view_csv(b, view) == 0, "view_csv/ok");
    take(b);
    TAP_OK(strcmp(text, "index,url,initiator,start_ms,duration_ms,transfer_size,encoded_size,"
                        "decoded_size,protocol,render_blocking,status\r\n"
                        "-1,/,navigation,0,900,,,,,,\r\n"
                        "0,/a.js,script,10,20,300,,,,blocking,\r\n") == 0,
           "view_csv/rows (%s)", text);
    json_decref(view);

    json_t *api = json_loads("{\"routes\":[{\"route\":\"/api/x\",\"method\":\"GET\",\"n\":5,"
                             "\"p50\":10,\"p95\":20,\"p99\":30,\"errors\":1}]}",
                             0, NULL);
    TAP_OK(export_api_csv(b, api) == 0 &&
               strcmp(take(b), "route,method,n,p50,p95,p99,errors\r\n/api/x,GET,5,10,20,30,1\r\n") ==
                   0,
           "api_csv/rows (%s)", text);
    TAP_OK(export_json(b, api) == 0 && strcmp(take(b), "{\"routes\":[{\"route\":\"/api/x\","
                                                       "\"method\":\"GET\",\"n\":5,\"p50\":10,"
                                                       "\"p95\":20,\"p99\":30,\"errors\":1}]}") == 0,
           "json/compact (%s)", text);
    json_decref(api);
    evbuffer_free(b);
    TAP_DONE();
}
