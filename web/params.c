/* Query-string and filter parsing (see params.h).
 *
 * Invariants: a parsed web_params holds at most WEB_PARAMS_MAX entries whose strings all live in
 * one allocation sized from the raw query (decoding never grows a string), so parsing costs one
 * malloc and cannot overflow. Decoded strings never contain bytes below 0x20 or 0x7f, so they
 * are safe to echo in a one-line error and to bind into SQL. Follows the WHATWG
 * application/x-www-form-urlencoded parser, made stricter: a malformed %-escape is an error
 * rather than passed through literally. */
#include "config.h"

#include "web/params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/vp_err.h"

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int web_pct_decode(const char *in, size_t len, char *out, size_t cap, bool plus_space)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)in[i];
        if (c == '%') {
            if (len - i < 3)
                return VP_ERR_INVALID;
            int h = hexval((unsigned char)in[i + 1]), l = hexval((unsigned char)in[i + 2]);
            if (h < 0 || l < 0)
                return VP_ERR_INVALID;
            c = h * 16 + l;
            i += 2;
        } else if (c == '+' && plus_space) {
            c = ' ';
        }
        if (c < 0x20 || c == 0x7f)
            return VP_ERR_INVALID;
        if (o + 1 >= cap)
            return VP_ERR_LIMIT;
        out[o++] = (char)c;
    }
    if (o >= cap)
        return VP_ERR_LIMIT;
    out[o] = '\0';
    return (int)o;
}

static void seterr(char *err, size_t errlen, const char *msg, const char *name)
{
    if (!err || !errlen)
        return;
    int n = name ? snprintf(err, errlen, "%s: %s", name, msg) : snprintf(err, errlen, "%s", msg);
    if (n < 0)
        err[0] = '\0';
}

void web_params_dispose(struct web_params *p)
{
    if (!p)
        return;
    free(p->storage);
    p->storage = NULL;
    p->n = 0;
}

int web_params_parse(struct web_params *p, const char *query, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    if (!query || !*query)
        return 0;
    size_t qlen = strlen(query);
    if (qlen > WEB_PARAMS_QUERY_MAX) {
        seterr(err, errlen, "query string too long", NULL);
        return VP_ERR_LIMIT;
    }
    /* Each decoded name and value is no longer than its raw text, plus a NUL each. */
    p->storage = malloc(qlen + 2 * WEB_PARAMS_MAX + 2);
    if (!p->storage) {
        seterr(err, errlen, "out of memory", NULL);
        return VP_ERR_NOMEM;
    }
    char *w = p->storage;
    const char *s = query, *end = query + qlen;
    while (s < end) {
        const char *amp = memchr(s, '&', (size_t)(end - s));
        const char *pe = amp ? amp : end;
        if (pe == s) { /* empty pair ("a=1&&b=2") is skipped, as WHATWG does */
            s = pe + 1;
            continue;
        }
        if (p->n == WEB_PARAMS_MAX) {
            seterr(err, errlen, "too many parameters", NULL);
            return VP_ERR_LIMIT;
        }
        const char *eq = memchr(s, '=', (size_t)(pe - s));
        const char *ne = eq ? eq : pe;
        const char *vs = eq ? eq + 1 : pe;
        int nl = web_pct_decode(s, (size_t)(ne - s), w, (size_t)(ne - s) + 1, true);
        if (nl <= 0) {
            seterr(err, errlen, nl == 0 ? "empty parameter name" : "malformed parameter name",
                   NULL);
            return VP_ERR_INVALID;
        }
        char *name = w;
        w += nl + 1;
        if ((size_t)(pe - vs) > 3 * WEB_PARAMS_VALUE_MAX) {
            seterr(err, errlen, "value too long", name);
            return VP_ERR_LIMIT;
        }
        int vl = web_pct_decode(vs, (size_t)(pe - vs), w, (size_t)(pe - vs) + 1, true);
        if (vl < 0) {
            seterr(err, errlen, "malformed percent-encoding or control character", name);
            return VP_ERR_INVALID;
        }
        if (vl > WEB_PARAMS_VALUE_MAX) {
            seterr(err, errlen, "value too long", name);
            return VP_ERR_LIMIT;
        }
        for (size_t i = 0; i < p->n; i++) {
            if (strcmp(p->items[i].name, name) == 0) {
                seterr(err, errlen, "given more than once", name);
                return VP_ERR_INVALID;
            }
        }
        p->items[p->n].name = name;
        p->items[p->n].value = w;
        p->n++;
        w += vl + 1;
        s = amp ? amp + 1 : end;
    }
    return 0;
}

