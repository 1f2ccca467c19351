/* TLS server context and the TLS listener's connections, and the client context of an https://
 * upstream (see tls.h).
 *
 * Invariants:
 * - The SSL_CTX is complete before any worker starts and never changes afterwards, so workers
 *   share it without locks (OpenSSL 3 contexts are thread-safe for SSL_new).
 * - A connection in handshake is a struct tls_pending on its worker's list, counted once in
 *   w->nconns and once in px->nconns; the handshake is bounded by --header-timeout. After the
 *   handshake the bufferevent moves to conn_h2 (which keeps the px count) or conn_h1 (which
 *   takes its own), and the pending record is freed.
 * - Certificate problems are found at start-up, reported as one line, and never at run time. */
#include "config.h"
#include "proxy/tls.h"

#include "proxy/conn_h1.h"
#include "proxy/conn_h2.h"
#include "proxy/proxy_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

struct tls_server {
    SSL_CTX *ctx;
    char cert_path[1100];
};

struct tls_pending {
    struct worker *w;
    struct tls_pending *next, *prev;
    struct bufferevent *bev;
    char peer[INET6_ADDRSTRLEN];
};

/* Mozilla "intermediate" TLS 1.2 list: ECDHE + AEAD only (also what RFC 9113 asks of h2). */
static const char CIPHERS_12[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

/* TLS 1.3: OpenSSL's default order puts AES-256-GCM-SHA384 first, and with server preference
 * that overrides clients (browsers, h2load) that ask for AES-128 first; its SHA-384 key
 * schedule costs more per handshake for no practical gain. */
static const char CIPHERS_13[] =
    "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384";

static int fail(char *err, size_t cap, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t cap, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    if (n < 0 && cap)
        err[0] = '\0';
    ERR_clear_error();
    return code;
}

/* The most specific OpenSSL reason queued, or a fallback. */
static const char *ssl_reason(const char *fallback)
{
    unsigned long e, last = 0;
    while ((e = ERR_get_error()) != 0)
        last = e;
    const char *r = last ? ERR_reason_error_string(last) : NULL;
    return r ? r : fallback;
}

/* The offset of proto (length-prefixed, as on the wire) in an ALPN protocol list (RFC 7301
 * section 3.1, without the list's own length), -1 when absent, -2 when the list is malformed. */
static long alpn_find(const unsigned char *in, size_t inlen, const unsigned char *proto)
{
    for (size_t i = 0; i < inlen;) {
        size_t l = in[i];
        if (l > inlen - i - 1)
            return -2;
        if (l == proto[0] && memcmp(in + i + 1, proto + 1, l) == 0)
            return (long)i;
        i += 1 + l;
    }
    return -1;
}

static const unsigned char ALPN_H2[] = "\x02h2";
static const unsigned char ALPN_H11[] = "\x08http/1.1";

static int alpn_select_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                          const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)arg;
    const unsigned char *const pref[] = {ALPN_H2, ALPN_H11};
    for (size_t k = 0; k < 2; k++) {
        long at = alpn_find(in, inlen, pref[k]);
        if (at == -2)
            break; /* malformed list: no ALPN */
        if (at >= 0) {
            *out = in + at + 1;
            *outlen = pref[k][0];
            if (k != 0)
                SSL_set_read_ahead(ssl, 0); /* see client_hello_cb */
            return SSL_TLSEXT_ERR_OK;
        }
    }
    SSL_set_read_ahead(ssl, 0);
    return SSL_TLSEXT_ERR_NOACK; /* proceed without ALPN: HTTP/1.1 */
}

/* Read-ahead during the handshake, for HTTP/2 clients only. A connection starts with it on
 * (tls_accept_cb), so that each read takes whatever the client has sent (a ClientHello in one
 * read(2) instead of a record header and a body; the client's last flight and its connection
 * preface, which often arrive together, in one) rather than one record in two. Records read
 * ahead but not yet decrypted wait inside OpenSSL, where no socket event announces them:
 * conn_h2 looks for them (tls_conn_has_pending) at its start and after each read, conn_h1 does
 * not, so a client that cannot end up on HTTP/2 (no ALPN, or no "h2" in it) reads without it
 * from here on, as it always did; the ClientHello is the only record such a client has sent
 * yet (early data is not accepted). Called for every ClientHello, before ALPN is chosen. */
