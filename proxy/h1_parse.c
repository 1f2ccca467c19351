/* Incremental strict HTTP/1.1 head parser and chunked decoder (RFC 9112 sections 2-7).
 *
 * Design: a byte-driven state machine. Every byte is validated as it arrives, so limits and
 * garbage are reported as early as possible (a 10 MB request line is refused after max_line
 * bytes, not after it is buffered). The head is copied into one buffer, normalised: the
 * separators (SP, ':', CR) become NULs, so strings never need a second pass. The normalised
 * form is never longer than the raw bytes, so a buffer of max_head bytes always suffices. The
 * buffer starts at H1_BUF_INITIAL bytes and grows (doubling, up to max_head + 1) before a feed
 * whose bytes might not fit, so a parser costs what its heads need, not its limit: an HTTP/2
 * connection holds three per stream. Everything refers into it by offset, so moving is safe.
 * Framing decisions (section 6.3) are taken once, when the empty line arrives.
 *
 * Strictness (smuggling defences): bare CR and bare LF, obs-fold, whitespace before the colon,
 * CTLs in values, Content-Length together with Transfer-Encoding, differing Content-Length
 * values, any transfer coding other than a single "chunked", a missing or duplicated Host in
 * HTTP/1.1 requests: all rejected. Leading empty lines before a request line are skipped
 * (section 2.2), at most max_line bytes of them.
 *
 * Chunked trailers (section 7.1.2): checked like head fields (token name, field-char value, no
 * obs-fold), bounded by max_trailer, and either dropped or handed to the caller as raw runs. The
 * body is whole once the last chunk has arrived, so a bad or oversized trailer section ends the
 * message without its trailers (C_CUT) rather than failing it; only the connection is lost. */
#include "config.h"
#include "proxy/h1_parse.h"

#include "common/vp_buf.h"
#include "common/vp_err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define H1_BUF_INITIAL 2048

enum {
    S_START,
    S_START_LF,
    S_METHOD,
    S_TARGET,
    S_VERSION,
    S_LINE_LF,
    S_RVERSION,
    S_STATUS,
    S_REASON,
    S_HDR_START,
    S_NAME,
    S_OWS,
    S_VALUE,
    S_HDR_LF,
    S_END_LF,
    S_DONE,
    S_ERROR,
};

struct hdr {
    uint32_t name, value;       /* offsets into buf */
    uint32_t name_len, value_len; /* lengths without the NUL */
};

