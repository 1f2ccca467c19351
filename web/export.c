/* CSV / JSON export (see export.h).
 *
 * Every string from the database came from a browser and is treated as hostile: each goes
 * through export_csv_field, which is the only place that writes text into CSV. The column sets
 * are fixed here so that scripts can rely on them; a missing value is an empty field. */
#include "config.h"

#include "web/export.h"

#include <event2/buffer.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/vp_err.h"

static int add(struct evbuffer *out, const char *s, size_t n)
{
    return evbuffer_add(out, s, n) == 0 ? 0 : VP_ERR_NOMEM;
}

static int adds(struct evbuffer *out, const char *s)
{
    return add(out, s, strlen(s));
}

int export_csv_field(struct evbuffer *out, const char *s, size_t len)
{
    bool neutral = len > 0 && strchr("=+-@\t\r", s[0]) != NULL;
    bool quote = neutral || (len > 0 && (s[0] == ' ' || s[len - 1] == ' '));
    for (size_t i = 0; i < len && !quote; i++)
        if (s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r' || s[i] == ';')
            quote = true;
    if (!quote)
        return add(out, s, len);
    int rc = adds(out, neutral ? "\"'" : "\"");
    size_t from = 0;
    for (size_t i = 0; rc == 0 && i < len; i++) {
        if (s[i] == '"') {
            rc = add(out, s + from, i + 1 - from); /* includes this quote ... */
            if (rc == 0)
                rc = add(out, "\"", 1); /* ... and doubles it */
            from = i + 1;
        }
    }
    if (rc == 0)
        rc = add(out, s + from, len - from);
    return rc ? rc : add(out, "\"", 1);
}

static int number(struct evbuffer *out, double d)
{
    char b[40];
    if (!isfinite(d))
        return 0;
    int n;
    if (d == floor(d) && fabs(d) < 1e15)
        n = snprintf(b, sizeof b, "%.0f", d);
    else
        n = snprintf(b, sizeof b, "%.6g", d);
    if (n < 0 || (size_t)n >= sizeof b)
        return VP_ERR_INVALID;
    return add(out, b, (size_t)n);
}

int export_csv_value(struct evbuffer *out, const json_t *v)
{
    if (!v || json_is_null(v))
        return 0;
    if (json_is_string(v))
        return export_csv_field(out, json_string_value(v), json_string_length(v));
    if (json_is_number(v))
        return number(out, json_number_value(v));
    if (json_is_true(v))
        return adds(out, "true");
    if (json_is_false(v))
        return adds(out, "false");
    char *s = json_dumps(v, JSON_COMPACT);
    if (!s)
        return VP_ERR_NOMEM;
    int rc = export_csv_field(out, s, strlen(s));
    free(s);
    return rc;
}

static int row(struct evbuffer *out, const json_t *obj, const char *const *keys)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && keys[i]; i++) {
        if (i)
            rc = adds(out, ",");
        if (rc == 0)
            rc = export_csv_value(out, json_object_get(obj, keys[i]));
    }
    return rc ? rc : adds(out, "\r\n");
}

static const char *const metric_names[] = {"LCP", "CLS", "INP", "FCP", "TTFB", NULL};

int export_summary_csv(struct evbuffer *out, const json_t *summary)
{
    static const char *const cols[] = {"n", "p50", "p75", "p95", "p99",
                                       "good", "ni", "poor", NULL};
    const json_t *routes = json_object_get(summary, "routes");
    if (!json_is_array(routes))
        return VP_ERR_INVALID;
    int rc = adds(out, "route,views,metric,n,p50,p75,p95,p99,good,ni,poor\r\n");
    size_t i;
    const json_t *r;
    json_array_foreach(routes, i, r) {
        const json_t *metrics = json_object_get(r, "metrics");
        for (size_t m = 0; rc == 0 && metric_names[m]; m++) {
            const json_t *mv = json_object_get(metrics, metric_names[m]);
            if (!json_is_object(mv))
                continue;
            rc = export_csv_value(out, json_object_get(r, "route"));
            if (rc == 0)
                rc = adds(out, ",");
            if (rc == 0)
                rc = export_csv_value(out, json_object_get(r, "views"));
            if (rc == 0)
                rc = adds(out, ",");
            if (rc == 0)
                rc = adds(out, metric_names[m]);
            for (size_t c = 0; rc == 0 && cols[c]; c++) {
                rc = adds(out, ",");
                if (rc == 0)
                    rc = export_csv_value(out, json_object_get(mv, cols[c]));
            }
            if (rc == 0)
                rc = adds(out, "\r\n");
        }
        if (rc)
            return rc;
    }
    return rc;
}

