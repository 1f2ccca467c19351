/* Reserved paths (design.md, "Reserved paths"). Nothing under /__vitals reaches the upstream:
 * the prefix test is done on the raw path before any decoding.
 *   GET  /__vitals/healthz        "ok"
 *   GET  /__vitals/ (or /__vitals) report.html              (token-protected)
 *   GET  /__vitals/NAME           embedded asset NAME (beacon.js and the report's files)
 *   POST /__vitals/beacon         rate-limited, validated, queued to the store
 *   POST /__vitals/api/label      with a JSON body {"label":"name"}: switch the run label here
 *                                 (proxy/label.h; token-protected); other POSTs to it (?name=X)
 *                                 go to web_api_handle like every API path
 *   *    /__vitals/api/...        web_api_handle on the API thread pool (token-protected)
 * Assets: br or gzip per Accept-Encoding, ETag/If-None-Match -> 304, immutable caching only
 * when ?v= names the current hash. --report-token: "Authorization: Bearer T" or "?token=T".
 *
 * DNS rebinding: a page of another site whose name the attacker points at 127.0.0.1 makes the
 * browser send its requests here with that site's name in Host, and reads the answers as
 * same-origin. Without a token, the report page, the API and the exports therefore answer only a
 * Host that no outside DNS name can take: an IP literal (RFC 3986 IPv4address, or an IPv6
 * address in brackets), localhost or a name under .localhost (RFC 6761 section 6.3: resolved to
 * loopback by the browser itself), or a name given with --allow-host; anything else gets 403.
 * HTTP/2's :authority arrives here as Host (conn_h2.c). The beacon, beacon.js, the report's
 * static files and healthz stay open on every Host: they carry no stored data. */
#include "config.h"
#include "proxy/route.h"

#include "common/vp_buf.h"
#include "common/vp_err.h"
#include "proxy/api_pool.h"
#include "proxy/conn_h1.h"
#include "proxy/label.h"
#include "proxy/limits.h"
#include "proxy/options.h"
#include "store/store.h"
#include "web/web.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PREFIX "/__vitals"

bool route_is_reserved(const char *target)
{
    size_t n = strlen(PREFIX);
    if (strncmp(target, PREFIX, n) != 0)
        return false;
    char next = target[n];
    return next == '\0' || next == '/' || next == '?' || next == '#';
}

static int hexval(int ch)
{
    return ch >= '0' && ch <= '9'   ? ch - '0'
           : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
           : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                    : -1;
}

/* Cheap test first: a path without '%', '\\', ';', "//", "/." or "/__vitals" in another case
 * cannot be an alias, so ordinary requests never pay for the normalisation below. */
static bool may_be_alias(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (ch == '%' || ch == '\\' || ch == ';')
            return true;
        if (ch == '/' && i + 1 < n &&
            (p[i + 1] == '/' || p[i + 1] == '.' ||
             (n - i > 8 && vp_slice_iprefix(p + i + 1, n - i - 1, "__vitals"))))
            return true;
    }
    return false;
}

/* Percent-decodes buf[0..n) in place, repeated for double encodings (%255F); new length. */
static size_t pct_decode(char *buf, size_t n)
{
    for (int round = 0; round < 3; round++) {
        size_t j = 0;
        bool changed = false;
        for (size_t i = 0; i < n; i++) {
            int hi, lo;
            if (buf[i] == '%' && i + 2 < n && (hi = hexval((unsigned char)buf[i + 1])) >= 0 &&
                (lo = hexval((unsigned char)buf[i + 2])) >= 0) {
                buf[j++] = (char)(hi * 16 + lo);
                i += 2;
                changed = true;
            } else {
                buf[j++] = buf[i];
            }
        }
        n = j;
        if (!changed)
            break;
    }
    return n;
}

/* Removes empty and dot segments of buf[0..n) ('\\' separates too), cuts ";params" and folds
 * case, writing the result to out (room for n bytes: it never grows); its length. */
static size_t normalise_segments(const char *buf, size_t n, char *out)
{
    size_t o = 0, i = 0;
    while (i < n) {
        while (i < n && (buf[i] == '/' || buf[i] == '\\'))
            i++;
        size_t s = i;
        while (i < n && buf[i] != '/' && buf[i] != '\\')
            i++;
        size_t sl = i - s;
        const char *semi = memchr(buf + s, ';', sl);
        if (semi)
            sl = (size_t)(semi - (buf + s));
        if (sl == 0 || (sl == 1 && buf[s] == '.'))
            continue;
        if (sl == 2 && buf[s] == '.' && buf[s + 1] == '.') {
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--;
            continue;
        }
        out[o++] = '/';
        for (size_t k = 0; k < sl; k++) {
            char ch = buf[s + k];
            out[o++] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
        }
    }
    return o;
}