static int lower(int c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

/* Case-insensitive equality of a header name (length nl) with a lower-case literal. */
static bool name_is(const char *n, size_t nl, const char *lit, size_t ll)
{
    return nl == ll && vp_mem_ieq(n, lit, nl);
}
#define NAME_IS(n, nl, lit) name_is(n, nl, lit, sizeof lit - 1)

struct h1_parser {
    enum h1_kind kind;
    struct h1_limits lim;
    int state;
    bool head_request;
    size_t line_bytes, head_bytes;
    char *buf;
    size_t cap;          /* bytes allocated in buf, at most lim.max_head + 1 */
    size_t len;          /* bytes used in buf */
    size_t tok_start;    /* start of the token being collected */
    struct hdr *hdrs;
    size_t nhdrs;
    size_t method_off, target_off, reason_off;
    const char *target_override;
    char version[9];
    size_t version_len;
    int minor;
    int status_code;
    int err_status;
    const char *err;
    enum h1_framing framing;
    uint64_t content_length;
    bool keep_alive, upgrade, expect_continue;
};

/* tchar (RFC 9110 section 5.6.2): ALPHA / DIGIT / "!#$%&'*+-.^_`|~". */
#define TC_ROW(b) ((b) >= 'a' && (b) <= 'z') || ((b) >= 'A' && (b) <= 'Z') || \
                  ((b) >= '0' && (b) <= '9') || (b) == '!' || (b) == '#' || (b) == '$' || \
                  (b) == '%' || (b) == '&' || (b) == '\'' || (b) == '*' || (b) == '+' || \
                  (b) == '-' || (b) == '.' || (b) == '^' || (b) == '_' || (b) == '`' || \
                  (b) == '|' || (b) == '~'
#define TC4(b) TC_ROW(b), TC_ROW((b) + 1), TC_ROW((b) + 2), TC_ROW((b) + 3)
#define TC16(b) TC4(b), TC4((b) + 4), TC4((b) + 8), TC4((b) + 12)
static const bool tchar_tab[256] = {TC16(0),   TC16(16),  TC16(32),  TC16(48),
                                    TC16(64),  TC16(80),  TC16(96),  TC16(112),
                                    TC16(128), TC16(144), TC16(160), TC16(176),
                                    TC16(192), TC16(208), TC16(224), TC16(240)};

bool h1_is_tchar(unsigned char c) { return tchar_tab[c]; }

/* is_field_char as a table, for the value fast path (CR is not a field char: it ends the run). */
#define VC_ROW(b) ((b) == '\t' || ((b) >= 0x20 && (b) != 0x7f))
#define VC4(b) VC_ROW(b), VC_ROW((b) + 1), VC_ROW((b) + 2), VC_ROW((b) + 3)
#define VC16(b) VC4(b), VC4((b) + 4), VC4((b) + 8), VC4((b) + 12)
static const bool vchar_tab[256] = {VC16(0),   VC16(16),  VC16(32),  VC16(48),
                                    VC16(64),  VC16(80),  VC16(96),  VC16(112),
                                    VC16(128), VC16(144), VC16(160), VC16(176),
                                    VC16(192), VC16(208), VC16(224), VC16(240)};

static bool is_field_char(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

/* End of the run of field-value bytes (vchar_tab) in d[j..end): 16 bytes per step where SSE2 is
 * available (a browser's request head is mostly field values: User-Agent, Accept, Cookie), the
 * rest one by one. */
static size_t value_run(const unsigned char *d, size_t j, size_t end)
{
#ifdef __SSE2__
    const __m128i ctl = _mm_set1_epi8(0x1f), del = _mm_set1_epi8(0x7f), tab = _mm_set1_epi8('\t'),
                  zero = _mm_setzero_si128();
    while (end - j >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(d + j));
        /* bad: x <= 0x1f (unsigned) or x == 0x7f, except HTAB */
        __m128i low = _mm_cmpeq_epi8(_mm_subs_epu8(x, ctl), zero);
        __m128i bad =
            _mm_andnot_si128(_mm_cmpeq_epi8(x, tab), _mm_or_si128(low, _mm_cmpeq_epi8(x, del)));
        unsigned m = (unsigned)_mm_movemask_epi8(bad);
        if (m != 0) /* the first byte that is not a field-value byte (CR, mostly) */
            return j + (size_t)__builtin_ctz(m);
        j += 16;
    }
#endif
    while (j < end && vchar_tab[d[j]]) /* CR is not in the table */
        j++;
    return j;
}

int h1_parser_new(struct h1_parser **out, enum h1_kind kind, const struct h1_limits *lim)
{
    if (!lim || lim->max_line == 0 || lim->max_head == 0 || lim->max_headers == 0 ||
        lim->max_head > UINT32_MAX)
        return VP_ERR_INVALID;
    struct h1_parser *p = calloc(1, sizeof *p);
    if (!p)
        return VP_ERR_NOMEM;
    p->cap = lim->max_head + 1 < H1_BUF_INITIAL ? lim->max_head + 1 : H1_BUF_INITIAL;
    p->buf = malloc(p->cap);
    if (!p->buf)
        goto fail;
    p->hdrs = calloc(lim->max_headers, sizeof *p->hdrs);
    if (!p->hdrs)
        goto fail;
    p->kind = kind;
    p->lim = *lim;
    h1_parser_reset(p, false);
    *out = p;
    return 0;
fail:
    free(p->buf);
    free(p);
    return VP_ERR_NOMEM;
}

void h1_parser_free(struct h1_parser *p)
{
    if (!p)
        return;
    free(p->hdrs);
    free(p->buf);
    free(p);
}

void h1_parser_reset(struct h1_parser *p, bool head_request)
{
    p->state = p->kind == H1_REQUEST ? S_START : S_RVERSION;
    p->head_request = head_request;
    p->line_bytes = p->head_bytes = 0;
    p->len = p->tok_start = 0;
    p->nhdrs = 0;
    p->method_off = p->target_off = p->reason_off = 0;
    p->target_override = NULL;
    p->version_len = 0;
    p->minor = 0;
    p->status_code = 0;
    p->err_status = 0;
    p->err = NULL;
    p->framing = H1_BODY_NONE;
    p->content_length = 0;
    p->keep_alive = p->upgrade = p->expect_continue = false;
}

static int fail(struct h1_parser *p, int status, const char *why)
{
    if (p->kind == H1_RESPONSE)
        status = 502;
    p->err_status = status;
    p->err = why;
    p->state = S_ERROR;
    return status == 400 || status == 502 ? VP_ERR_PROTO : VP_ERR_LIMIT;
}

#define ST_BIT(st) (1u << (st))
/* States whose bytes count against max_line (the start line, with the empty lines before it). */
#define LINE_STATES                                                                                \
    (ST_BIT(S_START) | ST_BIT(S_START_LF) | ST_BIT(S_METHOD) | ST_BIT(S_TARGET) |                  \
     ST_BIT(S_VERSION) | ST_BIT(S_LINE_LF) | ST_BIT(S_RVERSION) | ST_BIT(S_STATUS) |               \
     ST_BIT(S_REASON))
/* States where a whole line may be taken at once (field_line and the start lines). */
#define LINE_FAST_STATES (ST_BIT(S_START) | ST_BIT(S_RVERSION) | ST_BIT(S_HDR_START))
/* States with a fast path in h1_parser_feed. */
#define RUN_STATES                                                                                 \
    (ST_BIT(S_TARGET) | ST_BIT(S_HDR_START) | ST_BIT(S_NAME) | ST_BIT(S_OWS) | ST_BIT(S_VALUE))

/* Parses "d[,d...]" Content-Length list values (RFC 9110 section 8.6); all must be equal. */
static int parse_cl(const char *v, uint64_t *out, bool *seen)
{
    const char *s = v;
    for (;;) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s < '0' || *s > '9')
            return -1;
        uint64_t n = 0;
        int digits = 0;
        while (*s >= '0' && *s <= '9') {
            if (++digits > 18)
                return -1;
            n = n * 10 + (uint64_t)(*s - '0');
            s++;
        }
        while (*s == ' ' || *s == '\t')
            s++;
        if (*seen && n != *out)
            return -1;
        *out = n;
        *seen = true;
        if (*s == '\0')
            return 0;
        if (*s != ',')
            return -1;
        s++;
    }
}

