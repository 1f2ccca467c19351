/* proxy/h1_parse: incremental, strict HTTP/1.1 message-head parser and chunked-body decoder
 * (RFC 9112). Pure: no I/O, no event loop. Input may be split anywhere; results are identical
 * for every split (the parser keeps all state it needs between calls).
 *
 * The head parser copies the head into one buffer of at most max_head bytes, normalised to
 * NUL-terminated strings (request: method, target; response: reason; then name/value pairs with
 * surrounding whitespace removed), so accessors return stable C strings until the next reset.
 * Errors carry the HTTP status the peer should get: 400, 414, 431 for requests; 502 for an
 * upstream response (the caller decides what to send). After an error the parser stays failed
 * until reset. Not thread-safe; one parser per connection. */
#ifndef VP_H1_PARSE_H
#define VP_H1_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum h1_kind { H1_REQUEST, H1_RESPONSE };

/* Body framing decided from a complete head (RFC 9112 section 6.3). */
enum h1_framing {
    H1_BODY_NONE,    /* no body (request without CL/TE, HEAD response, 1xx/204/304) */
    H1_BODY_LENGTH,  /* Content-Length bytes (h1_parser_content_length) */
    H1_BODY_CHUNKED, /* chunked transfer coding */
    H1_BODY_CLOSE,   /* response delimited by connection close */
};

struct h1_limits {
    size_t max_line;    /* request line / status line bytes, CRLF included (414 / 502) */
    size_t max_head;    /* whole head bytes including the line (431 / 502) */
    size_t max_headers; /* number of header fields (431 / 502) */
};

#define H1_AGAIN 0 /* all input consumed, head not complete */
#define H1_DONE 1  /* head complete; *consumed says where the body starts */

struct h1_parser;

/* Creates a parser (lim is copied). Returns 0 and sets *out, VP_ERR_NOMEM, or VP_ERR_INVALID
 * for zero limits. */
int h1_parser_new(struct h1_parser **out, enum h1_kind kind, const struct h1_limits *lim)
    __attribute__((warn_unused_result));
void h1_parser_free(struct h1_parser *p);

/* Readies the parser for the next message. For responses, head_request says that the request
 * was HEAD (no body whatever the headers say). */
void h1_parser_reset(struct h1_parser *p, bool head_request);

/* Feeds len bytes (borrowed). Returns H1_AGAIN (all consumed), H1_DONE (*consumed bytes were
 * part of the head; the rest belongs to the body or the next message), or a negative VP_ERR_*
 * code (*consumed = 0) with h1_parser_status() telling the HTTP status to answer and h1_parser_error() a short
 * static reason. */
int h1_parser_feed(struct h1_parser *p, const char *data, size_t len, size_t *consumed)
    __attribute__((warn_unused_result));

/* error status: 400, 414, 431, 502; 503 when the head buffer could not grow (VP_ERR_NOMEM) */
int h1_parser_status(const struct h1_parser *p);
const char *h1_parser_error(const struct h1_parser *p);

/* Accessors, valid after H1_DONE until the next reset. Strings are NUL-terminated, borrowed. */
const char *h1_parser_method(const struct h1_parser *p);
/* Request target in origin form (absolute-form targets are reduced to path and query). */
const char *h1_parser_target(const struct h1_parser *p);
int h1_parser_version_minor(const struct h1_parser *p); /* HTTP/1.x: x */
int h1_parser_status_code(const struct h1_parser *p);   /* responses */
const char *h1_parser_reason(const struct h1_parser *p); /* responses; "" when absent */
size_t h1_parser_header_count(const struct h1_parser *p);
/* i-th header (0-based) in arrival order; name as sent, value trimmed. */
void h1_parser_header(const struct h1_parser *p, size_t i, const char **name, const char **value);
/* Length of header i's name (strlen of the name h1_parser_header returns, without the scan). */
size_t h1_parser_header_name_len(const struct h1_parser *p, size_t i);
/* Length of header i's value (likewise). */
size_t h1_parser_header_value_len(const struct h1_parser *p, size_t i);
/* First value of header `name` (case-insensitive), or NULL. */
const char *h1_parser_find(const struct h1_parser *p, const char *name);
/* Bytes of the raw head consumed (line + headers + final CRLF). */
size_t h1_parser_head_bytes(const struct h1_parser *p);