static int client_hello_cb(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    (void)arg;
    const unsigned char *ext = NULL;
    size_t len = 0;
    bool h2 = SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation,
                                        &ext, &len) == 1 &&
              len >= 2 && (size_t)(ext[0] << 8 | ext[1]) == len - 2 &&
              alpn_find(ext + 2, len - 2, ALPN_H2) >= 0;
    if (!h2)
        SSL_set_read_ahead(ssl, 0);
    return SSL_CLIENT_HELLO_SUCCESS;
}

static int sni_cb(SSL *ssl, int *alert, void *arg)
{
    (void)ssl;
    (void)alert;
    (void)arg;
    return SSL_TLSEXT_ERR_OK; /* one certificate for every name */
}

/* 0 when x is valid now and for at least margin more seconds; else fills err. */
static int check_validity(X509 *x, long margin, const char *what, char *err, size_t cap)
{
    const ASN1_TIME *nb = X509_get0_notBefore(x), *na = X509_get0_notAfter(x);
    time_t later = time(NULL) + margin;
    if (X509_cmp_current_time(nb) > 0)
        return fail(err, cap, VP_ERR_INVALID, "%s: certificate is not valid yet", what);
    if (X509_cmp_time(na, &later) <= 0) {
        char when[64] = "?";
        BIO *b = BIO_new(BIO_s_mem());
        if (b && ASN1_TIME_print(b, na) == 1) {
            int n = BIO_read(b, when, sizeof when - 1);
            when[n > 0 ? n : 0] = '\0';
        }
        BIO_free(b);
        return fail(err, cap, VP_ERR_INVALID, "%s: certificate expired (%s)", what, when);
    }
    return 0;
}

static int readable(const char *opt, const char *path, char *err, size_t cap)
{
    /* Non-blocking, and a regular file only: OpenSSL would wait forever on a FIFO. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return fail(err, cap, VP_ERR_IO, "%s: '%s': %s", opt, path, strerror(e));
    }
    close(fd);
    if (!S_ISREG(st.st_mode))
        return fail(err, cap, VP_ERR_IO, "%s: '%s': not a regular file", opt, path);
    return 0;
}

static int load_files(SSL_CTX *ctx, const struct vp_options *o, char *err, size_t cap)
{
    int rc = readable("--cert", o->cert, err, cap);
    if (rc == 0)
        rc = readable("--key", o->key, err, cap);
    if (rc)
        return rc;
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1)
        return fail(err, cap, VP_ERR_INVALID, "--cert: '%s': not a PEM certificate (%s)", o->cert,
                    ssl_reason("unreadable"));
    if (SSL_CTX_use_PrivateKey_file(ctx, o->key, SSL_FILETYPE_PEM) != 1) {
        const char *why = ssl_reason("unreadable");
        if (strstr(why, "mismatch") || strstr(why, "values"))
            return fail(err, cap, VP_ERR_INVALID, "--key: '%s': does not match the certificate "
                        "in '%s'", o->key, o->cert);
        return fail(err, cap, VP_ERR_INVALID, "--key: '%s': not a PEM private key (%s)", o->key,
                    why);
    }
    if (SSL_CTX_check_private_key(ctx) != 1)
        return fail(err, cap, VP_ERR_INVALID, "--key: '%s': does not match the certificate in "
                    "'%s'", o->key, o->cert);
    X509 *leaf = SSL_CTX_get0_certificate(ctx);
    if (!leaf)
        return fail(err, cap, VP_ERR_INVALID, "--cert: '%s': no certificate", o->cert);
    char what[1100];
    snprintf(what, sizeof what, "--cert: '%.1024s'", o->cert);
    return check_validity(leaf, 0, what, err, cap);
}

static int add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    if (!e)
        return -1;
    int ok = X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    return ok == 1 ? 0 : -1;
}

/* A fresh EC P-256 key and a self-signed certificate for the loopback names. */
static int make_self_signed(EVP_PKEY **pkey_out, X509 **x_out)
{
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    BIGNUM *serial = BN_new();
    X509_NAME *name = NULL;
    int rc = -1;
    if (!pkey || !x || !serial)
        goto out;
    if (BN_rand(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
        !BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) || X509_set_version(x, 2) != 1 ||
        !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), 365L * 86400))
        goto out;
    name = X509_NAME_new();
    if (!name ||
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                   (const unsigned char *)"vitals-proxy (self-signed)", -1, -1,
                                   0) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost",
                                   -1, -1, 0) != 1 ||
        X509_set_subject_name(x, name) != 1 || X509_set_issuer_name(x, name) != 1 ||
        X509_set_pubkey(x, pkey) != 1)
        goto out;
    if (add_ext(x, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1") ||
        add_ext(x, NID_basic_constraints, "critical,CA:FALSE") ||
        add_ext(x, NID_key_usage, "critical,digitalSignature") ||
        add_ext(x, NID_ext_key_usage, "serverAuth") ||
        add_ext(x, NID_subject_key_identifier, "hash"))
        goto out;
    if (X509_sign(x, pkey, EVP_sha256()) <= 0)
        goto out;
    *pkey_out = pkey;
    *x_out = x;
    pkey = NULL;
    x = NULL;
    rc = 0;
out:
    X509_NAME_free(name);
    BN_free(serial);
    X509_free(x);
    EVP_PKEY_free(pkey);
    return rc;
}

