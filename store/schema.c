/* Schema and migrations. The version lives in PRAGMA user_version; migrations[i] takes a database
 * from version i to i + 1 inside one transaction that also bumps user_version, so a crash leaves
 * either the old or the new version. Adding v2 = appending one function to migrations[].
 * Refusals never write: the version and the table list are read before anything else, and a
 * file that is not a database (SQLITE_NOTADB) or another application's database (user_version 0
 * with tables) is left alone.
 *
 * Times: views.started_at is epoch ms (the beacon's t0, rounded); requests.*_us are epoch
 * microseconds; resource/navigation times are ms relative to the view start (as on the wire). */
#include "config.h"

#include "store/store_internal.h"

#include <stdio.h>
#include <string.h>

#include "common/vp_err.h"

static const char schema_v1[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);\n"
    "CREATE TABLE views(\n"
    "  id TEXT PRIMARY KEY,\n"
    "  started_at INTEGER NOT NULL,      -- epoch ms\n"
    "  received_at INTEGER NOT NULL,     -- epoch ms of the first payload\n"
    "  url TEXT, path TEXT, route TEXT,\n"
    "  parent_id TEXT,                   -- soft navigation: the hard navigation's view\n"
    "  navigation_type TEXT, device TEXT, ect TEXT, device_memory REAL,\n"
    "  browser TEXT, browser_major INTEGER, label TEXT, sample_rate REAL);\n"
    "CREATE INDEX views_route_time ON views(route, started_at);\n"
    "CREATE INDEX views_time ON views(started_at);\n"
    "CREATE INDEX views_path_time ON views(path, started_at);\n"
    "CREATE TABLE metrics(\n"
    "  view_id TEXT NOT NULL REFERENCES views(id) ON DELETE CASCADE,\n"
    "  name TEXT NOT NULL, metric_id TEXT NOT NULL,\n"
    "  value REAL NOT NULL, delta REAL, rating TEXT,\n"
    "  attribution TEXT,                 -- JSON object\n"
    "  updated_at INTEGER NOT NULL,\n"
    "  PRIMARY KEY(view_id, metric_id));\n"
    "CREATE INDEX metrics_name_view ON metrics(name, view_id);\n"
    "CREATE TABLE resources(\n"
    "  view_id TEXT NOT NULL REFERENCES views(id) ON DELETE CASCADE, idx INTEGER NOT NULL,\n"
    "  url TEXT, initiator TEXT, start_ms REAL, duration_ms REAL,\n"
    "  redirect_start REAL, redirect_end REAL, fetch_start REAL, dns_start REAL, dns_end REAL,\n"
    "  connect_start REAL, connect_end REAL, secure_start REAL, request_start REAL,\n"
    "  response_start REAL, response_end REAL, transfer_size INTEGER, encoded_size INTEGER,\n"
    "  decoded_size INTEGER, protocol TEXT, render_blocking TEXT, status INTEGER,\n"
    "  delivery_type TEXT, server_timing TEXT,\n"
    "  PRIMARY KEY(view_id, idx));\n"
    "CREATE TABLE navigation(\n"
    "  view_id TEXT PRIMARY KEY REFERENCES views(id) ON DELETE CASCADE,\n"
    "  url TEXT, initiator TEXT, start_ms REAL, duration_ms REAL,\n"
    "  redirect_start REAL, redirect_end REAL, fetch_start REAL, dns_start REAL, dns_end REAL,\n"
    "  connect_start REAL, connect_end REAL, secure_start REAL, request_start REAL,\n"
    "  response_start REAL, response_end REAL, transfer_size INTEGER, encoded_size INTEGER,\n"
    "  decoded_size INTEGER, protocol TEXT, render_blocking TEXT, status INTEGER,\n"
    "  delivery_type TEXT, server_timing TEXT,\n"
    "  dom_interactive REAL, dcl_start REAL, dcl_end REAL, dom_complete REAL, load_start REAL,\n"
    "  load_end REAL, type TEXT, redirect_count INTEGER);\n"
    "CREATE TABLE requests(\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  view_id TEXT,                     -- no foreign key: the view may be reported later\n"
    "  accept_us INTEGER, head_done_us INTEGER, connect_start_us INTEGER, connect_end_us INTEGER,\n"
    "  sent_us INTEGER, first_byte_us INTEGER, last_byte_us INTEGER,\n"
    "  bytes_in INTEGER, bytes_out INTEGER, upstream_bytes INTEGER, status INTEGER,\n"
    "  injected INTEGER NOT NULL, reused INTEGER NOT NULL,\n"
    "  method TEXT, url TEXT, path TEXT, route TEXT, host TEXT, protocol TEXT, tls_version TEXT,\n"
    "  referer TEXT, referer_path TEXT, user_agent TEXT, content_type TEXT,\n"
    "  content_encoding TEXT, cache_control TEXT, error TEXT, label TEXT);\n"
    "CREATE INDEX requests_view ON requests(view_id);\n"
    "CREATE INDEX requests_time ON requests(accept_us);\n"
    "CREATE INDEX requests_path_time ON requests(path, accept_us);\n"
    "CREATE INDEX requests_referer_time ON requests(referer_path, accept_us);\n"
    "CREATE TABLE rejections(reason TEXT PRIMARY KEY, count INTEGER NOT NULL);\n"
    "INSERT INTO meta(key, value) VALUES('created_at', strftime('%Y-%m-%dT%H:%M:%fZ','now'));\n"
    "INSERT INTO meta(key, value) VALUES('beacons_accepted', '0');\n";

