/* A strict JSON parser (RFC 8259) into an arena tree, for beacon bodies (store/bjson.h says what
 * it accepts: the same as jansson's json_loadb with JSON_REJECT_DUPLICATES).
 *
 * Design: recursive descent, one pass over the input. Children of an open array or object are
 * collected on one growable stack shared by all levels and copied into the arena, contiguous,
 * when the container closes; so a node is 16 bytes (32 with its key), there is no per-value
 * malloc, and lookups are linear scans over a handful of members. Strings without escapes are
 * slices of the input; strings with escapes are decoded into the arena. Numbers: integers are
 * accumulated with an overflow check (int64, as strtoll); reals with at most 15 significant
 * digits and a decimal exponent within +-22 are one exact multiplication or division by a power
 * of ten (correctly rounded, so the same double strtod gives); others go to strtod.
 * Duplicate keys are found when an object closes: pairwise for small objects, by sorting for
 * large ones (a hostile 64 KiB body of one-letter keys stays O(n log n)). */
#include "config.h"

#include "store/bjson.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/vp_err.h"

#define MAX_DEPTH 2048 /* as jansson's JSON_PARSER_MAX_DEPTH: values nested deeper fail */

struct blk {
    struct blk *next;
    size_t used, cap;
    _Alignas(16) char data[];
};

struct bjson_doc {
    struct blk *head;
};

struct parser {
    const char *p, *end;
    struct bjson_doc *doc;
    struct bjson_member *stk; /* children of the open containers */
    size_t sp, scap;
    size_t hint; /* size of the next arena block */
    bool nomem;
};

static void *doc_alloc(struct parser *ps, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    struct blk *b = ps->doc->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > ps->hint ? n : ps->hint;
        b = malloc(sizeof *b + cap);
        if (!b) {
            ps->nomem = true;
            return NULL;
        }
        b->next = ps->doc->head;
        b->used = 0;
        b->cap = cap;
        ps->doc->head = b;
        ps->hint = cap * 2;
    }
    void *r = b->data + b->used;
    b->used += n;
    return r;
}

void bjson_doc_free(struct bjson_doc *d)
{
    if (!d)
        return;
    for (struct blk *b = d->head, *n; b; b = n) {
        n = b->next;
        free(b);
    }
    free(d);
}