/* Reads a cached key + certificate; 0 only when both parse, match and stay valid > 1 day. */
static int load_cache(const char *path, EVP_PKEY **pkey_out, X509 **x_out)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    EVP_PKEY *pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    X509 *x = pkey ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    fclose(f);
    char scratch[160];
    if (!x || X509_check_private_key(x, pkey) != 1 ||
        check_validity(x, 86400, "cache", scratch, sizeof scratch) != 0) {
        X509_free(x);
        EVP_PKEY_free(pkey);
        ERR_clear_error();
        return -1;
    }
    *pkey_out = pkey;
    *x_out = x;
    return 0;
}

/* Writes key + certificate to path via a temporary file and rename (mode 0600). */
static int write_cache(const char *path, EVP_PKEY *pkey, X509 *x)
{
    char tmp[1200];
    int n = snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp)
        return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(tmp);
        return -1;
    }
    bool ok = PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) == 1 &&
              PEM_write_X509(f, x) == 1;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int setup_self_signed(struct tls_server *t, const struct vp_options *o, char *err,
                             size_t cap)
{
    /* The cache sits in the directory of --db. */
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", o->db);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    int n = snprintf(t->cert_path, sizeof t->cert_path, "%s/%s", dir, TLS_SELF_SIGNED_FILE);
    if (n < 0 || (size_t)n >= sizeof t->cert_path)
        t->cert_path[0] = '\0';
    EVP_PKEY *pkey = NULL;
    X509 *x = NULL;
    if (!t->cert_path[0] || load_cache(t->cert_path, &pkey, &x) != 0) {
        if (make_self_signed(&pkey, &x) != 0)
            return fail(err, cap, VP_ERR_NOMEM, "--tls-self-signed: cannot make a certificate "
                        "(%s)", ssl_reason("out of memory"));
        if (t->cert_path[0] && write_cache(t->cert_path, pkey, x) != 0)
            t->cert_path[0] = '\0'; /* in memory only */
    }
    int rc = 0;
    if (SSL_CTX_use_certificate(t->ctx, x) != 1 || SSL_CTX_use_PrivateKey(t->ctx, pkey) != 1)
        rc = fail(err, cap, VP_ERR_INVALID, "--tls-self-signed: %s", ssl_reason("unusable"));
    X509_free(x);
    EVP_PKEY_free(pkey);
    return rc;
}