static int migrate_to_v1(sqlite3 *db, char **msg)
{
    return sqlite3_exec(db, schema_v1, NULL, NULL, msg);
}

/* v2: hourly rollups for the summary (store/rollup.h). Nothing is sealed yet: the writer
 * backfills the existing hours one per step, oldest first, and readers use the raw rows for
 * every hour not yet rolled up, so an upgraded database answers exactly from the start. */
static const char schema_v2[] =
    "CREATE TABLE rollup_dims(id INTEGER PRIMARY KEY, device TEXT, browser TEXT, ect TEXT,\n"
    "  label TEXT);\n"
    "CREATE INDEX rollup_dims_key ON rollup_dims(device, browser, ect, label);\n"
    "CREATE TABLE rollup(\n"
    "  hour INTEGER NOT NULL,             -- started_at / 3600000\n"
    "  route TEXT,\n"
    "  views INTEGER NOT NULL,\n"
    "  m0 BLOB, m1 BLOB, m2 BLOB, m3 BLOB, m4 BLOB,  -- values first: unfiltered reads stop here\n"
    "  vcodes BLOB, c0 BLOB, c1 BLOB, c2 BLOB, c3 BLOB, c4 BLOB);\n"
    "CREATE INDEX rollup_hour ON rollup(hour);\n"
    "CREATE INDEX rollup_route_hour ON rollup(route, hour);\n"
    "CREATE TABLE rollup_dirty(hour INTEGER PRIMARY KEY);\n"
    "INSERT INTO meta(key, value) VALUES('rollup_until_hour', '0');\n";

static int migrate_to_v2(sqlite3 *db, char **msg)
{
    return sqlite3_exec(db, schema_v2, NULL, NULL, msg);
}

/* v3: three of the four requests indexes become partial, so a request record maintains only
 * the indexes that can ever find it. Every query keeps its index: the view list of a view
 * (view_id = ?) and the report's view_id IN (...) imply view_id IS NOT NULL; the claim of
 * sub-resources by a new view or injected page looks rows up by referer_path = ?, which implies
 * referer_path IS NOT NULL; the injected page of a sub-resource is looked up with injected = 1.
 * A record of a plain request (no view yet, no Referer, not injected) thus maintains one index
 * (requests_time) instead of four: bench/record_bench measured the writer's CPU per record
 * going from 8.8 to 4.9 us and its WAL bytes per record from 620 to 250. */
static const char schema_v3[] =
    "DROP INDEX requests_view;\n"
    "CREATE INDEX requests_view ON requests(view_id) WHERE view_id IS NOT NULL;\n"
    "DROP INDEX requests_path_time;\n"
    "CREATE INDEX requests_path_time ON requests(path, accept_us) WHERE injected = 1;\n"
    "DROP INDEX requests_referer_time;\n"
    "CREATE INDEX requests_referer_time ON requests(referer_path, accept_us)\n"
    "  WHERE referer_path IS NOT NULL;\n";

static int migrate_to_v3(sqlite3 *db, char **msg)
{
    return sqlite3_exec(db, schema_v3, NULL, NULL, msg);
}

