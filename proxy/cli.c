/* Placeholder for the offline sub-commands (report, export, check): replaced by the CLI
 * module. Until then no name is a sub-command. */
#include "config.h"
#include "proxy/cli.h"

#include <stdio.h>

_Bool cli_is_subcommand(const char *name)
{
    (void)name;
    return 0;
}

int cli_main(int argc, char **argv)
{
    (void)argc;
    fprintf(stderr, "vitals-proxy: %s: unknown sub-command\n", argv[1]);
    return 2;
}
