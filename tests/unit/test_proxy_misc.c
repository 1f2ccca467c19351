/* Unit tests for proxy/ pieces without I/O: the option table (defaults, units, bounds, one
 * error per bad value), the per-peer token buckets, and the reserved-path test. */
#include "config.h"
#include "proxy/limits.h"
#include "proxy/options.h"
#include "proxy/route.h"

#include "common/vp_err.h"
#include "tests/support/tap.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static enum vp_opt_result parse(struct vp_options *o, const char *a1, const char *a2)
{
    char *argv[4] = {(char *)"vitals-proxy", (char *)a1, (char *)a2, NULL};
    int argc = a1 ? (a2 ? 3 : 2) : 1;
    return vp_options_parse(o, argc, argv);
}

struct bad_case {
    const char *name, *opt, *val;
};

static const struct bad_case bad[] = {
    {"options/listen_no_port", "--listen", "127.0.0.1"},
    {"options/listen_port_zero", "--listen", "127.0.0.1:0"},
    {"options/listen_port_big", "--listen", "127.0.0.1:65536"},
    {"options/listen_v6_unbracketed", "--listen", "::1:8080"},
    {"options/upstream_ftp", "--upstream", "ftp://localhost:3000"},
    {"options/upstream_https_userinfo", "--upstream", "https://user@localhost"},
    {"options/upstream_https_port_zero", "--upstream", "https://localhost:0"},
    {"options/upstream_https_path", "--upstream", "https://localhost/app"},
    {"options/upstream_ca_needs_https", "--upstream-ca", "/etc/ssl/certs/ca-certificates.crt"},
    {"options/upstream_insecure_needs_https", "--upstream-insecure", NULL},
    {"options/upstream_path", "--upstream", "http://localhost:3000/app"},
    {"options/upstream_no_host", "--upstream", "http://:3000"},
    {"options/upstream_bad_port", "--upstream", "http://localhost:x"},
    {"options/workers_too_many", "--workers", "65"},
    {"options/workers_negative", "--workers", "-1"},
    {"options/workers_fraction", "--workers", "1.5"},
    {"options/size_bad_suffix", "--max-header-bytes", "32G"},
    {"options/size_too_small", "--max-header-bytes", "10"},
    {"options/duration_bad_unit", "--header-timeout", "10h"},
    {"options/duration_too_short", "--header-timeout", "1ms"},
    {"options/sample_above_one", "--sample", "1.5"},
    {"options/sample_text", "--sample", "half"},
    {"options/log_format", "--log-format", "xml"},
    {"options/no_inject_empty", "--no-inject", ""},
    {"options/allow_host_empty", "--allow-host", ""},
    {"options/allow_host_port", "--allow-host", "dev.test:8080"},
    {"options/allow_host_wildcard", "--allow-host", "*.dev.test"},
    {"options/allow_host_empty_item", "--allow-host", "a.test,,b.test"},
    {"options/allow_host_trailing_comma", "--allow-host", "a.test,"},
    {"options/allow_host_v6", "--allow-host", "[::1]"},
    {"options/allow_host_space", "--allow-host", "a test"},
    {"options/allow_host_empty_label", "--allow-host", "a..test"},
    {"options/allow_host_leading_dot", "--allow-host", ".test"},
    {"options/allow_host_only_dot", "--allow-host", "."},
    {"options/unknown", "--no-such-option", NULL},
    {"options/stray_argument", "stray", NULL},
};

