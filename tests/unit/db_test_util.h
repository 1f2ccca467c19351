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

#endif
