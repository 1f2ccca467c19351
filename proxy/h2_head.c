/* proxy/h2_head (see h2_head.h): conn_h1's response head, split line by line. The end is found
 * with one memchr per line (lines are short: cheaper than a search for CRLF CRLF); names are
 * checked and lower-cased in one pass into h->lower; the framing fields are read as RFC 9112
 * section 6.3 uses them. */
#include "proxy/h2_head.h"
#include "config.h"

#include "common/vp_buf.h"

#include <stdlib.h>
#include <string.h>

/* Connection-specific fields (RFC 9113 section 8.2.2), by length first: conn_h1 has removed
 * the upstream's hop-by-hop fields already, so this mostly meets its own framing lines. */
static bool is_hop(const char *n, size_t nl)
{
    switch (nl) {
    case 2:
        return vp_slice_ieq(n, nl, "te");
    case 7:
        return vp_slice_ieq(n, nl, "upgrade") || vp_slice_ieq(n, nl, "trailer");
    case 10:
        return vp_slice_ieq(n, nl, "connection") || vp_slice_ieq(n, nl, "keep-alive");
    case 16:
        return vp_slice_ieq(n, nl, "proxy-connection");
    case 17:
        return vp_slice_ieq(n, nl, "transfer-encoding");
    default:
        return false;
    }
}

/* The end of the first empty line in b[0..n) (just past its LF), or NULL. Lines are short, so
 * a memchr per line costs less than a search for the four-byte CRLF CRLF. */
const char *h2_head_end(const char *b, size_t n)
{
    const char *p = b, *end = b + n, *nl;
    while ((nl = memchr(p, '\n', (size_t)(end - p)))) {
        if (nl - b >= 3 && nl[-1] == '\r' && nl[-2] == '\n' && nl[-3] == '\r')
            return nl + 1;
        p = nl + 1;
    }
    return NULL;
}

/* RFC 9110 section 5.6.2 tchar, without a table lookup through another module. */
static inline bool name_char(unsigned char c)
{
    return (unsigned)((c | 0x20) - 'a') < 26u || (unsigned)(c - '0') < 10u || c == '-' ||
           (c > 0x20 && c < 0x7f && c != '"' && c != '(' && c != ')' && c != ',' && c != '/' &&
            c != ':' && c != ';' && c != '<' && c != '=' && c != '>' && c != '?' && c != '@' &&
            c != '[' && c != '\\' && c != ']' && c != '{' && c != '}');
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

bool h2_head_parse(const char *b, size_t len, struct h2_head *h)
{
    h->len = len;
    h->nva = h->nva_stack;
    h->lower = h->lower_stack;
    h->nv = 0;
    h->has_cl = h->chunked = h->close = false;
    h->cl = 0;
    /* Status line: "HTTP/1.1 NNN" then SP reason or CRLF; the head ends with an empty line. */
    if (len < 16 || memcmp(b, "HTTP/1.1 ", 9) != 0 || memcmp(b + len - 4, "\r\n\r\n", 4) != 0)
        return false;
    const char *end = b + len - 2, *nl = memchr(b, '\n', len);
    if (!nl || nl[-1] != '\r' || (b[12] != ' ' && b + 12 != nl - 1))
        return false;
    int sc = 0;
    for (int i = 9; i < 12; i++) {
        if (b[i] < '0' || b[i] > '9')
            return false;
        sc = sc * 10 + (b[i] - '0');
        h->code[i - 9] = b[i];
    }
    h->code[3] = '\0';
    if (sc < 100 || sc > 599)
        return false;
    h->status = sc;
    /* Fields: at most one per 4 bytes ("n:" CRLF), and their names fit in len bytes. */
    size_t cap = len / 4 + 1;
    if (cap > H2_HEAD_FIELDS + 1)
        cap = H2_HEAD_FIELDS + 1;
    if (cap > H2_HEAD_NV_STACK && !(h->nva = malloc(cap * sizeof *h->nva))) {
        h->nva = h->nva_stack;
        return false;
    }
    if (len > sizeof h->lower_stack && !(h->lower = malloc(len))) {
        h->lower = h->lower_stack;
        return false;
    }
    h->nva[h->nv++] =
        (nghttp2_nv){(uint8_t *)":status", (uint8_t *)h->code, 7, 3, NGHTTP2_NV_FLAG_NONE};
    size_t off = 0;
    for (const char *line = nl + 1; line < end; line = nl + 1) {
        nl = memchr(line, '\n', (size_t)(end + 2 - line));
        if (!nl || nl == line || nl[-1] != '\r')
            return false;
        const char *le = nl - 1, *colon = memchr(line, ':', (size_t)(le - line));
        if (!colon || colon == line || h->nv >= cap)
            return false;
        size_t nlen = (size_t)(colon - line);
        char *ln = h->lower + off;
        for (size_t j = 0; j < nlen; j++) {
            unsigned char ch = (unsigned char)line[j];
            if (!name_char(ch))
                return false;
            ln[j] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
        }
        const char *v = colon + 1, *ve = le;
        while (v < ve && is_ows(*v))
            v++;
        while (ve > v && is_ows(ve[-1]))
            ve--;
        size_t vl = (size_t)(ve - v);
        if (nlen == 14 && memcmp(ln, "content-length", 14) == 0) {
            uint64_t n = 0;
            for (size_t j = 0; j < vl; j++) {
                if (v[j] < '0' || v[j] > '9' || n > (UINT64_MAX - 9) / 10)
                    return false;
                n = n * 10 + (uint64_t)(v[j] - '0');
            }
            if (!vl || (h->has_cl && n != h->cl))
                return false;
            h->has_cl = true;
            h->cl = n;
        } else if (nlen == 17 && memcmp(ln, "transfer-encoding", 17) == 0) {
            if (h->chunked || !vp_slice_ieq(v, vl, "chunked"))
                return false;
            h->chunked = true;
            continue;
        } else if (nlen == 10 && memcmp(ln, "connection", 10) == 0) {
            h->close |= vp_header_has_token(v, vl, "close");
            continue;
        }
        if (is_hop(ln, nlen))
            continue;
        h->nva[h->nv++] = (nghttp2_nv){(uint8_t *)ln, (uint8_t *)v, nlen, vl, NGHTTP2_NV_FLAG_NONE};
        off += nlen;
    }
    return !(h->chunked && h->has_cl);
}

void h2_head_dispose(struct h2_head *h)
{
    if (h->nva != h->nva_stack)
        free(h->nva);
    if (h->lower != h->lower_stack)
        free(h->lower);
}
