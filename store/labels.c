/* Run labels: validation and the labels list (see labels.h). One constant SQL text, no
 * parameters; label texts come back from the database and reach the JSON only through
 * jansson (non-UTF-8 rows are skipped, as no valid label can be one). */
#include "config.h"

#include "store/labels.h"

#include <stdio.h>
#include <time.h>

#include "common/vp_err.h"
#include "store/query.h"
#include "store/store_internal.h"

bool labels_valid(const char *s)
{
    size_t n = 0;
    for (; s && s[n]; n++) {
        char c = s[n];
        if (n >= LABELS_NAME_MAX ||
            !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return n >= 1;
}

static json_t *iso(int64_t ms)
{
    time_t sec = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    struct tm tm;
    char base[32], buf[48];
    if (!gmtime_r(&sec, &tm) || strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        return json_null();
    int w = snprintf(buf, sizeof buf, "%s.%03dZ", base, (int)(ms - (int64_t)sec * 1000));
    return w > 0 && (size_t)w < sizeof buf ? json_string(buf) : json_null();
}

int labels_list(struct store_reader *r, json_t **out)
{
    if (!r)
        return VP_ERR_INVALID;
    sqlite3 *db = store_reader_sqlite(r);
    sqlite3_stmt *st = NULL;
    json_t *labels = json_array();
    if (!labels)
        return VP_ERR_NOMEM;
    if (sqlite3_prepare_v2(
            db,
            "SELECT l, min(f), max(t), sum(v), sum(q) FROM ("
            " SELECT label AS l, min(started_at) AS f, max(started_at) AS t, count(*) AS v,"
            "  0 AS q FROM views WHERE label IS NOT NULL GROUP BY label"
            " UNION ALL SELECT label, min(accept_us) / 1000, max(accept_us) / 1000, 0, count(*)"
            "  FROM requests WHERE label IS NOT NULL GROUP BY label)"
            " GROUP BY l ORDER BY min(f), l",
            -1, &st, NULL) != SQLITE_OK) {
        json_decref(labels);
        return VP_ERR_DB;
    }
    int rc = 0, s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        const char *l = (const char *)sqlite3_column_text(st, 0);
        json_t *name = l ? json_string(l) : NULL;
        if (!name)
            continue;
        int64_t f = sqlite3_column_int64(st, 1), t = sqlite3_column_int64(st, 2);
        json_t *o = json_pack("{s:o,s:o,s:o,s:I,s:I,s:I,s:I}", "label", name, "first", iso(f),
                              "last", iso(t), "first_ms", (json_int_t)f, "last_ms",
                              (json_int_t)t, "views", (json_int_t)sqlite3_column_int64(st, 3),
                              "requests", (json_int_t)sqlite3_column_int64(st, 4));
        if (!o || json_array_append_new(labels, o)) {
            rc = VP_ERR_NOMEM;
            break;
        }
    }
    if (!rc && s != SQLITE_DONE)
        rc = VP_ERR_DB;
    sqlite3_finalize(st);
    json_t *res = rc ? NULL : json_pack("{s:O}", "labels", labels);
    json_decref(labels);
    if (!rc && !res)
        rc = VP_ERR_NOMEM;
    if (!rc)
        *out = res;
    return rc;
}
