/* The source of a JavaScript asset may open with a block comment for its readers (where its
 * design notes are); the browser never needs it, and every served byte counts for the beacon,
 * so the build drops it. The rule is deliberately narrow: only a comment at byte 0, ended by
 * the first `*' '/' (block comments do not nest) and a newline right after it. */
#include "config.h"

#include "web/asset_strip.h"

size_t asset_strip_len(const unsigned char *src, size_t n, bool is_js)
{
    if (!is_js || n < 4 || src[0] != '/' || src[1] != '*')
        return 0;
    for (size_t i = 2; i + 2 < n; i++)
        if (src[i] == '*' && src[i + 1] == '/')
            return src[i + 2] == '\n' ? i + 3 : 0;
    return 0;
}
