/* proxy/cli_compare: the `compare` sub-command.
 *
 *   vitals-proxy compare [--db PATH] A B [--route R] [--format table|json]
 *                        [--fail-on-regression] [--budget FILE] [--resamples N] [--seed N]
 *                        [--min-n N] [--api-prefix PATH]
 *
 * A and B are labels or time ranges (store/compare.h). Exit status: 0 done (no regression, or
 * --fail-on-regression not given), 1 with --fail-on-regression when a metric got significantly
 * worse (with --budget: only metrics the budget file names for that route), 2 on usage,
 * configuration or database errors (one line "vitals-proxy: ..." on stderr; a broken database
 * is never reported as a regression). */
#ifndef VP_CLI_COMPARE_H
#define VP_CLI_COMPARE_H

/* argv[0] is "compare" (the sub-command), the options follow. Returns the exit status.
 * Writes the result to stdout. Re-runnable (resets getopt). */
int cli_compare_main(int argc, char **argv);

/* `vitals-proxy export --format html (--view ID | --last | --route R [--label L]) [--db PATH]
 * [--out FILE]`: the self-contained HTML export (web/export_html.h) into FILE (default stdout).
 * argv[0] is "export". Exit status 0, 1 (no such view/route, database or write failure), 2
 * (usage). */
int cli_export_html_main(int argc, char **argv);

/* true when the export options in argv (argv[0] = "export") ask for --format html. */
_Bool cli_export_wants_html(int argc, char **argv);

#endif