/* v4: metrics becomes a WITHOUT ROWID table clustered on its key (view_id, metric_id), and
 * metrics_name_view goes. A rowid table with a composite PRIMARY KEY is two b-trees (the rows by
 * rowid, plus the automatic key index that every upsert probes and extends); clustered, a metric
 * row is one b-tree entry, and with metrics_name_view gone a payload's five metrics maintain one
 * b-tree instead of three (bench/ingest_cost.sh: the writer's instructions per metrics-only
 * payload 144,800 -> 87,900). Every reader reaches metrics from views (CROSS JOIN ... ON
 * m.view_id = v.id, or view_id = ?), which the clustered key serves: the one plan that used
 * metrics_name_view (the targets query: name IN (...) AND view_id = ?) now reads the view's few
 * rows by key (bench/report.sh, 100k views: targets 24h 48.7 -> 26.2 CPU ms). The table is
 * rebuilt in place, rows copied in key order. */
static const char schema_v4[] =
    "CREATE TABLE metrics_v4(\n"
    "  view_id TEXT NOT NULL REFERENCES views(id) ON DELETE CASCADE,\n"
    "  name TEXT NOT NULL, metric_id TEXT NOT NULL,\n"
    "  value REAL NOT NULL, delta REAL, rating TEXT,\n"
    "  attribution TEXT,                 -- JSON object\n"
    "  updated_at INTEGER NOT NULL,\n"
    "  PRIMARY KEY(view_id, metric_id)) WITHOUT ROWID;\n"
    "INSERT INTO metrics_v4(view_id, name, metric_id, value, delta, rating, attribution,\n"
    "  updated_at) SELECT view_id, name, metric_id, value, delta, rating, attribution,\n"
    "  updated_at FROM metrics ORDER BY view_id, metric_id;\n"
    "DROP TABLE metrics;\n"
    "ALTER TABLE metrics_v4 RENAME TO metrics;\n";

static int migrate_to_v4(sqlite3 *db, char **msg)
{
    return sqlite3_exec(db, schema_v4, NULL, NULL, msg);
}

/* v5: the requests table loses requests_time, its one index that every record maintained
 * (bench/record_bench: about a sixth of the writer's CPU per record). Request ids only grow (the
 * writer assigns them, see store.c) and a record is committed after its request was accepted, so
 * the rows of a time range start at a known id: request_marks holds, for a minute M, an id F such
 * that every row accepted at or after minute M has an id of at least F. A time-filtered read
 * scans rows by id from the mark of its first minute (or the latest mark before it) on,
 * checking accept_us as before. The marks of the rows already there are computed here: for each
 * minute, the smallest id of the rows accepted in it or later (a running minimum, newest minute
 * first). */
static const char schema_v5[] =
    "CREATE TABLE IF NOT EXISTS request_marks(minute INTEGER PRIMARY KEY, -- accept_us / 60000000\n"
    "  first_id INTEGER NOT NULL);\n"
    "DROP INDEX IF EXISTS requests_time;\n";

static const char marks_of_rows[] =
    "INSERT OR IGNORE INTO request_marks(minute, first_id)\n"
    "  SELECT minute, min(first_id) OVER (ORDER BY minute DESC) FROM\n"
    "    (SELECT accept_us / 60000000 AS minute, min(id) AS first_id FROM requests\n"
    "     WHERE accept_us >= 0 GROUP BY 1);\n";

int store_schema_mark_requests(sqlite3 *db, char **msg)
{
    return sqlite3_exec(db, marks_of_rows, NULL, NULL, msg);
}

static int migrate_to_v5(sqlite3 *db, char **msg)
{
    int rc = sqlite3_exec(db, schema_v5, NULL, NULL, msg);
    return rc == SQLITE_OK ? store_schema_mark_requests(db, msg) : rc;
}