int tls_server_new(struct tls_server **out, const struct vp_options *o, char *err, size_t cap)
{
    struct tls_server *t = calloc(1, sizeof *t);
    if (!t)
        return fail(err, cap, VP_ERR_NOMEM, "--tls-listen: out of memory");
    int rc;
    t->ctx = SSL_CTX_new(TLS_server_method());
    if (!t->ctx) {
        rc = fail(err, cap, VP_ERR_NOMEM, "--tls-listen: %s", ssl_reason("no TLS context"));
        goto fail;
    }
    SSL_CTX *ctx = t->ctx;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(ctx, CIPHERS_12) != 1 ||
        SSL_CTX_set_ciphersuites(ctx, CIPHERS_13) != 1 ||
        SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384") != 1) {
        rc = fail(err, cap, VP_ERR_INVALID, "--tls-listen: %s", ssl_reason("TLS set-up failed"));
        goto fail;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* The chain sent is the one in --cert (SSL_CTX_use_certificate_chain_file). Without
     * NO_AUTO_CHAIN, a certificate file with no intermediates made OpenSSL build a chain for
     * every handshake (an X509_STORE_CTX and an X509_verify_cert against this context's trust
     * store, which is empty here, so the chain it found was the certificate alone). */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_NO_AUTO_CHAIN);
    SSL_CTX_set_read_ahead(ctx, 1); /* until ALPN says otherwise: client_hello_cb */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(ctx, 20000);
    static const unsigned char sid[] = "vitals-proxy";
    SSL_CTX_set_session_id_context(ctx, sid, sizeof sid - 1);
    /* One TLS 1.3 ticket per connection instead of OpenSSL's two: a browser keeps one h2
     * connection per origin and resumes with one ticket; each ticket costs an encryption, a MAC
     * and a record on every handshake. */
    SSL_CTX_set_num_tickets(ctx, 1);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select_cb, NULL);
    SSL_CTX_set_client_hello_cb(ctx, client_hello_cb, NULL);
    SSL_CTX_set_tlsext_servername_callback(ctx, sni_cb);
    if (o->tls_self_signed)
        rc = setup_self_signed(t, o, err, cap);
    else {
        rc = load_files(ctx, o, err, cap);
        snprintf(t->cert_path, sizeof t->cert_path, "%s", o->cert);
    }
    if (rc)
        goto fail;
    *out = t;
    return 0;
fail:
    tls_server_free(t);
    return rc;
}

void tls_server_free(struct tls_server *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    free(t);
}

const char *tls_server_cert_path(const struct tls_server *t) { return t->cert_path; }

/* ---- connections ---- */

static void pending_unlink(struct tls_pending *p)
{
    struct worker *w = p->w;
    if (p->prev)
        p->prev->next = p->next;
    else
        w->tls_pending = p->next;
    if (p->next)
        p->next->prev = p->prev;
    w->nconns--;
}

static void maybe_exit(struct worker *w)
{
    if (w->draining && w->nconns == 0)
        event_base_loopexit(w->base, NULL);
}

static void pending_free(struct tls_pending *p)
{
    struct worker *w = p->w;
    pending_unlink(p);
    bufferevent_free(p->bev);
    atomic_fetch_sub(&w->px->nconns, 1);
    free(p);
    maybe_exit(w);
}

/* True when the handshake failed because the client spoke plain HTTP: OpenSSL recognises a
 * first record that begins with "GET ", "POST ", "HEAD ", "PUT " or "CONNECT". */
static bool plain_http_seen(struct bufferevent *bev)
{
    bool seen = false;
    unsigned long e;
    while ((e = bufferevent_get_openssl_error(bev)) != 0)
        if (ERR_GET_LIB(e) == ERR_LIB_SSL && (ERR_GET_REASON(e) == SSL_R_HTTP_REQUEST ||
                                              ERR_GET_REASON(e) == SSL_R_HTTPS_PROXY_REQUEST))
            seen = true;
    return seen;
}

/* A plain HTTP request on the TLS listener gets a plain 400 that says so, as one non-blocking
 * send on the raw socket (it fits any socket buffer), instead of a bare reset. OpenSSL has read
 * the request (read-ahead is on until the ClientHello), so closing does not reset the answer. */
