/* Test helper for store/ tests: reads one value from a database file on a connection of its
 * own, as a user with the sqlite3 shell would. Header-only; each test program includes it once. */
#ifndef VP_TEST_DB_UTIL_H
#define VP_TEST_DB_UTIL_H

#include <sqlite3.h>

/* First column of the first row of sql on the database at db, as int64 (-1 on error). */
static inline long long db_q1(const char *db, const char *sql)
{
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    long long v = -1;
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return v;
}

/* SQL that gives a schema-6 file the metrics and resources tables of earlier schemas (keyed by
 * the view's text id), for tests that pretend such a file is older (PRAGMA user_version). */
#define DB_TEST_TEXT_KEYED_CHILDREN                                                                \
    "CREATE TABLE metrics_old(view_id TEXT NOT NULL REFERENCES views(id) ON DELETE CASCADE, "     \
    "name TEXT NOT NULL, metric_id TEXT NOT NULL, value REAL NOT NULL, delta REAL, rating TEXT, " \
    "attribution TEXT, updated_at INTEGER NOT NULL, PRIMARY KEY(view_id, metric_id)); "           \
    "INSERT INTO metrics_old SELECT v.id, m.name, m.metric_id, m.value, m.delta, m.rating, "      \
    "m.attribution, m.updated_at FROM metrics m JOIN views v ON v.seq = m.view_seq; "             \
    "DROP TABLE metrics; ALTER TABLE metrics_old RENAME TO metrics; "                             \
    "CREATE INDEX metrics_name_view ON metrics(name, view_id); "                                  \
    "CREATE TABLE resources_old AS SELECT v.id AS view_id, r.idx, r.url, r.initiator, "           \
    "r.start_ms, r.duration_ms, r.redirect_start, r.redirect_end, r.fetch_start, r.dns_start, "   \
    "r.dns_end, r.connect_start, r.connect_end, r.secure_start, r.request_start, "                \
    "r.response_start, r.response_end, r.transfer_size, r.encoded_size, r.decoded_size, "         \
    "r.protocol, r.render_blocking, r.status, r.delivery_type, r.server_timing FROM resources r " \
    "JOIN views v ON v.seq = r.view_seq; "                                                        \
    "DROP TABLE resources; ALTER TABLE resources_old RENAME TO resources; "

#endif
