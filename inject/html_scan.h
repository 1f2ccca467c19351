/* inject/html_scan: finds where the beacon tag goes in a streamed HTML document.
 *
 * A byte-driven tokenizer state machine (a subset of the WHATWG HTML tokenizer) that holds no
 * document bytes itself: it tells the caller at which absolute stream offset to insert, and from
 * which offset on bytes must be held back while one unfinished tag is being classified. The
 * caller keeps those bytes (at most max_tag plus the bytes of the current call).
 *
 * Insertion point: right after the first `<head ...>` start tag; without one, before the first
 * `<script`, `<link`, `<style`, `<meta` (once a doctype or `<html>` was seen) or `<body`. Never
 * inside comments, doctype, CDATA, bogus comments, attribute values, or raw-text/RCDATA element
 * contents (script, style, textarea, title, xmp, iframe, noembed, noframes, noscript). Tag names
 * are case-insensitive. Not a document (no doctype, `<html>`, `<head>` or `<body>` seen within
 * scan_limit bytes) or no insertion point within scan_limit: skip. A document that already
 * carries `/__vitals/beacon.js` in the src of the script at the insertion point (a chained proxy
 * inserted it): skip. Re-entrant: one scanner per response, no globals. */
#ifndef VP_HTML_SCAN_H
#define VP_HTML_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum html_scan_result {
    HTML_SCAN_MORE = 0, /* undecided: feed more bytes */
    HTML_SCAN_INSERT,   /* insert the tag at html_scan_insert_offset() */
    HTML_SCAN_SKIP,     /* do not insert; html_scan_skip_reason() says why */
};

enum html_scan_skip {
    HTML_SCAN_SKIP_NONE = 0,
    HTML_SCAN_SKIP_NOT_DOCUMENT, /* no doctype/<html>/<head>/<body> by scan_limit or end */
    HTML_SCAN_SKIP_NO_POINT,     /* a document, but no insertion point by scan_limit or end */
    HTML_SCAN_SKIP_TAG_LIMIT,    /* an unfinished tag grew past max_tag */
    HTML_SCAN_SKIP_ALREADY,      /* the document already carries the beacon tag */
    HTML_SCAN_SKIP_PLAINTEXT,    /* <plaintext>: nothing after it is markup */
};

#define HTML_SCAN_DEFAULT_LIMIT (64u * 1024u)
#define HTML_SCAN_DEFAULT_MAX_TAG (8u * 1024u)

struct html_scan;

/* Creates a scanner. scan_limit: decoded bytes examined before giving up (0: default);
 * max_tag: bytes one unfinished tag may span before giving up (0: default). Returns 0 and sets
 * *out, or VP_ERR_NOMEM. */
int html_scan_new(struct html_scan **out, size_t scan_limit, size_t max_tag)
    __attribute__((warn_unused_result));

/* Frees the scanner (NULL is a no-op). */
void html_scan_free(struct html_scan *s);

/* Readies s for another document, as html_scan_new made it (same limits). */
void html_scan_reset(struct html_scan *s);

/* Scans p[0..n) (borrowed), the next bytes of the document. Stops at a decision: *used is the
 * number of bytes consumed (n when the result is HTML_SCAN_MORE). Once decided, every later call
 * returns the same decision and consumes nothing. */
enum html_scan_result html_scan_feed(struct html_scan *s, const char *p, size_t n, size_t *used);

/* Chunk boundary (end false) or end of document (end true). A pending check after `<head>`
 * that has seen only whitespace resolves to INSERT (so a streamed head is not held across an
 * upstream pause); at the end every undecided scan resolves. Returns the (possibly new) result. */
enum html_scan_result html_scan_flush(struct html_scan *s, bool end);

/* Absolute offset at which to insert (valid after HTML_SCAN_INSERT). */
uint64_t html_scan_insert_offset(const struct html_scan *s);

/* Absolute offset from which consumed bytes must be held back (equals html_scan_offset() when
 * nothing is held). Bytes before it can be emitted. */
uint64_t html_scan_hold_offset(const struct html_scan *s);

/* Bytes consumed so far. */
uint64_t html_scan_offset(const struct html_scan *s);

/* true once a doctype, <html>, <head> or <body> was seen. */
bool html_scan_is_document(const struct html_scan *s);

/* Why the scan was skipped (HTML_SCAN_SKIP_NONE unless the result is HTML_SCAN_SKIP). */
enum html_scan_skip html_scan_skip_reason(const struct html_scan *s);

#endif
