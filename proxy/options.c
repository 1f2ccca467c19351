/* The option table and its interpreter. Each row names an option, its type, default (a string
 * parsed by the same validator as user input, so a default can never be out of bounds), its
 * bounds and its help; getopt_long's array and --help are generated from the rows. Every
 * rejected value produces one line naming the option, the value and what was expected. */
#include "config.h"
#include "proxy/options.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum opt_type {
    T_FLAG,
    T_STR,
    T_HOSTPORT,
    T_URL,
    T_UINT,
    T_SIZE,
    T_DUR,
    T_RATE,
    T_LOGFMT,
    T_LIST,
    T_HOSTS,
    T_ACTION,
};

struct opt_row {
    const char *name;
    enum opt_type type;
    size_t off;  /* field offset in struct vp_options */
    size_t cap;  /* T_STR: field size */
    const char *def;
    double min, max;
    const char *arg;
    const char *help;
};

#define F(field) offsetof(struct vp_options, field)
#define C(field) sizeof(((struct vp_options *)0)->field)

static const struct opt_row rows[] = {
    {"listen", T_HOSTPORT, F(listen_host), 0, "127.0.0.1:8080", 0, 0, "HOST:PORT",
     "address to listen on"},
    {"upstream", T_URL, F(upstream_url), 0, "http://localhost:3000", 0, 0, "URL",
     "the application (http://host[:port] or https://host[:port])"},
    {"upstream-ca", T_STR, F(upstream_ca), C(upstream_ca), "", 0, 0, "FILE",
     "verify an https upstream against this PEM bundle instead of the system store"},
    {"upstream-insecure", T_FLAG, F(upstream_insecure), 0, NULL, 0, 0, NULL,
     "do not verify an https upstream's certificate (self-signed dev servers)"},
    {"db", T_STR, F(db), C(db), "./vitals.db", 0, 0, "PATH", "SQLite database file"},
    {"workers", T_UINT, F(workers), 0, "0", 0, 64, "N", "event-loop threads (0 = one per core)"},
    {"quiet", T_FLAG, F(quiet), 0, NULL, 0, 0, NULL, "no start-up banner, no request log"},
    {"log-format", T_LOGFMT, F(log_json), 0, "text", 0, 0, "text|json", "request log format"},
    {"max-connections", T_UINT, F(max_connections), 0, "10000", 1, 1000000, "N",
     "client connections open at once"},
    {"max-request-line", T_SIZE, F(max_request_line), 0, "8K", 64, 1048576, "BYTES",
     "request line limit (414 beyond)"},
    {"max-header-bytes", T_SIZE, F(max_header_bytes), 0, "32K", 256, 1048576, "BYTES",
     "request head limit, line included (431 beyond)"},
    {"max-headers", T_UINT, F(max_headers), 0, "100", 1, 10000, "N", "header fields per request"},
    {"max-body-bytes", T_SIZE, F(max_body_bytes), 0, "64K", 1024, 16777216, "BYTES",
     "body limit for POSTs to /__vitals/ (413 beyond)"},
    {"header-timeout", T_DUR, F(header_timeout_ms), 0, "10s", 100, 3600000, "DURATION",
     "time to receive a request head"},
    {"idle-timeout", T_DUR, F(idle_timeout_ms), 0, "60s", 100, 86400000, "DURATION",
     "keep-alive idle time, and client read time during a body"},
    {"upstream-connect-timeout", T_DUR, F(upstream_connect_timeout_ms), 0, "5s", 10, 600000,
     "DURATION", "upstream connect time, TLS handshake included (504 beyond)"},
    {"upstream-timeout", T_DUR, F(upstream_timeout_ms), 0, "60s", 100, 86400000, "DURATION",
     "upstream read time between bytes (504 beyond)"},
    {"grace", T_DUR, F(grace_ms), 0, "10s", 0, 3600000, "DURATION",
     "shutdown grace for in-flight requests"},
    {"upstream-idle", T_UINT, F(upstream_idle_max), 0, "64", 0, 100000, "N",
     "idle upstream keep-alive connections kept per worker"},
    {"report-token", T_STR, F(report_token), C(report_token), "", 0, 0, "TOKEN",
     "require Bearer TOKEN (or ?token=) for the report and API"},
    {"allow-host", T_HOSTS, F(allow_host), 0, NULL, 0, 0, "NAME[,NAME...]",
     "without a token, also answer the report and API for this Host name (repeatable)"},
    {"sample", T_RATE, F(sample), 0, "1", 0, 1, "RATE", "share of page views measured (0..1)"},
    {"retention", T_UINT, F(retention_days), 0, "30", 0, 36500, "DAYS",
     "delete data older than this (0 = keep)"},
    {"beacon-rate", T_UINT, F(beacon_rate), 0, "100", 0, 1000000, "N",
     "beacon POSTs per second per client address (0 = unlimited; 429 beyond)"},
    {"beacon-burst", T_UINT, F(beacon_burst), 0, "500", 1, 1000000, "N",
     "beacon POSTs a client address may send at once"},
    {"no-inject", T_LIST, F(no_inject), 0, NULL, 0, 0, "PATTERN",
     "never inject into paths matching this glob (repeatable)"},
    {"keep-query", T_FLAG, F(keep_query), 0, NULL, 0, 0, NULL, "keep query strings in stored URLs"},
    {"label", T_STR, F(label), C(label), "", 0, 0, "NAME", "label recorded with every view"},
    {"budget", T_STR, F(budget), C(budget), "", 0, 0, "FILE",
     "budget JSON shown in the report (default: p75 LCP 2500, CLS 0.1, INP 200, TTFB 600; API p95 500; JS 200 KB)"},
    {"api-prefix", T_STR, F(api_prefix), C(api_prefix), "/api/", 0, 0, "PATH",
     "requests under this path are the API routes of the latency table"},
    {"rewrite-origin", T_FLAG, F(rewrite_origin), 0, NULL, 0, 0, NULL,
     "present the upstream's own Host/Origin to it (next dev allowedDevOrigins)"},
    {"tls-listen", T_HOSTPORT, F(tls_listen_host), 0, NULL, 0, 0, "HOST:PORT",
     "also listen with TLS (HTTP/2 and HTTP/1.1 by ALPN)"},
    {"cert", T_STR, F(cert), C(cert), "", 0, 0, "FILE", "TLS certificate chain (PEM)"},
    {"key", T_STR, F(key), C(key), "", 0, 0, "FILE", "TLS private key (PEM)"},
    {"tls-self-signed", T_FLAG, F(tls_self_signed), 0, NULL, 0, 0, NULL,
     "make a localhost certificate (cached next to --db)"},
    {"h2-max-streams", T_UINT, F(h2_max_streams), 0, "100", 1, 1000, "N",
     "concurrent HTTP/2 streams per connection"},
    {"h2-max-resets", T_UINT, F(h2_max_resets), 0, "400", 1, 100000, "N",
     "HTTP/2 stream resets by the client per 10 s (GOAWAY beyond)"},
    {"h2-max-control", T_UINT, F(h2_max_control), 0, "2000", 10, 1000000, "N",
     "HTTP/2 PING/SETTINGS/PRIORITY/empty DATA frames per 10 s (GOAWAY beyond)"},
    {"h2c", T_FLAG, F(h2c), 0, NULL, 0, 0, NULL,
     "accept HTTP/2 with prior knowledge on the plain listener"},
    {"check-config", T_FLAG, F(check_config), 0, NULL, 0, 0, NULL,
     "validate the options and exit"},
    {"version", T_ACTION, 0, 0, NULL, 0, 0, NULL, "print the version and exit"},
    {"help", T_ACTION, 0, 0, NULL, 0, 0, NULL, "print this help and exit"},
};