int export_views_csv(struct evbuffer *out, const json_t *views)
{
    static const char *const cols[] = {"id",     "started_at", "url", "route", "navigation_type",
                                       "device", "browser",    "ect", "label", NULL};
    const json_t *list = json_object_get(views, "views");
    if (!json_is_array(list))
        return VP_ERR_INVALID;
    int rc = adds(out, "id,started_at,url,route,navigation_type,device,browser,ect,label,"
                       "LCP,CLS,INP,FCP,TTFB\r\n");
    size_t i;
    const json_t *v;
    json_array_foreach(list, i, v) {
        for (size_t c = 0; rc == 0 && cols[c]; c++) {
            if (c)
                rc = adds(out, ",");
            if (rc == 0)
                rc = export_csv_value(out, json_object_get(v, cols[c]));
        }
        const json_t *metrics = json_object_get(v, "metrics");
        for (size_t m = 0; rc == 0 && metric_names[m]; m++) {
            rc = adds(out, ",");
            if (rc == 0)
                rc = export_csv_value(out, json_object_get(metrics, metric_names[m]));
        }
        if (rc == 0)
            rc = adds(out, "\r\n");
        if (rc)
            return rc;
    }
    return rc;
}

const json_t *export_res_get(const json_t *res, const char *short_key, const char *long_key)
{
    const json_t *v = json_object_get(res, short_key);
    return v ? v : json_object_get(res, long_key);
}

static int resource_row(struct evbuffer *out, long idx, const json_t *res)
{
    static const char *const keys[][2] = {
        {"u", "url"},           {"i", "initiator"},    {"s", "start_ms"},
        {"d", "duration_ms"},   {"ts", "transfer_size"}, {"eb", "encoded_size"},
        {"db", "decoded_size"}, {"p", "protocol"},     {"rb", "render_blocking"},
        {"st", "status"},
    };
    char b[24];
    int n = snprintf(b, sizeof b, "%ld", idx);
    if (n < 0 || (size_t)n >= sizeof b)
        return VP_ERR_INVALID;
    int rc = add(out, b, (size_t)n);
    for (size_t k = 0; rc == 0 && k < sizeof keys / sizeof keys[0]; k++) {
        rc = adds(out, ",");
        if (rc == 0)
            rc = export_csv_value(out, export_res_get(res, keys[k][0], keys[k][1]));
    }
    return rc ? rc : adds(out, "\r\n");
}

int export_view_csv(struct evbuffer *out, const json_t *view)
{
    if (!json_is_object(view))
        return VP_ERR_INVALID;
    int rc = adds(out, "index,url,initiator,start_ms,duration_ms,transfer_size,encoded_size,"
                       "decoded_size,protocol,render_blocking,status\r\n");
    const json_t *nav = json_object_get(view, "navigation");
    if (rc == 0 && json_is_object(nav))
        rc = resource_row(out, -1, nav);
    const json_t *res = json_object_get(view, "resources");
    size_t i;
    const json_t *r;
    json_array_foreach(res, i, r) {
        if (rc == 0)
            rc = resource_row(out, (long)i, r);
    }
    return rc;
}

int export_api_csv(struct evbuffer *out, const json_t *api)
{
    static const char *const cols[] = {"route", "method", "n", "p50", "p95", "p99", "errors",
                                       NULL};
    const json_t *list = json_object_get(api, "routes");
    if (!json_is_array(list))
        return VP_ERR_INVALID;
    int rc = adds(out, "route,method,n,p50,p95,p99,errors\r\n");
    size_t i;
    const json_t *v;
    json_array_foreach(list, i, v) {
        if (rc == 0)
            rc = row(out, v, cols);
    }
    return rc;
}

static int dump_cb(const char *buf, size_t size, void *data)
{
    return evbuffer_add(data, buf, size) == 0 ? 0 : -1;
}

int export_json(struct evbuffer *out, const json_t *j)
{
    size_t flags = JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(10);
    return json_dump_callback(j, dump_cb, out, flags) == 0
               ? 0
               : VP_ERR_NOMEM;
}
