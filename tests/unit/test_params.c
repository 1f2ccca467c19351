/* web/params: percent-decoding, query strings, durations, ISO-8601 instants and filters.
 * Named cases; each check states the input it exercises. */
#include "config.h"

#include "web/params.h"

#include <string.h>

#include "common/vp_err.h"
#include "tap.h"

static void pct_decode(void)
{
    char out[64];
    TAP_OK(web_pct_decode("a%20b+c", 7, out, sizeof out, true) == 5 && strcmp(out, "a b c") == 0,
           "pct/plus_and_escape");
    TAP_OK(web_pct_decode("a+b", 3, out, sizeof out, false) == 3 && strcmp(out, "a+b") == 0,
           "pct/plus_literal_in_path");
    TAP_OK(web_pct_decode("%2F%2f", 6, out, sizeof out, true) == 2 && strcmp(out, "//") == 0,
           "pct/hex_case");
    TAP_OK(web_pct_decode("%", 1, out, sizeof out, true) == VP_ERR_INVALID, "pct/lone_percent");
    TAP_OK(web_pct_decode("%4", 2, out, sizeof out, true) == VP_ERR_INVALID, "pct/short_escape");
    TAP_OK(web_pct_decode("%zz", 3, out, sizeof out, true) == VP_ERR_INVALID, "pct/bad_hex");
    TAP_OK(web_pct_decode("a%00b", 5, out, sizeof out, true) == VP_ERR_INVALID, "pct/nul");
    TAP_OK(web_pct_decode("a%0Ab", 5, out, sizeof out, true) == VP_ERR_INVALID, "pct/newline");
    TAP_OK(web_pct_decode("abcd", 4, out, 4, true) == VP_ERR_LIMIT, "pct/out_too_small");
    TAP_OK(web_pct_decode("abc", 3, out, 4, true) == 3, "pct/exact_fit");
    TAP_OK(web_pct_decode("%C3%A9", 6, out, sizeof out, true) == 2 &&
               (unsigned char)out[0] == 0xC3,
           "pct/utf8_bytes");
}

static void query(void)
{
    struct web_params p;
    char err[128] = "";
    TAP_OK(web_params_parse(&p, NULL, err, sizeof err) == 0 && p.n == 0, "qs/null");
    web_params_dispose(&p);
    TAP_OK(web_params_parse(&p, "route=%2Fproducts%2F%5Bid%5D&since=24h&flag&&x=", err,
                            sizeof err) == 0,
           "qs/basic");
    TAP_OK(p.n == 4, "qs/basic_count (%zu)", p.n);
    TAP_OK(web_params_get(&p, "route") && strcmp(web_params_get(&p, "route"), "/products/[id]") == 0,
           "qs/basic_route_decoded");
    TAP_OK(web_params_get(&p, "flag") && strcmp(web_params_get(&p, "flag"), "") == 0,
           "qs/flag_without_value");
    TAP_OK(web_params_get(&p, "nope") == NULL, "qs/absent");
    web_params_dispose(&p);
    web_params_dispose(&p); /* idempotent */

    TAP_OK(web_params_parse(&p, "a=1&a=2", err, sizeof err) == VP_ERR_INVALID &&
               strstr(err, "more than once"),
           "qs/duplicate (%s)", err);
    web_params_dispose(&p);
    TAP_OK(web_params_parse(&p, "=1", err, sizeof err) == VP_ERR_INVALID, "qs/empty_name");
    web_params_dispose(&p);
    TAP_OK(web_params_parse(&p, "route=%ZZ", err, sizeof err) == VP_ERR_INVALID &&
               strstr(err, "route"),
           "qs/bad_escape_names_param (%s)", err);
    web_params_dispose(&p);

    char big[WEB_PARAMS_QUERY_MAX + 8];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    TAP_OK(web_params_parse(&p, big, err, sizeof err) == VP_ERR_LIMIT, "qs/too_long");
    web_params_dispose(&p);

    char many[512] = "";
    size_t o = 0;
    for (int i = 0; i <= WEB_PARAMS_MAX; i++)
        o += (size_t)snprintf(many + o, sizeof many - o, "%sk%d=1", i ? "&" : "", i);
    TAP_OK(web_params_parse(&p, many, err, sizeof err) == VP_ERR_LIMIT, "qs/too_many");
    web_params_dispose(&p);

    char longv[WEB_PARAMS_VALUE_MAX + 16] = "v=";
    memset(longv + 2, 'x', WEB_PARAMS_VALUE_MAX + 1);
    longv[WEB_PARAMS_VALUE_MAX + 3] = '\0';
    TAP_OK(web_params_parse(&p, longv, err, sizeof err) == VP_ERR_LIMIT, "qs/value_too_long");
    web_params_dispose(&p);
}

