/* `vitals-proxy compare` end to end against a real temporary database: exit codes 0/1/2
 * (--fail-on-regression, --budget restricting what counts, usage and database errors), the JSON
 * output, the table fitting 80 columns, relative ranges given as words starting with '-', and
 * a hostile route kept terminal-safe. stdout of each run goes to a temporary file. */
#include "config.h"

#include "proxy/cli_compare.h"

#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/vp_err.h"
#include "store/store.h"
#include "store/store_internal.h"
#include "tap.h"

#define T0 1764000000000LL

static char out_path[160];

static uint64_t rng = 3;
static double unif(void)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return ((double)(z >> 11) + 0.5) / 9007199254740992.0;
}

static int ingest(struct store *s, const char *label, int i, const char *url, double lcp)
{
    char body[1024];
    int w = snprintf(body, sizeof body,
                     "{\"v\":1,\"vid\":\"%s-%06d\",\"url\":\"%s\",\"t0\":%lld,\"nav\":\"navigate\","
                     "\"m\":[{\"n\":\"LCP\",\"id\":\"l\",\"v\":%.1f}]}",
                     label, i, url, T0 + i * 1000LL, lcp);
    struct store_beacon_ctx ctx = {"127.0.0.1", "Mozilla/5.0 Chrome/131.0.0.0", T0 + i * 1000LL,
                                   label, 1.0};
    char reason[128];
    return store_ingest_beacon(s, body, (size_t)w, &ctx, reason, sizeof reason);
}

/* Runs compare with args (NULL-terminated); stdout into out_path. */
static int run(const char *first, ...)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)"compare";
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && argc < 31; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    fflush(stdout);
    int saved = dup(1), errsaved = dup(2);
    int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int nul = open("/dev/null", O_WRONLY);
    dup2(fd, 1);
    dup2(nul, 2);
    int status = cli_compare_main(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved, 1);
    dup2(errsaved, 2);
    close(fd);
    close(nul);
    close(saved);
    close(errsaved);
    return status;
}