enum h1_framing h1_parser_framing(const struct h1_parser *p);
uint64_t h1_parser_content_length(const struct h1_parser *p); /* when H1_BODY_LENGTH */
/* Connection persistence per version and Connection header. */
bool h1_parser_keep_alive(const struct h1_parser *p);
/* Request: Connection: upgrade and an Upgrade header. */
bool h1_parser_upgrade(const struct h1_parser *p);
/* Request: Expect: 100-continue. */
bool h1_parser_expect_continue(const struct h1_parser *p);

/* ---- chunked transfer coding decoder (RFC 9112 section 7.1) ---- */

#define H1_CHUNK_MORE 0    /* all input consumed, more needed */
#define H1_CHUNK_DATA 1    /* the last *data_len bytes of the consumed range are payload */
#define H1_CHUNK_END 2     /* last-chunk and trailers done; *consumed ends the message */
#define H1_CHUNK_TRAILER 3 /* the last *data_len bytes of the consumed range are trailer lines */

struct h1_chunked {
    int state;
    uint64_t remaining; /* payload bytes left in the current chunk */
    size_t digits;      /* hex digits of the current size */
    size_t line;        /* bytes of the current ext/trailer line */
    size_t trailer;     /* trailer bytes so far */
    size_t max_trailer; /* limit on chunk-ext + trailer section bytes */
    bool keep_trailers; /* report the trailer section (H1_CHUNK_TRAILER) */
    bool cut;           /* the trailer section was malformed or over the limit */
};

/* Initialises a decoder; max_trailer bounds extension lines and the trailer section. */
void h1_chunked_init(struct h1_chunked *c, size_t max_trailer);

/* After h1_chunked_init: the trailer section is reported (H1_CHUNK_TRAILER) instead of dropped. */
void h1_chunked_keep_trailers(struct h1_chunked *c);

/* Processes input: framing bytes and at most one run of payload. Returns H1_CHUNK_MORE,
 * H1_CHUNK_DATA (payload = the last *data_len bytes of the *consumed bytes, which are all
 * framing before them), H1_CHUNK_TRAILER (only with h1_chunked_keep_trailers: the last
 * *data_len bytes of the *consumed bytes belong to the trailer section, field lines as received,
 * each "name:value" CRLF, checked; a section may come in several runs, complete at
 * H1_CHUNK_END), H1_CHUNK_END, or VP_ERR_PROTO (bad size, missing CRLF, bare CR, size overflow)
 * / VP_ERR_LIMIT (chunk extension too long). Without keep_trailers, trailers are checked and
 * dropped.
 *
 * The payload is complete once the last chunk is read, so a trailer section that is malformed
 * (obs-fold, a bad name or byte, a bare CR) or longer than max_trailer does not fail the
 * message: H1_CHUNK_END comes at the offending byte (*consumed stops before it) and
 * h1_chunked_cut() is true. The trailer runs reported so far must then be discarded, and the
 * bytes after *consumed are not a message boundary: the connection cannot carry another one. */
int h1_chunked_feed(struct h1_chunked *c, const char *data, size_t len, size_t *consumed,
                    size_t *data_len) __attribute__((warn_unused_result));

/* true when the message ended at a malformed or oversized trailer section (see above). */
bool h1_chunked_cut(const struct h1_chunked *c);

/* Next field line of a trailer section collected from H1_CHUNK_TRAILER runs: sec[*off..len).
 * Returns true with the name and the value (surrounding whitespace removed) as slices into sec
 * (borrowed) and *off past the line; false at the end of the section (or at bytes that are not a
 * complete field line). */
bool h1_trailer_next(const char *sec, size_t len, size_t *off, const char **name, size_t *nl,
                     const char **value, size_t *vl);

/* true for a field that is not forwarded in a trailer section: framing (Content-Length,
 * Transfer-Encoding, Trailer), routing (Host), hop-by-hop and connection-specific fields,
 * request modifiers (TE, Expect, Max-Forwards, Range, conditionals), authentication
 * (Authorization, Set-Cookie, Cookie, ...), response control data (Cache-Control, Expires, Date,
 * Age, Location, Retry-After, Vary, Warning) and content processing (Content-Encoding,
 * Content-Type, Content-Range), after RFC 9110 section 6.5.1; and anything that is not a token
 * (HTTP/2 pseudo-fields). */
bool h1_trailer_forbidden(const char *name, size_t nl);

/* true for RFC 9110 tchar. */
bool h1_is_tchar(unsigned char c);

#endif
