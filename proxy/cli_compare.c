/* `vitals-proxy compare` (see cli_compare.h). Parses its options, runs store/compare against a
 * read-only handle, prints an 80-column table or the comparison JSON, and decides the exit
 * status. Route names came from browsers: they are made terminal-safe (control and non-ASCII
 * bytes become '?') and cut to fit before printing. Budget filtering: a "worse" series counts
 * as a regression when some budget rule's pattern matches its route and names its metric
 * (budget_pattern_match over budget_to_json), whatever the rule's limit. */
#include "config.h"

#include "proxy/cli_compare.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/vp_buf.h"
#include "common/vp_err.h"
#include "store/compare.h"
#include "store/query.h"
#include "web/budget.h"
#include "web/export_html.h"

#include <event2/buffer.h>

#define EXIT_REGRESSION 1
#define EXIT_USAGE 2
#define LINE_COLS 78

static const char usage[] =
    "usage: vitals-proxy compare [--db PATH] A B [--route ROUTE] [--format table|json]\n"
    "                            [--fail-on-regression] [--budget FILE] [--resamples N]\n"
    "                            [--seed N] [--min-n N] [--api-prefix PATH]\n"
    "A, B: a label (baseline) or a time range (2026-11-24T10:00..11:00, -2h..-1h)\n"
    "exit status: 0 done, 1 significantly worse (with --fail-on-regression),\n"
    "             2 usage, configuration or database error\n";

