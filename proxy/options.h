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
    bool upstream_tls;          /* https:// upstream (proxy/tls.c client context) */
    char upstream_ca[1024];     /* --upstream-ca: PEM bundle replacing the system store ("" = none) */
    bool upstream_insecure;     /* --upstream-insecure: no certificate verification */
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
    /* --allow-host: names (lower case, no trailing dot) whose Host may read the report, API and
     * exports without a token, besides IP literals, localhost and *.localhost (proxy/route.c). */
    char **allow_host; /* owned, n_allow_host names */
    size_t n_allow_host;
    double sample;
    unsigned retention_days;
    unsigned beacon_rate;  /* beacon POSTs per second per peer and worker (0 = unlimited) */
    unsigned beacon_burst;
    char **no_inject; /* owned, n_no_inject patterns */
    size_t n_no_inject;
    bool keep_query;
    char label[128];
    char budget[1024];     /* budget file for the report ("" = the default budget) */
    char api_prefix[256];  /* paths whose proxy-timed latency is reported as API latency */
    bool rewrite_origin;
    bool check_config;
    /* TLS listener and HTTP/2 (proxy/tls.c, proxy/conn_h2.c). tls_listen_port 0 = no TLS. */
    char tls_listen_host[VP_OPT_HOST_MAX];
    uint16_t tls_listen_port;
    char cert[1024];
    char key[1024];
    bool tls_self_signed;
    unsigned h2_max_streams;   /* SETTINGS_MAX_CONCURRENT_STREAMS */
    unsigned h2_max_resets;    /* client stream resets per 10 s before GOAWAY ENHANCE_YOUR_CALM */
    unsigned h2_max_control;   /* PING/SETTINGS/PRIORITY/empty-DATA frames per 10 s, same */
    bool h2c;                  /* HTTP/2 with prior knowledge on the plain listener */
};

enum vp_opt_result {
    VP_OPT_RUN = 0,   /* start the proxy */
    VP_OPT_EXIT0 = 1, /* --help / --version printed, or --check-config passed: exit 0 */
    VP_OPT_USAGE = 2, /* one line already printed to stderr: exit 2 */
};

/* Parses argv into o (zeroed first, defaults applied). Prints --help/--version to stdout and
 * errors (one line, "vitals-proxy: --opt: value: expectation") to stderr. */
enum vp_opt_result vp_options_parse(struct vp_options *o, int argc, char **argv);

/* Frees what vp_options_parse allocated (the no_inject and allow_host lists). */
void vp_options_dispose(struct vp_options *o);

#endif
