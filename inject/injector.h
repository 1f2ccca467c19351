/* inject/: streaming beacon injection into HTML responses.
 *
 * Pure library (no event loop; uses struct evbuffer only as a byte container). One injector per
 * HTML response: it decodes the upstream's content coding, scans for the insertion point, inserts
 * the tag once, and re-encodes in the same coding, emitting all it can on each call.
 * Header-level decisions (whether to inject, header edits, CSP) are separate pure functions. */
#ifndef VP_INJECTOR_H
#define VP_INJECTOR_H

#include <stdbool.h>
#include <stddef.h>

struct evbuffer;

enum inject_coding {
    INJECT_CODING_IDENTITY,
    INJECT_CODING_GZIP,
    INJECT_CODING_DEFLATE,
    INJECT_CODING_BR,
    INJECT_CODING_ZSTD,
    INJECT_CODING_UNSUPPORTED /* unknown or stacked codings: never inject */
};

/* Parses a Content-Encoding value (value may be NULL or empty: identity). */
enum inject_coding inject_coding_parse(const char *value, size_t len);

/* What the proxy knows at response-header time. All strings NUL-terminated, borrowed, NULL when
 * the header is absent. */
struct inject_response_info {
    const char *method;              /* request method */
    const char *request_path;        /* request target path (no query) */
    int status;                      /* response status */
    const char *content_type;
    const char *content_encoding;
    const char *content_disposition;
    const char *cache_control;
    const char *content_range;
    bool upgraded;                   /* 101 / tunnel */
};

/* true when the response must get the beacon tag (GET, HTML type, status with a body, not 206,
 * not attachment, not no-transform, not /__vitals/, supported coding). Exclusion patterns given by
 * the user are checked by the caller. */
bool inject_wanted(const struct inject_response_info *info);

/* Looks at a Content-Security-Policy header value (borrowed, csp_len bytes). If the policy
 * restricts scripts with a nonce, copies that nonce (NUL-terminated) into nonce_out and returns
 * true; returns false when there is none or it does not fit nonce_cap. */
bool inject_csp_nonce(const char *csp, size_t csp_len, char *nonce_out, size_t nonce_cap);

/* Rewrites one Content-Security-Policy or Content-Security-Policy-Report-Only header value
 * (csp, csp_len bytes, borrowed) so that our tag, carrying nonce (NUL-terminated base64, e.g.
 * from inject_csp_nonce or a fresh random one), may load, and the beacon may POST to 'self'.
 * Per policy in the value: when the directive governing script elements (script-src-elem, else
 * script-src, else default-src) neither lists 'nonce-<nonce>' nor allows 'self' (or '*')
 * without 'strict-dynamic', 'nonce-<nonce>' is added to it (to a new script-src copied from
 * default-src when that is the one governing); when connect-src (else default-src) does not
 * allow 'self', 'self' is added likewise. A lone 'none' is replaced. Nothing else changes:
 * never 'unsafe-inline' or 'unsafe-eval', other directives untouched, and an unchanged policy is
 * copied byte for byte. Writes the result into out (cap bytes, NUL-terminated); sets *tag_nonce
 * (when not NULL) to true when some policy restricts scripts, i.e. the tag should carry the
 * nonce. Returns the output length, VP_ERR_LIMIT when it does not fit, VP_ERR_INVALID for a
 * nonce that is empty or not base64/base64url, or a value holding control characters other
 * than HTAB. Re-entrant. */
int inject_csp_rewrite(const char *csp, size_t csp_len, const char *nonce, char *out, size_t cap,
                       bool *tag_nonce) __attribute__((warn_unused_result));

/* Builds the tag: <script src="{src}" data-vid="{vid}" [nonce="{nonce}"] async=""></script>
 * (async="" rather than a bare async: the same in HTML, and well-formed XML for XHTML pages).
 * All inputs NUL-terminated and borrowed; nonce may be NULL. Writes into out (cap bytes, NUL
 * terminated). Returns the tag length, or VP_ERR_LIMIT when it does not fit, VP_ERR_INVALID when
 * an input holds characters that would need escaping in an attribute. */
int inject_build_tag(char *out, size_t cap, const char *src, const char *vid, const char *nonce);

struct injector_options {
    size_t scan_limit;        /* bytes of decoded HTML scanned for an insertion point (64 KiB) */
    size_t max_decoded;       /* total decoded bytes allowed (decompression bomb cap) */
    int gzip_level;           /* re-encode levels chosen for streaming speed (1, 4, 3); gzip_level
                               * is zlib's and applies when igzip_level is -1 */
    int br_quality;
    int zstd_level;
    /* Added after the first version (append-only; fill with injector_options_default first): */
    unsigned max_ratio;       /* decoded/encoded ratio cap once past 1 MiB decoded (0: none) */
    size_t max_tag;           /* bytes one unfinished tag may span while held (8 KiB) */
    int br_lgwin;             /* brotli encoder window log, 10..24 (18) */
    int zstd_window_log;      /* zstd encoder window log, 10..27, 0: the level's default (20) */
    int igzip_level;          /* gzip/deflate re-encoding with ISA-L igzip at this level, 0..3
                               * (1); -1: zlib at gzip_level instead */
};

/* Fills opt with the defaults. */
void injector_options_default(struct injector_options *opt);

#define INJECTOR_FLUSH 1u /* upstream chunk boundary: emit everything, flush the encoder */
#define INJECTOR_END 2u   /* end of body: finish the encoder */

struct injector;

/* Creates an injector for one response. tag (tag_len bytes) is copied. opt may be NULL
 * (defaults). Returns 0 and sets *out, VP_ERR_NOMEM, or VP_ERR_INVALID for an unsupported coding. */
int injector_new(struct injector **out, enum inject_coding coding, const char *tag, size_t tag_len,
                 const struct injector_options *opt) __attribute__((warn_unused_result));

/* Readies an identity injector (made with INJECT_CODING_IDENTITY; used, finished or failed)
 * for another response, as injector_new would make it with tag (tag_len bytes, copied) and the
 * same options, without its allocations (a caller can keep spare injectors). Returns 0,
 * VP_ERR_INVALID for another coding or an empty tag, or VP_ERR_NOMEM (then inj can only be
 * freed). */
int injector_reuse(struct injector *inj, const char *tag, size_t tag_len)
    __attribute__((warn_unused_result));

/* true for an injector of INJECT_CODING_IDENTITY (injector_reuse accepts it). */
bool injector_is_identity(const struct injector *inj);

/* Consumes all of `in` and appends output to `out` (both borrowed). Returns 0, VP_ERR_PROTO for
 * corrupt compressed input, VP_ERR_LIMIT for a bomb, VP_ERR_NOMEM. After an error the injector is
 * unusable; the caller aborts the response. */
int injector_feed(struct injector *inj, struct evbuffer *in, struct evbuffer *out, unsigned flags)
    __attribute__((warn_unused_result));

/* true once the tag was inserted. */
bool injector_injected(const struct injector *inj);

/* Identity only: true once the output length is fixed relative to the input (the scanner has
 * decided, so the output is the input plus the tag when injector_injected, else the input).
 * Then *growth is the number of bytes the output adds. False for other codings. */
bool injector_identity_growth(const struct injector *inj, size_t *growth);

/* Frees the injector (NULL is a no-op). */
void injector_free(struct injector *inj);

#endif