bool route_is_reserved_alias(const char *target)
{
    if (target[0] != '/' || route_is_reserved(target))
        return false;
    size_t n = strcspn(target, "?#");
    if (!may_be_alias(target, n))
        return false;
    char small[2 * 512];
    char *buf = n <= 512 ? small : malloc(2 * n);
    if (!buf)
        return true; /* refused rather than forwarded unchecked */
    char *out = buf + n;
    memcpy(buf, target, n);
    size_t dn = pct_decode(buf, n);
    size_t o = normalise_segments(buf, dn, out);
    size_t pl = strlen(PREFIX);
    bool alias = o >= pl && memcmp(out, PREFIX, pl) == 0 && (o == pl || out[pl] == '/');
    if (buf != small)
        free(buf);
    return alias;
}

static void reply_json(struct conn *c, int status, const char *msg)
{
    char body[300];
    int n = snprintf(body, sizeof body, "{\"error\":\"%s\"}\n", msg);
    if (n < 0 || (size_t)n >= sizeof body)
        n = 0;
    conn_reply(c, status, http_reason(status), "application/json",
               status == 401 ? "WWW-Authenticate: Bearer\r\nCache-Control: no-store\r\n"
                             : "Cache-Control: no-store\r\n",
               body, (size_t)n);
}

/* Value of query parameter key (no decoding) as a slice; false when absent. */
static bool query_param(const char *q, const char *key, const char **v, size_t *vl)
{
    size_t kl = strlen(key);
    while (q && *q) {
        size_t seg = strcspn(q, "&#");
        if (seg > kl && strncmp(q, key, kl) == 0 && q[kl] == '=') {
            *v = q + kl + 1;
            *vl = seg - kl - 1;
            return true;
        }
        q += seg;
        if (*q != '&')
            break;
        q++;
    }
    return false;
}

/* Length-independent comparison, so the token cannot be guessed byte by byte by timing. */
static bool token_eq(const char *a, size_t al, const char *tok)
{
    size_t tl = strlen(tok);
    unsigned char d = al != tl;
    for (size_t i = 0; i < al; i++)
        d |= (unsigned char)(a[i] ^ tok[i % (tl ? tl : 1)]);
    return d == 0;
}

static bool authorized(struct conn *c, const char *query)
{
    const char *tok = conn_worker(c)->px->opt->report_token;
    if (!tok[0])
        return true;
    const char *auth = conn_request_header(c, "authorization");
    if (auth && vp_slice_iprefix(auth, strlen(auth), "Bearer ")) {
        const char *v = auth + 7;
        if (token_eq(v, strlen(v), tok))
            return true;
    }
    const char *v;
    size_t vl;
    return query_param(query, "token", &v, &vl) && token_eq(v, vl, tok);
}

bool route_host_allowed(const char *host, const struct vp_options *o)
{
    if (!host)
        return false;
    size_t hl = strlen(host);
    size_t nl; /* length of the host part, port cut */
    if (host[0] == '[') {
        const char *e = memchr(host, ']', hl);
        if (!e)
            return false;
        nl = (size_t)(e - host) + 1;
    } else {
        const char *colon = memchr(host, ':', hl);
        nl = colon ? (size_t)(colon - host) : hl;
    }
    if (nl < hl) { /* ":" port, digits only (RFC 3986: port = *DIGIT) */
        const char *port = host + nl;
        if (port[0] != ':' || strspn(port + 1, "0123456789") != hl - nl - 1 || hl - nl - 1 > 5)
            return false;
    }
    if (nl == 0 || nl > 255)
        return false;
    char name[256];
    memcpy(name, host, nl);
    name[nl] = '\0';
    if (name[0] == '[') {
        struct in6_addr a6;
        name[nl - 1] = '\0';
        return inet_pton(AF_INET6, name + 1, &a6) == 1;
    }
    struct in_addr a4;
    if (inet_pton(AF_INET, name, &a4) == 1)
        return true;
    if (name[nl - 1] == '.') /* the absolute form of the same name */
        name[--nl] = '\0';
    if (nl == 0)
        return false;
    for (size_t i = 0; i < nl; i++)
        if (name[i] >= 'A' && name[i] <= 'Z')
            name[i] = (char)(name[i] + 32);
    static const char lh[] = "localhost";
    size_t ll = sizeof lh - 1;
    if (strcmp(name, lh) == 0 || (nl > ll + 1 && name[nl - ll - 1] == '.' &&
                                  name[nl - ll - 2] != '.' && memcmp(name + nl - ll, lh, ll) == 0))
        return true;
    for (size_t i = 0; i < o->n_allow_host; i++)
        if (strcmp(name, o->allow_host[i]) == 0)
            return true;
    return false;
}