/* Host = uri-host [":" port] (RFC 9110 section 7.2, RFC 3986 section 3.2.2): reg-name
 * (unreserved, pct-encoded, sub-delims), an IP literal in brackets, digits. Anything else
 * (space, '/', '@', '\\', quotes, '<', bytes above 0x7e) is refused rather than handed to the
 * application, which may build URLs from it. */
#define HC_ROW(b)                                                                                  \
    (((b) >= 'a' && (b) <= 'z') || ((b) >= 'A' && (b) <= 'Z') || ((b) >= '0' && (b) <= '9') ||     \
     (b) == '-' || (b) == '.' || (b) == '_' || (b) == '~' || (b) == '%' || (b) == '!' ||           \
     (b) == '$' || (b) == '&' || (b) == '\'' || (b) == '(' || (b) == ')' || (b) == '*' ||          \
     (b) == '+' || (b) == ',' || (b) == ';' || (b) == '=' || (b) == ':' || (b) == '[' ||           \
     (b) == ']')
#define HC4(b) HC_ROW(b), HC_ROW((b) + 1), HC_ROW((b) + 2), HC_ROW((b) + 3)
#define HC16(b) HC4(b), HC4((b) + 4), HC4((b) + 8), HC4((b) + 12)
static const bool host_tab[256] = {HC16(0),   HC16(16),  HC16(32),  HC16(48),  HC16(64),  HC16(80),
                                   HC16(96),  HC16(112), HC16(128), HC16(144), HC16(160), HC16(176),
                                   HC16(192), HC16(208), HC16(224), HC16(240)};

static bool host_chars_ok(const char *v, size_t vl)
{
    for (size_t i = 0; i < vl; i++)
        if (!host_tab[(unsigned char)v[i]])
            return false;
    return true;
}

/* The shape on top of the characters: an IP literal is one bracketed run of hex digits, ':'
 * and '.' at the start; anywhere else '[' and ']' are refused; the port after the host is
 * digits only ("a:abc", "a:80:80", "[::1" and "[zz]" are 400, not the application's to parse). */
static bool host_ok(const char *v, size_t vl)
{
    if (!host_chars_ok(v, vl))
        return false;
    size_t i = 0;
    if (vl > 0 && v[0] == '[') {
        for (i = 1; i < vl && v[i] != ']'; i++)
            if (!((v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'f') ||
                  (v[i] >= 'A' && v[i] <= 'F') || v[i] == ':' || v[i] == '.'))
                return false;
        if (i == vl || i == 1)
            return false;
        i++;
        if (i < vl && v[i] != ':')
            return false;
    } else {
        while (i < vl && v[i] != ':') {
            if (v[i] == '[' || v[i] == ']')
                return false;
            i++;
        }
    }
    for (size_t j = i + 1; j < vl; j++) /* the port */
        if (v[j] < '0' || v[j] > '9')
            return false;
    return true;
}

/* The options of a Connection field (RFC 9110 section 7.6.1) that decide framing, in one pass
 * over its tokens (case-insensitive, OWS trimmed, as vp_header_has_token). */
