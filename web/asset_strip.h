/* What the build leaves out of an embedded asset: a JavaScript asset's leading block comment.
 * Shared by web/gen_assets (build machine) and the unit tests; no other dependency. */
#ifndef VP_WEB_ASSET_STRIP_H
#define VP_WEB_ASSET_STRIP_H
#include <stdbool.h>
#include <stddef.h>

/* Number of leading bytes of src (n bytes, borrowed) that are not embedded: when src opens
 * with a block comment whose end is followed by a newline, the comment and that newline;
 * otherwise (no comment, an unterminated one, or code on the comment's last line) 0.
 * Only for JavaScript (is_js): anything else is embedded whole. Removing a comment that
 * opens the file never changes what the script does. */
size_t asset_strip_len(const unsigned char *src, size_t n, bool is_js);

#endif