/* Without a token, the report, API and exports need a Host that names the proxy (see the file
 * comment); with one, the token is the defence and any Host will do. */
static bool host_refused(struct conn *c)
{
    const struct vp_options *o = conn_worker(c)->px->opt;
    return !o->report_token[0] && !route_host_allowed(conn_request_header(c, "host"), o);
}

#define HOST_REFUSED                                                                               \
    "Host not allowed for the report without a token (DNS rebinding defence): open it as "         \
    "localhost or 127.0.0.1, or start the proxy with --allow-host NAME or --report-token TOKEN"

/* A request another site's page made the browser send (a form posted to api/label?name=X needs
 * no CORS preflight): Sec-Fetch-Site other than same-origin/none, or an Origin whose host and
 * port differ from Host. Requests without these headers (curl, scripts) are not browsers'. */
static bool cross_site(struct conn *c)
{
    const char *sfs = conn_request_header(c, "sec-fetch-site");
    if (sfs && strcmp(sfs, "same-origin") != 0 && strcmp(sfs, "none") != 0)
        return true;
    const char *origin = conn_request_header(c, "origin");
    if (!origin)
        return false;
    const char *a = strstr(origin, "://");
    const char *host = conn_request_header(c, "host");
    return !a || !host || strcasecmp(a + 3, host) != 0;
}

static void serve_asset(struct conn *c, const struct web_asset *a, const char *query)
{
    const char *ae = conn_request_header(c, "accept-encoding");
    size_t ael = ae ? strlen(ae) : 0;
    const unsigned char *body = a->data;
    size_t len = a->len;
    const char *enc = NULL;
    if (ae && a->br && vp_header_has_token(ae, ael, "br")) {
        body = a->br, len = a->br_len, enc = "br";
    } else if (ae && a->gz && vp_header_has_token(ae, ael, "gzip")) {
        body = a->gz, len = a->gz_len, enc = "gzip";
    }
    const char *v;
    size_t vl;
    bool versioned = query_param(query, "v", &v, &vl) && vl == strlen(a->hash) &&
                     memcmp(v, a->hash, vl) == 0;
    char etag[64];
    snprintf(etag, sizeof etag, "\"%s%s%s\"", a->hash, enc ? "-" : "", enc ? enc : "");
    char extra[400];
    int n = snprintf(extra, sizeof extra, "ETag: %s\r\nVary: Accept-Encoding\r\nCache-Control: %s\r\n"
                     "X-Content-Type-Options: nosniff\r\n%s%s%s",
                     etag, versioned ? "public, max-age=31536000, immutable" : "no-cache",
                     enc ? "Content-Encoding: " : "", enc ? enc : "", enc ? "\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof extra) {
        reply_json(c, 500, "header overflow");
        return;
    }
    const char *inm = conn_request_header(c, "if-none-match");
    if (inm && (strstr(inm, etag) || strcmp(inm, "*") == 0)) {
        conn_reply(c, 304, "Not Modified", NULL, extra, NULL, 0);
        return;
    }
    conn_reply(c, 200, "OK", a->content_type, extra, body, len);
}

static void handle_beacon(struct conn *c, const char *method, struct evbuffer *body)
{
    struct proxy *px = conn_worker(c)->px;
    if (strcmp(method, "POST") != 0) {
        reply_json(c, 405, "use POST");
        return;
    }
    if (!px->store) {
        reply_json(c, 503, "no store");
        return;
    }
    struct worker *w = conn_worker(c);
    if (w->beacon_rl && !rate_limiter_allow(w->beacon_rl, conn_peer(c), vp_mono_us())) {
        store_count_rejection(px->store, "rate-limited");
        reply_json(c, 429, "rate limited");
        return;
    }
    size_t len = body ? evbuffer_get_length(body) : 0;
    const char *data = len ? (const char *)evbuffer_pullup(body, -1) : "";
    if (len && !data) {
        reply_json(c, 503, "out of memory");
        return;
    }
    char label[LABEL_MAX + 1];
    struct store_beacon_ctx ctx = {
        .peer = conn_peer(c),
        .user_agent = conn_request_header(c, "user-agent"),
        .now_ms = vp_now_ms(),
        .label = label_get(label, sizeof label) ? label : NULL,
        .sample_rate = px->opt->sample,
    };
    char reason[200] = "";
    int rc = store_ingest_beacon(px->store, data, len, &ctx, reason, sizeof reason);
    switch (rc) {
    case 0:
        conn_reply(c, 204, "No Content", NULL, "Cache-Control: no-store\r\n", NULL, 0);
        return;
    case VP_ERR_INVALID:
    case VP_ERR_IO: {
        char safe[200];
        size_t j = 0;
        for (size_t i = 0; reason[i] && j + 1 < sizeof safe; i++)
            if ((unsigned char)reason[i] >= 0x20 && reason[i] != '"' && reason[i] != '\\')
                safe[j++] = reason[i];
        safe[j] = '\0';
        if (rc == VP_ERR_IO)
            reply_json(c, 503, j ? safe : "database cannot be written");
        else
            reply_json(c, 400, j ? safe : "invalid beacon");
        return;
    }
    case VP_ERR_LIMIT:
        reply_json(c, 413, "beacon too large");
        return;
    default:
        reply_json(c, 503, rc == VP_ERR_FULL ? "store busy" : "out of memory");
        return;
    }
}

