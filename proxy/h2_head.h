/* proxy/h2_head: reads the HTTP/1.1 response head conn_h1 writes into an HTTP/2 stream's
 * bufferevent pair, and turns it into an nghttp2 field list, without a second strict parse.
 *
 * conn_h1 writes that head itself, from a head its strict parser accepted (or from its own
 * replies): "HTTP/1.1 NNN reason" CRLF, "Name: value" CRLF lines, an empty line. The reader still
 * trusts nothing: a line not of that form, a name that is not a token (RFC 9110 section 5.6.2),
 * framing fields that disagree (two different Content-Lengths, Transfer-Encoding other than
 * "chunked", both), more than H2_HEAD_FIELDS fields make the head invalid, never an
 * out-of-bounds access. Values go on as written (conn_h1's parser refused control bytes in the
 * upstream's). Connection-specific fields (RFC 9113 section 8.2.2) are left out of the list.
 * Pure functions on borrowed bytes: no I/O, no event loop; re-entrant. */
#ifndef VP_H2_HEAD_H
#define VP_H2_HEAD_H

#include <nghttp2/nghttp2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define H2_HEAD_FIELDS 256 /* fields in a head, at most (the response parser's limit) */
#define H2_HEAD_NV_STACK 48

/* One parsed head. Embedded (on the caller's stack): the usual head fits its own arrays. */
struct h2_head {
    size_t len; /* head bytes, the empty line included */
    int status; /* 100..599 */
    char code[4];
    bool has_cl, chunked, close; /* Content-Length, Transfer-Encoding: chunked, Connection: close */
    uint64_t cl;
    size_t nv;       /* entries of nva, :status first */
    nghttp2_nv *nva; /* nva_stack or heap */
    char *lower;     /* lower-cased names: lower_stack or heap */
    nghttp2_nv nva_stack[H2_HEAD_NV_STACK];
    char lower_stack[1536];
};

/* Just past the empty line that ends the head in b[0..n) (borrowed), or NULL when there is
 * none yet. */
const char *h2_head_end(const char *b, size_t n);

/* Splits the head b[0..len) (borrowed; len from h2_head_end) into h. The field list points into
 * b for values (and code for :status) and into h for the lower-cased names, so b must outlive
 * its use (nghttp2_submit_response copies it). False when the head is invalid or a very large
 * one finds no memory. Either way h needs h2_head_dispose. */
bool h2_head_parse(const char *b, size_t len, struct h2_head *h)
    __attribute__((warn_unused_result));

/* Frees what h2_head_parse allocated for a large head (not h itself). */
void h2_head_dispose(struct h2_head *h);

#endif