int main(void)
{
    struct vp_options o;
    TAP_OK(parse(&o, NULL, NULL) == VP_OPT_RUN && strcmp(o.listen_host, "127.0.0.1") == 0 &&
               o.listen_port == 8080 && strcmp(o.upstream_host, "localhost") == 0 &&
               o.upstream_port == 3000 && strcmp(o.db, "./vitals.db") == 0 &&
               o.max_header_bytes == 32768 && o.max_request_line == 8192 &&
               o.max_body_bytes == 65536 && o.header_timeout_ms == 10000 &&
               o.idle_timeout_ms == 60000 && o.upstream_connect_timeout_ms == 5000 &&
               o.grace_ms == 10000 && o.sample == 1.0 && o.workers >= 1 && !o.log_json,
           "options/defaults");
    vp_options_dispose(&o);
    TAP_OK(parse(&o, "--listen", "[::1]:9000") == VP_OPT_RUN &&
               strcmp(o.listen_host, "::1") == 0 && o.listen_port == 9000,
           "options/listen_v6");
    TAP_OK(parse(&o, "--listen", ":9001") == VP_OPT_RUN && o.listen_port == 9001 &&
               strcmp(o.listen_host, "127.0.0.1") == 0,
           "options/listen_port_only_binds_loopback");
    TAP_OK(parse(&o, "--upstream", "http://127.0.0.1") == VP_OPT_RUN && o.upstream_port == 80 &&
               strcmp(o.upstream_authority, "127.0.0.1") == 0,
           "options/upstream_default_port");
    TAP_OK(parse(&o, "--upstream", "http://[::1]:4000/") == VP_OPT_RUN &&
               strcmp(o.upstream_host, "::1") == 0 && o.upstream_port == 4000 &&
               strcmp(o.upstream_authority, "[::1]:4000") == 0,
           "options/upstream_v6");
    TAP_OK(parse(&o, NULL, NULL) == VP_OPT_RUN && !o.upstream_tls, "options/upstream_plain_default");
    TAP_OK(parse(&o, "--upstream", "https://app.example") == VP_OPT_RUN && o.upstream_tls &&
               o.upstream_port == 443 && strcmp(o.upstream_host, "app.example") == 0 &&
               strcmp(o.upstream_authority, "app.example") == 0,
           "options/upstream_https_default_port");
    TAP_OK(parse(&o, "--upstream", "https://[::1]:8443/") == VP_OPT_RUN && o.upstream_tls &&
               o.upstream_port == 8443 && strcmp(o.upstream_host, "::1") == 0,
           "options/upstream_https_v6_port");
    char *argv_ca[] = {(char *)"vp", (char *)"--upstream", (char *)"https://localhost:3443",
                       (char *)"--upstream-ca", (char *)"/tmp/ca.pem", NULL};
    TAP_OK(vp_options_parse(&o, 5, argv_ca) == VP_OPT_RUN && o.upstream_tls &&
               strcmp(o.upstream_ca, "/tmp/ca.pem") == 0 && !o.upstream_insecure,
           "options/upstream_ca");
    char *argv_both[] = {(char *)"vp", (char *)"--upstream", (char *)"https://localhost:3443",
                         (char *)"--upstream-ca", (char *)"/tmp/ca.pem",
                         (char *)"--upstream-insecure", NULL};
    fflush(stderr);
    FILE *devnull = fopen("/dev/null", "w");
    int saved_err = dup(2);
    if (devnull)
        dup2(fileno(devnull), 2);
    TAP_OK(vp_options_parse(&o, 6, argv_both) == VP_OPT_USAGE, "options/upstream_ca_and_insecure");
    fflush(stderr);
    dup2(saved_err, 2);
    close(saved_err);
    if (devnull)
        fclose(devnull);
    TAP_OK(parse(&o, "--header-timeout", "500ms") == VP_OPT_RUN && o.header_timeout_ms == 500,
           "options/duration_ms");
    TAP_OK(parse(&o, "--idle-timeout", "2m") == VP_OPT_RUN && o.idle_timeout_ms == 120000,
           "options/duration_minutes");
    TAP_OK(parse(&o, "--grace", "1.5") == VP_OPT_RUN && o.grace_ms == 1500,
           "options/duration_plain_seconds");
    TAP_OK(parse(&o, "--max-body-bytes", "1M") == VP_OPT_RUN && o.max_body_bytes == 1048576,
           "options/size_suffix");
    TAP_OK(parse(&o, "--log-format", "json") == VP_OPT_RUN && o.log_json, "options/log_json");
    char *argv[] = {(char *)"vp", (char *)"--no-inject", (char *)"/api/*", (char *)"--no-inject",
                    (char *)"/admin*", NULL};
    TAP_OK(vp_options_parse(&o, 5, argv) == VP_OPT_RUN && o.n_no_inject == 2 &&
               strcmp(o.no_inject[1], "/admin*") == 0,
           "options/no_inject_repeatable");
    vp_options_dispose(&o);
    char *argv_ah[] = {(char *)"vp",           (char *)"--allow-host", (char *)"Dev.Test,box.lan.",
                       (char *)"--allow-host", (char *)"other",        NULL};
    TAP_OK(vp_options_parse(&o, 5, argv_ah) == VP_OPT_RUN && o.n_allow_host == 3 &&
               strcmp(o.allow_host[0], "dev.test") == 0 &&
               strcmp(o.allow_host[1], "box.lan") == 0 && strcmp(o.allow_host[2], "other") == 0,
           "options/allow_host_list_repeatable");
    /* Which Host may read the report without a token (DNS rebinding defence). */
    static const struct {
        const char *host;
        bool ok;
    } hosts[] = {
        {"localhost", true},
        {"localhost:8080", true},
        {"LocalHost", true},
        {"localhost.", true},
        {"localhost.:8080", true},
        {"app.localhost", true},
        {"a.b.localhost:9000", true},
        {"127.0.0.1", true},
        {"127.0.0.1:8080", true},
        {"10.1.2.3:80", true},
        {"[::1]", true},
        {"[::1]:8080", true},
        {"[2001:db8::7]:443", true},
        {"dev.test", true},
        {"DEV.test:1234", true},
        {"box.lan.", true},
        {"localhost:", true},
        {NULL, false},
        {"", false},
        {"evil.example", false},
        {"evil.example:8080", false},
        {"localhost.evil.example", false},
        {"evillocalhost", false},
        {".localhost", false},
        {"a..localhost", false},
        {"localhost..", false},
        {"127.0.0.1.evil.example", false},
        {"127.1", false},
        {"0x7f.0.0.1", false},
        {"2130706433", false},
        {"127.000.000.001", false},
        {"::1", false},
        {"[::1", false},
        {"[::1]x", false},
        {"[::1]:80:80", false},
        {"[evil.example]", false},
        {"[]", false},
        {"localhost:80:80", false},
        {"localhost:8o", false},
        {"localhost:123456", false},
        {"sub.dev.test", false},
        {"dev.test.evil", false},
        {"%6cocalhost", false},
        {":8080", false},
        {".", false},
    };
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++)
        TAP_OK(route_host_allowed(hosts[i].host, &o) == hosts[i].ok, "route/host_allowed %s -> %s",
               hosts[i].host ? hosts[i].host : "(absent)", hosts[i].ok ? "yes" : "no");
    vp_options_dispose(&o);
    TAP_OK(parse(&o, NULL, NULL) == VP_OPT_RUN && o.n_allow_host == 0 &&
               !route_host_allowed("dev.test", &o) && route_host_allowed("localhost", &o),
           "route/host_allowed_without_list");
    vp_options_dispose(&o);
    char *argv2[] = {(char *)"vp", (char *)"--max-request-line", (char *)"16K",
                     (char *)"--max-header-bytes", (char *)"8K", NULL};
    TAP_OK(vp_options_parse(&o, 5, argv2) == VP_OPT_USAGE, "options/line_exceeds_head");

    /* Each bad value: usage status and exactly one line on stderr naming the option. */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fflush(stderr);
        FILE *tmp = tmpfile();
        int saved = dup(2);
        dup2(fileno(tmp), 2);
        enum vp_opt_result r = parse(&o, bad[i].opt, bad[i].val);
        fflush(stderr);
        dup2(saved, 2);
        close(saved);
        char line[512] = "", extra[8] = "";
        rewind(tmp);
        bool one = fgets(line, sizeof line, tmp) && !fgets(extra, sizeof extra, tmp);
        fclose(tmp);
        const char *name = bad[i].opt[0] == '-' ? bad[i].opt : bad[i].opt;
        TAP_OK(r == VP_OPT_USAGE && one && strncmp(line, "vitals-proxy: ", 14) == 0 &&
                   strstr(line, name) != NULL,
               "%s", bad[i].name);
        vp_options_dispose(&o);
    }

    struct rate_limiter *rl;
    TAP_OK(rate_limiter_new(&rl, 16, 10, 3) == 0, "limits/new");
    int64_t t = 1000000;
    bool a = rate_limiter_allow(rl, "10.0.0.1", t), b = rate_limiter_allow(rl, "10.0.0.1", t),
         c = rate_limiter_allow(rl, "10.0.0.1", t), d = rate_limiter_allow(rl, "10.0.0.1", t);
    TAP_OK(a && b && c && !d, "limits/burst_then_refuse");
    TAP_OK(rate_limiter_allow(rl, "10.0.0.2", t), "limits/peers_independent");
    TAP_OK(!rate_limiter_allow(rl, "10.0.0.1", t + 50000) &&
               rate_limiter_allow(rl, "10.0.0.1", t + 150000),
           "limits/refill_at_rate");
    int allowed = 0;
    for (int i = 0; i < 1000; i++) {
        char peer[32];
        snprintf(peer, sizeof peer, "192.168.%d.%d", i / 256, i % 256);
        allowed += rate_limiter_allow(rl, peer, t + 200000);
    }
    TAP_OK(allowed == 1000, "limits/table_full_recycles");
    rate_limiter_free(rl);
    TAP_OK(rate_limiter_new(&rl, 4, 0, 1) == 0, "limits/unlimited_new");
    bool all = true;
    for (int i = 0; i < 100; i++)
        all &= rate_limiter_allow(rl, "p", t);
    TAP_OK(all, "limits/unlimited");
    rate_limiter_free(rl);
    TAP_OK(rate_limiter_new(&rl, 0, 1, 1) == VP_ERR_INVALID, "limits/zero_slots");

    TAP_OK(route_is_reserved("/__vitals/") && route_is_reserved("/__vitals") &&
               route_is_reserved("/__vitals?x") && route_is_reserved("/__vitals/api/summary"),
           "route/reserved");
    TAP_OK(!route_is_reserved("/__vitalsx") && !route_is_reserved("/") &&
               !route_is_reserved("/x/__vitals/"),
           "route/not_reserved");

    /* Other spellings of the reserved prefix, refused rather than forwarded. */
    static const char *const aliases[] = {
        "/%5F%5Fvitals/healthz",
        "/%5f%5fvitals/api/summary",
        "/%255F%255Fvitals/",
        "//__vitals/healthz",
        "/./__vitals/",
        "/x/../__vitals/healthz",
        "/__VITALS/",
        "/__Vitals",
        "/__vitals;x/healthz",
        "/__vitals%2fhealthz",
        "/__vitals%2Fapi?x=1",
        "/\\__vitals\\healthz",
        "/%2F__vitals/",
        "/a/b/../../__vitals",
        "/.%2e/__vitals/",
        "/%2e/__vitals",
        "/__vital%73/",
        "/___vitals/../__vitals/",
    };
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        TAP_OK(route_is_reserved_alias(aliases[i]), "route/alias %s", aliases[i]);
    static const char *const plain[] = {
        "/__vitals/",
        "/__vitals/../x",
        "/",
        "/_next/static/a.js",
        "/a//b",
        "/x/__vitals/",
        "/__vitalsx",
        "/%5F%5Fvitalsx/",
        "/x/./y",
        "/p?u=/__vitals/",
        "/a#/__vitals",
        "/__vitals/..%2f",
        "*",
        "/%",
        "/%5",
        "/%zz__vitals",
    };
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        TAP_OK(!route_is_reserved_alias(plain[i]), "route/not_alias %s", plain[i]);
    /* Long paths are normalised whole: the prefix after 600 dot segments is still found. */
    char longp[4096];
    size_t lp = 0;
    for (int i = 0; i < 600; i++) {
        memcpy(longp + lp, "/.", 2);
        lp += 2;
    }
    memcpy(longp + lp, "/__vitals/healthz", sizeof "/__vitals/healthz");
    TAP_OK(route_is_reserved_alias(longp), "route/alias_after_600_dot_segments");
    memcpy(longp + lp, "/__vitalz/healthz", sizeof "/__vitalz/healthz");
    TAP_OK(!route_is_reserved_alias(longp), "route/long_not_alias");
    TAP_DONE();
}