/* POST /__vitals/api/label with a JSON body: a mutex and a small JSON parse, fine on the event
 * loop. */
static void handle_label(struct conn *c, struct evbuffer *body)
{
    size_t len = body ? evbuffer_get_length(body) : 0;
    const char *data = len ? (const char *)evbuffer_pullup(body, -1) : NULL;
    struct web_reply r = {.body = evbuffer_new()};
    if (!r.body || (len && !data) || label_handle_post(data, len, &r) != 0) {
        evbuffer_free(r.body);
        reply_json(c, 503, "out of memory");
        return;
    }
    size_t n = evbuffer_get_length(r.body);
    const char *out = n ? (const char *)evbuffer_pullup(r.body, -1) : "";
    conn_reply(c, r.status, http_reason(r.status), r.content_type, "Cache-Control: no-store\r\n",
               out, n);
    evbuffer_free(r.body);
}

static void handle_api(struct conn *c, const char *method, const char *target)
{
    struct worker *w = conn_worker(c);
    const char *rest = target + strlen(PREFIX "/api/");
    size_t rl = strcspn(rest, "?#");
    const char *q = rest[rl] == '?' ? rest + rl + 1 : NULL;
    if (!w->px->api) {
        reply_json(c, 503, "no store");
        return;
    }
    struct api_job *j = api_job_new(c, w, method, rest, rl, q);
    if (!j) {
        reply_json(c, 503, "out of memory");
        return;
    }
    if (api_pool_submit(w->px->api, j) != 0) {
        api_job_free(j);
        reply_json(c, 503, "busy");
        return;
    }
    conn_await(c, j);
}

void route_handle(struct conn *c, const char *method, const char *target, struct evbuffer *body)
{
    const char *path = target + strlen(PREFIX);
    size_t pl = strcspn(path, "?#");
    const char *query = path[pl] == '?' ? path + pl + 1 : NULL;
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;

    if (pl == strlen("/beacon") && strncmp(path, "/beacon", pl) == 0) {
        handle_beacon(c, method, body);
        return;
    }
    if (pl == strlen("/healthz") && strncmp(path, "/healthz", pl) == 0) {
        if (!get) {
            reply_json(c, 405, "method not allowed");
            return;
        }
        conn_reply(c, 200, "OK", "text/plain; charset=utf-8", "Cache-Control: no-store\r\n", "ok",
                   2);
        return;
    }
    if (pl >= strlen("/api/") && strncmp(path, "/api/", 5) == 0) {
        if (host_refused(c)) {
            reply_json(c, 403, HOST_REFUSED);
            return;
        }
        if (!authorized(c, query)) {
            reply_json(c, 401, "report token required");
            return;
        }
        if (!get && cross_site(c)) {
            reply_json(c, 403, "cross-site request refused");
            return;
        }
        const char *ct = conn_request_header(c, "content-type");
        if (pl == strlen("/api/label") && strncmp(path, "/api/label", pl) == 0 &&
            strcmp(method, "POST") == 0 && ct && strncmp(ct, "application/json", 16) == 0) {
            handle_label(c, body);
            return;
        }
        handle_api(c, method, target);
        return;
    }
    if (!get) {
        reply_json(c, 405, "method not allowed");
        return;
    }
    const char *name = pl <= 1 ? "report.html" : path + 1;
    size_t nl = pl <= 1 ? strlen(name) : pl - 1;
    const struct web_asset *a = web_asset_find(name, nl);
    if (!a || memchr(name, '/', nl)) {
        reply_json(c, 404, "not found");
        return;
    }
    bool is_report = nl == strlen("report.html") && memcmp(name, "report.html", nl) == 0;
    if (is_report && host_refused(c)) {
        reply_json(c, 403, HOST_REFUSED);
        return;
    }
    if (is_report && !authorized(c, query)) {
        reply_json(c, 401, "report token required");
        return;
    }
    serve_asset(c, a, query);
}