static void skip_ws(struct parser *ps)
{
    while (ps->p < ps->end &&
           (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\r' || *ps->p == '\t'))
        ps->p++;
}

static int push(struct parser *ps, const struct bjson_member *m)
{
    if (ps->sp == ps->scap) {
        size_t cap = ps->scap ? ps->scap * 2 : 64;
        struct bjson_member *n = realloc(ps->stk, cap * sizeof *n);
        if (!n) {
            ps->nomem = true;
            return VP_ERR_NOMEM;
        }
        ps->stk = n;
        ps->scap = cap;
    }
    ps->stk[ps->sp++] = *m;
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads 4 hex digits at s (end bounds); -1 when malformed. */
static long hex4(const char *s, const char *end)
{
    if (end - s < 4)
        return -1;
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(s[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* Length of the valid UTF-8 sequence at s (lead byte >= 0x80), 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, const unsigned char *end)
{
    unsigned c = s[0];
    size_t n;
    uint32_t v;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        v = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        v = c & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(end - s) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && (v < 0x800 || (v >= 0xD800 && v <= 0xDFFF))) ||
        (n == 4 && (v < 0x10000 || v > 0x10FFFF)))
        return 0;
    return n;
}

static char *put_utf8(char *o, uint32_t v)
{
    if (v < 0x80) {
        *o++ = (char)v;
    } else if (v < 0x800) {
        *o++ = (char)(0xC0 | (v >> 6));
        *o++ = (char)(0x80 | (v & 0x3F));
    } else if (v < 0x10000) {
        *o++ = (char)(0xE0 | (v >> 12));
        *o++ = (char)(0x80 | ((v >> 6) & 0x3F));
        *o++ = (char)(0x80 | (v & 0x3F));
    } else {
        *o++ = (char)(0xF0 | (v >> 18));
        *o++ = (char)(0x80 | ((v >> 12) & 0x3F));
        *o++ = (char)(0x80 | ((v >> 6) & 0x3F));
        *o++ = (char)(0x80 | (v & 0x3F));
    }
    return o;
}

/* A string at ps->p (after the opening quote) into *s / *n. */
static int parse_string(struct parser *ps, const char **s, uint32_t *n)
{
    const unsigned char *start = (const unsigned char *)ps->p, *q = start,
                        *end = (const unsigned char *)ps->end;
    bool escapes = false;
    /* Pass 1: validate and find the closing quote. */
    for (;;) {
        if (q >= end)
            return VP_ERR_INVALID;
        unsigned c = *q;
        if (c == '"')
            break;
        if (c < 0x20)
            return VP_ERR_INVALID;
        if (c == '\\') {
            escapes = true;
            if (q + 1 >= end)
                return VP_ERR_INVALID;
            char e = (char)q[1];
            if (e == 'u') {
                long v = hex4((const char *)q + 2, (const char *)end);
                if (v < 0 || v == 0)
                    return VP_ERR_INVALID;
                q += 6;
                if (v >= 0xDC00 && v <= 0xDFFF)
                    return VP_ERR_INVALID;
                if (v >= 0xD800 && v <= 0xDBFF) {
                    if (end - q < 2 || q[0] != '\\' || q[1] != 'u')
                        return VP_ERR_INVALID;
                    long lo = hex4((const char *)q + 2, (const char *)end);
                    if (lo < 0xDC00 || lo > 0xDFFF)
                        return VP_ERR_INVALID;
                    q += 6;
                }
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || e == '\0')
                return VP_ERR_INVALID;
            q += 2;
            continue;
        }
        if (c >= 0x80) {
            size_t k = utf8_seq(q, end);
            if (!k)
                return VP_ERR_INVALID;
            q += k;
            continue;
        }
        q++;
    }
    size_t raw = (size_t)(q - start);
    ps->p = (const char *)q + 1;
    if (raw > UINT32_MAX)
        return VP_ERR_INVALID;
    if (!escapes) {
        *s = (const char *)start;
        *n = (uint32_t)raw;
        return 0;
    }
    /* Pass 2: decode (never longer than the raw text). */
    char *out = doc_alloc(ps, raw + 1), *o = out;
    if (!out)
        return VP_ERR_NOMEM;
    for (const unsigned char *r = start; r < q;) {
        if (*r != '\\') {
            *o++ = (char)*r++;
            continue;
        }
        char e = (char)r[1];
        r += 2;
        switch (e) {
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            uint32_t v = (uint32_t)hex4((const char *)r, (const char *)q);
            r += 4;
            if (v >= 0xD800 && v <= 0xDBFF) {
                uint32_t lo = (uint32_t)hex4((const char *)r + 2, (const char *)q);
                r += 6;
                v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
            }
            o = put_utf8(o, v);
            break;
        }
        default: *o++ = e; break; /* " \ / */
        }
    }
    *s = out;
    *n = (uint32_t)(o - out);
    return 0;
}

static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static int parse_number(struct parser *ps, struct bjson *out)
{
    const char *s = ps->p, *p = s, *end = ps->end;
    bool neg = false;
    if (p < end && *p == '-') {
        neg = true;
        p++;
    }
    if (p >= end)
        return VP_ERR_INVALID;
    const char *int_start = p;
    if (*p == '0') {
        p++;
        if (p < end && *p >= '0' && *p <= '9')
            return VP_ERR_INVALID;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    } else {
        return VP_ERR_INVALID;
    }
    const char *int_end = p, *frac_start = NULL, *frac_end = NULL;
    bool real = false;
    long exp10 = 0;
    if (p < end && *p == '.') {
        p++;
        frac_start = p;
        if (p >= end || *p < '0' || *p > '9')
            return VP_ERR_INVALID;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        frac_end = p;
        real = true;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        bool eneg = false;
        if (p < end && (*p == '+' || *p == '-')) {
            eneg = *p == '-';
            p++;
        }
        if (p >= end || *p < '0' || *p > '9')
            return VP_ERR_INVALID;
        while (p < end && *p >= '0' && *p <= '9') {
            if (exp10 < 100000)
                exp10 = exp10 * 10 + (*p - '0');
            p++;
        }
        if (eneg)
            exp10 = -exp10;
        real = true;
    }
    ps->p = p;
    if (!real) {
        uint64_t m = 0;
        for (const char *d = int_start; d < int_end; d++) {
            unsigned dig = (unsigned)(*d - '0');
            if (m > (UINT64_MAX - dig) / 10)
                return VP_ERR_INVALID;
            m = m * 10 + dig;
        }
        if (neg ? m > (uint64_t)INT64_MAX + 1 : m > (uint64_t)INT64_MAX)
            return VP_ERR_INVALID; /* strtoll's range, as jansson */
        out->type = BJSON_INT;
        out->u.i = neg ? (int64_t)(0 - m) : (int64_t)m;
        return 0;
    }
    /* Fast exact path: up to 15 significant digits, |exponent| <= 22. */
    uint64_t m = 0;
    int digits = 0;
    bool fast = true;
    for (const char *d = int_start; d < int_end && fast; d++) {
        if (m == 0 && *d == '0')
            continue;
        m = m * 10 + (uint64_t)(*d - '0');
        fast = ++digits <= 15;
    }
    if (frac_start)
        for (const char *d = frac_start; d < frac_end && fast; d++) {
            m = m * 10 + (uint64_t)(*d - '0');
            exp10--;
            if (m)
                fast = ++digits <= 15;
        }
    if (fast && exp10 >= -22 && exp10 <= 22) {
        double v = (double)m;
        v = exp10 < 0 ? v / pow10_exact[-exp10] : v * pow10_exact[exp10];
        out->type = BJSON_REAL;
        out->u.d = neg ? -v : v;
        return 0;
    }
    size_t len = (size_t)(p - s);
    char buf[64], *tmp = buf;
    if (len >= sizeof buf && !(tmp = doc_alloc(ps, len + 1)))
        return VP_ERR_NOMEM;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    errno = 0;
    double v = strtod(tmp, NULL);
    if ((v == HUGE_VAL || v == -HUGE_VAL) && errno == ERANGE)
        return VP_ERR_INVALID;
    out->type = BJSON_REAL;
    out->u.d = v;
    return 0;
}

static int key_cmp(const void *a, const void *b)
{
    const struct bjson_member *x = *(const struct bjson_member *const *)a,
                              *y = *(const struct bjson_member *const *)b;
    if (x->klen != y->klen)
        return x->klen < y->klen ? -1 : 1;
    return memcmp(x->key, y->key, x->klen);
}

static bool has_duplicate(struct parser *ps, const struct bjson_member *m, size_t n)
{
    if (n <= 16) {
        for (size_t i = 1; i < n; i++)
            for (size_t j = 0; j < i; j++)
                if (m[i].klen == m[j].klen && memcmp(m[i].key, m[j].key, m[i].klen) == 0)
                    return true;
        return false;
    }
    const struct bjson_member **v = malloc(n * sizeof *v);
    if (!v) {
        ps->nomem = true;
        return true;
    }
    for (size_t i = 0; i < n; i++)
        v[i] = &m[i];
    qsort(v, n, sizeof *v, key_cmp);
    bool dup = false;
    for (size_t i = 1; i < n && !dup; i++)
        dup = key_cmp(&v[i - 1], &v[i]) == 0;
    free(v);
    return dup;
}

static int parse_value(struct parser *ps, int depth, struct bjson *out);

/* Copies the n children above base into the arena as out's items or members. */
static int close_container(struct parser *ps, size_t base, bool object, struct bjson *out)
{
    size_t n = ps->sp - base;
    if (n > UINT32_MAX)
        return VP_ERR_INVALID;
    out->type = object ? BJSON_OBJECT : BJSON_ARRAY;
    out->n = (uint32_t)n;
    out->u.items = NULL;
    if (n) {
        if (object) {
            if (has_duplicate(ps, ps->stk + base, n))
                return ps->nomem ? VP_ERR_NOMEM : VP_ERR_INVALID;
            struct bjson_member *m = doc_alloc(ps, n * sizeof *m);
            if (!m)
                return VP_ERR_NOMEM;
            memcpy(m, ps->stk + base, n * sizeof *m);
            out->u.members = m;
        } else {
            struct bjson *v = doc_alloc(ps, n * sizeof *v);
            if (!v)
                return VP_ERR_NOMEM;
            for (size_t i = 0; i < n; i++)
                v[i] = ps->stk[base + i].v;
            out->u.items = v;
        }
    }
    ps->sp = base;
    return 0;
}

static int parse_container(struct parser *ps, int depth, bool object, struct bjson *out)
{
    size_t base = ps->sp;
    char close = object ? '}' : ']';
    ps->p++; /* { or [ */
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        return close_container(ps, base, object, out);
    }
    for (;;) {
        struct bjson_member m = {NULL, 0, {0}};
        int rc;
        if (object) {
            if (ps->p >= ps->end || *ps->p != '"')
                return VP_ERR_INVALID;
            ps->p++;
            if ((rc = parse_string(ps, &m.key, &m.klen)))
                return rc;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':')
                return VP_ERR_INVALID;
            ps->p++;
            skip_ws(ps);
        }
        if ((rc = parse_value(ps, depth, &m.v)) || (rc = push(ps, &m)))
            return rc;
        skip_ws(ps);
        if (ps->p >= ps->end)
            return VP_ERR_INVALID;
        char c = *ps->p++;
        if (c == close)
            return close_container(ps, base, object, out);
        if (c != ',')
            return VP_ERR_INVALID;
        skip_ws(ps);
    }
}

