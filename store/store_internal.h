/* store/ internals shared by store.c, schema.c, query.c and the unit tests (not for other
 * modules). */
#ifndef VP_STORE_INTERNAL_H
#define VP_STORE_INTERNAL_H

#include <jansson.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define STORE_SCHEMA_VERSION 6

/* The columns of a resources row after its key (view_id or view_seq, and idx), as they have
 * been since schema 1, each qualified by the alias r: the schema-6 migration copies them, a
 * reader of an older file selects them through its temporary view. */
#define STORE_RES_COLS_R                                                                           \
    "r.url, r.initiator, r.start_ms, r.duration_ms, r.redirect_start, r.redirect_end, "            \
    "r.fetch_start, r.dns_start, r.dns_end, r.connect_start, r.connect_end, r.secure_start, "      \
    "r.request_start, r.response_start, r.response_end, r.transfer_size, r.encoded_size, "         \
    "r.decoded_size, r.protocol, r.render_blocking, r.status, r.delivery_type, r.server_timing"

/* Brings db (opened read-write, inside no transaction) to STORE_SCHEMA_VERSION, one migration
 * function per version step, each in its own transaction. Returns 0, VP_ERR_VERSION (made by a
 * newer build: nothing written), VP_ERR_DB (not a database / corrupt: nothing written; reason in
 * err). */
int store_schema_migrate(sqlite3 *db, char *err, size_t errlen);

/* Adds the request marks (schema v5, store/schema.c) of the rows in requests, for a database
 * whose rows were written without the writer (a migration, bench/gen_db): for each minute, the
 * smallest id of the rows accepted in it or later; existing marks are kept. Returns an SQLite
 * result code (message in *msg, to sqlite3_free). */
int store_schema_mark_requests(sqlite3 *db, char **msg);

/* Checks a read-only handle: 0 when db holds a vitals schema we can read, VP_ERR_DB (not a
 * vitals database or unreadable), VP_ERR_VERSION (newer). Reason in err. */
int store_schema_check(sqlite3 *db, char *err, size_t errlen);

/* The path part of a request target or URL: skips "scheme://authority", stops at '?' or '#'.
 * Returns the start and writes the length into *len. url NUL-terminated, may be NULL. */
const char *store_path_span(const char *url, size_t *len);

/* Asks the writer to delete, in its next batch, data older than days before now_ms (tests; the
 * hourly retention uses the configured retention_days). 0 or VP_ERR_NOMEM / VP_ERR_FULL. */
int store_prune_at(struct store *s, int64_t now_ms, int days);

/* Waits until everything enqueued before the call is committed. 0 or VP_ERR_NOMEM/FULL. */
int store_sync(struct store *s);

/* The read-only connection of a reader, for the report queries in store/query_report.c
 * (borrowed; valid until store_reader_free). */
struct store_reader;
sqlite3 *store_reader_sqlite(struct store_reader *r);

/* Whether r reads a file from before schema 6, whose metrics and resources are keyed by the
 * view's text id (store_reader_open gives them the schema-6 key through temporary views). */
bool store_reader_metrics_by_id(const struct store_reader *r);

/* The summary computed from the raw views and metrics rows only (no rollups): the reference
 * that query_summary must equal (unit tests, bench/report_bench). Same contract as
 * query_summary. */
struct query_filter;
int store_summary_raw(struct store_reader *r, const struct query_filter *f, json_t **out)
    __attribute__((warn_unused_result));

#endif