#define NROWS (sizeof rows / sizeof rows[0])

static int bad(const struct opt_row *r, const char *val, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(const struct opt_row *r, const char *val, const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    fprintf(stderr, "vitals-proxy: --%s: '%s': %s\n", r->name, val, why);
    return -1;
}

/* "host:port", "[v6]:port" or ":port". Port 0 is refused (ephemeral ports are not useful to
 * print), host must be non-empty after defaults. */
static int split_hostport(const char *s, char *host, size_t hcap, uint16_t *port)
{
    const char *colon;
    size_t hl;
    const char *h = s;
    if (s[0] == '[') {
        const char *e = strchr(s, ']');
        if (!e || e[1] != ':')
            return -1;
        h = s + 1;
        hl = (size_t)(e - h);
        colon = e + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || memchr(s, ':', (size_t)(colon - s)))
            return -1;
        hl = (size_t)(colon - s);
    }
    if (hl >= hcap)
        return -1;
    const char *p = colon + 1;
    if (*p == '\0' || strlen(p) > 5 || strspn(p, "0123456789") != strlen(p))
        return -1;
    unsigned long v = strtoul(p, NULL, 10);
    if (v == 0 || v > 65535)
        return -1;
    if (hl == 0) {
        h = "127.0.0.1";
        hl = 9;
    }
    if (strcspn(h, " /?#@") < hl)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (uint16_t)v;
    return 0;
}