static void answer_plain_http(struct bufferevent *bev)
{
    static const char body[] = "This port speaks HTTPS: use https:// in the address.\n";
    char msg[256];
    int n = snprintf(msg, sizeof msg,
                     "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     sizeof body - 1, body);
    evutil_socket_t fd = bufferevent_getfd(bev);
    if (fd >= 0 && n > 0 && (size_t)n < sizeof msg)
        (void)send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void handshake_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct tls_pending *p = arg;
    struct worker *w = p->w;
    if (!(what & BEV_EVENT_CONNECTED)) {
        if ((what & BEV_EVENT_ERROR) && plain_http_seen(bev))
            answer_plain_http(bev);
        pending_free(p); /* handshake failed, timed out, or the client left */
        return;
    }
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    const unsigned char *alpn = NULL;
    unsigned alen = 0;
    SSL_get0_alpn_selected(ssl, &alpn, &alen);
    const char *ver = SSL_get_version(ssl);
    char peer[INET6_ADDRSTRLEN];
    memcpy(peer, p->peer, sizeof peer);
    pending_unlink(p);
    free(p);
    bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
    bufferevent_set_timeouts(bev, NULL, NULL);
    bool has_input = evbuffer_get_length(bufferevent_get_input(bev)) > 0;
    if (alen == 2 && memcmp(alpn, "h2", 2) == 0) {
        /* The session keeps this connection's px count, and frees bev on failure. */
        if (h2_session_start(w, bev, peer, ver) != 0)
            maybe_exit(w);
        return;
    }
    bufferevent_enable(bev, EV_WRITE); /* as conn_h1 expects (tls_accept_cb turned it off) */
    if (conn_h1_attach(w, bev, peer, "h1", ver) != 0) {
        bufferevent_free(bev);
        atomic_fetch_sub(&w->px->nconns, 1);
        maybe_exit(w);
        return;
    }
    atomic_fetch_sub(&w->px->nconns, 1); /* conn_h1 took its own */
    if (has_input)
        bufferevent_trigger(bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

static void tls_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                          int len, void *arg)
{
    (void)l;
    (void)len;
    struct worker *w = arg;
    unsigned n = atomic_fetch_add(&w->px->nconns, 1) + 1;
    if (n > w->px->opt->max_connections || w->draining) {
        atomic_fetch_sub(&w->px->nconns, 1);
        close(fd);
        return;
    }
    struct tls_pending *p = calloc(1, sizeof *p);
    SSL *ssl = p ? SSL_new(w->px->tls->ctx) : NULL;
    if (!ssl) {
        free(p);
        close(fd);
        atomic_fetch_sub(&w->px->nconns, 1);
        return;
    }
    memcpy(p->peer, "-", 2);
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, p->peer, sizeof p->peer);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, p->peer,
                  sizeof p->peer);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    p->bev = bufferevent_openssl_socket_new(w->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                            BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!p->bev) {
        SSL_free(ssl);
        close(fd);
        free(p);
        atomic_fetch_sub(&w->px->nconns, 1);
        return;
    }
    /* Browsers often close without close_notify: an EOF, not an error. */
    bufferevent_openssl_set_allow_dirty_shutdown(p->bev, 1);
    p->w = w;
    p->next = w->tls_pending;
    if (w->tls_pending)
        w->tls_pending->prev = p;
    w->tls_pending = p;
    w->nconns++;
    unsigned ms = w->px->opt->header_timeout_ms;
    struct timeval tv = {ms / 1000, (suseconds_t)(ms % 1000) * 1000};
    bufferevent_set_timeouts(p->bev, &tv, &tv);
    bufferevent_setcb(p->bev, NULL, NULL, handshake_event_cb, p);
    /* Reading only: the server's first move is to read the ClientHello. With the write event
     * on as well (bufferevent_openssl's default), the handshake would start on writability,
     * and turning writing off once OpenSSL asks for input costs an epoll_ctl; when OpenSSL
     * does need to write, bufferevent_openssl turns writing on itself. */
    bufferevent_disable(p->bev, EV_WRITE);
    bufferevent_enable(p->bev, EV_READ);
}

void tls_conn_set_busy(struct bufferevent *bev, bool busy)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    if (!ssl)
        return;
    SSL_set_read_ahead(ssl, busy);
    if (busy) {
        SSL_clear_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
        return;
    }
    /* Idle again: the buffers go now when empty, else once they empty (the mode). */
    SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
    SSL_free_buffers(ssl);
}

bool tls_conn_has_pending(struct bufferevent *bev)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    return ssl && SSL_has_pending(ssl);
}

static void tls_accept_error_cb(struct evconnlistener *l, void *arg)
{
    (void)l;
    struct worker *w = arg;
    listener_accept_backoff(w, &w->tls_lev);
}

