/* Unit tests for common/: slices, header tokens, random ids. */
#include "config.h"
#include "common/vp_buf.h"
#include "common/vp_err.h"
#include "tests/support/tap.h"
#include <string.h>

int main(void)
{
    TAP_OK(vp_slice_ieq("Content-Length", 14, "content-length"), "common/slice_ieq");
    TAP_OK(!vp_slice_ieq("Content-Lengt", 13, "content-length"), "common/slice_ieq_len");
    /* Only ASCII letters fold: bytes 0x20 apart that are not letters stay different. */
    TAP_OK(vp_mem_ieq("AZaz09-_", "azAZ09-_", 8), "common/mem_ieq_letters");
    TAP_OK(!vp_mem_ieq("@", "`", 1) && !vp_mem_ieq("[", "{", 1) && !vp_mem_ieq("^", "~", 1),
           "common/mem_ieq_not_letters");
    TAP_OK(!vp_mem_ieq("\xc1", "\xe1", 1) && vp_mem_ieq("\xc1", "\xc1", 1),
           "common/mem_ieq_high_bytes");
    TAP_OK(!vp_mem_ieq("\r", "-", 1) && vp_mem_ieq("", "", 0), "common/mem_ieq_ctl_empty");
    TAP_OK(vp_header_has_token("keep-alive, Upgrade", 19, "upgrade"), "common/token_found");
    TAP_OK(!vp_header_has_token("keep-alive, Upgrades", 20, "upgrade"), "common/token_partial");
    TAP_OK(vp_header_has_token(" , close ,", 10, "close"), "common/token_ows");
    char id[33], id2[33];
    TAP_OK(vp_random_hex(id, sizeof id, 16) == 0 && strlen(id) == 32, "common/random_hex");
    TAP_OK(vp_random_hex(id2, sizeof id2, 16) == 0 && strcmp(id, id2) != 0, "common/random_distinct");
    TAP_OK(vp_random_hex(id, 8, 16) == VP_ERR_INVALID, "common/random_cap");
    TAP_OK(strcmp(vp_strerror(VP_ERR_LIMIT), "limit exceeded") == 0, "common/strerror");
    TAP_DONE();
}