__attribute__((format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        line[0] = '\0';
    for (char *c = line; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    fprintf(stderr, "vitals-proxy: %s\n", line);
}

static bool parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    if (!s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return false;
    *out = v;
    return true;
}

/* Terminal-safe copy of s, at most cols bytes, "..." when cut. */
static void safe_cell(const char *s, char *out, size_t cols)
{
    size_t n = strlen(s), keep = n > cols ? cols - 3 : n;
    for (size_t i = 0; i < keep; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = c < 0x20 || c >= 0x7f ? '?' : (char)c;
    }
    if (n > cols) {
        memcpy(out + keep, "...", 3);
        keep += 3;
    }
    out[keep] = '\0';
}

/* A value in the unit of its metric, short: ms "2345", CLS "0.123", bytes "123.4k". */
static void fmt_val(char *out, size_t cap, double v, const char *unit, bool sign)
{
    int w;
    if (!isfinite(v))
        w = snprintf(out, cap, "-");
    else if (strcmp(unit, "bytes") == 0)
        w = snprintf(out, cap, sign ? "%+.1fk" : "%.1fk", v / 1000.0);
    else if (unit[0] == '\0')
        w = snprintf(out, cap, sign ? "%+.3f" : "%.3f", v);
    else
        w = snprintf(out, cap, sign ? "%+.0f" : "%.0f", v);
    if (w < 0 || (size_t)w >= cap)
        snprintf(out, cap, "?");
}

static double jnum(const json_t *o, const char *k1, const char *k2)
{
    const json_t *v = json_object_get(o, k1);
    if (k2)
        v = json_object_get(v, k2);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static void print_row(FILE *out, const char *name, const json_t *m)
{
    const char *unit = json_string_value(json_object_get(m, "unit"));
    const char *stat = json_string_value(json_object_get(m, "stat"));
    const char *verdict = json_string_value(json_object_get(m, "verdict"));
    unit = unit ? unit : "";
    stat = stat ? stat : "p75";
    char na[48], a[24], b[24], d[24], lo[24], hi[24], ci[48], label[16];
    snprintf(na, sizeof na, "%.0f/%.0f", jnum(m, "a", "n"), jnum(m, "b", "n"));
    fmt_val(a, sizeof a, jnum(m, "a", stat), unit, false);
    fmt_val(b, sizeof b, jnum(m, "b", stat), unit, false);
    fmt_val(d, sizeof d, jnum(m, "diff", NULL), unit, true);
    const json_t *c = json_object_get(m, "ci");
    if (json_is_array(c)) {
        fmt_val(lo, sizeof lo, json_number_value(json_array_get(c, 0)), unit, true);
        fmt_val(hi, sizeof hi, json_number_value(json_array_get(c, 1)), unit, true);
        if (snprintf(ci, sizeof ci, "[%s, %s]", lo, hi) < 0)
            ci[0] = '\0';
    } else {
        memcpy(ci, "-", 2);
    }
    snprintf(label, sizeof label, "%.4s", name);
    fprintf(out, "  %-4s %9s %7s %7s %7s %-17s %s\n", label, na, a, b, d, ci,
            verdict ? verdict : "?");
}

static void print_side(FILE *out, const char *name, const json_t *s)
{
    char spec[64];
    const char *sp = json_string_value(json_object_get(s, "spec"));
    safe_cell(sp ? sp : "?", spec, 40);
    fprintf(out, "%s = %s (%.0f views, %.0f requests)\n", name, spec, jnum(s, "views", NULL),
            jnum(s, "requests", NULL));
}

static int print_table(FILE *out, const json_t *j)
{
    print_side(out, "A", json_object_get(j, "a"));
    print_side(out, "B", json_object_get(j, "b"));
    fprintf(out, "p75 (API: p95); diff = B - A with its 95 %% bootstrap interval (%.0f resamples,\n"
                 "seed %.0f); verdict needs >= %.0f views a side; lower is better.\n"
                 "Units: ms, CLS none, JS kB (k).\n\n",
            jnum(j, "resamples", NULL), jnum(j, "seed", NULL), jnum(j, "min_n", NULL));
    fprintf(out, "  %-4s %9s %7s %7s %7s %-17s %s\n", "", "n A/B", "A", "B", "diff",
            "95% interval", "verdict");
    size_t i, k;
    const json_t *r, *m;
    const json_t *routes = json_object_get(j, "routes"), *api = json_object_get(j, "api");
    json_array_foreach(routes, i, r) {
        char cell[LINE_COLS + 1];
        const char *route = json_string_value(json_object_get(r, "route"));
        safe_cell(route ? route : "?", cell, LINE_COLS);
        fprintf(out, "%s\n", cell);
        json_array_foreach(json_object_get(r, "metrics"), k, m) {
            const char *name = json_string_value(json_object_get(m, "metric"));
            print_row(out, name ? name : "?", m);
        }
    }
    if (json_array_size(api))
        fprintf(out, "API latency (proxy-timed)\n");
    json_array_foreach(api, i, m) {
        char cell[LINE_COLS + 1], line[LINE_COLS * 2];
        const char *route = json_string_value(json_object_get(m, "route"));
        const char *method = json_string_value(json_object_get(m, "method"));
        if (snprintf(line, sizeof line, "%s %s", method ? method : "?", route ? route : "?") < 0)
            line[0] = '\0';
        safe_cell(line, cell, LINE_COLS - 2);
        fprintf(out, "  %s\n", cell);
        print_row(out, "API", m);
    }
    if (json_array_size(routes) == 0 && json_array_size(api) == 0)
        fprintf(out, "(no data on either side)\n");
    fprintf(out, "\n%.0f worse, %.0f better\n", jnum(j, "worse", NULL), jnum(j, "better", NULL));
    return ferror(out) ? VP_ERR_IO : 0;
}

/* true when some rule of budget (file-format JSON) covers route and metric. */
static bool budgeted(const json_t *budget, const char *route, const char *metric)
{
    const char *pattern;
    const json_t *metrics;
    json_object_foreach((json_t *)budget, pattern, metrics) {
        if (json_object_get(metrics, metric) && budget_pattern_match(pattern, route))
            return true;
    }
    return false;
}

/* Counts the "worse" series that count as regressions (all, or the budgeted ones). */
static long regressions(const json_t *j, const json_t *budget)
{
    long n = 0;
    size_t i, k;
    const json_t *r, *m;
    json_array_foreach(json_object_get(j, "routes"), i, r) {
        const char *route = json_string_value(json_object_get(r, "route"));
        json_array_foreach(json_object_get(r, "metrics"), k, m) {
            const char *v = json_string_value(json_object_get(m, "verdict"));
            const char *name = json_string_value(json_object_get(m, "metric"));
            if (v && name && route && strcmp(v, "worse") == 0 &&
                (!budget || budgeted(budget, route, name)))
                n++;
        }
    }
    json_array_foreach(json_object_get(j, "api"), i, m) {
        const char *v = json_string_value(json_object_get(m, "verdict"));
        const char *route = json_string_value(json_object_get(m, "route"));
        if (v && route && strcmp(v, "worse") == 0 && (!budget || budgeted(budget, route, "API")))
            n++;
    }
    return n;
}

enum { OPT_DB = 1000, OPT_ROUTE, OPT_FORMAT, OPT_FAIL, OPT_BUDGET, OPT_RESAMPLES, OPT_SEED,
       OPT_MIN_N, OPT_API_PREFIX, OPT_HELP };

static int cli_compare_args(int argc, char **argv, const char **pos, size_t npos);

int cli_compare_main(int argc, char **argv)
{
    const char *pos[2] = {NULL, NULL};
    size_t npos = 0;
    /* A relative range (-2h..-1h) starts with '-': take such words out before getopt sees
     * them as options. Values of options never contain "..", except a range given as a value,
     * which no option takes. */
    char **args = calloc((size_t)argc + 1, sizeof *args);
    if (!args) {
        fail("compare: out of memory");
        return EXIT_USAGE;
    }
    int nargs = 0;
    for (int i = 0; i < argc; i++) {
        if (i > 0 && argv[i][0] == '-' && argv[i][1] != '-' && strstr(argv[i], "..")) {
            if (npos == 2) {
                fail("compare: unexpected argument \"%.60s\" (want two sides A B)", argv[i]);
                free(args);
                return EXIT_USAGE;
            }
            pos[npos++] = argv[i];
        } else {
            args[nargs++] = argv[i];
        }
    }
    int status = cli_compare_args(nargs, args, pos, npos);
    free(args);
    return status;
}

static int cli_compare_args(int argc, char **argv, const char **pos, size_t npos)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, OPT_DB},
        {"route", required_argument, NULL, OPT_ROUTE},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"fail-on-regression", no_argument, NULL, OPT_FAIL},
        {"budget", required_argument, NULL, OPT_BUDGET},
        {"resamples", required_argument, NULL, OPT_RESAMPLES},
        {"seed", required_argument, NULL, OPT_SEED},
        {"min-n", required_argument, NULL, OPT_MIN_N},
        {"api-prefix", required_argument, NULL, OPT_API_PREFIX},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    struct compare_options co;
    compare_options_default(&co);
    const char *db = "./vitals.db", *format = "table", *budget_path = NULL;
    bool fail_on = false;
    unsigned long long v;
    optind = 0;
    opterr = 0;
    int o;
    /* "-" first: positionals come back as 1, so A and B may sit among the options */
    while ((o = getopt_long(argc, argv, "-:", opts, NULL)) != -1) {
        switch (o) {
        case 1:
            if (npos == 2) {
                fail("compare: unexpected argument \"%.60s\" (want two sides A B)", optarg);
                return EXIT_USAGE;
            }
            pos[npos++] = optarg;
            break;
        case OPT_DB: db = optarg; break;
        case OPT_ROUTE: co.route = optarg; break;
        case OPT_FORMAT: format = optarg; break;
        case OPT_FAIL: fail_on = true; break;
        case OPT_BUDGET: budget_path = optarg; break;
        case OPT_RESAMPLES:
            if (!parse_uint(optarg, COMPARE_RESAMPLES_MAX, &v) || v < 1) {
                fail("--resamples: \"%.30s\": expected 1..%d", optarg, COMPARE_RESAMPLES_MAX);
                return EXIT_USAGE;
            }
            co.resamples = (unsigned)v;
            break;
        case OPT_SEED:
            if (!parse_uint(optarg, UINT64_MAX, &v)) {
                fail("--seed: \"%.30s\": expected a non-negative integer", optarg);
                return EXIT_USAGE;
            }
            co.seed = v;
            break;
        case OPT_MIN_N:
            if (!parse_uint(optarg, 1000000, &v) || v < 2) {
                fail("--min-n: \"%.30s\": expected 2..1000000", optarg);
                return EXIT_USAGE;
            }
            co.min_n = (unsigned)v;
            break;
        case OPT_API_PREFIX: co.api_prefix = optarg; break;
        case OPT_HELP: fputs(usage, stdout); return 0;
        case ':': fail("compare: %s: missing value", argv[optind - 1]); return EXIT_USAGE;
        default:
            fail("compare: %s: unknown option (see --help)", argv[optind - 1]);
            return EXIT_USAGE;
        }
    }
    if (npos != 2) {
        fail("compare: expected two sides A B (labels or time ranges), got %zu", npos);
        return EXIT_USAGE;
    }
    if (strcmp(format, "table") != 0 && strcmp(format, "json") != 0) {
        fail("--format: \"%.30s\": expected table or json", format);
        return EXIT_USAGE;
    }
    if (co.route && (strlen(co.route) > 2048 || co.route[0] != '/')) {
        fail("--route: expected a route template starting with /");
        return EXIT_USAGE;
    }
    if (co.api_prefix[0] != '/' || strlen(co.api_prefix) > 256) {
        fail("--api-prefix: expected a path starting with /");
        return EXIT_USAGE;
    }
    struct compare_side a, b;
    char err[512];
    int64_t now = vp_now_ms();
    if (compare_parse_side(pos[0], now, &a, err, sizeof err) != 0) {
        fail("compare: A: %s", err);
        return EXIT_USAGE;
    }
    if (compare_parse_side(pos[1], now, &b, err, sizeof err) != 0) {
        fail("compare: B: %s", err);
        return EXIT_USAGE;
    }
    json_t *budget_json = NULL;
    if (budget_path) {
        struct budget *bud = NULL;
        int rc = budget_load(&bud, budget_path, err, sizeof err);
        if (rc) {
            fail("--budget: %s", rc == VP_ERR_NOMEM ? "out of memory" : err);
            return EXIT_USAGE;
        }
        budget_json = budget_to_json(bud);
        budget_free(bud);
        if (!budget_json) {
            fail("--budget: out of memory");
            return EXIT_USAGE;
        }
    }
    int status = EXIT_USAGE;
    struct store_reader *r = NULL;
    json_t *j = NULL;
    struct stat st;
    if (stat(db, &st) != 0) {
        fail("--db: %s: %s", db, strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        fail("--db: %s: not a regular file", db);
        goto done;
    }
    int rc = store_reader_open(&r, db, err, sizeof err);
    if (rc) {
        fail("--db: %s: %s", db,
             rc == VP_ERR_VERSION ? "made by a newer vitals-proxy; upgrade to read it"
                                  : *err ? err : vp_strerror(rc));
        goto done;
    }
    rc = compare_run(r, &a, &b, &co, &j);
    if (rc) {
        fail("compare: %s: %s", db,
             rc == VP_ERR_LIMIT ? "too many samples on one side (narrow the sides or --route)"
             : rc == VP_ERR_NOMEM ? "out of memory"
                                  : "database query failed");
        goto done;
    }
    long reg = regressions(j, budget_json);
    if (strcmp(format, "json") == 0) {
        if (json_object_set_new(j, "regressions", json_integer(reg)) ||
            json_dumpf(j, stdout, JSON_COMPACT | JSON_REAL_PRECISION(10)) != 0 ||
            fputc('\n', stdout) == EOF) {
            fail("compare: cannot write the output");
            goto done;
        }
    } else {
        if (print_table(stdout, j) != 0) {
            fail("compare: cannot write the output");
            goto done;
        }
        if (fail_on)
            printf("%ld regression%s%s\n", reg, reg == 1 ? "" : "s",
                   budget_json ? " in budgeted metrics" : "");
    }
    if (fflush(stdout) != 0) {
        fail("compare: cannot write the output");
        goto done;
    }
    status = fail_on && reg > 0 ? EXIT_REGRESSION : 0;
done:
    json_decref(j);
    json_decref(budget_json);
    store_reader_free(r);
    return status;
}

/* ---- export --format html ---------------------------------------------------------------- */

static const char usage_export_html[] =
    "usage: vitals-proxy export --format html [--db PATH] (--view ID | --last |\n"
    "                           --route ROUTE [--label LABEL]) [--out FILE]\n";

_Bool cli_export_wants_html(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--format=html") == 0)
            return 1;
        if (strcmp(argv[i], "--format") == 0 && i + 1 < argc && strcmp(argv[i + 1], "html") == 0)
            return 1;
    }
    return 0;
}

