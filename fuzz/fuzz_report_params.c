/* libFuzzer target: the report's parsers of hostile text — query strings + filters
 * (web/params), time values, budget files (web/budget) and compare sides (web/compare). The
 * first byte picks the parser, the rest is its input. Checks the contracts: errors come with a
 * NUL-terminated one-line reason, decoded values hold no control bytes, and a parsed budget
 * survives a round trip through its JSON form. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/vp_err.h"
#include "web/budget.h"
#include "web/compare.h"
#include "web/params.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one_line(const char *err, size_t cap)
{
    size_t n = strnlen(err, cap);
    if (n == cap)
        abort();
    for (size_t i = 0; i < n; i++)
        if (err[i] == '\n')
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 65536)
        return 0;
    char *s = malloc(size);
    if (!s)
        return 0;
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0'; /* the parsers take NUL-terminated text */
    char err[256] = "";
    const int64_t now = INT64_C(1795514400000);
    switch (data[0] % 4) {
    case 0: {
        struct web_params p;
        struct query_filter f;
        int rc = web_params_parse(&p, s, err, sizeof err);
        if (rc == 0) {
            for (size_t i = 0; i < p.n; i++)
                for (const char *c = p.items[i].value; *c; c++)
                    if ((unsigned char)*c < 0x20 || *c == 0x7f)
                        abort();
            if (web_filter_from_params(&p, now, &f, err, sizeof err) != 0)
                one_line(err, sizeof err);
        } else {
            one_line(err, sizeof err);
        }
        web_params_dispose(&p);
        break;
    }
    case 1: {
        int64_t ms;
        if (web_parse_time(s, now, &ms) == 0 && ms < 0)
            abort();
        break;
    }
    case 2: {
        struct budget *b = NULL;
        if (budget_parse(&b, s, size - 1, err, sizeof err) == 0) {
            json_t *j = budget_to_json(b);
            char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
            struct budget *b2 = NULL;
            if (text && budget_parse(&b2, text, strlen(text), err, sizeof err) != 0)
                abort();
            budget_free(b2);
            free(text);
            json_decref(j);
            budget_free(b);
        } else {
            if (b)
                abort();
            one_line(err, sizeof err);
        }
        break;
    }
    default: {
        struct query_filter f;
        if (compare_parse_side(s, now, &f, err, sizeof err) == 0) {
            if (!f.label && f.until_ms <= f.since_ms)
                abort();
        } else {
            one_line(err, sizeof err);
        }
    }
    }
    free(s);
    return 0;
}