/* v6: metrics and resources are keyed by their view's integer key instead of its text id. A view
 * id is random in its low digits (and wholly random from other clients), so rows clustered on
 * (view_id, metric_id) went to a random leaf of the metrics b-tree each: under load every batch
 * dirtied most of the table's recent leaves, and the WAL took a 4 KiB page for each; likewise a
 * view's resource rows. views gets an explicit INTEGER PRIMARY KEY, seq (the rowid it had, kept
 * by VACUUM now that it is declared), which only grows, so a new view's metric and resource rows
 * are appended at the end of their b-trees, on the pages the previous batch left dirty.
 * resources becomes WITHOUT ROWID too (one b-tree instead of the rows and their key index). id
 * stays unique (the beacon's key, the API's, navigation's and requests'). Readers join metrics
 * and resources on view_seq = v.rowid (the same column in this schema, the implicit rowid in
 * older ones, see store_reader_open). The three tables are rebuilt in key order; a metric or
 * resource row with no view (none can exist: foreign keys were on in every writer before) would
 * be unreachable to every reader and is not copied. bench/ingest_cost.sh and bench/store_bench:
 * see README "Beacon ingestion". */
static const char schema_v6[] =
    "CREATE TABLE views_v6(\n"
    "  seq INTEGER PRIMARY KEY,           -- metrics' key for the view; grows with each new view\n"
    "  id TEXT UNIQUE,\n"
    "  started_at INTEGER NOT NULL,      -- epoch ms\n"
    "  received_at INTEGER NOT NULL,     -- epoch ms of the first payload\n"
    "  url TEXT, path TEXT, route TEXT,\n"
    "  parent_id TEXT,                   -- soft navigation: the hard navigation's view\n"
    "  navigation_type TEXT, device TEXT, ect TEXT, device_memory REAL,\n"
    "  browser TEXT, browser_major INTEGER, label TEXT, sample_rate REAL);\n"
    "INSERT INTO views_v6(seq, id, started_at, received_at, url, path, route, parent_id,\n"
    "  navigation_type, device, ect, device_memory, browser, browser_major, label, sample_rate)\n"
    "  SELECT rowid, id, started_at, received_at, url, path, route, parent_id, navigation_type,\n"
    "  device, ect, device_memory, browser, browser_major, label, sample_rate FROM views\n"
    "  ORDER BY rowid;\n"
    "CREATE TABLE metrics_v6(\n"
    "  view_seq INTEGER NOT NULL REFERENCES views(seq) ON DELETE CASCADE,\n"
    "  name TEXT NOT NULL, metric_id TEXT NOT NULL,\n"
    "  value REAL NOT NULL, delta REAL, rating TEXT,\n"
    "  attribution TEXT,                 -- JSON object\n"
    "  updated_at INTEGER NOT NULL,\n"
    "  PRIMARY KEY(view_seq, metric_id)) WITHOUT ROWID;\n"
    "INSERT INTO metrics_v6(view_seq, name, metric_id, value, delta, rating, attribution,\n"
    "  updated_at) SELECT v.seq, m.name, m.metric_id, m.value, m.delta, m.rating,\n"
    "  m.attribution, m.updated_at FROM metrics m JOIN views_v6 v ON v.id = m.view_id\n"
    "  ORDER BY v.seq, m.metric_id;\n"
    "CREATE TABLE resources_v6(\n"
    "  view_seq INTEGER NOT NULL REFERENCES views(seq) ON DELETE CASCADE, idx INTEGER NOT NULL,\n"
    "  url TEXT, initiator TEXT, start_ms REAL, duration_ms REAL,\n"
    "  redirect_start REAL, redirect_end REAL, fetch_start REAL, dns_start REAL, dns_end REAL,\n"
    "  connect_start REAL, connect_end REAL, secure_start REAL, request_start REAL,\n"
    "  response_start REAL, response_end REAL, transfer_size INTEGER, encoded_size INTEGER,\n"
    "  decoded_size INTEGER, protocol TEXT, render_blocking TEXT, status INTEGER,\n"
    "  delivery_type TEXT, server_timing TEXT,\n"
    "  PRIMARY KEY(view_seq, idx)) WITHOUT ROWID;\n"
    "INSERT INTO resources_v6 SELECT v.seq, r.idx, " STORE_RES_COLS_R " FROM resources r\n"
    "  JOIN views_v6 v ON v.id = r.view_id ORDER BY v.seq, r.idx;\n"
    "DROP TABLE metrics;\n"
    "DROP TABLE resources;\n"
    "DROP TABLE views;\n"
    "ALTER TABLE views_v6 RENAME TO views;\n"
    "ALTER TABLE metrics_v6 RENAME TO metrics;\n"
    "ALTER TABLE resources_v6 RENAME TO resources;\n"
    "CREATE INDEX views_route_time ON views(route, started_at);\n"
    "CREATE INDEX views_time ON views(started_at);\n"
    "CREATE INDEX views_path_time ON views(path, started_at);\n";

