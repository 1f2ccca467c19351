/* proxy/options: the proxy's command-line options, from ONE table (name, type, default, bounds,
 * help) that drives getopt_long, --help, validation and --check-config. Defaults go through the
 * same validators as user values. Start-up only; not thread-safe. After parsing, the struct is
 * read-only and shared by every worker thread. */
#ifndef VP_OPTIONS_H
#define VP_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VP_OPT_HOST_MAX 256

struct vp_options {
    char listen_host[VP_OPT_HOST_MAX]; /* literal address or name, no brackets */
    uint16_t listen_port;
    char upstream_url[512];
    char upstream_host[VP_OPT_HOST_MAX]; /* no brackets */
    uint16_t upstream_port;
    char upstream_authority[VP_OPT_HOST_MAX + 8]; /* "host:port" as written, for Host rewrite */
    char db[1024];
    unsigned workers;
    bool quiet;
    bool log_json;
    unsigned max_connections;
    size_t max_request_line;
    size_t max_header_bytes;
    unsigned max_headers;
    size_t max_body_bytes;
    unsigned header_timeout_ms;
    unsigned idle_timeout_ms;
    unsigned upstream_connect_timeout_ms;
    unsigned upstream_timeout_ms;
    unsigned grace_ms;
    unsigned upstream_idle_max; /* idle pooled upstream connections per worker */
    char report_token[256];     /* "" = report open */
    double sample;
    unsigned retention_days;
    unsigned beacon_rate;  /* beacon POSTs per second per peer and worker (0 = unlimited) */
    unsigned beacon_burst;
    char **no_inject; /* owned, n_no_inject patterns */
    size_t n_no_inject;
    bool keep_query;
    char label[128];
    bool rewrite_origin;
    bool check_config;
};

enum vp_opt_result {
    VP_OPT_RUN = 0,   /* start the proxy */
    VP_OPT_EXIT0 = 1, /* --help / --version printed, or --check-config passed: exit 0 */
    VP_OPT_USAGE = 2, /* one line already printed to stderr: exit 2 */
};

/* Parses argv into o (zeroed first, defaults applied). Prints --help/--version to stdout and
 * errors (one line, "vitals-proxy: --opt: value: expectation") to stderr. */
enum vp_opt_result vp_options_parse(struct vp_options *o, int argc, char **argv);

/* Frees what vp_options_parse allocated (the no_inject list). */
void vp_options_dispose(struct vp_options *o);

#endif
