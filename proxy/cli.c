/* The offline sub-commands `report`, `export`, `check` and `compare` (see cli.h; the synopsis
 * is the ◆ command-line contract in design.md; compare is issue 8).
 *
 * Each sub-command parses its own options with getopt_long, opens the database read-only
 * through store/query.h (so it works while the proxy runs: WAL readers never block the
 * writer), renders through web/export or web/budget, and maps every failure to one line
 * "vitals-proxy: ..." on stderr and an exit status:
 *   0  success (check: every budget met)
 *   1  runtime failure: the database is corrupt, of a newer version or unreadable, the query
 *      failed, the output could not be written (check: at least one budget exceeded)
 *   2  usage or configuration error: unknown option or value, --db naming no file, a bad
 *      budget file. `check` also exits 2 on any runtime failure, since its 1 means "over
 *      budget" and a CI job must never read a broken database as a regression.
 * Text that came from browsers (routes) is made safe for a terminal before printing: control
 * bytes become '?', so a stored escape sequence cannot drive the user's terminal. */
#include "config.h"

#include "proxy/cli.h"

#include <errno.h>
#include <event2/buffer.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/vp_buf.h"
#include "common/vp_err.h"
#include "store/query.h"
#include "store/query_report.h"
#include "web/budget.h"
#include "web/compare.h"
#include "web/export.h"
#include "web/html_export.h"
#include "web/params.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define DEFAULT_DB "./vitals.db"

__attribute__((format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        line[0] = '\0';
    /* one line, whatever a value echoed into it held */
    for (char *c = line; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    fprintf(stderr, "vitals-proxy: %s\n", line);
}

bool cli_is_subcommand(const char *name)
{
    return name && (strcmp(name, "report") == 0 || strcmp(name, "export") == 0 ||
                    strcmp(name, "check") == 0 || strcmp(name, "compare") == 0);
}

/* Options shared by the sub-commands. */
struct common {
    const char *db;
    const char *since;
    const char *until;
    const char *route;
    const char *label;
    const char *format;
};

enum { OPT_DB = 1000, OPT_SINCE, OPT_UNTIL, OPT_ROUTE, OPT_LABEL, OPT_FORMAT, OPT_VIEW, OPT_LAST,
       OPT_OUT, OPT_BUDGET, OPT_API_PREFIX, OPT_HELP, OPT_FAIL_REGRESSION, OPT_MIN_VIEWS,
       OPT_SEED };

static const char usage_report[] =
    "usage: vitals-proxy report [--db PATH] [--since DURATION|TIME] [--until DURATION|TIME]\n"
    "                           [--route ROUTE] [--label LABEL] [--format table|json|csv]\n";
static const char usage_export[] =
    "usage: vitals-proxy export [--db PATH] (--view ID | --last) [--format har|json|csv|html]\n"
    "                           [--out FILE]\n"
    "       vitals-proxy export [--db PATH] --route ROUTE [--label LABEL] --format html\n"
    "                           [--out FILE]\n";
static const char usage_check[] =
    "usage: vitals-proxy check [--db PATH] [--budget FILE] [--since DURATION|TIME]\n"
    "                          [--until DURATION|TIME] [--route ROUTE] [--label LABEL]\n"
    "                          [--api-prefix PATH]\n"
    "exit status: 0 within budget, 1 over budget, 2 usage, configuration or database error\n";

static const char usage_compare[] =
    "usage: vitals-proxy compare [--db PATH] A B [--route ROUTE] [--format table|json]\n"
    "                            [--min-views N] [--seed N] [--api-prefix PATH]\n"
    "                            [--fail-on-regression [--budget FILE]]\n"
    "A and B: a run label, or FROM..TO with ISO-8601 times or -DURATION (-2h..-1h)\n"
    "exit status: 0 done (no budgeted regression), 1 a budgeted metric got significantly worse\n"
    "(with --fail-on-regression) or the database failed, 2 usage error\n";

/* Opens the database; returns 0 or the exit status to use. */
static int open_db(const char *path, struct store_reader **r, int runtime_status)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fail("--db: %s: %s", path, strerror(errno));
        return EXIT_USAGE;
    }
    if (!S_ISREG(st.st_mode)) {
        fail("--db: %s: not a regular file", path);
        return EXIT_USAGE;
    }
    char err[256] = "";
    int rc = store_reader_open(r, path, err, sizeof err);
    if (rc == 0)
        return 0;
    if (rc == VP_ERR_VERSION)
        fail("--db: %s: made by a newer vitals-proxy; upgrade to read it", path);
    else if (rc == VP_ERR_DB)
        fail("--db: %s: not a vitals database%s%s", path, *err ? ": " : "", err);
    else
        fail("--db: %s: %s", path, *err ? err : vp_strerror(rc));
    return runtime_status;
}

