/* vitals-proxy entry point: sub-commands go to proxy/cli.c; otherwise parse the option table,
 * open the store (a failure is a one-line start-up error, exit 2), run the proxy, and free the
 * store once every event loop has stopped. No protocol or SQL code here. */
#include "config.h"

#include "proxy/cli.h"
#include "proxy/label.h"
#include "proxy/options.h"
#include "proxy/proxy.h"
#include "proxy/tls.h"
#include "store/store.h"
#include "web/budget.h"
#include "web/web.h"

#include <signal.h>
#include <stdio.h>

/* struct web_api_config.live_stats: the store's counters (store_get_stats locks). */
static void live_stats_cb(void *arg, struct web_live_stats *out)
{
    struct store_stats ss;
    store_get_stats(arg, &ss);
    out->queued = ss.queued;
    out->refused_busy = ss.dropped_full;
    out->write_errors = ss.write_errors;
    out->committed_rows = ss.committed_rows;
    out->lag_max_us = ss.lag_max_us;
    out->write_failing = ss.write_failing;
    out->wal_frames = ss.wal_frames;
}

int main(int argc, char **argv)
{
    if (argc > 1 && cli_is_subcommand(argv[1]))
        return cli_main(argc, argv);
    struct vp_options o;
    enum vp_opt_result r = vp_options_parse(&o, argc, argv);
    if (r != VP_OPT_RUN) {
        vp_options_dispose(&o);
        return r == VP_OPT_EXIT0 ? 0 : 2;
    }
    if (o.check_config && o.tls_listen_port && !o.tls_self_signed) {
        /* The same certificate checks as at start-up (unreadable, mismatched, expired). */
        struct tls_server *t = NULL;
        char terr[1400];
        if (tls_server_new(&t, &o, terr, sizeof terr) != 0) {
            fprintf(stderr, "vitals-proxy: %s\n", terr);
            vp_options_dispose(&o);
            return 2;
        }
        tls_server_free(t);
    }
    if (o.check_config && o.upstream_tls) {
        struct tls_client *t = NULL;
        char terr[1400];
        if (tls_client_new(&t, &o, terr, sizeof terr) != 0) {
            fprintf(stderr, "vitals-proxy: %s\n", terr);
            vp_options_dispose(&o);
            return 2;
        }
        tls_client_free(t);
    }
    if (label_set(o.label) != 0) {
        fprintf(stderr, "vitals-proxy: --label: expected 1 to 64 characters of A-Z a-z 0-9 . _ -\n");
        vp_options_dispose(&o);
        return 2;
    }
    struct budget *budget = NULL;
    if (o.budget[0]) {
        char berr[512];
        if (budget_load(&budget, o.budget, berr, sizeof berr) != 0) {
            fprintf(stderr, "vitals-proxy: --budget: %s\n", berr);
            vp_options_dispose(&o);
            return 2;
        }
    }
    if (o.api_prefix[0] != '/') {
        fprintf(stderr, "vitals-proxy: --api-prefix: '%s': expected a path starting with /\n",
                o.api_prefix);
        budget_free(budget);
        vp_options_dispose(&o);
        return 2;
    }
    struct web_api_config wc = {.budget = budget, .api_prefix = o.api_prefix,
                                .label_get = label_cb_get, .label_set = label_cb_set};
    web_api_configure(&wc); /* GET/POST /__vitals/api/label switch the label above */
    if (o.check_config) {
        printf("vitals-proxy: configuration ok\n");
        budget_free(budget);
        vp_options_dispose(&o);
        return 0;
    }
    /* A file size limit (ulimit -f) reached by the database must be a write error the store
     * handles like a full disk (503s, the side file at shutdown), not a signal that kills the
     * process with acknowledged beacons in its queue. */
    signal(SIGXFSZ, SIG_IGN);
    struct store_options so;
    store_options_default(&so);
    so.retention_days = (int)o.retention_days;
    so.keep_query = o.keep_query;
    struct store *st = NULL;
    char err[256] = "";
    if (store_open(&st, o.db, &so, err, sizeof err) != 0) {
        fprintf(stderr, "vitals-proxy: --db: '%s': %s\n", o.db, err[0] ? err : "cannot open");
        budget_free(budget);
        vp_options_dispose(&o);
        return 2;
    }
    if (store_open_notice(st)[0]) /* a side file left by a shutdown on a full disk */
        fprintf(stderr, "vitals-proxy: %s\n", store_open_notice(st));
    wc.live_stats = live_stats_cb;
    wc.live_arg = st;
    web_api_configure(&wc); /* health also shows the writer's live counters */
    int status = proxy_run(&o, st);
    char msg[1024];
    store_close(st, msg, sizeof msg); /* after the loops stopped: commits what is queued */
    if (msg[0])
        fprintf(stderr, "vitals-proxy: %s\n", msg);
    budget_free(budget);
    vp_options_dispose(&o);
    return status;
}
