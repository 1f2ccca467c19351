/* web/params: query-string parsing, percent-decoding and the time/filter parameters shared by
 * the JSON API and the CLI. Everything here treats its input as hostile: lengths are capped,
 * escapes are validated, control characters are refused, numbers are range-checked.
 * Pure functions, no I/O, re-entrant. */
#ifndef VP_WEB_PARAMS_H
#define VP_WEB_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/query.h"

#define WEB_PARAMS_MAX 32          /* parameters per query string */
#define WEB_PARAMS_QUERY_MAX 4096  /* bytes of raw query string */
#define WEB_PARAMS_VALUE_MAX 1024  /* bytes of one decoded value */

struct web_param {
    char *name;  /* decoded, NUL-terminated, points into web_params.storage */
    char *value; /* decoded, NUL-terminated ("" for `name` without `=`) */
};

struct web_params {
    struct web_param items[WEB_PARAMS_MAX];
    size_t n;
    char *storage; /* one allocation holding every decoded string */
};

/* Percent-decodes in/len into out (cap bytes, NUL-terminated); '+' becomes a space when
 * plus_space. Returns the decoded length, VP_ERR_INVALID (bad escape, NUL or other control
 * byte) or VP_ERR_LIMIT (out too small). */
int web_pct_decode(const char *in, size_t len, char *out, size_t cap, bool plus_space);

/* Parses query (may be NULL or "") into p. Returns 0, VP_ERR_LIMIT (too long / too many
 * parameters / value too long), VP_ERR_INVALID (bad escape, control byte, duplicate name,
 * empty name) or VP_ERR_NOMEM; on error a one-line reason is written into err. On success the
 * caller owns p and releases it with web_params_dispose (also safe after a failed parse). */
int web_params_parse(struct web_params *p, const char *query, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void web_params_dispose(struct web_params *p);

/* The decoded value of name, or NULL when absent. */
const char *web_params_get(const struct web_params *p, const char *name);

/* Parses a duration "30s", "15m", "24h", "7d", "2w" (integer count, one unit, at most 10 years)
 * into milliseconds. Returns 0 or VP_ERR_INVALID. */
int web_parse_duration(const char *s, int64_t *out_ms) __attribute__((warn_unused_result));

/* Parses an ISO-8601 instant "YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|+HH:MM|-HH:MM]" (no zone = UTC)
 * into epoch milliseconds. Returns 0 or VP_ERR_INVALID. */
int web_parse_iso8601(const char *s, int64_t *out_ms) __attribute__((warn_unused_result));

/* `since`/`until` values: a duration back from now_ms, or an ISO-8601 instant. */
int web_parse_time(const char *s, int64_t now_ms, int64_t *out_ms)
    __attribute__((warn_unused_result));

/* Formats epoch ms as "2026-11-24T10:00:00.000Z" into out (cap >= 25). Returns 0 or
 * VP_ERR_LIMIT. */
int web_format_iso8601(int64_t ms, char *out, size_t cap);

/* Fills f from the filter parameters (since, until, route, device, browser, ect, label, limit);
 * other names are ignored (e.g. token). String fields of f point into p, which must outlive f.
 * Returns 0 or VP_ERR_INVALID with a one-line reason naming the parameter in err. */
int web_filter_from_params(const struct web_params *p, int64_t now_ms, struct query_filter *f,
                           char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