static int filter_from(const struct common *c, struct query_filter *f)
{
    memset(f, 0, sizeof *f);
    int64_t now = vp_now_ms();
    if (c->since && web_parse_time(c->since, now, &f->since_ms) != 0) {
        fail("--since: \"%.60s\": expected a duration (15m, 24h, 7d) or an ISO-8601 time",
             c->since);
        return EXIT_USAGE;
    }
    if (c->until && web_parse_time(c->until, now, &f->until_ms) != 0) {
        fail("--until: \"%.60s\": expected a duration (15m, 24h, 7d) or an ISO-8601 time",
             c->until);
        return EXIT_USAGE;
    }
    if (f->since_ms && f->until_ms && f->until_ms <= f->since_ms) {
        fail("--until: must be later than --since");
        return EXIT_USAGE;
    }
    if (c->route && (c->route[0] != '/' || strlen(c->route) > 512)) {
        fail("--route: \"%.60s\": expected a route starting with /", c->route);
        return EXIT_USAGE;
    }
    if (c->label && (!*c->label || strlen(c->label) > 64)) {
        fail("--label: expected 1 to 64 characters");
        return EXIT_USAGE;
    }
    f->route = c->route;
    f->label = c->label;
    return 0;
}

static int write_buf(struct evbuffer *b, FILE *out)
{
    size_t n = evbuffer_get_length(b);
    if (n == 0)
        return 0;
    const unsigned char *p = evbuffer_pullup(b, -1);
    if (!p || fwrite(p, 1, n, out) != n)
        return VP_ERR_IO;
    return 0;
}

static const char *query_error(int rc)
{
    return rc == VP_ERR_NOMEM ? "out of memory" : "database query failed";
}

/* ---- report ------------------------------------------------------------------------------ */

struct thresholds {
    const char *name;
    double good, poor;
};
static const struct thresholds thr[] = {
    {"LCP", 2500, 4000}, {"CLS", 0.1, 0.25}, {"INP", 200, 500}, {"FCP", 1800, 3000},
    {"TTFB", 800, 1800},
};

#define ROUTE_COL 24

/* Copies a browser-supplied route into out (ROUTE_COL + 1 bytes), made terminal-safe and
 * shortened with "..." to fit the column. */
static void route_cell(const char *route, char *out)
{
    size_t n = strlen(route);
    size_t keep = n > ROUTE_COL ? ROUTE_COL - 3 : n;
    for (size_t i = 0; i < keep; i++) {
        unsigned char c = (unsigned char)route[i];
        out[i] = c < 0x20 || c >= 0x7f ? '?' : (char)c;
    }
    if (n > ROUTE_COL) {
        memcpy(out + keep, "...", 3);
        keep += 3;
    }
    out[keep] = '\0';
}

static int print_table(const json_t *summary, FILE *out, bool colour)
{
    static const int widths[] = {8, 7, 7, 7, 7};
    fprintf(out, "%-*s %6s", ROUTE_COL, "route", "views");
    for (size_t m = 0; m < 5; m++)
        fprintf(out, "  %*s", widths[m], thr[m].name);
    fprintf(out, "\n");
    const json_t *routes = json_object_get(summary, "routes");
    size_t i;
    const json_t *r;
    json_array_foreach(routes, i, r) {
        const char *route = json_string_value(json_object_get(r, "route"));
        char cell[ROUTE_COL + 1];
        route_cell(route ? route : "?", cell);
        fprintf(out, "%-*s %6lld", ROUTE_COL, cell,
                (long long)json_number_value(json_object_get(r, "views")));
        const json_t *ms = json_object_get(r, "metrics");
        for (size_t m = 0; m < 5; m++) {
            const json_t *p75 = json_object_get(json_object_get(ms, thr[m].name), "p75");
            if (!json_is_number(p75)) {
                fprintf(out, "  %*s", widths[m], "-");
                continue;
            }
            double v = json_number_value(p75);
            char val[24];
            int w = m == 1 ? snprintf(val, sizeof val, "%.3f", v)
                           : snprintf(val, sizeof val, "%.0f", v);
            if (w < 0 || (size_t)w >= sizeof val)
                memcpy(val, "?", 2);
            char grade = v <= thr[m].good ? 'G' : v <= thr[m].poor ? 'N' : 'P';
            const char *on = grade == 'G' ? "\033[32m" : grade == 'N' ? "\033[33m" : "\033[31m";
            fprintf(out, "  %s%*s %c%s", colour ? on : "", widths[m] - 2, val, grade,
                    colour ? "\033[0m" : "");
        }
        fprintf(out, "\n");
    }
    if (json_array_size(routes) == 0)
        fprintf(out, "(no views in this range)\n");
    fprintf(out, "p75 in ms (CLS unitless); G good, N needs improvement, P poor\n");
    return ferror(out) ? VP_ERR_IO : 0;
}