static bool view_id_ok(const char *v)
{
    size_t n = strlen(v);
    bool ok = n >= 8 && n <= 64;
    for (size_t i = 0; ok && i < n; i++)
        ok = (v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z') ||
             (v[i] >= '0' && v[i] <= '9') || v[i] == '_' || v[i] == '-';
    return ok;
}

enum { OPT_X_DB = 2000, OPT_X_VIEW, OPT_X_LAST, OPT_X_ROUTE, OPT_X_LABEL, OPT_X_FORMAT, OPT_X_OUT,
       OPT_X_HELP };

int cli_export_html_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, OPT_X_DB},       {"view", required_argument, NULL, OPT_X_VIEW},
        {"last", no_argument, NULL, OPT_X_LAST},         {"route", required_argument, NULL, OPT_X_ROUTE},
        {"label", required_argument, NULL, OPT_X_LABEL}, {"format", required_argument, NULL, OPT_X_FORMAT},
        {"out", required_argument, NULL, OPT_X_OUT},     {"help", no_argument, NULL, OPT_X_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *db = "./vitals.db", *view = NULL, *route = NULL, *label = NULL, *outpath = NULL;
    bool last = false;
    optind = 0;
    opterr = 0;
    int o;
    while ((o = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (o) {
        case OPT_X_DB: db = optarg; break;
        case OPT_X_VIEW: view = optarg; break;
        case OPT_X_LAST: last = true; break;
        case OPT_X_ROUTE: route = optarg; break;
        case OPT_X_LABEL: label = optarg; break;
        case OPT_X_FORMAT:
            if (strcmp(optarg, "html") != 0) {
                fail("--format: \"%.20s\": expected html here", optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_X_OUT: outpath = optarg; break;
        case OPT_X_HELP: fputs(usage_export_html, stdout); return 0;
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
    if (view && !view_id_ok(view)) {
        fail("--view: expected a view id of 8 to 64 characters [A-Za-z0-9_-]");
        return EXIT_USAGE;
    }
    if (route && (route[0] != '/' || strlen(route) > 2048)) {
        fail("--route: expected a route template starting with /");
        return EXIT_USAGE;
    }
    if (label && (!route || !compare_label_valid(label))) {
        fail("--label: expected 1 to 64 characters of A-Z a-z 0-9 . _ -, with --route");
        return EXIT_USAGE;
    }
    struct stat st;
    errno = 0;
    if (stat(db, &st) != 0 || !S_ISREG(st.st_mode)) {
        fail("--db: %s: %s", db, errno ? strerror(errno) : "not a regular file");
        return EXIT_USAGE;
    }
    struct store_reader *r = NULL;
    char err[256] = "", idbuf[80];
    int rc = store_reader_open(&r, db, err, sizeof err);
    if (rc) {
        fail("--db: %s: %s", db, *err ? err : vp_strerror(rc));
        return 1;
    }
    struct evbuffer *b = evbuffer_new();
    if (!b)
        rc = VP_ERR_NOMEM;
    else if (last && (rc = query_last_view_id(r, idbuf, sizeof idbuf)) == 0)
        view = idbuf;
    if (rc == 0)
        rc = route ? export_html_write_route(r, route, label, b) : export_html_write_view(r, view, b);
    store_reader_free(r);
    if (rc) {
        evbuffer_free(b);
        if (rc == VP_ERR_NOTFOUND)
            fail("export: %s", route ? "no views of that route (and label)"
                               : last ? "the database holds no views" : "no such view");
        else
            fail("export: %s: %s", db, rc == VP_ERR_NOMEM ? "out of memory" : "database query failed");
        return 1;
    }
    FILE *out = stdout;
    if (outpath && !(out = fopen(outpath, "wb"))) {
        fail("--out: %s: %s", outpath, strerror(errno));
        evbuffer_free(b);
        return EXIT_USAGE;
    }
    size_t n = evbuffer_get_length(b);
    const unsigned char *p = evbuffer_pullup(b, -1);
    bool ok = p && fwrite(p, 1, n, out) == n;
    evbuffer_free(b);
    ok = (out == stdout ? fflush(out) == 0 : fclose(out) == 0) && ok;
    if (!ok) {
        fail("export: cannot write %s", outpath ? outpath : "the output");
        return 1;
    }
    return 0;
}
