/* vitals-proxy entry point: sub-commands go to proxy/cli.c; otherwise parse the option table,
 * and run the proxy. No protocol code here. */
#include "config.h"

#include "proxy/cli.h"
#include "proxy/options.h"
#include "proxy/proxy.h"

#include <stdio.h>

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
    if (o.check_config) {
        printf("vitals-proxy: configuration ok\n");
        vp_options_dispose(&o);
        return 0;
    }
    int status = proxy_run(&o);
    vp_options_dispose(&o);
    return status;
}