static int cmd_report(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, OPT_DB},       {"since", required_argument, NULL, OPT_SINCE},
        {"until", required_argument, NULL, OPT_UNTIL}, {"route", required_argument, NULL, OPT_ROUTE},
        {"label", required_argument, NULL, OPT_LABEL}, {"format", required_argument, NULL, OPT_FORMAT},
        {"help", no_argument, NULL, OPT_HELP},         {NULL, 0, NULL, 0},
    };
    struct common c = {.db = DEFAULT_DB, .format = "table"};
    int o;
    while ((o = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (o) {
        case OPT_DB: c.db = optarg; break;
        case OPT_SINCE: c.since = optarg; break;
        case OPT_UNTIL: c.until = optarg; break;
        case OPT_ROUTE: c.route = optarg; break;
        case OPT_LABEL: c.label = optarg; break;
        case OPT_FORMAT: c.format = optarg; break;
        case OPT_HELP: fputs(usage_report, stdout); return 0;
        case ':': fail("report: %s: missing value", argv[optind - 1]); return EXIT_USAGE;
        default: fail("report: %s: unknown option (see --help)", argv[optind - 1]); return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fail("report: unexpected argument \"%.60s\"", argv[optind]);
        return EXIT_USAGE;
    }
    int fmt = strcmp(c.format, "table") == 0 ? 0 : strcmp(c.format, "json") == 0 ? 1
            : strcmp(c.format, "csv") == 0   ? 2 : -1;
    if (fmt < 0) {
        fail("--format: \"%.20s\": expected table, json or csv", c.format);
        return EXIT_USAGE;
    }
    struct query_filter f;
    int st = filter_from(&c, &f);
    if (st)
        return st;
    struct store_reader *r = NULL;
    if ((st = open_db(c.db, &r, EXIT_RUNTIME)) != 0)
        return st;
    json_t *summary = NULL;
    int rc = query_summary(r, &f, &summary);
    store_reader_free(r);
    if (rc) {
        fail("report: %s: %s", c.db, query_error(rc));
        return EXIT_RUNTIME;
    }
    if (fmt == 0) {
        bool colour = isatty(STDOUT_FILENO) && !getenv("NO_COLOR");
        rc = print_table(summary, stdout, colour);
    } else {
        struct evbuffer *b = evbuffer_new();
        rc = !b ? VP_ERR_NOMEM : fmt == 1 ? export_json(b, summary) : export_summary_csv(b, summary);
        if (rc == 0 && fmt == 1)
            rc = evbuffer_add(b, "\n", 1) ? VP_ERR_NOMEM : 0;
        if (rc == 0)
            rc = write_buf(b, stdout);
        if (b)
            evbuffer_free(b);
    }
    json_decref(summary);
    if (rc == 0 && fflush(stdout) != 0)
        rc = VP_ERR_IO;
    if (rc) {
        fail("report: cannot write the output: %s", vp_strerror(rc));
        return EXIT_RUNTIME;
    }
    return 0;
}

/* ---- export ------------------------------------------------------------------------------ */

/* True when outpath is an existing file that is the database db or one of its companion files
 * (-wal, -shm, -journal), by device and inode, so that a symlink or hard link counts too:
 * fopen("wb") on it would truncate the stored data. */
static bool out_is_database(const char *outpath, const char *db)
{
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    struct stat o, d;
    if (stat(outpath, &o) != 0)
        return false;
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        char p[4096];
        int n = snprintf(p, sizeof p, "%s%s", db, suffix[i]);
        if (n < 0 || (size_t)n >= sizeof p)
            continue;
        if (stat(p, &d) == 0 && d.st_dev == o.st_dev && d.st_ino == o.st_ino)
            return true;
    }
    return false;
}