static bool literal(struct parser *ps, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return false;
    ps->p += n;
    return true;
}

static int parse_value(struct parser *ps, int depth, struct bjson *out)
{
    if (++depth > MAX_DEPTH || ps->p >= ps->end)
        return VP_ERR_INVALID;
    char c = *ps->p;
    switch (c) {
    case '{':
    case '[':
        return parse_container(ps, depth, c == '{', out);
    case '"':
        out->type = BJSON_STRING;
        ps->p++;
        return parse_string(ps, &out->u.s, &out->n);
    case 't':
        out->type = BJSON_TRUE;
        return literal(ps, "true") ? 0 : VP_ERR_INVALID;
    case 'f':
        out->type = BJSON_FALSE;
        return literal(ps, "false") ? 0 : VP_ERR_INVALID;
    case 'n':
        out->type = BJSON_NULL;
        return literal(ps, "null") ? 0 : VP_ERR_INVALID;
    default:
        if (c == '-' || (c >= '0' && c <= '9'))
            return parse_number(ps, out);
        return VP_ERR_INVALID;
    }
}

int bjson_parse(const char *in, size_t len, struct bjson_doc **out, const struct bjson **root)
{
    struct bjson_doc *doc = calloc(1, sizeof *doc);
    if (!doc)
        return VP_ERR_NOMEM;
    struct parser ps = {.p = in, .end = in + len, .doc = doc, .hint = len * 2 + 512};
    struct bjson *top = doc_alloc(&ps, sizeof *top);
    int rc = top ? 0 : VP_ERR_NOMEM;
    if (rc == 0) {
        skip_ws(&ps);
        if (ps.p >= ps.end || (*ps.p != '{' && *ps.p != '['))
            rc = VP_ERR_INVALID;
        else
            rc = parse_value(&ps, 0, top);
    }
    if (rc == 0) {
        skip_ws(&ps);
        if (ps.p != ps.end)
            rc = VP_ERR_INVALID;
    }
    free(ps.stk);
    if (rc) {
        bjson_doc_free(doc);
        return ps.nomem ? VP_ERR_NOMEM : rc;
    }
    *out = doc;
    *root = top;
    return 0;
}