#define ALLOW_HOST_MAX 64

/* --allow-host NAME[,NAME...]: each NAME a DNS name (letters, digits, '-', '_', dots between
 * labels, at most 253 bytes), stored in lower case without a trailing dot, as route.c compares
 * them. No port (any port of the name is allowed), no wildcard, no IP literal (those are always
 * allowed). */
static int add_hosts(struct vp_options *o, const struct opt_row *r, const char *v)
{
    const char *p = v;
    do {
        size_t n = strcspn(p, ",");
        size_t nl = n > 0 && p[n - 1] == '.' ? n - 1 : n;
        if (nl == 0 || nl > 253 || p[0] == '.')
            return bad(r, v, "expected host names (letters, digits, '-', '.'), comma-separated");
        for (size_t i = 0; i < nl; i++) {
            char ch = p[i];
            bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                      (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
                      (ch == '.' && p[i + 1] != '.');
            if (!ok)
                return bad(r, v,
                           "expected host names without port, brackets or wildcard "
                           "(letters, digits, '-', '.'), comma-separated");
        }
        if (o->n_allow_host >= ALLOW_HOST_MAX)
            return bad(r, v, "at most %d names", ALLOW_HOST_MAX);
        char *name = malloc(nl + 1);
        if (!name)
            return bad(r, v, "out of memory");
        for (size_t i = 0; i < nl; i++)
            name[i] = p[i] >= 'A' && p[i] <= 'Z' ? (char)(p[i] + 32) : p[i];
        name[nl] = '\0';
        char **list = realloc(o->allow_host, (o->n_allow_host + 1) * sizeof *list);
        if (!list) {
            free(name);
            return bad(r, v, "out of memory");
        }
        o->allow_host = list;
        list[o->n_allow_host++] = name;
        p += n;
    } while (*p++ == ',');
    return 0;
}

static int set_value(struct vp_options *o, const struct opt_row *r, const char *v)
{
    char *base = (char *)o;
    char *end;
    switch (r->type) {
    case T_FLAG:
        *(bool *)(base + r->off) = true;
        return 0;
    case T_STR:
        if (strlen(v) >= r->cap)
            return bad(r, v, "longer than %zu bytes", r->cap - 1);
        /* An empty --db would be SQLite's private temporary database (nothing kept), an empty
         * --report-token no token at all. */
        if (!v[0] && v != r->def &&
            (r->off == F(db) || r->off == F(report_token) || r->off == F(cert) || r->off == F(key)))
            return bad(r, v, "expected a non-empty value");
        if (r->off == F(report_token))
            for (const char *t = v; *t; t++)
                if ((unsigned char)*t <= 0x20 || (unsigned char)*t >= 0x7f)
                    return bad(r, v, "expected printable ASCII without spaces");
        memcpy(base + r->off, v, strlen(v) + 1);
        return 0;
    case T_HOSTPORT:
        if (r->off == F(tls_listen_host)) {
            if (split_hostport(v, o->tls_listen_host, sizeof o->tls_listen_host,
                               &o->tls_listen_port) != 0)
                return bad(r, v, "expected HOST:PORT with a port in 1..65535");
            return 0;
        }
        if (split_hostport(v, o->listen_host, sizeof o->listen_host, &o->listen_port) != 0)
            return bad(r, v, "expected HOST:PORT with a port in 1..65535");
        return 0;
    case T_URL: {
        if (strlen(v) >= sizeof o->upstream_url)
            return bad(r, v, "URL too long");
        bool tls;
        size_t skip;
        if (strncmp(v, "http://", 7) == 0)
            tls = false, skip = 7;
        else if (strncmp(v, "https://", 8) == 0)
            tls = true, skip = 8;
        else
            return bad(r, v, "expected http://HOST[:PORT] or https://HOST[:PORT]");
        const char *a = v + skip;
        size_t al = strcspn(a, "/?#");
        if (a[al] != '\0' && strcmp(a + al, "/") != 0)
            return bad(r, v, "expected no path, query or fragment");
        char auth[VP_OPT_HOST_MAX + 8];
        if (al == 0 || a[0] == ':' || al >= sizeof auth - 5)
            return bad(r, v, "expected a host");
        if (memchr(a, '@', al))
            return bad(r, v, "expected no user information");
        memcpy(auth, a, al);
        auth[al] = '\0';
        memcpy(o->upstream_authority, auth, al + 1);
        bool has_port = auth[al - 1] != ']' && strrchr(auth, ':') != NULL;
        if (!has_port)
            memcpy(auth + al, tls ? ":443" : ":80", tls ? 5 : 4);
        if (split_hostport(auth, o->upstream_host, sizeof o->upstream_host, &o->upstream_port))
            return bad(r, v, "expected %s://HOST[:PORT] with a port in 1..65535",
                       tls ? "https" : "http");
        o->upstream_tls = tls;
        memcpy(o->upstream_url, v, strlen(v) + 1);
        return 0;
    }
    case T_UINT:
    case T_SIZE:
    case T_DUR: {
        errno = 0;
        if (v[0] < '0' || v[0] > '9')
            goto num_bad;
        double x = strtod(v, &end);
        if (errno || end == v)
            goto num_bad;
        double mul = 1;
        if (r->type == T_SIZE) {
            if (*end == 'K' || *end == 'k')
                mul = 1024, end++;
            else if (*end == 'M' || *end == 'm')
                mul = 1048576, end++;
        } else if (r->type == T_DUR) {
            mul = 1000;
            if (strcmp(end, "ms") == 0)
                mul = 1, end += 2;
            else if (*end == 's')
                end++;
            else if (*end == 'm')
                mul = 60000, end++;
        }
        if (*end != '\0')
            goto num_bad;
        x *= mul;
        if (r->type != T_DUR && x != (double)(uint64_t)x)
            goto num_bad;
        if (x < r->min || x > r->max)
            goto num_bad;
        if (r->type == T_SIZE)
            *(size_t *)(base + r->off) = (size_t)x;
        else
            *(unsigned *)(base + r->off) = (unsigned)x;
        return 0;
    num_bad:
        if (r->type == T_SIZE)
            return bad(r, v, "expected a byte count (K/M suffix allowed) in %.0f..%.0f", r->min,
                       r->max);
        if (r->type == T_DUR)
            return bad(r, v, "expected a duration (e.g. 10s, 500ms, 2m) in %.0fms..%.0fms",
                       r->min, r->max);
        return bad(r, v, "expected an integer in %.0f..%.0f", r->min, r->max);
    }
    case T_RATE: {
        errno = 0;
        double x = strtod(v, &end);
        if (errno || end == v || *end != '\0' || !(x >= r->min && x <= r->max))
            return bad(r, v, "expected a number in %g..%g", r->min, r->max);
        *(double *)(base + r->off) = x;
        return 0;
    }
    case T_LOGFMT:
        if (strcmp(v, "text") != 0 && strcmp(v, "json") != 0)
            return bad(r, v, "expected text or json");
        o->log_json = strcmp(v, "json") == 0;
        return 0;
    case T_LIST: {
        if (v[0] == '\0' || strlen(v) > 512)
            return bad(r, v, "expected a non-empty glob of at most 512 bytes");
        if (o->n_no_inject >= 64)
            return bad(r, v, "at most 64 patterns");
        char **nl = realloc(o->no_inject, (o->n_no_inject + 1) * sizeof *nl);
        if (!nl)
            return bad(r, v, "out of memory");
        o->no_inject = nl;
        nl[o->n_no_inject] = strdup(v);
        if (!nl[o->n_no_inject])
            return bad(r, v, "out of memory");
        o->n_no_inject++;
        return 0;
    }
    case T_HOSTS:
        return add_hosts(o, r, v);
    case T_ACTION:
        return 0;
    }
    return -1;
}

static void print_help(void)
{
    printf("Usage: vitals-proxy [OPTIONS]\n"
           "       vitals-proxy report|export|check ... (see vitals-proxy report --help)\n\n"
           "A reverse proxy that measures Web Vitals of the application behind it.\n\n");
    for (size_t i = 0; i < NROWS; i++) {
        char left[64];
        const struct opt_row *r = &rows[i];
        snprintf(left, sizeof left, "--%s%s%s", r->name, r->arg ? " " : "", r->arg ? r->arg : "");
        printf("  %-34s %s", left, r->help);
        if (r->def && r->def[0])
            printf(" [%s]", r->def);
        printf("\n");
    }
}

enum vp_opt_result vp_options_parse(struct vp_options *o, int argc, char **argv)
{
    memset(o, 0, sizeof *o);
    for (size_t i = 0; i < NROWS; i++)
        if (rows[i].def && set_value(o, &rows[i], rows[i].def) != 0)
            return VP_OPT_USAGE;

    struct option lo[NROWS + 1];
    for (size_t i = 0; i < NROWS; i++) {
        bool arg = rows[i].type != T_FLAG && rows[i].type != T_ACTION;
        lo[i] = (struct option){rows[i].name, arg ? required_argument : no_argument, NULL,
                                (int)(256 + i)};
    }
    lo[NROWS] = (struct option){NULL, 0, NULL, 0};
    opterr = 0;
    optind = 1;
    int c;
    bool help = false, version = false;
    while ((c = getopt_long(argc, argv, ":", lo, NULL)) != -1) {
        if (c == '?' || c == ':') {
            const char *arg = argv[optind - 1];
            if (c == ':')
                fprintf(stderr, "vitals-proxy: %s: expects a value (see --help)\n", arg);
            else
                fprintf(stderr, "vitals-proxy: %s: unknown option (see --help)\n", arg);
            return VP_OPT_USAGE;
        }
        const struct opt_row *r = &rows[c - 256];
        if (strcmp(r->name, "help") == 0)
            help = true;
        else if (strcmp(r->name, "version") == 0)
            version = true;
        else if (set_value(o, r, optarg) != 0)
            return VP_OPT_USAGE;
    }
    if (optind < argc) {
        fprintf(stderr, "vitals-proxy: '%s': unexpected argument (see --help)\n", argv[optind]);
        return VP_OPT_USAGE;
    }
    if (help) {
        print_help();
        return VP_OPT_EXIT0;
    }
    if (version) {
        printf("%s\n", PACKAGE_STRING);
        return VP_OPT_EXIT0;
    }
    if (o->max_request_line > o->max_header_bytes) {
        fprintf(stderr, "vitals-proxy: --max-request-line: %zu: must not exceed "
                        "--max-header-bytes (%zu)\n", o->max_request_line, o->max_header_bytes);
        return VP_OPT_USAGE;
    }
    if (o->tls_listen_port && !o->tls_self_signed && (!o->cert[0] || !o->key[0])) {
        fprintf(stderr, "vitals-proxy: --tls-listen: needs --cert FILE --key FILE or "
                        "--tls-self-signed\n");
        return VP_OPT_USAGE;
    }
    if (o->tls_self_signed && (o->cert[0] || o->key[0])) {
        fprintf(stderr, "vitals-proxy: --tls-self-signed: not with --cert/--key\n");
        return VP_OPT_USAGE;
    }
    if (!o->tls_listen_port && (o->cert[0] || o->key[0] || o->tls_self_signed)) {
        fprintf(stderr, "vitals-proxy: --cert/--key/--tls-self-signed: need --tls-listen "
                        "HOST:PORT\n");
        return VP_OPT_USAGE;
    }
    if (o->tls_listen_port && o->tls_listen_port == o->listen_port &&
        strcmp(o->tls_listen_host, o->listen_host) == 0) {
        fprintf(stderr, "vitals-proxy: --tls-listen: %s:%u is also --listen\n",
                o->tls_listen_host, o->tls_listen_port);
        return VP_OPT_USAGE;
    }
    if (!o->upstream_tls && (o->upstream_ca[0] || o->upstream_insecure)) {
        fprintf(stderr, "vitals-proxy: %s: needs an https:// --upstream\n",
                o->upstream_ca[0] ? "--upstream-ca" : "--upstream-insecure");
        return VP_OPT_USAGE;
    }
    if (o->upstream_ca[0] && o->upstream_insecure) {
        fprintf(stderr, "vitals-proxy: --upstream-insecure: not with --upstream-ca\n");
        return VP_OPT_USAGE;
    }
    if (o->workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        o->workers = n < 1 ? 1 : n > 64 ? 64 : (unsigned)n;
    }
    return VP_OPT_RUN;
}

void vp_options_dispose(struct vp_options *o)
{
    for (size_t i = 0; i < o->n_no_inject; i++)
        free(o->no_inject[i]);
    free(o->no_inject);
    o->no_inject = NULL;
    o->n_no_inject = 0;
    for (size_t i = 0; i < o->n_allow_host; i++)
        free(o->allow_host[i]);
    free(o->allow_host);
    o->allow_host = NULL;
    o->n_allow_host = 0;
}