/* Writes b to outpath (or stdout); returns the exit status. */
static int emit(struct evbuffer *b, const char *outpath)
{
    FILE *out = stdout;
    if (outpath && !(out = fopen(outpath, "wb"))) {
        fail("--out: %s: %s", outpath, strerror(errno));
        return EXIT_USAGE;
    }
    int rc = write_buf(b, out);
    if (out != stdout) {
        if (fclose(out) != 0)
            rc = VP_ERR_IO;
    } else if (fflush(out) != 0) {
        rc = VP_ERR_IO;
    }
    if (rc) {
        fail("export: cannot write %s", outpath ? outpath : "the output");
        return EXIT_RUNTIME;
    }
    return 0;
}

static int cmp_lcp_desc(const void *x, const void *y)
{
    const json_t *a = *(const json_t *const *)x, *b = *(const json_t *const *)y;
    double la = json_number_value(json_object_get(json_object_get(a, "metrics"), "LCP"));
    double lb = json_number_value(json_object_get(json_object_get(b, "metrics"), "LCP"));
    return (la < lb) - (la > lb);
}

#define HTML_SLOWEST 3

/* export --route R [--label L] --format html: the route's percentiles and the waterfalls of
 * its slowest views (by LCP). Takes ownership of r. */
static int export_route_html(struct store_reader *r, const char *db, const char *route,
                             const char *label, const char *outpath)
{
    struct query_filter f = {.route = route, .label = label, .limit = 1000};
    json_t *sum = NULL, *views = NULL, *picked = json_array();
    struct evbuffer *b = evbuffer_new();
    const json_t **list = NULL;
    int rc = !picked || !b ? VP_ERR_NOMEM : query_summary(r, &f, &sum);
    if (rc == 0)
        rc = query_views(r, &f, &views);
    const json_t *rs = json_array_get(json_object_get(sum, "routes"), 0);
    if (rc == 0 && !rs) {
        fail("export: --route: %s: no views%s%s", route, label ? " with label " : "",
             label ? label : "");
        rc = -1;
        goto done;
    }
    size_t nv = json_array_size(json_object_get(views, "views")), k = 0;
    if (rc == 0 && !(list = calloc(nv ? nv : 1, sizeof *list)))
        rc = VP_ERR_NOMEM;
    for (size_t i = 0; rc == 0 && i < nv; i++) {
        const json_t *v = json_array_get(json_object_get(views, "views"), i);
        if (json_is_number(json_object_get(json_object_get(v, "metrics"), "LCP")))
            list[k++] = v;
    }
    if (rc == 0 && k)
        qsort(list, k, sizeof *list, cmp_lcp_desc);
    for (size_t i = 0; rc == 0 && i < k && i < HTML_SLOWEST; i++) {
        json_t *d = NULL;
        rc = query_view(r, json_string_value(json_object_get(list[i], "id")), &d);
        if (rc == 0 && json_array_append_new(picked, d))
            rc = VP_ERR_NOMEM;
    }
    if (rc == 0)
        rc = html_export_route(b, rs, picked, label);
done:
    store_reader_free(r);
    free(list);
    json_decref(sum);
    json_decref(views);
    json_decref(picked);
    int st = 0;
    if (rc == -1)
        st = EXIT_RUNTIME;
    else if (rc) {
        fail("export: %s: %s", db, query_error(rc));
        st = EXIT_RUNTIME;
    } else {
        st = emit(b, outpath);
    }
    if (b)
        evbuffer_free(b);
    return st;
}

