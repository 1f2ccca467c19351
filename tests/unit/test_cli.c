/* proxy/cli: exit statuses, one-line errors and outputs of report / export / check, against the
 * store/query.h test double (test_report_db.c repeats the main paths on a real database). */
#include "config.h"

#include "proxy/cli.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tap.h"

static char out[16384], err[4096];

static void slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
}

/* Runs cli_main with the NULL-terminated arguments, capturing stdout and stderr. */
static int run(const char *first, ...)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)"vitals-proxy";
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && argc < 31; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    int fo = open("test_cli.out", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int fe = open("test_cli.err", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fo, 1);
    dup2(fe, 2);
    int rc = cli_main(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    close(fo);
    close(fe);
    slurp("test_cli.out", out, sizeof out);
    slurp("test_cli.err", err, sizeof err);
    return rc;
}

/* true when err is exactly one line starting "vitals-proxy: " and containing what. */
static int one_line(const char *what)
{
    size_t n = strlen(err);
    return strncmp(err, "vitals-proxy: ", 14) == 0 && n > 0 && err[n - 1] == '\n' &&
           strchr(err, '\n') == err + n - 1 && strstr(err, what) != NULL;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
}

static int max_line(const char *s)
{
    int best = 0, cur = 0;
    for (; *s; s++) {
        if (*s == '\n') {
            if (cur > best)
                best = cur;
            cur = 0;
        } else {
            cur++;
        }
    }
    return cur > best ? cur : best;
}

int main(void)
{
    const char *db = "test_cli.fake.db";
    write_file(db, "FAKE-VITALS\n");
    write_file("test_cli.notdb", "hello\n");
    write_file("test_cli.newer", "NEWER\n");

    TAP_OK(cli_is_subcommand("report") && cli_is_subcommand("check") &&
               cli_is_subcommand("export") && !cli_is_subcommand("serve") &&
               !cli_is_subcommand(NULL),
           "cli/is_subcommand");
    TAP_OK(run("bogus", NULL) == 2 && one_line("unknown sub-command"), "cli/unknown_subcommand");

    /* report */
    TAP_OK(run("report", "--db", db, NULL) == 0, "report/table_ok (%s)", err);
    TAP_OK(strncmp(out, "route", 5) == 0 && strstr(out, "LCP") && strstr(out, "TTFB"),
           "report/table_header");
    TAP_OK(max_line(out) <= 80, "report/fits_80_columns (%d)", max_line(out));
    TAP_OK(!strchr(out, '\033'), "report/no_escape_bytes_when_not_tty");
    TAP_OK(strstr(out, "/checkout/?[31mred?[0...      3") != NULL, "report/route_sanitised_truncated");
    TAP_OK(strstr(out, "2100 G") && strstr(out, "5000 P") && strstr(out, "300 N") &&
               strstr(out, "0.050 G"),
           "report/ratings (%s)", out);
    TAP_OK(run("report", "--db", db, "--format", "json", NULL) == 0 &&
               strncmp(out, "{\"routes\":[{\"route\":\"/\",\"views\":12,\"metrics\":{\"LCP\":"
                            "{\"n\":12,\"p50\":1200,",
                       70) == 0 &&
               out[strlen(out) - 1] == '\n',
           "report/json_is_summary (%.80s)", out);
    TAP_OK(run("report", "--db", db, "--format", "csv", NULL) == 0 &&
               strncmp(out, "route,views,metric,n,p50,p75,p95,p99,good,ni,poor\r\n/,12,LCP,", 60) == 0,
           "report/csv");
    TAP_OK(run("report", "--db", db, "--label", "empty", NULL) == 0 &&
               strstr(out, "(no views in this range)"),
           "report/empty");
    TAP_OK(run("report", "--db", db, "--format", "xml", NULL) == 2 && one_line("--format"),
           "report/bad_format (%s)", err);
    TAP_OK(run("report", "--db", db, "--since", "soon", NULL) == 2 && one_line("--since"),
           "report/bad_since");
    TAP_OK(run("report", "--db", db, "--route", "x", NULL) == 2 && one_line("--route"),
           "report/bad_route");
    TAP_OK(run("report", "--db", db, "--frobnicate", NULL) == 2 && one_line("unknown option"),
           "report/unknown_option (%s)", err);
    TAP_OK(run("report", "--db", NULL) == 2 && one_line("missing value"), "report/missing_value");
    TAP_OK(run("report", "--db", db, "extra", NULL) == 2 && one_line("unexpected argument"),
           "report/extra_argument");
    TAP_OK(run("report", "--db", "/nonexistent/v.db", NULL) == 2 && one_line("No such file"),
           "report/missing_db_2 (%s)", err);
    TAP_OK(run("report", "--db", "test_cli.notdb", NULL) == 1 && one_line("not a vitals database"),
           "report/not_a_db_1");
    TAP_OK(run("report", "--db", "test_cli.newer", NULL) == 1 && one_line("newer"),
           "report/newer_db_1");
    TAP_OK(run("report", "--help", NULL) == 0 && strstr(out, "usage: vitals-proxy report"),
           "report/help");

    /* export */
    TAP_OK(run("export", "--db", db, "--last", NULL) == 0 && strstr(out, "\"version\":\"1.2\""),
           "export/last_har");
    TAP_OK(run("export", "--db", db, "--view", "view0002", "--format", "json", NULL) == 0 &&
               strstr(out, "\"id\":\"view0002\""),
           "export/view_json");
    TAP_OK(run("export", "--db", db, "--view", "view0001", "--format", "csv", "--out",
               "test_cli.csv", NULL) == 0 &&
               out[0] == '\0',
           "export/csv_to_file");
    slurp("test_cli.csv", out, sizeof out);
    TAP_OK(strncmp(out, "index,url,initiator,", 20) == 0 && strstr(out, "/app.js,script"),
           "export/csv_file_content");
    TAP_OK(run("export", "--db", db, NULL) == 2 && one_line("--view"), "export/needs_view");
    TAP_OK(run("export", "--db", db, "--view", "view0001", "--last", NULL) == 2,
           "export/view_and_last");
    TAP_OK(run("export", "--db", db, "--view", "bad id!", NULL) == 2 && one_line("--view"),
           "export/bad_id");
    TAP_OK(run("export", "--db", db, "--view", "zzzzzzzz", NULL) == 1 && one_line("no such view"),
           "export/unknown_view_1");
    TAP_OK(run("export", "--db", db, "--last", "--format", "pdf", NULL) == 2, "export/bad_format");
    TAP_OK(run("export", "--db", db, "--last", "--out", "/nonexistent/dir/x.har", NULL) == 2 &&
               one_line("--out"),
           "export/bad_out");

    /* check */
    TAP_OK(run("check", "--db", db, NULL) == 1, "check/default_over_1");
    TAP_OK(strstr(out, "over budget: GET /api/items API p95 650 ms > limit 500 ms (n=40)\n") &&
               strstr(out, "4 of ") && !strchr(out, '\033'),
           "check/violation_lines (%s)", out);
    write_file("test_cli.budget", "{\"*\":{\"LCP\":{\"p75\":9000}},\"/\":{\"CLS\":{\"p75\":0.1}}}");
    TAP_OK(run("check", "--db", db, "--budget", "test_cli.budget", NULL) == 0 &&
               strstr(out, "within budget: 3 checks"),
           "check/within_0 (%s)", out);
    write_file("test_cli.budget", "{\"/\":{\"LCP\":{\"p75\":2000}}}");
    TAP_OK(run("check", "--db", db, "--budget", "test_cli.budget", NULL) == 1 &&
               strstr(out, "over budget: / LCP p75 2100 ms > limit 2000 ms (n=12)"),
           "check/exact_route_over_1");
    write_file("test_cli.budget", "{\"*\":{\"LCP\":{\"p75\":25");
    TAP_OK(run("check", "--db", db, "--budget", "test_cli.budget", NULL) == 2 &&
               one_line("invalid JSON"),
           "check/bad_json_2 (%s)", err);
    write_file("test_cli.budget", "{\"*\":{\"SPEED\":{\"p75\":1}}}");
    TAP_OK(run("check", "--db", db, "--budget", "test_cli.budget", NULL) == 2 &&
               one_line("unknown metric \"SPEED\""),
           "check/unknown_metric_2");
    write_file("test_cli.budget", "{\"*\":{\"LCP\":{\"p80\":1}}}");
    TAP_OK(run("check", "--db", db, "--budget", "test_cli.budget", NULL) == 2 &&
               one_line("unknown percentile \"p80\""),
           "check/unknown_percentile_2");
    TAP_OK(run("check", "--db", db, "--budget", "/nonexistent/b.json", NULL) == 2 &&
               one_line("/nonexistent/b.json"),
           "check/missing_budget_2");
    TAP_OK(run("check", "--db", "test_cli.notdb", NULL) == 2 && one_line("not a vitals database"),
           "check/bad_db_2");
    TAP_OK(run("check", "--db", db, "--api-prefix", "api", NULL) == 2, "check/bad_prefix");

    /* compare (the test double: side "slow" has LCP p75 ~3072, others ~1072) */
    TAP_OK(run("compare", "--db", db, "slow", "fast", NULL) == 0 && strstr(out, "better") &&
               strstr(out, "LCP"),
           "compare/table_better (%s)", err);
    TAP_OK(run("compare", "--db", db, "fast", "slow", "--fail-on-regression", NULL) == 1 &&
               strstr(out, "worse") && one_line("significantly worse"),
           "compare/fail_on_regression_1 (%s)", err);
    TAP_OK(run("compare", "--db", db, "fast", "slow", NULL) == 0, "compare/worse_without_flag_0");
    write_file("test_cli.budget", "{\"/other\":{\"LCP\":{\"p75\":1}}}");
    TAP_OK(run("compare", "--db", db, "fast", "slow", "--fail-on-regression", "--budget",
               "test_cli.budget", NULL) == 0,
           "compare/unbudgeted_route_not_failing");
    TAP_OK(run("compare", "--db", db, "fast", "slow", "--format", "json", NULL) == 0 &&
               strncmp(out, "{\"seed\":1,\"min_n\":30,\"rows\":[", 29) == 0,
           "compare/json");
    TAP_OK(run("compare", "--db", db, "only-one", NULL) == 2 && one_line("two sides"),
           "compare/one_side_2");
    TAP_OK(run("compare", "--db", db, "a", "-1h..nope", NULL) == 2 && one_line("FROM..TO"),
           "compare/bad_range_2");
    TAP_OK(run("compare", "--db", db, "-2h..-1h", "slow", NULL) == 0 && strstr(out, "worse"),
           "compare/negative_range_is_a_side (%s)", err);
    TAP_OK(run("compare", "--db", db, "a", "b", "--min-views", "0", NULL) == 2,
           "compare/bad_min_views_2");

    remove(db);
    remove("test_cli.notdb");
    remove("test_cli.newer");
    remove("test_cli.budget");
    remove("test_cli.csv");
    remove("test_cli.out");
    remove("test_cli.err");
    TAP_DONE();
}
