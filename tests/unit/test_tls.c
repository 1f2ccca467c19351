/* Unit tests for proxy/tls: the server context from options (self-signed cache creation, reuse,
 * regeneration of a corrupt or foreign cache, refusals of unusable --cert/--key) and the upstream
 * client context (--upstream-ca accepted, missing or junk refused). Files live in a
 * fresh mkdtemp directory; nothing touches the network. */
#include "config.h"
#include "proxy/options.h"
#include "proxy/tls.h"
#include "tests/support/tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static void opts_self_signed(struct vp_options *o)
{
    memset(o, 0, sizeof *o);
    snprintf(o->db, sizeof o->db, "%s/vitals.db", dir);
    o->tls_self_signed = true;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = calloc(1, 16384);
    if (buf && fread(buf, 1, 16383, f) == 0)
        buf[0] = '\0';
    fclose(f);
    return buf;
}

static void spit(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/vp-test-tls.XXXXXX");
    if (!mkdtemp(dir)) {
        printf("Bail out! mkdtemp\n");
        return 1;
    }
    char cache[128], err[512];
    snprintf(cache, sizeof cache, "%s/%s", dir, TLS_SELF_SIGNED_FILE);
    struct vp_options o;
    struct tls_server *t = NULL;

    opts_self_signed(&o);
    TAP_OK(tls_server_new(&t, &o, err, sizeof err) == 0, "tls/self_signed_made");
    TAP_OK(t && strcmp(tls_server_cert_path(t), cache) == 0, "tls/self_signed_path");
    struct stat st;
    TAP_OK(stat(cache, &st) == 0 && (st.st_mode & 0777) == 0600, "tls/cache_mode_0600");
    tls_server_free(t);
    char *first = slurp(cache);
    TAP_OK(first && strstr(first, "BEGIN PRIVATE KEY") && strstr(first, "BEGIN CERTIFICATE"),
           "tls/cache_holds_key_and_cert");

    t = NULL;
    TAP_OK(tls_server_new(&t, &o, err, sizeof err) == 0, "tls/self_signed_reused");
    tls_server_free(t);
    char *second = slurp(cache);
    TAP_OK(first && second && strcmp(first, second) == 0, "tls/cache_unchanged_on_reuse");

    spit(cache, "-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n");
    t = NULL;
    TAP_OK(tls_server_new(&t, &o, err, sizeof err) == 0, "tls/corrupt_cache_regenerated");
    tls_server_free(t);
    char *third = slurp(cache);
    TAP_OK(third && strstr(third, "BEGIN CERTIFICATE") && strcmp(third, first) != 0,
           "tls/corrupt_cache_rewritten");

    /* An unwritable directory: the certificate lives in memory only. */
    memset(&o, 0, sizeof o);
    snprintf(o.db, sizeof o.db, "/nonexistent-dir-for-vp/vitals.db");
    o.tls_self_signed = true;
    t = NULL;
    TAP_OK(tls_server_new(&t, &o, err, sizeof err) == 0 && t &&
               tls_server_cert_path(t)[0] == '\0',
           "tls/self_signed_in_memory");
    tls_server_free(t);

    /* --cert/--key refusals; the cache file written above is a matching key + certificate. */
    memset(&o, 0, sizeof o);
    snprintf(o.cert, sizeof o.cert, "%s/missing.pem", dir);
    snprintf(o.key, sizeof o.key, "%s", cache);
    t = NULL;
    int rc = tls_server_new(&t, &o, err, sizeof err);
    TAP_OK(rc == VP_ERR_IO && !t && strstr(err, "--cert") && strstr(err, "missing.pem"),
           "tls/missing_cert_refused");
    snprintf(o.cert, sizeof o.cert, "%s", cache);
    snprintf(o.key, sizeof o.key, "%s", cache);
    t = NULL;
    TAP_OK(tls_server_new(&t, &o, err, sizeof err) == 0, "tls/cert_key_from_pem_files");
    tls_server_free(t);
    char junk[128];
    snprintf(junk, sizeof junk, "%s/junk.pem", dir);
    spit(junk, "not pem\n");
    snprintf(o.key, sizeof o.key, "%s", junk);
    t = NULL;
    rc = tls_server_new(&t, &o, err, sizeof err);
    TAP_OK(rc == VP_ERR_INVALID && strstr(err, "--key") && !strchr(err, '\n'),
           "tls/junk_key_refused_one_line");
    /* Another self-signed key: does not match the certificate in `cache`. */
    char other_dir[96], other[160];
    snprintf(other_dir, sizeof other_dir, "%s/other", dir);
    mkdir(other_dir, 0700);
    memset(&o, 0, sizeof o);
    snprintf(o.db, sizeof o.db, "%s/v.db", other_dir);
    o.tls_self_signed = true;
    t = NULL;
    TAP_OK(tls_server_new(&t, &o, err, sizeof err) == 0, "tls/second_self_signed");
    tls_server_free(t);
    snprintf(other, sizeof other, "%s/%s", other_dir, TLS_SELF_SIGNED_FILE);
    memset(&o, 0, sizeof o);
    snprintf(o.cert, sizeof o.cert, "%s", cache);
    snprintf(o.key, sizeof o.key, "%s", other);
    t = NULL;
    rc = tls_server_new(&t, &o, err, sizeof err);
    TAP_OK(rc == VP_ERR_INVALID && strstr(err, "does not match"), "tls/mismatched_key_refused");

    /* Client context of an https:// upstream: --upstream-ca must be a readable PEM bundle with
     * at least one certificate (the self-signed cache file holds one). */
    struct tls_client *tc = NULL;
    memset(&o, 0, sizeof o);
    o.upstream_tls = true;
    snprintf(o.upstream_host, sizeof o.upstream_host, "localhost");
    TAP_OK(tls_client_new(&tc, &o, err, sizeof err) == 0 && tc, "tls/client_system_store");
    tls_client_free(tc);
    snprintf(o.upstream_ca, sizeof o.upstream_ca, "%s", cache);
    tc = NULL;
    TAP_OK(tls_client_new(&tc, &o, err, sizeof err) == 0 && tc, "tls/client_ca_bundle");
    tls_client_free(tc);
    snprintf(o.upstream_ca, sizeof o.upstream_ca, "%s/no-such-ca.pem", dir);
    tc = NULL;
    rc = tls_client_new(&tc, &o, err, sizeof err);
    TAP_OK(rc == VP_ERR_IO && !tc && strstr(err, "--upstream-ca") && strstr(err, "no-such-ca"),
           "tls/client_missing_ca_refused");
    snprintf(o.upstream_ca, sizeof o.upstream_ca, "%s", junk);
    tc = NULL;
    rc = tls_client_new(&tc, &o, err, sizeof err);
    TAP_OK(rc == VP_ERR_INVALID && !tc && strstr(err, "--upstream-ca") && !strchr(err, '\n'),
           "tls/client_junk_ca_refused_one_line");
    memset(&o, 0, sizeof o);
    o.upstream_tls = o.upstream_insecure = true;
    snprintf(o.upstream_host, sizeof o.upstream_host, "::1");
    tc = NULL;
    TAP_OK(tls_client_new(&tc, &o, err, sizeof err) == 0 && tc, "tls/client_insecure_ip");
    tls_client_free(tc);
    tls_client_free(NULL);

    free(first);
    free(second);
    free(third);
    unlink(cache);
    unlink(junk);
    unlink(other);
    rmdir(other_dir);
    rmdir(dir);
    TAP_DONE();
}