const char *web_params_get(const struct web_params *p, const char *name)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->items[i].name, name) == 0)
            return p->items[i].value;
    return NULL;
}

#define MS_PER_DAY INT64_C(86400000)
#define DURATION_MAX_MS (3660 * MS_PER_DAY)

int web_parse_duration(const char *s, int64_t *out_ms)
{
    if (!s || *s < '0' || *s > '9')
        return VP_ERR_INVALID;
    int64_t n = 0;
    const char *c = s;
    while (*c >= '0' && *c <= '9') {
        n = n * 10 + (*c - '0');
        if (n > 100000000)
            return VP_ERR_INVALID;
        c++;
    }
    int64_t unit;
    switch (*c) {
    case 's': unit = 1000; break;
    case 'm': unit = 60000; break;
    case 'h': unit = 3600000; break;
    case 'd': unit = MS_PER_DAY; break;
    case 'w': unit = 7 * MS_PER_DAY; break;
    default: return VP_ERR_INVALID;
    }
    if (c[1] != '\0' || n == 0)
        return VP_ERR_INVALID;
    if (n > DURATION_MAX_MS / unit)
        return VP_ERR_INVALID;
    *out_ms = n * unit;
    return 0;
}

/* Reads exactly n digits. */
static bool digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dm[m - 1];
}

int web_parse_iso8601(const char *s, int64_t *out_ms)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0;
    const char *p = s;
    if (!s || !digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
        !digits(&p, 2, &d))
        return VP_ERR_INVALID;
    if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return VP_ERR_INVALID;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi))
            return VP_ERR_INVALID;
        if (*p == ':') {
            p++;
            if (!digits(&p, 2, &sec))
                return VP_ERR_INVALID;
            if (*p == '.' || *p == ',') {
                p++;
                int nd = 0;
                while (*p >= '0' && *p <= '9') {
                    if (nd < 3)
                        ms = ms * 10 + (*p - '0');
                    nd++;
                    p++;
                }
                if (nd == 0 || nd > 9)
                    return VP_ERR_INVALID;
                for (; nd < 3; nd++)
                    ms *= 10;
            }
        }
        if (h > 23 || mi > 59 || sec > 59)
            return VP_ERR_INVALID;
    }
    int64_t off_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (!digits(&p, 2, &oh))
            return VP_ERR_INVALID;
        if (*p == ':')
            p++;
        if (!digits(&p, 2, &om) || oh > 23 || om > 59)
            return VP_ERR_INVALID;
        off_min = sign * (oh * 60 + om);
    }
    if (*p != '\0')
        return VP_ERR_INVALID;
    int64_t t = days_from_civil(y, (unsigned)mo, (unsigned)d) * MS_PER_DAY +
                ((int64_t)h * 3600 + mi * 60 + sec) * 1000 + ms - off_min * 60000;
    if (t < 0)
        return VP_ERR_INVALID;
    *out_ms = t;
    return 0;
}

int web_parse_time(const char *s, int64_t now_ms, int64_t *out_ms)
{
    int64_t d;
    if (web_parse_duration(s, &d) == 0) {
        *out_ms = now_ms > d ? now_ms - d : 1;
        return 0;
    }
    return web_parse_iso8601(s, out_ms);
}