const struct bjson *bjson_get(const struct bjson *o, const char *key)
{
    if (!o || o->type != BJSON_OBJECT)
        return NULL;
    size_t kl = strlen(key);
    for (uint32_t i = 0; i < o->n; i++) {
        const struct bjson_member *m = &o->u.members[i];
        if (m->klen == kl && memcmp(m->key, key, kl) == 0)
            return &m->v;
    }
    return NULL;
}

double bjson_number(const struct bjson *v)
{
    if (!v)
        return 0;
    if (v->type == BJSON_INT)
        return (double)v->u.i;
    return v->type == BJSON_REAL ? v->u.d : 0;
}

bool bjson_str_eq(const struct bjson *v, const char *lit)
{
    size_t n = strlen(lit);
    return v && v->type == BJSON_STRING && v->n == n && memcmp(v->u.s, lit, n) == 0;
}

/* ---- writing JSON text ---- */

char *bjson_write_string(char *o, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    *o++ = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c < 0x20) {
            *o++ = '\\';
            switch (c) {
            case '\b': *o++ = 'b'; break;
            case '\f': *o++ = 'f'; break;
            case '\n': *o++ = 'n'; break;
            case '\r': *o++ = 'r'; break;
            case '\t': *o++ = 't'; break;
            default:
                *o++ = 'u';
                *o++ = '0';
                *o++ = '0';
                *o++ = hex[c >> 4];
                *o++ = hex[c & 15];
                break;
            }
        } else {
            *o++ = (char)c;
        }
    }
    *o++ = '"';
    return o;
}