int tls_worker_start(struct worker *w)
{
    int fd = fcntl(w->px->tls_fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return VP_ERR_IO;
    w->tls_lev = evconnlistener_new(w->base, tls_accept_cb, w, LEV_OPT_CLOSE_ON_FREE, 0, fd);
    if (!w->tls_lev) {
        close(fd);
        return VP_ERR_NOMEM;
    }
    evconnlistener_set_error_cb(w->tls_lev, tls_accept_error_cb);
    return 0;
}

void tls_worker_drain(struct worker *w)
{
    if (w->tls_lev) {
        evconnlistener_free(w->tls_lev);
        w->tls_lev = NULL;
    }
    while (w->tls_pending)
        pending_free(w->tls_pending);
    h2_drain_all(w);
}

void tls_worker_free_all(struct worker *w)
{
    if (w->tls_lev) {
        evconnlistener_free(w->tls_lev);
        w->tls_lev = NULL;
    }
    while (w->tls_pending)
        pending_free(w->tls_pending);
    h2_free_all(w);
}

/* ---- TLS to the upstream ----
 * The upstream connection is an OpenSSL bufferevent over the connecting socket: libevent runs
 * the non-blocking handshake and maps SSL_read/SSL_write WANT_READ/WANT_WRITE onto the socket's
 * events (a write that needs readability and the reverse included), and it moves every record
 * already decrypted inside OpenSSL (SSL_pending) into the input buffer before it calls back, so
 * the loop never waits on the socket for bytes that are already here. conn_h1 then uses the
 * bufferevent's buffers as for a plain upstream, minus its direct socket reads and writes.
 *
 * Sessions: the context keeps no session cache of its own (SSL_SESS_CACHE_NO_INTERNAL_STORE);
 * each new session (a TLS 1.3 ticket arrives after the handshake, inside the first read) goes
 * to new_session_cb, which keeps a copy of the newest resumable one on the connection's worker,
 * and each new connection resumes from a copy of that. OpenSSL never sees the worker's copy, so
 * nothing it does to a connection's session (marking a TLS 1.3 ticket as used, or a session as
 * bad after an error) reaches it. Workers never share a session, so no lock. */

struct tls_client {
    SSL_CTX *ctx;
    char host[256];
    bool ip_literal;
    bool verify;
};

static int client_w_idx = -1; /* SSL ex_data slot: the connection's worker */

static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    struct worker *w = SSL_get_ex_data(ssl, client_w_idx);
    if (!w || !SSL_SESSION_is_resumable(sess))
        return 0;
    /* A copy: sess stays the connection's own session, which OpenSSL marks unusable when that
     * connection ends without close_notify or with a fatal alert. */
    SSL_SESSION *copy = SSL_SESSION_dup(sess);
    if (copy) {
        SSL_SESSION_free(w->up_sess);
        w->up_sess = copy;
    }
    return 0; /* sess is not kept */
}

int tls_client_new(struct tls_client **out, const struct vp_options *o, char *err, size_t cap)
{
    struct tls_client *t = calloc(1, sizeof *t);
    if (!t)
        return fail(err, cap, VP_ERR_NOMEM, "--upstream: out of memory");
    int rc;
    if (client_w_idx < 0)
        client_w_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    t->ctx = SSL_CTX_new(TLS_client_method());
    if (!t->ctx || client_w_idx < 0) {
        rc = fail(err, cap, VP_ERR_NOMEM, "--upstream: %s", ssl_reason("no TLS context"));
        goto fail;
    }
    SSL_CTX *ctx = t->ctx;
    static const unsigned char alpn[] = "\x08http/1.1";
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1) != 0) {
        rc = fail(err, cap, VP_ERR_INVALID, "--upstream: %s", ssl_reason("TLS set-up failed"));
        goto fail;
    }
    /* Renegotiation would make a read need a handshake in the middle of a body: refused. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
    t->verify = !o->upstream_insecure;
    if (o->upstream_ca[0]) {
        rc = readable("--upstream-ca", o->upstream_ca, err, cap);
        if (rc)
            goto fail;
        ERR_clear_error();
        if (SSL_CTX_load_verify_locations(ctx, o->upstream_ca, NULL) != 1) {
            rc = fail(err, cap, VP_ERR_INVALID, "--upstream-ca: '%s': no PEM certificate (%s)",
                      o->upstream_ca, ssl_reason("unreadable"));
            goto fail;
        }
    } else if (t->verify && SSL_CTX_set_default_verify_paths(ctx) != 1) {
        ERR_clear_error(); /* no system store: every verification fails, with its reason */
    }
    SSL_CTX_set_verify(ctx, t->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    snprintf(t->host, sizeof t->host, "%s", o->upstream_host);
    unsigned char a[sizeof(struct in6_addr)];
    t->ip_literal = inet_pton(AF_INET, t->host, a) == 1 || inet_pton(AF_INET6, t->host, a) == 1;
    *out = t;
    return 0;
fail:
    tls_client_free(t);
    return rc;
}

