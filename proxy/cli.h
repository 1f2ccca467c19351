/* proxy/cli: the offline sub-commands (report, export, check, compare) that read a vitals
 * database. They never start the proxy. */
#ifndef VP_CLI_H
#define VP_CLI_H

/* true when argv[1] names a sub-command handled here. */
_Bool cli_is_subcommand(const char *name);

/* Runs the sub-command in argv[1] with its options. Returns the process exit status:
 * 0 ok (check: within budget), 1 runtime failure (check: over budget), 2 usage/config error.
 * Errors are one line on stderr starting with "vitals-proxy: ". */
int cli_main(int argc, char **argv);

#endif