static void durations(void)
{
    int64_t ms = 0;
    TAP_OK(web_parse_duration("15m", &ms) == 0 && ms == 900000, "dur/15m");
    TAP_OK(web_parse_duration("24h", &ms) == 0 && ms == 86400000, "dur/24h");
    TAP_OK(web_parse_duration("7d", &ms) == 0 && ms == 604800000, "dur/7d");
    TAP_OK(web_parse_duration("30s", &ms) == 0 && ms == 30000, "dur/30s");
    TAP_OK(web_parse_duration("2w", &ms) == 0 && ms == 1209600000, "dur/2w");
    TAP_OK(web_parse_duration("0h", &ms) == VP_ERR_INVALID, "dur/zero");
    TAP_OK(web_parse_duration("h", &ms) == VP_ERR_INVALID, "dur/no_number");
    TAP_OK(web_parse_duration("5", &ms) == VP_ERR_INVALID, "dur/no_unit");
    TAP_OK(web_parse_duration("5hh", &ms) == VP_ERR_INVALID, "dur/trailing");
    TAP_OK(web_parse_duration("-5h", &ms) == VP_ERR_INVALID, "dur/negative");
    TAP_OK(web_parse_duration("99999999999d", &ms) == VP_ERR_INVALID, "dur/overflow");
    TAP_OK(web_parse_duration("3661d", &ms) == VP_ERR_INVALID, "dur/over_ten_years");
    TAP_OK(web_parse_duration("5 h", &ms) == VP_ERR_INVALID, "dur/space");
}

static void iso(void)
{
    int64_t ms = 0;
    TAP_OK(web_parse_iso8601("1970-01-01T00:00:00Z", &ms) == 0 && ms == 0, "iso/epoch");
    TAP_OK(web_parse_iso8601("2026-11-24T10:00:00.000Z", &ms) == 0 && ms == INT64_C(1795514400000),
           "iso/full (%lld)", (long long)ms);
    TAP_OK(web_parse_iso8601("2026-11-24", &ms) == 0 && ms == INT64_C(1795478400000),
           "iso/date_only");
    TAP_OK(web_parse_iso8601("2026-11-24T11:00+01:00", &ms) == 0 && ms == INT64_C(1795514400000),
           "iso/offset");
    TAP_OK(web_parse_iso8601("2026-11-24T10:00:00.5Z", &ms) == 0 && ms == INT64_C(1795514400500),
           "iso/fraction_short");
    TAP_OK(web_parse_iso8601("2024-02-29", &ms) == 0, "iso/leap_day");
    TAP_OK(web_parse_iso8601("2026-02-29", &ms) == VP_ERR_INVALID, "iso/not_leap");
    TAP_OK(web_parse_iso8601("2026-13-01", &ms) == VP_ERR_INVALID, "iso/month");
    TAP_OK(web_parse_iso8601("2026-11-24T24:00", &ms) == VP_ERR_INVALID, "iso/hour");
    TAP_OK(web_parse_iso8601("2026-11-24T10:00Zjunk", &ms) == VP_ERR_INVALID, "iso/trailing");
    TAP_OK(web_parse_iso8601("26-11-24", &ms) == VP_ERR_INVALID, "iso/short_year");
    TAP_OK(web_parse_iso8601("", &ms) == VP_ERR_INVALID, "iso/empty");
    char buf[32];
    TAP_OK(web_format_iso8601(INT64_C(1795514400123), buf, sizeof buf) == 0 &&
               strcmp(buf, "2026-11-24T10:00:00.123Z") == 0,
           "iso/format (%s)", buf);
    TAP_OK(web_format_iso8601(0, buf, 10) == VP_ERR_LIMIT, "iso/format_small");
    TAP_OK(web_format_iso8601(INT64_C(951782400000), buf, sizeof buf) == 0 &&
               strcmp(buf, "2000-02-29T00:00:00.000Z") == 0,
           "iso/format_leap (%s)", buf);
    int64_t now = INT64_C(1795514400000);
    TAP_OK(web_parse_time("1h", now, &ms) == 0 && ms == now - 3600000, "time/duration");
    TAP_OK(web_parse_time("2026-11-24", now, &ms) == 0 && ms == INT64_C(1795478400000),
           "time/iso");
    TAP_OK(web_parse_time("yesterday", now, &ms) == VP_ERR_INVALID, "time/bad");
}