int web_format_iso8601(int64_t ms, char *out, size_t cap)
{
    if (ms < 0)
        ms = 0;
    int64_t days = ms / MS_PER_DAY, rem = ms % MS_PER_DAY;
    /* civil_from_days (H. Hinnant) */
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned d = doy - (153 * mp + 2) / 5 + 1;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    int n = snprintf(out, cap, "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ", (long long)y, m, d,
                     (int)(rem / 3600000), (int)(rem / 60000 % 60), (int)(rem / 1000 % 60),
                     (int)(rem % 1000));
    return n < 0 || (size_t)n >= cap ? VP_ERR_LIMIT : 0;
}

static bool one_of(const char *v, const char *const *set)
{
    for (; *set; set++)
        if (strcmp(v, *set) == 0)
            return true;
    return false;
}

/* Labels, browsers: printable ASCII, bounded. Routes: must start with '/'. */
static bool printable(const char *v, size_t max)
{
    size_t n = 0;
    for (; v[n]; n++)
        if ((unsigned char)v[n] < 0x20 || v[n] == 0x7f)
            return false;
    return n > 0 && n <= max;
}

int web_filter_from_params(const struct web_params *p, int64_t now_ms, struct query_filter *f,
                           char *err, size_t errlen)
{
    static const char *const devices[] = {"mobile", "tablet", "desktop", NULL};
    static const char *const ects[] = {"slow-2g", "2g", "3g", "4g", NULL};
    memset(f, 0, sizeof *f);
    const char *v;
    if ((v = web_params_get(p, "since")) && *v) {
        if (web_parse_time(v, now_ms, &f->since_ms) != 0) {
            seterr(err, errlen, "expected a duration (15m, 24h, 7d) or an ISO-8601 time",
                   "since");
            return VP_ERR_INVALID;
        }
    }
    if ((v = web_params_get(p, "until")) && *v) {
        if (web_parse_time(v, now_ms, &f->until_ms) != 0) {
            seterr(err, errlen, "expected a duration (15m, 24h, 7d) or an ISO-8601 time",
                   "until");
            return VP_ERR_INVALID;
        }
        if (f->since_ms && f->until_ms <= f->since_ms) {
            seterr(err, errlen, "must be later than since", "until");
            return VP_ERR_INVALID;
        }
    }
    if ((v = web_params_get(p, "route")) && *v) {
        if (v[0] != '/' || !printable(v, 512)) {
            seterr(err, errlen, "expected a path starting with / (at most 512 bytes)", "route");
            return VP_ERR_INVALID;
        }
        f->route = v;
    }
    if ((v = web_params_get(p, "device")) && *v) {
        if (!one_of(v, devices)) {
            seterr(err, errlen, "expected mobile, tablet or desktop", "device");
            return VP_ERR_INVALID;
        }
        f->device = v;
    }
    if ((v = web_params_get(p, "browser")) && *v) {
        if (!printable(v, 64)) {
            seterr(err, errlen, "expected a browser name (at most 64 bytes)", "browser");
            return VP_ERR_INVALID;
        }
        f->browser = v;
    }
    if ((v = web_params_get(p, "ect")) && *v) {
        if (!one_of(v, ects)) {
            seterr(err, errlen, "expected slow-2g, 2g, 3g or 4g", "ect");
            return VP_ERR_INVALID;
        }
        f->ect = v;
    }
    if ((v = web_params_get(p, "label")) && *v) {
        if (!printable(v, 64)) {
            seterr(err, errlen, "expected a label (at most 64 bytes)", "label");
            return VP_ERR_INVALID;
        }
        f->label = v;
    }
    if ((v = web_params_get(p, "limit")) && *v) {
        long n = 0;
        const char *c = v;
        while (*c >= '0' && *c <= '9' && n <= 1000)
            n = n * 10 + (*c++ - '0');
        if (*c || n < 1 || n > 1000) {
            seterr(err, errlen, "expected an integer from 1 to 1000", "limit");
            return VP_ERR_INVALID;
        }
        f->limit = (int)n;
    }
    return 0;
}