static char *put_u64(char *o, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *o++ = tmp[--n];
    return o;
}

/* m / 10^k with k <= 6 when that division gives d exactly (true for the times the beacon sends,
 * rounded to 0.1 ms, and the CLS values); "%.17g" otherwise (as json_dumps). */
char *bjson_write_real(char *o, double d)
{
    static const double p10[] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6};
    for (int k = 0; k <= 6; k++) {
        double t = d * p10[k];
        if (fabs(t) < 9007199254740992.0 && t == nearbyint(t) && t / p10[k] == d) {
            if (t < 0 || (t == 0 && signbit(t))) {
                *o++ = '-';
                t = -t;
            }
            uint64_t m = (uint64_t)t, div = (uint64_t)p10[k];
            o = put_u64(o, m / div);
            *o++ = '.';
            if (k == 0) {
                *o++ = '0';
            } else {
                uint64_t frac = m % div;
                for (uint64_t q = div / 10; q > 0; q /= 10) {
                    *o++ = (char)('0' + frac / q);
                    frac %= q;
                }
            }
            return o;
        }
    }
    char buf[40];
    int w = snprintf(buf, sizeof buf, "%.17g", d);
    if (w <= 0 || (size_t)w >= sizeof buf)
        w = snprintf(buf, sizeof buf, "0.0");
    memcpy(o, buf, (size_t)w);
    o += w;
    if (!memchr(buf, '.', (size_t)w) && !memchr(buf, 'e', (size_t)w)) {
        *o++ = '.';
        *o++ = '0';
    }
    return o;
}

char *bjson_write_int(char *o, int64_t i)
{
    if (i < 0) {
        *o++ = '-';
        return put_u64(o, (uint64_t)0 - (uint64_t)i);
    }
    return put_u64(o, (uint64_t)i);
}

size_t bjson_dump_max(const struct bjson *v)
{
    switch (v->type) {
    case BJSON_STRING:
        return (size_t)v->n * 6 + 2;
    case BJSON_ARRAY: {
        size_t n = 2;
        for (uint32_t i = 0; i < v->n; i++)
            n += bjson_dump_max(&v->u.items[i]) + 1;
        return n;
    }
    case BJSON_OBJECT: {
        size_t n = 2;
        for (uint32_t i = 0; i < v->n; i++)
            n += (size_t)v->u.members[i].klen * 6 + 4 + bjson_dump_max(&v->u.members[i].v);
        return n;
    }
    default:
        return 48;
    }
}

size_t bjson_dump(const struct bjson *v, char *out)
{
    char *o = out;
    switch (v->type) {
    case BJSON_NULL:
        memcpy(o, "null", 4);
        o += 4;
        break;
    case BJSON_FALSE:
        memcpy(o, "false", 5);
        o += 5;
        break;
    case BJSON_TRUE:
        memcpy(o, "true", 4);
        o += 4;
        break;
    case BJSON_INT:
        o = bjson_write_int(o, v->u.i);
        break;
    case BJSON_REAL:
        o = bjson_write_real(o, v->u.d);
        break;
    case BJSON_STRING:
        o = bjson_write_string(o, v->u.s, v->n);
        break;
    case BJSON_ARRAY:
        *o++ = '[';
        for (uint32_t i = 0; i < v->n; i++) {
            if (i)
                *o++ = ',';
            o += bjson_dump(&v->u.items[i], o);
        }
        *o++ = ']';
        break;
    case BJSON_OBJECT:
        *o++ = '{';
        for (uint32_t i = 0; i < v->n; i++) {
            if (i)
                *o++ = ',';
            o = bjson_write_string(o, v->u.members[i].key, v->u.members[i].klen);
            *o++ = ':';
            o += bjson_dump(&v->u.members[i].v, o);
        }
        *o++ = '}';
        break;
    }
    return (size_t)(o - out);
}