static int filter_of(const char *q, struct query_filter *f, char *err, size_t errlen)
{
    struct web_params p;
    int rc = web_params_parse(&p, q, err, errlen);
    if (rc == 0)
        rc = web_filter_from_params(&p, INT64_C(1795514400000), f, err, errlen);
    web_params_dispose(&p);
    return rc;
}

static void filters(void)
{
    struct query_filter f;
    char err[160] = "";
    struct web_params p;
    TAP_OK(web_params_parse(&p, "since=7d&route=%2Fa&device=mobile&browser=Chrome&ect=4g"
                                "&label=base&limit=20&token=secret",
                            err, sizeof err) == 0 &&
               web_filter_from_params(&p, INT64_C(1795514400000), &f, err, sizeof err) == 0,
           "filter/all (%s)", err);
    TAP_OK(f.since_ms == INT64_C(1795514400000) - 7 * INT64_C(86400000) && f.limit == 20 &&
               strcmp(f.route, "/a") == 0 && strcmp(f.device, "mobile") == 0 &&
               strcmp(f.browser, "Chrome") == 0 && strcmp(f.ect, "4g") == 0 &&
               strcmp(f.label, "base") == 0,
           "filter/all_values");
    web_params_dispose(&p);
    TAP_OK(filter_of("", &f, err, sizeof err) == 0 && !f.route && f.since_ms == 0 && f.limit == 0,
           "filter/empty");
    TAP_OK(filter_of("since=soon", &f, err, sizeof err) == VP_ERR_INVALID &&
               strncmp(err, "since:", 6) == 0,
           "filter/bad_since (%s)", err);
    TAP_OK(filter_of("since=1h&until=2h", &f, err, sizeof err) == VP_ERR_INVALID &&
               strncmp(err, "until:", 6) == 0,
           "filter/until_before_since");
    TAP_OK(filter_of("route=products", &f, err, sizeof err) == VP_ERR_INVALID, "filter/route_rel");
    TAP_OK(filter_of("device=phone", &f, err, sizeof err) == VP_ERR_INVALID, "filter/device");
    TAP_OK(filter_of("ect=5g", &f, err, sizeof err) == VP_ERR_INVALID, "filter/ect");
    TAP_OK(filter_of("limit=0", &f, err, sizeof err) == VP_ERR_INVALID, "filter/limit_zero");
    TAP_OK(filter_of("limit=1001", &f, err, sizeof err) == VP_ERR_INVALID, "filter/limit_big");
    TAP_OK(filter_of("limit=99999999999999999999", &f, err, sizeof err) == VP_ERR_INVALID,
           "filter/limit_overflow");
    TAP_OK(filter_of("limit=1000", &f, err, sizeof err) == 0 && f.limit == 1000,
           "filter/limit_max");
    TAP_OK(filter_of("limit=-1", &f, err, sizeof err) == VP_ERR_INVALID, "filter/limit_neg");
    TAP_OK(filter_of("label=%09tab", &f, err, sizeof err) == VP_ERR_INVALID, "filter/label_ctl");
}

int main(void)
{
    pct_decode();
    query();
    durations();
    iso();
    filters();
    TAP_DONE();
}