static int cmd_export(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, OPT_DB},   {"view", required_argument, NULL, OPT_VIEW},
        {"last", no_argument, NULL, OPT_LAST},     {"format", required_argument, NULL, OPT_FORMAT},
        {"out", required_argument, NULL, OPT_OUT}, {"help", no_argument, NULL, OPT_HELP},
        {"route", required_argument, NULL, OPT_ROUTE}, {"label", required_argument, NULL, OPT_LABEL},
        {NULL, 0, NULL, 0},
    };
    const char *db = DEFAULT_DB, *view = NULL, *format = "har", *outpath = NULL, *route = NULL,
               *label = NULL;
    bool last = false;
    int o;
    while ((o = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (o) {
        case OPT_DB: db = optarg; break;
        case OPT_VIEW: view = optarg; break;
        case OPT_LAST: last = true; break;
        case OPT_FORMAT: format = optarg; break;
        case OPT_OUT: outpath = optarg; break;
        case OPT_ROUTE: route = optarg; break;
        case OPT_LABEL: label = optarg; break;
        case OPT_HELP: fputs(usage_export, stdout); return 0;
        case ':': fail("export: %s: missing value", argv[optind - 1]); return EXIT_USAGE;
        default: fail("export: %s: unknown option (see --help)", argv[optind - 1]); return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fail("export: unexpected argument \"%.60s\"", argv[optind]);
        return EXIT_USAGE;
    }
    if ((view != NULL) + last + (route != NULL) != 1) {
        fail("export: give exactly one of --view ID, --last and --route ROUTE");
        return EXIT_USAGE;
    }
    int fmt = strcmp(format, "har") == 0 ? 0 : strcmp(format, "json") == 0 ? 1
            : strcmp(format, "csv") == 0 ? 2 : strcmp(format, "html") == 0 ? 3 : -1;
    if (fmt < 0) {
        fail("--format: \"%.20s\": expected har, json, csv or html", format);
        return EXIT_USAGE;
    }
    if (route && (fmt != 3 || route[0] != '/')) {
        fail("--route: expected a route starting with / and --format html");
        return EXIT_USAGE;
    }
    if (label && (!route || !*label || strlen(label) > 64)) {
        fail("--label: goes with --route (1 to 64 characters)");
        return EXIT_USAGE;
    }
    if (view) {
        size_t n = strlen(view);
        bool ok = n >= 8 && n <= 64;
        for (size_t i = 0; ok && i < n; i++)
            ok = (view[i] >= 'a' && view[i] <= 'z') || (view[i] >= 'A' && view[i] <= 'Z') ||
                 (view[i] >= '0' && view[i] <= '9') || view[i] == '_' || view[i] == '-';
        if (!ok) {
            fail("--view: expected a view id of 8 to 64 characters [A-Za-z0-9_-]");
            return EXIT_USAGE;
        }
    }
    if (outpath && out_is_database(outpath, db)) {
        fail("--out: %s: is the database (or one of its files); choose another file", outpath);
        return EXIT_USAGE;
    }
    struct store_reader *r = NULL;
    int st = open_db(db, &r, EXIT_RUNTIME);
    if (st)
        return st;
    char idbuf[80];
    int rc = 0;
    if (route)
        return export_route_html(r, db, route, label, outpath);
    if (last) {
        rc = query_last_view_id(r, idbuf, sizeof idbuf);
        if (rc == VP_ERR_NOTFOUND) {
            store_reader_free(r);
            fail("export: %s: the database holds no views", db);
            return EXIT_RUNTIME;
        }
        view = idbuf;
    }
    json_t *j = NULL;
    if (rc == 0)
        rc = fmt == 0 ? query_view_har(r, view, &j) : query_view(r, view, &j);
    store_reader_free(r);
    if (rc == VP_ERR_NOTFOUND) {
        fail("export: --view: %s: no such view", view);
        return EXIT_RUNTIME;
    }
    if (rc) {
        fail("export: %s: %s", db, query_error(rc));
        return EXIT_RUNTIME;
    }
    struct evbuffer *b = evbuffer_new();
    rc = !b        ? VP_ERR_NOMEM
         : fmt == 2 ? export_view_csv(b, j)
         : fmt == 3 ? html_export_view(b, j)
                    : export_json(b, j);
    if (rc == 0 && fmt < 2)
        rc = evbuffer_add(b, "\n", 1) ? VP_ERR_NOMEM : 0;
    json_decref(j);
    if (rc) {
        if (b)
            evbuffer_free(b);
        fail("export: %s", vp_strerror(rc));
        return EXIT_RUNTIME;
    }
    int st2 = emit(b, outpath);
    evbuffer_free(b);
    return st2;
}

/* ---- check ------------------------------------------------------------------------------- */

static int cmd_check(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, OPT_DB},       {"budget", required_argument, NULL, OPT_BUDGET},
        {"since", required_argument, NULL, OPT_SINCE}, {"until", required_argument, NULL, OPT_UNTIL},
        {"route", required_argument, NULL, OPT_ROUTE}, {"label", required_argument, NULL, OPT_LABEL},
        {"api-prefix", required_argument, NULL, OPT_API_PREFIX},
        {"help", no_argument, NULL, OPT_HELP},         {NULL, 0, NULL, 0},
    };
    struct common c = {.db = DEFAULT_DB};
    const char *budget_path = NULL, *api_prefix = "/api/";
    int o;
    while ((o = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (o) {
        case OPT_DB: c.db = optarg; break;
        case OPT_BUDGET: budget_path = optarg; break;
        case OPT_SINCE: c.since = optarg; break;
        case OPT_UNTIL: c.until = optarg; break;
        case OPT_ROUTE: c.route = optarg; break;
        case OPT_LABEL: c.label = optarg; break;
        case OPT_API_PREFIX: api_prefix = optarg; break;
        case OPT_HELP: fputs(usage_check, stdout); return 0;
        case ':': fail("check: %s: missing value", argv[optind - 1]); return EXIT_USAGE;
        default: fail("check: %s: unknown option (see --help)", argv[optind - 1]); return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fail("check: unexpected argument \"%.60s\"", argv[optind]);
        return EXIT_USAGE;
    }
    if (api_prefix[0] != '/' || strlen(api_prefix) > 256) {
        fail("--api-prefix: expected a path starting with /");
        return EXIT_USAGE;
    }
    struct query_filter f;
    int st = filter_from(&c, &f);
    if (st)
        return st;
    struct budget *b = NULL;
    char err[512];
    int rc = budget_path ? budget_load(&b, budget_path, err, sizeof err) : budget_default(&b);
    if (rc) {
        if (rc == VP_ERR_NOMEM)
            fail("check: out of memory");
        else
            fail("--budget: %s", err);
        return EXIT_USAGE;
    }
    struct store_reader *r = NULL;
    if ((st = open_db(c.db, &r, EXIT_USAGE)) != 0) {
        budget_free(b);
        return st;
    }
    json_t *res = NULL;
    rc = budget_check(r, &f, b, api_prefix, &res);
    store_reader_free(r);
    budget_free(b);
    if (rc) {
        fail("check: %s: %s", c.db, query_error(rc));
        return EXIT_USAGE;
    }
    long violations = (long)json_integer_value(json_object_get(res, "violations"));
    long checked = (long)json_integer_value(json_object_get(res, "checked"));
    size_t i;
    const json_t *item;
    json_array_foreach(json_object_get(res, "results"), i, item) {
        char line[600];
        if (json_is_true(json_object_get(item, "ok")))
            continue;
        if (budget_format_result(item, line, sizeof line) != 0)
            continue;
        for (char *ch = line; *ch; ch++) /* routes came from browsers */
            if ((unsigned char)*ch < 0x20 || *ch == 0x7f)
                *ch = '?';
        printf("over budget: %s\n", line);
    }
    json_decref(res);
    if (checked == 0)
        printf("no data matched any budget\n");
    else if (violations)
        printf("%ld of %ld budget checks over\n", violations, checked);
    else
        printf("within budget: %ld checks\n", checked);
    if (fflush(stdout) != 0) {
        fail("check: cannot write the output");
        return EXIT_USAGE;
    }
    return violations ? 1 : 0;
}

/* ---- compare ----------------------------------------------------------------------------- */

static long parse_count(const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    return errno || end == s || *end || v < lo || v > hi ? -1 : v;
}

static void fmt_val(const char *metric, double v, char *out, size_t cap)
{
    int w = strcmp(metric, "CLS") == 0 ? snprintf(out, cap, "%.3f", v)
                                       : snprintf(out, cap, "%.0f", v);
    if (w < 0 || (size_t)w >= cap)
        snprintf(out, cap, "?");
}

static int cmd_compare(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, OPT_DB},         {"route", required_argument, NULL, OPT_ROUTE},
        {"format", required_argument, NULL, OPT_FORMAT}, {"budget", required_argument, NULL, OPT_BUDGET},
        {"min-views", required_argument, NULL, OPT_MIN_VIEWS},
        {"seed", required_argument, NULL, OPT_SEED},
        {"api-prefix", required_argument, NULL, OPT_API_PREFIX},
        {"fail-on-regression", no_argument, NULL, OPT_FAIL_REGRESSION},
        {"help", no_argument, NULL, OPT_HELP},           {NULL, 0, NULL, 0},
    };
    const char *db = DEFAULT_DB, *route = NULL, *format = "table", *budget_path = NULL,
               *api_prefix = "/api/";
    long min_n = COMPARE_MIN_N_DEFAULT, seed = 1;
    bool fail_reg = false;
    /* A side like "-2h..-1h" starts with '-': hide such words from getopt behind a marker
     * (they stay in place as non-options, in order) and restore them afterwards. */
    char *hidden[8];
    int nhidden = 0;
    char marks[8][4];
    for (int k = 1; k < argc; k++) {
        if (argv[k][0] == '-' && argv[k][1] >= '0' && argv[k][1] <= '9' && nhidden < 8 &&
            strcmp(argv[k - 1], "--db") != 0) {
            hidden[nhidden] = argv[k];
            marks[nhidden][0] = '\x01';
            marks[nhidden][1] = (char)('0' + nhidden);
            marks[nhidden][2] = '\0';
            argv[k] = marks[nhidden++];
        }
    }
    int o;
    while ((o = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (o) {
        case OPT_DB: db = optarg; break;
        case OPT_ROUTE: route = optarg; break;
        case OPT_FORMAT: format = optarg; break;
        case OPT_BUDGET: budget_path = optarg; break;
        case OPT_API_PREFIX: api_prefix = optarg; break;
        case OPT_FAIL_REGRESSION: fail_reg = true; break;
        case OPT_MIN_VIEWS:
            if ((min_n = parse_count(optarg, 1, 1000000)) < 0) {
                fail("--min-views: \"%.20s\": expected an integer from 1 to 1000000", optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_SEED:
            if ((seed = parse_count(optarg, 0, 2147483647L)) < 0) {
                fail("--seed: \"%.20s\": expected a non-negative integer", optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_HELP: fputs(usage_compare, stdout); return 0;
        case ':': fail("compare: %s: missing value", argv[optind - 1]); return EXIT_USAGE;
        default: fail("compare: %s: unknown option (see --help)", argv[optind - 1]); return EXIT_USAGE;
        }
    }
    for (int k = optind; k < argc; k++)
        if (argv[k][0] == '\x01' && argv[k][1] >= '0' && argv[k][1] < '0' + nhidden)
            argv[k] = hidden[argv[k][1] - '0'];
    if (argc - optind != 2) {
        fail("compare: expected two sides A and B (labels or FROM..TO ranges)");
        return EXIT_USAGE;
    }
    bool json_out = strcmp(format, "json") == 0;
    if (!json_out && strcmp(format, "table") != 0) {
        fail("--format: \"%.20s\": expected table or json", format);
        return EXIT_USAGE;
    }
    if (route && route[0] != '/') {
        fail("--route: \"%.60s\": expected a route starting with /", route);
        return EXIT_USAGE;
    }
    if (api_prefix[0] != '/') {
        fail("--api-prefix: expected a path starting with /");
        return EXIT_USAGE;
    }
    struct query_filter fa, fb;
    char err[512];
    int64_t now = vp_now_ms();
    if (compare_parse_side(argv[optind], now, &fa, err, sizeof err) != 0 ||
        compare_parse_side(argv[optind + 1], now, &fb, err, sizeof err) != 0) {
        fail("compare: %s", err);
        return EXIT_USAGE;
    }
    fa.route = fb.route = route;
    struct budget *b = NULL;
    int rc = budget_path ? budget_load(&b, budget_path, err, sizeof err) : budget_default(&b);
    if (rc) {
        fail("--budget: %s", rc == VP_ERR_NOMEM ? "out of memory" : err);
        return EXIT_USAGE;
    }
    struct store_reader *r = NULL;
    int st = open_db(db, &r, EXIT_RUNTIME);
    if (st) {
        budget_free(b);
        return st;
    }
    json_t *sa = NULL, *sb = NULL, *res = NULL;
    rc = query_samples(r, &fa, api_prefix, &sa);
    if (rc == 0)
        rc = query_samples(r, &fb, api_prefix, &sb);
    store_reader_free(r);
    if (rc == 0)
        rc = compare_samples(sa, sb, (uint64_t)seed, (int)min_n, &res);
    json_decref(sa);
    json_decref(sb);
    if (rc) {
        budget_free(b);
        fail("compare: %s: %s", db, query_error(rc));
        return EXIT_RUNTIME;
    }
    int regressions = 0;
    size_t i;
    const json_t *row;
    json_array_foreach(json_object_get(res, "rows"), i, row) {
        const char *v = json_string_value(json_object_get(row, "verdict"));
        if (v && strcmp(v, "worse") == 0 &&
            budget_covers(b, json_string_value(json_object_get(row, "route")),
                          json_string_value(json_object_get(row, "metric"))))
            regressions++;
    }
    budget_free(b);
    if (json_out) {
        struct evbuffer *eb = evbuffer_new();
        rc = !eb ? VP_ERR_NOMEM : export_json(eb, res);
        if (rc == 0)
            rc = evbuffer_add(eb, "\n", 1) ? VP_ERR_NOMEM : write_buf(eb, stdout);
        if (eb)
            evbuffer_free(eb);
    } else {
        printf("%-22s %-6s %5s %5s %8s %8s %8s  %-19s %s\n", "route", "metric", "n A", "n B",
               "A", "B", "B-A", "95% CI", "verdict");
        json_array_foreach(json_object_get(res, "rows"), i, row) {
            const char *metric = json_string_value(json_object_get(row, "metric"));
            const char *method = json_string_value(json_object_get(row, "method"));
            char name[ROUTE_COL + 1], full[700], va[24] = "-", vb[24] = "-", dd[24] = "-",
                 lo[24] = "", hi[24] = "", ci[48] = "-";
            if (snprintf(full, sizeof full, "%s%s%s", method ? method : "", method ? " " : "",
                         json_string_value(json_object_get(row, "route"))) < 0)
                continue;
            route_cell(full, name);
            name[22] = '\0';
            const char *stat = json_string_value(json_object_get(row, "stat"));
            const json_t *pa = json_object_get(json_object_get(row, "a"), stat);
            const json_t *pb = json_object_get(json_object_get(row, "b"), stat);
            if (json_is_number(pa))
                fmt_val(metric, json_number_value(pa), va, sizeof va);
            if (json_is_number(pb))
                fmt_val(metric, json_number_value(pb), vb, sizeof vb);
            const json_t *ciw = json_object_get(row, "ci");
            if (json_is_number(json_object_get(row, "diff"))) {
                fmt_val(metric, json_number_value(json_object_get(row, "diff")), dd, sizeof dd);
                fmt_val(metric, json_number_value(json_array_get(ciw, 0)), lo, sizeof lo);
                fmt_val(metric, json_number_value(json_array_get(ciw, 1)), hi, sizeof hi);
                if (snprintf(ci, sizeof ci, "[%s, %s]", lo, hi) < 0)
                    ci[0] = '\0';
            }
            printf("%-22s %-6s %5lld %5lld %8s %8s %8s  %-19s %s\n", name, metric,
                   (long long)json_integer_value(json_object_get(json_object_get(row, "a"), "n")),
                   (long long)json_integer_value(json_object_get(json_object_get(row, "b"), "n")),
                   va, vb, dd, ci, json_string_value(json_object_get(row, "verdict")));
        }
        if (json_array_size(json_object_get(res, "rows")) == 0)
            printf("(no route has data on both sides)\n");
        printf("%s p75 (API: p95); CI: bootstrap over views, %d resamples, seed %ld; "
               "fewer than %ld views on a side: not enough data\n",
               "values:", COMPARE_RESAMPLES, seed, min_n);
    }
    json_decref(res);
    if (fflush(stdout) != 0 || rc) {
        fail("compare: cannot write the output");
        return EXIT_RUNTIME;
    }
    if (fail_reg && regressions) {
        fprintf(stderr, "vitals-proxy: compare: %d budgeted metric%s significantly worse\n",
                regressions, regressions == 1 ? "" : "s");
        return 1;
    }
    return 0;
}

int cli_main(int argc, char **argv)
{
    if (argc < 2 || !cli_is_subcommand(argv[1])) {
        fail("%s: unknown sub-command (expected report, export, check or compare)",
             argc < 2 ? "(none)" : argv[1]);
        return EXIT_USAGE;
    }
    optind = 0; /* full re-initialisation of getopt (glibc), so cli_main can run repeatedly */
    opterr = 0;
    if (strcmp(argv[1], "report") == 0)
        return cmd_report(argc - 1, argv + 1);
    if (strcmp(argv[1], "export") == 0)
        return cmd_export(argc - 1, argv + 1);
    if (strcmp(argv[1], "compare") == 0)
        return cmd_compare(argc - 1, argv + 1);
    return cmd_check(argc - 1, argv + 1);
}