static void conn_options(const char *v, size_t vl, bool *close, bool *ka, bool *upgrade)
{
    size_t i = 0;
    while (i < vl) {
        while (i < vl && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t st = i;
        while (i < vl && v[i] != ',')
            i++;
        size_t e = i;
        while (e > st && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        const char *t = v + st;
        size_t tl = e - st;
        *close |= vp_slice_ieq(t, tl, "close");
        *ka |= vp_slice_ieq(t, tl, "keep-alive");
        *upgrade |= vp_slice_ieq(t, tl, "upgrade");
    }
}

/* Target forms (RFC 9112 section 3.2): origin, absolute (reduced to origin), asterisk. */
static int check_target(struct h1_parser *p)
{
    const char *t = p->buf + p->target_off;
    const char *m = p->buf + p->method_off;
    if (t[0] == '/')
        return 0;
    if (t[0] == '*' && t[1] == '\0' && strcmp(m, "OPTIONS") == 0)
        return 0;
    size_t skip = 0;
    size_t tl = strlen(t);
    if (vp_slice_iprefix(t, tl, "http://"))
        skip = 7;
    else if (vp_slice_iprefix(t, tl, "https://"))
        skip = 8;
    else
        return -1;
    const char *a = t + skip;
    size_t al = strcspn(a, "/?#");
    if (al == 0)
        return -1;
    if (a[al] == '/')
        p->target_override = a + al;
    else if (a[al] == '\0')
        p->target_override = "/";
    else
        return -1;
    return 0;
}

static int finish_head(struct h1_parser *p)
{
    bool req = p->kind == H1_REQUEST;
    bool cl_seen = false, te_seen = false, te_chunked = false, te_bad = false;
    bool conn_close = false, conn_ka = false, conn_upgrade = false, has_upgrade = false;
    size_t hosts = 0;
    uint64_t cl = 0;

    for (size_t i = 0; i < p->nhdrs; i++) {
        const char *n = p->buf + p->hdrs[i].name;
        const char *v = p->buf + p->hdrs[i].value;
        size_t nl = p->hdrs[i].name_len, vl = p->hdrs[i].value_len;
        if (NAME_IS(n, nl, "content-length")) {
            if (parse_cl(v, &cl, &cl_seen) != 0)
                return fail(p, 400, "invalid or conflicting Content-Length");
        } else if (NAME_IS(n, nl, "transfer-encoding")) {
            /* Only one "chunked", alone, across all Transfer-Encoding fields. */
            if (te_seen || !vp_slice_ieq(v, vl, "chunked"))
                te_bad = true;
            te_seen = true;
            te_chunked = true;
        } else if (NAME_IS(n, nl, "host")) {
            hosts++;
            if (!host_ok(v, vl))
                return fail(p, 400, "invalid Host");
        } else if (NAME_IS(n, nl, "connection")) {
            conn_options(v, vl, &conn_close, &conn_ka, &conn_upgrade);
        } else if (NAME_IS(n, nl, "upgrade")) {
            has_upgrade = vl > 0;
        } else if (req && NAME_IS(n, nl, "expect")) {
            if (vp_slice_ieq(v, vl, "100-continue"))
                p->expect_continue = true;
        }
    }
    if (te_seen && (te_bad || !te_chunked))
        return fail(p, 400, "unsupported Transfer-Encoding");
    if (te_seen && cl_seen)
        return fail(p, 400, "Content-Length with Transfer-Encoding");
    if (req) {
        if (te_seen && p->minor == 0)
            return fail(p, 400, "Transfer-Encoding in HTTP/1.0");
        if (hosts > 1 || (hosts == 0 && p->minor >= 1))
            return fail(p, 400, "missing or duplicate Host");
        if (check_target(p) != 0)
            return fail(p, 400, "invalid request target");
        p->framing = te_seen ? H1_BODY_CHUNKED : cl_seen && cl > 0 ? H1_BODY_LENGTH : H1_BODY_NONE;
        p->upgrade = conn_upgrade && has_upgrade;
    } else {
        int sc = p->status_code;
        if (p->head_request || (sc >= 100 && sc < 200) || sc == 204 || sc == 304)
            p->framing = H1_BODY_NONE;
        else if (te_seen)
            p->framing = H1_BODY_CHUNKED;
        else if (cl_seen)
            p->framing = cl > 0 ? H1_BODY_LENGTH : H1_BODY_NONE;
        else
            p->framing = H1_BODY_CLOSE;
        p->upgrade = sc == 101;
    }
    p->content_length = p->framing == H1_BODY_LENGTH ? cl : 0;
    p->keep_alive = p->minor >= 1 ? !conn_close : conn_ka && !conn_close;
    if (p->framing == H1_BODY_CLOSE)
        p->keep_alive = false;
    p->state = S_DONE;
    return H1_DONE;
}

static int check_version(struct h1_parser *p)
{
    const char *v = p->version;
    if (p->version_len != 8 || memcmp(v, "HTTP/", 5) != 0 || v[6] != '.' || v[5] != '1' ||
        v[7] < '0' || v[7] > '9')
        return -1;
    p->minor = v[7] - '0';
    return 0;
}

static void put(struct h1_parser *p, char c) { p->buf[p->len++] = c; }

/* Makes room for len more input bytes (each adds at most one byte to buf). false: no memory. */
static bool reserve(struct h1_parser *p, size_t len)
{
    size_t max = p->lim.max_head + 1;
    size_t need = len < max - p->len ? p->len + len + 1 : max;
    if (need <= p->cap)
        return true;
    size_t cap = p->cap * 2 > need ? p->cap * 2 : need;
    if (cap > max)
        cap = max;
    char *b = realloc(p->buf, cap);
    if (!b)
        return false;
    p->buf = b;
    p->cap = cap;
    return true;
}

/* ---- whole-line fast paths ----
 * Most heads arrive whole. A start line or field line that is complete in the input, well formed
 * and within the limits is recorded here in one step, with the result the byte loop would give
 * (same buffer contents, offsets, counts and state); anything else (a split line, a limit, a
 * byte the byte loop refuses) returns 0 and is left to the byte loop, which decides as before.
 * The byte loop took a pass through its switch for every delimiter: a field line cost about 150
 * instructions before its name and value were copied. */

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* "HTTP/1.d" (check_version). */
static bool version_ok(const unsigned char *v)
{
    return memcmp(v, "HTTP/1.", 7) == 0 && is_digit(v[7]);
}

static void put_run(struct h1_parser *p, const unsigned char *s, size_t n)
{
    memcpy(p->buf + p->len, s, n);
    p->len += n;
    p->buf[p->len++] = '\0';
}

/* S_START: method SP target SP version CRLF. */
static size_t request_line(struct h1_parser *p, const unsigned char *s, size_t n)
{
    /* The method's first byte is counted against max_line before the count restarts at it
     * (leading empty lines). */
    if (!tchar_tab[s[0]] || p->line_bytes >= p->lim.max_line)
        return 0;
    size_t k = 1;
    while (k < n && tchar_tab[s[k]])
        k++;
    if (k >= n || s[k] != ' ')
        return 0;
    size_t ml = k++, ts = k;
    while (k < n && s[k] > 0x20 && s[k] < 0x7f)
        k++;
    if (k == ts || k >= n || s[k] != ' ')
        return 0;
    size_t te = k++;
    if (n - k < 10 || !version_ok(s + k) || s[k + 8] != '\r' || s[k + 9] != '\n')
        return 0;
    size_t total = k + 10;
    if (total > p->lim.max_line)
        return 0;
    p->method_off = p->len;
    put_run(p, s, ml);
    p->target_off = p->len;
    put_run(p, s + ts, te - ts);
    memcpy(p->version, s + k, 8);
    p->version_len = 8;
    p->minor = s[k + 7] - '0';
    p->line_bytes = p->head_bytes = total;
    p->state = S_HDR_START;
    return total;
}

/* S_RVERSION, nothing read yet: version SP 3DIGIT [SP reason] CRLF. */
static size_t status_line(struct h1_parser *p, const unsigned char *s, size_t n)
{
    if (p->version_len != 0 || n < 14 || !version_ok(s) || s[8] != ' ' || !is_digit(s[9]) ||
        !is_digit(s[10]) || !is_digit(s[11]))
        return 0;
    int sc = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    size_t r;
    if (sc < 100 || sc > 599)
        return 0;
    if (s[12] == ' ')
        r = value_run(s, 13, n); /* the reason phrase: field-value bytes, as S_REASON takes */
    else if (s[12] == '\r')
        r = 12;
    else
        return 0;
    if (r + 1 >= n || s[r] != '\r' || s[r + 1] != '\n')
        return 0;
    size_t total = r + 2;
    if (p->line_bytes + total > p->lim.max_line)
        return 0;
    memcpy(p->version, s, 8);
    p->version_len = 8;
    p->minor = s[7] - '0';
    p->status_code = sc;
    p->reason_off = p->len;
    size_t rs = s[12] == ' ' ? 13 : 12;
    put_run(p, s + rs, r - rs);
    p->line_bytes += total;
    p->head_bytes += total;
    p->state = S_HDR_START;
    return total;
}

/* S_HDR_START: name ":" OWS value OWS CRLF. */
static size_t field_line(struct h1_parser *p, const unsigned char *s, size_t n)
{
    if (!tchar_tab[s[0]] || p->nhdrs >= p->lim.max_headers)
        return 0;
    size_t k = 1;
    while (k < n && tchar_tab[s[k]])
        k++;
    if (k >= n || s[k] != ':')
        return 0;
    size_t nl = k++;
    while (k < n && (s[k] == ' ' || s[k] == '\t'))
        k++;
    size_t vs = k, ve = value_run(s, k, n);
    if (ve + 1 >= n || s[ve] != '\r' || s[ve + 1] != '\n')
        return 0;
    size_t total = ve + 2;
    if (p->head_bytes + total > p->lim.max_head)
        return 0;
    while (ve > vs && (s[ve - 1] == ' ' || s[ve - 1] == '\t'))
        ve--;
    struct hdr *h = &p->hdrs[p->nhdrs++];
    h->name = (uint32_t)p->len;
    h->name_len = (uint32_t)nl;
    put_run(p, s, nl);
    h->value = (uint32_t)p->len;
    h->value_len = (uint32_t)(ve - vs);
    put_run(p, s + vs, ve - vs);
    p->head_bytes += total;
    return total;
}

int h1_parser_feed(struct h1_parser *p, const char *data, size_t len, size_t *consumed)
{
    const unsigned char *d = (const unsigned char *)data;
    size_t i = 0;
    *consumed = 0;
    if (p->state == S_ERROR)
        return p->err_status == 400 || p->err_status == 502 ? VP_ERR_PROTO : VP_ERR_LIMIT;
    if (p->state == S_DONE) {
        *consumed = 0;
        return H1_DONE;
    }
    if (!reserve(p, len)) {
        p->err_status = p->kind == H1_RESPONSE ? 502 : 503;
        p->err = "out of memory";
        p->state = S_ERROR;
        return VP_ERR_NOMEM;
    }
    for (; i < len; i++) {
        /* Whole lines first (see field_line); the byte loop goes on where they stop. */
        while (ST_BIT(p->state) & LINE_FAST_STATES) {
            size_t n = p->state == S_HDR_START ? field_line(p, d + i, len - i)
                       : p->state == S_START   ? request_line(p, d + i, len - i)
                                               : status_line(p, d + i, len - i);
            if (n == 0)
                break;
            i += n;
            if (i == len)
                goto all_used;
        }
        /* Fast paths for the long runs (target, field names and values): copy a run of plain
         * bytes at once, within the same limits as the byte loop below, which then handles the
         * byte that ended the run (delimiter, invalid byte, or the limit). */
        if (ST_BIT(p->state) & RUN_STATES) {
            size_t room = p->state == S_TARGET ? p->lim.max_line - p->line_bytes
                                               : p->lim.max_head - p->head_bytes;
            size_t end = len - i < room ? len : i + room, j = i;
            if (p->state == S_HDR_START) {
                /* A field name starts: its run is copied below. CR, obs-fold, a bad byte and the
                 * field count limit are the byte loop's. */
                if (!tchar_tab[d[i]] || p->nhdrs >= p->lim.max_headers)
                    goto byte;
                p->hdrs[p->nhdrs].name = (uint32_t)p->len;
                p->state = S_NAME;
            } else if (p->state == S_OWS) {
                /* OWS is counted, not copied; the value starts at the first other byte (at the
                 * limit, the byte loop meets it and fails). */
                while (j < end && (d[j] == ' ' || d[j] == '\t'))
                    j++;
                p->head_bytes += j - i;
                i = j;
                if (i == len)
                    break;
                if (i == end)
                    goto byte;
                p->state = S_VALUE;
                room = p->lim.max_head - p->head_bytes;
                end = len - i < room ? len : i + room;
            }
            if (p->state == S_VALUE)
                j = value_run(d, j, end);
            else if (p->state == S_NAME)
                while (j < end && tchar_tab[d[j]])
                    j++;
            else
                while (j < end && d[j] > 0x20 && d[j] < 0x7f)
                    j++;
            if (j > i) {
                memcpy(p->buf + p->len, d + i, j - i);
                p->len += j - i;
                p->head_bytes += j - i;
                if (p->state == S_TARGET)
                    p->line_bytes += j - i;
                i = j;
                if (i == len)
                    break;
            }
        }
    byte:;
        unsigned char c = d[i];
        p->head_bytes++;
        if (ST_BIT(p->state) & LINE_STATES) {
            if (++p->line_bytes > p->lim.max_line)
                return fail(p, 414, "request line too long");
        } else if (p->head_bytes > p->lim.max_head) {
            return fail(p, 431, "request header section too large");
        }
        switch (p->state) {
        case S_START:
            if (c == '\r') {
                p->state = S_START_LF;
            } else if (h1_is_tchar(c)) {
                p->line_bytes = 1;
                p->head_bytes = 1;
                p->method_off = p->len;
                put(p, (char)c);
                p->state = S_METHOD;
            } else {
                return fail(p, 400, "invalid method");
            }
            break;
        case S_START_LF:
            if (c != '\n')
                return fail(p, 400, "bare CR");
            p->state = S_START;
            break;
        case S_METHOD:
            if (h1_is_tchar(c)) {
                put(p, (char)c);
            } else if (c == ' ') {
                put(p, '\0');
                p->target_off = p->len;
                p->state = S_TARGET;
            } else {
                return fail(p, 400, "invalid method");
            }
            break;
        case S_TARGET:
            if (c > 0x20 && c < 0x7f) {
                put(p, (char)c);
            } else if (c == ' ' && p->len > p->target_off) {
                put(p, '\0');
                p->state = S_VERSION;
            } else {
                return fail(p, 400, "invalid request target");
            }
            break;
        case S_VERSION:
        case S_RVERSION:
            if (p->state == S_VERSION && c == '\r') {
                if (check_version(p) != 0)
                    return fail(p, 400, "invalid HTTP version");
                p->state = S_LINE_LF;
            } else if (p->state == S_RVERSION && c == ' ') {
                if (check_version(p) != 0)
                    return fail(p, 502, "invalid HTTP version");
                p->state = S_STATUS;
            } else if (p->version_len < 8) {
                p->version[p->version_len++] = (char)c;
            } else {
                return fail(p, 400, "invalid HTTP version");
            }
            break;
        case S_STATUS:
            if (c >= '0' && c <= '9' && p->status_code < 100) {
                p->status_code = p->status_code * 10 + (c - '0');
            } else if ((c == ' ' || c == '\r') && p->status_code >= 100 &&
                       p->status_code <= 599) {
                p->reason_off = p->len;
                if (c == '\r') {
                    put(p, '\0');
                    p->state = S_LINE_LF;
                } else {
                    p->state = S_REASON;
                }
            } else {
                return fail(p, 502, "invalid status code");
            }
            break;
        case S_REASON:
            if (c == '\r') {
                put(p, '\0');
                p->state = S_LINE_LF;
            } else if (is_field_char(c)) {
                put(p, (char)c);
            } else {
                return fail(p, 502, "invalid reason phrase");
            }
            break;
        case S_LINE_LF:
            if (c != '\n')
                return fail(p, 400, "bare CR");
            p->state = S_HDR_START;
            break;
        case S_HDR_START:
            if (c == '\r') {
                p->state = S_END_LF;
            } else if (c == ' ' || c == '\t') {
                return fail(p, 400, "obsolete line folding");
            } else if (h1_is_tchar(c)) {
                if (p->nhdrs >= p->lim.max_headers)
                    return fail(p, 431, "too many header fields");
                p->hdrs[p->nhdrs].name = (uint32_t)p->len;
                put(p, (char)c);
                p->state = S_NAME;
            } else {
                return fail(p, 400, "invalid header name");
            }
            break;
        case S_NAME:
            if (h1_is_tchar(c)) {
                put(p, (char)c);
            } else if (c == ':') {
                p->hdrs[p->nhdrs].name_len = (uint32_t)(p->len - p->hdrs[p->nhdrs].name);
                put(p, '\0');
                p->hdrs[p->nhdrs].value = (uint32_t)p->len;
                p->state = S_OWS;
            } else {
                return fail(p, 400, "invalid header name");
            }
            break;
        case S_OWS:
            if (c == ' ' || c == '\t')
                break;
            p->state = S_VALUE;
            /* fall through */
        case S_VALUE:
            if (c == '\r') {
                size_t start = p->hdrs[p->nhdrs].value;
                while (p->len > start && (p->buf[p->len - 1] == ' ' || p->buf[p->len - 1] == '\t'))
                    p->len--;
                p->hdrs[p->nhdrs].value_len = (uint32_t)(p->len - start);
                put(p, '\0');
                p->state = S_HDR_LF;
            } else if (is_field_char(c)) {
                put(p, (char)c);
            } else {
                return fail(p, 400, "invalid header value");
            }
            break;
        case S_HDR_LF:
            if (c != '\n')
                return fail(p, 400, "bare CR");
            p->nhdrs++;
            p->state = S_HDR_START;
            break;
        case S_END_LF: {
            if (c != '\n')
                return fail(p, 400, "bare CR");
            *consumed = i + 1;
            return finish_head(p);
        }
        default:
            return fail(p, 400, "parser state");
        }
    }
all_used:
    *consumed = len;
    return H1_AGAIN;
}

int h1_parser_status(const struct h1_parser *p) { return p->err_status; }
const char *h1_parser_error(const struct h1_parser *p) { return p->err ? p->err : ""; }
const char *h1_parser_method(const struct h1_parser *p) { return p->buf + p->method_off; }
const char *h1_parser_target(const struct h1_parser *p)
{
    return p->target_override ? p->target_override : p->buf + p->target_off;
}
int h1_parser_version_minor(const struct h1_parser *p) { return p->minor; }
int h1_parser_status_code(const struct h1_parser *p) { return p->status_code; }
const char *h1_parser_reason(const struct h1_parser *p) { return p->buf + p->reason_off; }
size_t h1_parser_header_count(const struct h1_parser *p) { return p->nhdrs; }

void h1_parser_header(const struct h1_parser *p, size_t i, const char **name, const char **value)
{
    *name = p->buf + p->hdrs[i].name;
    *value = p->buf + p->hdrs[i].value;
}

size_t h1_parser_header_name_len(const struct h1_parser *p, size_t i)
{
    return p->hdrs[i].name_len;
}

size_t h1_parser_header_value_len(const struct h1_parser *p, size_t i)
{
    return p->hdrs[i].value_len;
}

const char *h1_parser_find(const struct h1_parser *p, const char *name)
{
    size_t nl = strlen(name);
    if (nl == 0)
        return NULL; /* header names are never empty */
    int first = lower((unsigned char)name[0]);
    for (size_t i = 0; i < p->nhdrs; i++) {
        const char *n = p->buf + p->hdrs[i].name;
        /* Length and first byte before the full comparison. */
        if (p->hdrs[i].name_len == nl && lower((unsigned char)n[0]) == first &&
            vp_slice_ieq(n, nl, name))
            return p->buf + p->hdrs[i].value;
    }
    return NULL;
}

size_t h1_parser_head_bytes(const struct h1_parser *p) { return p->head_bytes; }
enum h1_framing h1_parser_framing(const struct h1_parser *p) { return p->framing; }
uint64_t h1_parser_content_length(const struct h1_parser *p) { return p->content_length; }
bool h1_parser_keep_alive(const struct h1_parser *p) { return p->keep_alive; }
bool h1_parser_upgrade(const struct h1_parser *p) { return p->upgrade; }
bool h1_parser_expect_continue(const struct h1_parser *p) { return p->expect_continue; }

/* ---- chunked decoder ---- */

enum {
    C_SIZE,
    C_EXT,
    C_SIZE_LF,
    C_DATA,
    C_DATA_CR,
    C_DATA_LF,
    C_TR_START,
    C_TR_NAME,
    C_TR_VALUE,
    C_TR_LF,
    C_END_LF,
    C_DONE,
    C_CUT, /* done at a malformed or oversized trailer section */
    C_ERROR,
};

void h1_chunked_init(struct h1_chunked *c, size_t max_trailer)
{
    memset(c, 0, sizeof *c);
    c->state = C_SIZE;
    c->max_trailer = max_trailer;
}

void h1_chunked_keep_trailers(struct h1_chunked *c) { c->keep_trailers = true; }

bool h1_chunked_cut(const struct h1_chunked *c) { return c->state == C_CUT; }

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int cfail(struct h1_chunked *c, int err)
{
    c->state = C_ERROR;
    return err;
}

/* The trailer section went wrong at byte i: the message ends before it (see the header). */
static int ccut(struct h1_chunked *c, size_t i, size_t *consumed)
{
    c->state = C_CUT;
    *consumed = i;
    return H1_CHUNK_END;
}

static bool in_trailers(int state) { return state >= C_TR_START && state <= C_TR_LF; }

int h1_chunked_feed(struct h1_chunked *c, const char *data, size_t len, size_t *consumed,
                    size_t *data_len)
{
    const unsigned char *d = (const unsigned char *)data;
    *data_len = 0;
    *consumed = 0;
    if (c->state == C_ERROR)
        return VP_ERR_PROTO;
    if (c->state == C_DONE || c->state == C_CUT)
        return H1_CHUNK_END;
    /* Start of this call's run of trailer bytes (SIZE_MAX: none yet). A run ends before the
     * CR of the empty line, or with the input. */
    size_t tstart = in_trailers(c->state) ? 0 : SIZE_MAX;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = d[i];
        if (c->state == C_DATA) {
            size_t n = len - i;
            if (n > c->remaining)
                n = (size_t)c->remaining;
            c->remaining -= n;
            if (c->remaining == 0)
                c->state = C_DATA_CR;
            *consumed = i + n;
            *data_len = n;
            return H1_CHUNK_DATA;
        }
        if (c->state == C_TR_START && ch == '\r' && c->keep_trailers && tstart < i) {
            *consumed = i;
            *data_len = i - tstart;
            return H1_CHUNK_TRAILER;
        }
        if (c->state != C_SIZE && c->state != C_DATA_CR && c->state != C_DATA_LF &&
            ++c->trailer > c->max_trailer) {
            if (in_trailers(c->state) || c->state == C_END_LF)
                return ccut(c, i, consumed);
            return cfail(c, VP_ERR_LIMIT);
        }
        switch (c->state) {
        case C_SIZE: {
            int h = hexval(ch);
            if (h >= 0) {
                if (++c->digits > 16)
                    return cfail(c, VP_ERR_PROTO);
                c->remaining = (c->remaining << 4) | (uint64_t)h;
            } else if (c->digits == 0) {
                return cfail(c, VP_ERR_PROTO);
            } else if (ch == ';' || ch == ' ' || ch == '\t') {
                c->state = C_EXT;
            } else if (ch == '\r') {
                c->state = C_SIZE_LF;
            } else {
                return cfail(c, VP_ERR_PROTO);
            }
            break;
        }
        case C_EXT:
            if (ch == '\r')
                c->state = C_SIZE_LF;
            else if (!is_field_char(ch))
                return cfail(c, VP_ERR_PROTO);
            break;
        case C_SIZE_LF:
            if (ch != '\n')
                return cfail(c, VP_ERR_PROTO);
            c->digits = 0;
            if (c->remaining) {
                c->trailer = 0; /* the limit is per extension line, and for the trailers */
                c->state = C_DATA;
            } else {
                c->state = C_TR_START;
                tstart = i + 1;
            }
            break;
        case C_DATA_CR:
            if (ch != '\r')
                return cfail(c, VP_ERR_PROTO);
            c->state = C_DATA_LF;
            break;
        case C_DATA_LF:
            if (ch != '\n')
                return cfail(c, VP_ERR_PROTO);
            c->state = C_SIZE;
            break;
        case C_TR_START:
            if (ch == '\r') {
                c->state = C_END_LF;
                tstart = SIZE_MAX;
            } else if (h1_is_tchar(ch)) {
                c->state = C_TR_NAME;
            } else {
                return ccut(c, i, consumed);
            }
            break;
        case C_TR_NAME:
            if (ch == ':')
                c->state = C_TR_VALUE;
            else if (!h1_is_tchar(ch))
                return ccut(c, i, consumed);
            break;
        case C_TR_VALUE:
            if (ch == '\r')
                c->state = C_TR_LF;
            else if (!is_field_char(ch))
                return ccut(c, i, consumed);
            break;
        case C_TR_LF:
            if (ch != '\n')
                return ccut(c, i, consumed);
            c->state = C_TR_START;
            break;
        case C_END_LF:
            if (ch != '\n')
                return ccut(c, i, consumed);
            c->state = C_DONE;
            *consumed = i + 1;
            return H1_CHUNK_END;
        default:
            return cfail(c, VP_ERR_PROTO);
        }
    }
    *consumed = len;
    if (c->keep_trailers && tstart < len) {
        *data_len = len - tstart;
        return H1_CHUNK_TRAILER;
    }
    return H1_CHUNK_MORE;
}

bool h1_trailer_next(const char *sec, size_t len, size_t *off, const char **name, size_t *nl,
                     const char **value, size_t *vl)
{
    size_t i = *off;
    if (i >= len)
        return false;
    const char *colon = memchr(sec + i, ':', len - i);
    if (!colon || colon == sec + i)
        return false;
    size_t vs = (size_t)(colon - sec) + 1;
    const char *cr = memchr(sec + vs, '\r', len - vs);
    if (!cr || (size_t)(cr - sec) + 1 >= len || cr[1] != '\n')
        return false;
    size_t ve = (size_t)(cr - sec);
    *off = ve + 2;
    while (vs < ve && (sec[vs] == ' ' || sec[vs] == '\t'))
        vs++;
    while (ve > vs && (sec[ve - 1] == ' ' || sec[ve - 1] == '\t'))
        ve--;
    *name = sec + i;
    *nl = (size_t)(colon - (sec + i));
    *value = sec + vs;
    *vl = ve - vs;
    return true;
}

bool h1_trailer_forbidden(const char *name, size_t nl)
{
    static const char *const deny[] = {
        /* framing and routing */
        "content-length", "transfer-encoding", "trailer", "host",
        /* hop-by-hop, connection-specific */
        "connection", "keep-alive", "proxy-connection", "upgrade", "te", "http2-settings",
        /* request modifiers */
        "expect", "max-forwards", "range", "if-match", "if-none-match", "if-modified-since",
        "if-unmodified-since", "if-range", "pragma",
        /* authentication and state */
        "authorization", "proxy-authorization", "www-authenticate", "proxy-authenticate",
        "authentication-info", "proxy-authentication-info", "cookie", "set-cookie",
        /* response control data */
        "cache-control", "expires", "date", "age", "location", "retry-after", "vary", "warning",
        /* content processing */
        "content-encoding", "content-type", "content-range", NULL};
    if (nl == 0)
        return true;
    for (size_t i = 0; i < nl; i++)
        if (!h1_is_tchar((unsigned char)name[i]))
            return true;
    for (size_t i = 0; deny[i]; i++)
        if (strlen(deny[i]) == nl && strncasecmp(deny[i], name, nl) == 0)
            return true;
    return false;
}