static char *slurp(void)
{
    static char buf[65536];
    FILE *f = fopen(out_path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    return buf;
}

static bool lines_fit(const char *s, size_t cols)
{
    size_t cur = 0;
    for (; *s; s++) {
        if (*s == '\n')
            cur = 0;
        else if (++cur > cols)
            return false;
        if ((unsigned char)*s < 0x20 && *s != '\n')
            return false;
    }
    return true;
}

int main(void)
{
    char dir[] = "/tmp/vp_test_cli_compare.XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char db[160], budget_lcp[160], budget_inp[160], err[256];
    snprintf(db, sizeof db, "%s/c.db", dir);
    snprintf(out_path, sizeof out_path, "%s/out.txt", dir);
    snprintf(budget_lcp, sizeof budget_lcp, "%s/b1.json", dir);
    snprintf(budget_inp, sizeof budget_inp, "%s/b2.json", dir);
    FILE *f = fopen(budget_lcp, "w");
    fputs("{\"/sh*\": {\"LCP\": {\"p75\": 2500}}}", f);
    fclose(f);
    f = fopen(budget_inp, "w");
    fputs("{\"*\": {\"INP\": {\"p75\": 200}}}", f);
    fclose(f);

    struct store_options opt;
    store_options_default(&opt);
    opt.retention_days = 0;
    struct store *s = NULL;
    if (store_open(&s, db, &opt, err, sizeof err) != 0) {
        TAP_OK(0, "cli_compare/open: %s", err);
        TAP_DONE();
    }
    int rc = 0;
    for (int i = 0; i < 100; i++) {
        double z = sqrt(-2 * log(unif())) * cos(2 * M_PI * unif());
        rc |= ingest(s, "base", i, "/shop", 2000 * exp(0.3 * z));
        rc |= ingest(s, "slow", 1000 + i, "/shop", 2800 * exp(0.3 * z));
    }
    rc |= ingest(s, "base", 5000, "/caf\xc3\xa9", 100);
    TAP_OK(rc == 0 && store_sync(s) == 0, "cli_compare/data");
    store_free(s);

    TAP_OK(run("--db", db, "base", "slow", NULL) == 0, "cli_compare/worse_without_flag_exit_0");
    char *o = slurp();
    TAP_OK(strstr(o, "/shop") && strstr(o, "  LCP    100/100") && strstr(o, "worse") &&
               strstr(o, "1 worse, 0 better"),
           "cli_compare/table_content");
    TAP_OK(lines_fit(o, 80) && strstr(o, "/caf??"), "cli_compare/table_80_cols_terminal_safe");
    if (getenv("COMPARE_SHOW"))
        fputs(o, stderr);
    TAP_OK(run("--db", db, "base", "slow", "--fail-on-regression", NULL) == 1,
           "cli_compare/regression_exit_1");
    TAP_OK(run("--fail-on-regression", "slow", "--db", db, "base", NULL) == 0,
           "cli_compare/improvement_exit_0");
    TAP_OK(run("--db", db, "base", "slow", "--fail-on-regression", "--budget", budget_lcp, NULL) ==
               1,
           "cli_compare/budgeted_regression_exit_1");
    TAP_OK(run("--db", db, "base", "slow", "--fail-on-regression", "--budget", budget_inp, NULL) ==
               0,
           "cli_compare/unbudgeted_regression_exit_0");
    TAP_OK(run("--db", db, "base", "slow", "--format", "json", "--seed", "7", "--resamples",
               "500", NULL) == 0,
           "cli_compare/json_exit_0");
    json_t *j = json_loads(slurp(), 0, NULL);
    TAP_OK(j && json_integer_value(json_object_get(j, "regressions")) == 1 &&
               json_integer_value(json_object_get(j, "resamples")) == 500 &&
               json_integer_value(json_object_get(j, "seed")) == 7,
           "cli_compare/json_output");
    json_decref(j);
    TAP_OK(run("--db", db, "base", "base", "--fail-on-regression", "--min-n", "500", NULL) == 0 &&
               strstr(slurp(), "not enough data"),
           "cli_compare/min_n_not_enough");
    TAP_OK(run("--db", db, "-2h..-1h", "-1h..now", "--fail-on-regression", NULL) == 0 &&
               strstr(slurp(), "no data"),
           "cli_compare/relative_ranges");
    TAP_OK(run("--db", db, "2025-11-24T16:00..16:10", "2025-11-24T16:10..17:00", NULL) == 0,
           "cli_compare/iso_ranges");
    /* usage errors */
    TAP_OK(run("--db", db, "base", NULL) == 2, "cli_compare/one_side_exit_2");
    TAP_OK(run("--db", db, "base", "slow", "extra", NULL) == 2, "cli_compare/three_sides_exit_2");
    TAP_OK(run("--db", db, "base", "slow", "--format", "csv", NULL) == 2,
           "cli_compare/bad_format_exit_2");
    TAP_OK(run("--db", db, "base", "a b", NULL) == 2, "cli_compare/bad_label_exit_2");
    TAP_OK(run("--db", db, "base", "slow", "--resamples", "0", NULL) == 2 &&
               run("--db", db, "base", "slow", "--seed", "-1", NULL) == 2 &&
               run("--db", db, "base", "slow", "--min-n", "1", NULL) == 2,
           "cli_compare/bad_numbers_exit_2");
    TAP_OK(run("--db", db, "base", "slow", "--bogus", NULL) == 2, "cli_compare/unknown_option");
    TAP_OK(run("--db", "/nonexistent/x.db", "base", "slow", NULL) == 2,
           "cli_compare/missing_db_exit_2");
    TAP_OK(run("--db", out_path, "base", "slow", NULL) == 2, "cli_compare/not_a_db_exit_2");
    TAP_OK(run("--db", db, "base", "slow", "--budget", "/nonexistent.json", NULL) == 2,
           "cli_compare/bad_budget_exit_2");
    TAP_OK(run("--help", NULL) == 0 && strstr(slurp(), "usage: vitals-proxy compare"),
           "cli_compare/help");

    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        TAP_OK(0, "cleanup");
    TAP_DONE();
}