void tls_client_free(struct tls_client *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    free(t);
}

struct bufferevent *tls_client_bufferevent(struct tls_client *t, struct worker *w, int bev_opts)
{
    SSL *ssl = SSL_new(t->ctx);
    if (!ssl)
        return NULL;
    bool ok = SSL_set_ex_data(ssl, client_w_idx, w) == 1;
    if (ok && t->verify) {
        if (t->ip_literal)
            ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), t->host) == 1;
        else
            ok = SSL_set1_host(ssl, t->host) == 1;
    }
    if (ok && !t->ip_literal)
        ok = SSL_set_tlsext_host_name(ssl, t->host) == 1; /* SNI is for names (RFC 6066) */
    if (ok && w->up_sess) {
        /* Each connection resumes from its own copy: at the end of a TLS 1.3 handshake that
         * resumed, OpenSSL marks the session it used as spent (tickets are meant for one use),
         * and on a shared object that mark would turn every connection opened before the next
         * ticket arrives into a full handshake. Offering the same ticket again is accepted by
         * servers with stateless tickets (OpenSSL's, Go's, Node's default); a server that
         * refuses it answers with a full handshake and a fresh ticket. */
        SSL_SESSION *copy = SSL_SESSION_dup(w->up_sess);
        ok = copy && SSL_set_session(ssl, copy) == 1;
        SSL_SESSION_free(copy);
    }
    if (!ok) {
        SSL_free(ssl);
        ERR_clear_error();
        return NULL;
    }
    struct bufferevent *bev = bufferevent_openssl_socket_new(w->base, -1, ssl,
                                                             BUFFEREVENT_SSL_CONNECTING, bev_opts);
    if (!bev) {
        SSL_free(ssl);
        return NULL;
    }
    /* An upstream that closes without close_notify ends like a plain one: EOF, not an error
     * (close-delimited bodies end that way; the framing checks catch truncation). */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

const char *tls_client_failure(struct bufferevent *bev, char *buf, size_t cap)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    unsigned long e = bufferevent_get_openssl_error(bev), first = e;
    while (e)
        e = bufferevent_get_openssl_error(bev);
    const char *r = NULL;
    long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    if (vr != X509_V_OK) {
        snprintf(buf, cap, "upstream TLS: certificate verify failed: %s",
                 X509_verify_cert_error_string(vr));
        r = buf;
    } else if (first) {
        const char *why = ERR_reason_error_string(first);
        snprintf(buf, cap, "upstream TLS: handshake failed: %s", why ? why : "unknown error");
        r = buf;
    }
    ERR_clear_error();
    return r;
}

void tls_client_close_notify(struct bufferevent *bev, bool shut_wr)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    /* An orderly end for the upstream; SSL_free without it would also mark the connection's
     * session as bad (not the worker's copy). */
    if (ssl && SSL_is_init_finished(ssl) && !(SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN)) {
        if (SSL_shutdown(ssl) < 0)
            SSL_set_shutdown(ssl, SSL_get_shutdown(ssl) | SSL_SENT_SHUTDOWN);
        ERR_clear_error();
    }
    if (shut_wr && bufferevent_getfd(bev) >= 0)
        shutdown(bufferevent_getfd(bev), SHUT_WR);
}

void tls_client_worker_dispose(struct worker *w)
{
    SSL_SESSION_free(w->up_sess);
    w->up_sess = NULL;
}