static int migrate_to_v6(sqlite3 *db, char **msg)
{
    return sqlite3_exec(db, schema_v6, NULL, NULL, msg);
}

typedef int (*migration_cb)(sqlite3 *db, char **msg);
static const migration_cb migrations[] = {migrate_to_v1, migrate_to_v2, migrate_to_v3,
                                          migrate_to_v4, migrate_to_v5, migrate_to_v6};
_Static_assert(sizeof migrations / sizeof migrations[0] == STORE_SCHEMA_VERSION,
               "one migration per schema version");

static void set_err(char *err, size_t errlen, const char *what, const char *detail)
{
    if (errlen == 0)
        return;
    int w = snprintf(err, errlen, "%s%s%s", what, detail ? ": " : "", detail ? detail : "");
    if (w < 0)
        err[0] = '\0';
}

/* Reads user_version and the number of non-internal tables. */
static int read_version(sqlite3 *db, int *version, int *tables, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        set_err(err, errlen, "not a usable SQLite database", sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return VP_ERR_DB;
    }
    *version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    rc = sqlite3_prepare_v2(
        db, "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        set_err(err, errlen, "not a usable SQLite database", sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return VP_ERR_DB;
    }
    *tables = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return 0;
}

static int check_version(int version, int tables, char *err, size_t errlen)
{
    if (version > STORE_SCHEMA_VERSION) {
        char buf[96];
        int w = snprintf(buf, sizeof buf, "schema version %d is newer than this build's %d",
                         version, STORE_SCHEMA_VERSION);
        set_err(err, errlen, "database made by a newer vitals-proxy",
                w > 0 && (size_t)w < sizeof buf ? buf : NULL);
        return VP_ERR_VERSION;
    }
    if (version < 0) {
        /* Only a hand-edited PRAGMA user_version gets here; it must never index migrations[]. */
        char buf[48];
        int w = snprintf(buf, sizeof buf, "schema version %d", version);
        set_err(err, errlen, "not a vitals-proxy database",
                w > 0 && (size_t)w < sizeof buf ? buf : NULL);
        return VP_ERR_DB;
    }
    if (version == 0 && tables > 0) {
        set_err(err, errlen, "not a vitals-proxy database (it has other tables)", NULL);
        return VP_ERR_DB;
    }
    return 0;
}

int store_schema_check(sqlite3 *db, char *err, size_t errlen)
{
    int version = 0, tables = 0;
    int rc = read_version(db, &version, &tables, err, errlen);
    if (rc)
        return rc;
    if ((rc = check_version(version, tables, err, errlen)))
        return rc;
    if (version == 0) {
        set_err(err, errlen, "not a vitals-proxy database (empty)", NULL);
        return VP_ERR_DB;
    }
    return 0;
}

int store_schema_migrate(sqlite3 *db, char *err, size_t errlen)
{
    int version = 0, tables = 0;
    int rc = read_version(db, &version, &tables, err, errlen);
    if (rc)
        return rc;
    if ((rc = check_version(version, tables, err, errlen)))
        return rc;
    while (version < STORE_SCHEMA_VERSION) {
        char *msg = NULL;
        char sql[64];
        int w = snprintf(sql, sizeof sql, "PRAGMA user_version = %d", version + 1);
        if (w < 0 || (size_t)w >= sizeof sql)
            return VP_ERR_DB;
        if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK ||
            migrations[version](db, &msg) != SQLITE_OK ||
            sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
            set_err(err, errlen, "schema migration failed", msg ? msg : sqlite3_errmsg(db));
            sqlite3_free(msg);
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return VP_ERR_DB;
        }
        version++;
    }
    return 0;
}

const char *store_path_span(const char *url, size_t *len)
{
    if (!url) {
        *len = 0;
        return "";
    }
    const char *p = url;
    const char *colon = strstr(url, "://");
    if (colon && colon - url < 16) {
        p = colon + 3;
        while (*p && *p != '/' && *p != '?' && *p != '#')
            p++;
    }
    size_t n = strcspn(p, "?#");
    *len = n;
    return p;
}
