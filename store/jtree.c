/* A read-only JSON tree in one arena (store/jtree.h), built by a strict single-pass parser.
 *
 * Design: jtree_load reads the bytes once, left to right, with an explicit stack instead of
 * recursion. A value that is not yet in a closed container waits on the value stack (a member:
 * key and value; an array item: value only); when its container closes, the container's entries
 * are copied, as one contiguous array, into the document's arena and popped, and the container's
 * own node takes their place. Strings are validated and unescaped straight into the arena. So
 * a body costs the arena (one malloc for a typical beacon: its header and first block are one
 * allocation) and nothing per value; the stacks live on the C stack until a body needs more
 * (then one growing malloc each, freed before returning).
 *
 * What is accepted is what jansson 2.14's json_loadb(JSON_REJECT_DUPLICATES) accepts, built into
 * the same values (fuzz/fuzz_jtree.c checks both, tests/unit/test_jtree.c the rules one by one):
 *   - RFC 8259: the top value an object or an array; whitespace is space, tab, LF, CR only; after
 *     the top value only whitespace.
 *   - Nesting: a value's depth is its enclosing containers plus one; more than JTREE_MAX_DEPTH
 *     (2048, jansson's limit) is refused. A beacon is 4 deep ("m" -> metric -> "a" -> value);
 *     the limit is kept at jansson's so the two parsers answer alike on any input.
 *   - Objects: a repeated key (bytes equal after unescaping) is refused. Up to DUP_LINEAR
 *     members the keys are compared pairwise (only those alike in length, first and last byte);
 *     above, through a hash set, abandoned for a sort when the keys collide (keys made to
 *     collide cost O(n log n), never O(n^2)).
 *   - Strings: UTF-8 strictly (no overlong form, no surrogate, nothing above U+10FFFF, no
 *     truncated sequence); bytes below 0x20 refused, 0x7f allowed; escapes \" \\ \/ \b \f \n \r
 *     \t \uXXXX, a high surrogate escape only followed by a low one, \u0000 refused.
 *   - Numbers: no '+', no leading zero, digits required around '.' and after 'e'. Without '.',
 *     'e' or 'E' an integer: int64, beyond it refused ("-0" is the integer 0). Otherwise a real,
 *     correctly rounded (exactly strtod's double): overflow to infinity refused, underflow
 *     accepted (0 or a subnormal, sign kept).
 *   - Literals true, false, null (lower case).
 *   - One quirk of jansson's reader kept: a single NUL byte right after a number or a literal
 *     is skipped ("[1\0]" is [1]); a NUL anywhere else is refused. */
#include "config.h"

#include "store/jtree.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/vp_err.h"
#include "store/jtree_internal.h"

#define JTREE_MAX_DEPTH 2048
#define DUP_LINEAR 16      /* objects up to this many members: pairwise, behind a 6-bit hash */
#define DUP_PROBES_PER_KEY 4 /* larger ones: a hash set, unless keys collide more than this */
#define STACK_INLINE 128   /* value-stack entries on the C stack (a realistic beacon needs ~90) */
#define FRAMES_INLINE 32   /* open containers on the C stack */

_Thread_local uint64_t jtree_key_compares;

/* ---- the arena of a document ---- */

struct blk {
    struct blk *next;
    size_t used, cap;
    _Alignas(16) char data[];
};

/* The document header lives at the start of its first block, so a document that fits its first
 * block is one allocation. */
struct jtree_doc {
    struct blk *head; /* newest block first; the one holding this header last */
    size_t hint;      /* size of the next block */
};

#define DOC_HDR ((sizeof(struct jtree_doc) + 15) & ~(size_t)15)

static void *doc_grow(struct jtree_doc *d, size_t n);

static inline void *doc_alloc(struct jtree_doc *d, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    struct blk *b = d->head;
    if (__builtin_expect(b->cap - b->used < n, 0))
        return doc_grow(d, n);
    void *r = b->data + b->used;
    b->used += n;
    return r;
}

/* doc_alloc's slow path: a new block for n (rounded) bytes. */
static void *doc_grow(struct jtree_doc *d, size_t n)
{
    size_t cap = n > d->hint ? n : d->hint;
    if (cap > SIZE_MAX - sizeof(struct blk))
        return NULL;
    struct blk *b = malloc(sizeof *b + cap);
    if (!b)
        return NULL;
    b->next = d->head;
    b->used = n;
    b->cap = cap;
    d->head = b;
    d->hint = cap * 2;
    return b->data;
}

/* Gives back the end of the last allocation p, keeping its first n bytes. */
static void doc_trim(struct jtree_doc *d, void *p, size_t n)
{
    struct blk *b = d->head;
    b->used = (size_t)((char *)p - b->data) + ((n + 7) & ~(size_t)7);
}

static struct jtree_doc *doc_new(size_t cap)
{
    if (cap > SIZE_MAX / 4)
        return NULL;
    struct blk *b = malloc(sizeof *b + DOC_HDR + cap);
    if (!b)
        return NULL;
    b->next = NULL;
    b->used = DOC_HDR;
    b->cap = DOC_HDR + cap;
    struct jtree_doc *d = (struct jtree_doc *)(void *)b->data;
    d->head = b;
    d->hint = cap * 2;
    return d;
}

void jtree_doc_free(struct jtree_doc *d)
{
    if (!d)
        return;
    /* the header is in the last block freed and is not read after it */
    for (struct blk *b = d->head, *n; b; b = n) {
        n = b->next;
        free(b);
    }
}

/* ---- the parser ---- */

struct frame {
    uint32_t start; /* index in the value stack of the container's first entry */
    bool obj;
};

struct parser {
    const unsigned char *p, *end;
    struct jtree_doc *doc;
    struct jtree_member *stk; /* the value stack: entries of the open containers */
    size_t top, cap;
    struct frame *fr; /* open containers, innermost last */
    size_t depth, frcap;
    struct jtree_member stk_inline[STACK_INLINE];
    struct frame fr_inline[FRAMES_INLINE];
};

/* Byte classes inside a string: 0 plain ASCII, 1 '"' or '\\', 2 control, 3 0x80 and above. */
static const unsigned char str_class[256] = {
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
};

static inline void skip_ws(struct parser *ps)
{
    if (ps->p < ps->end && *ps->p > ' ')
        return; /* the usual case: no whitespace */
    const unsigned char *p = ps->p, *e = ps->end;
    while (p < e && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    ps->p = p;
}

static int hex4(const unsigned char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = p[i];
        int x;
        if (c >= '0' && c <= '9')
            x = c - '0';
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            x = (c | 0x20) - 'a' + 10;
        else
            return -1;
        v = v << 4 | x;
    }
    return v;
}

/* Length of the well-formed UTF-8 sequence at p (before e), or 0. */
static size_t utf8_len(const unsigned char *p, const unsigned char *e)
{
    unsigned char c = p[0];
    size_t avail = (size_t)(e - p);
    if (c >= 0xc2 && c <= 0xdf)
        return avail >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if (avail < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
            return 0;
        if (c == 0xe0 && p[1] < 0xa0) /* overlong */
            return 0;
        if (c == 0xed && p[1] >= 0xa0) /* a surrogate */
            return 0;
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (avail < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 ||
            (p[3] & 0xc0) != 0x80)
            return 0;
        if (c == 0xf0 && p[1] < 0x90) /* overlong */
            return 0;
        if (c == 0xf4 && p[1] >= 0x90) /* above U+10FFFF */
            return 0;
        return 4;
    }
    return 0; /* a continuation byte, 0xc0, 0xc1 or 0xf5 and above */
}

static unsigned char *put_utf8(unsigned char *o, uint32_t cp)
{
    if (cp < 0x80) {
        *o++ = (unsigned char)cp;
    } else if (cp < 0x800) {
        *o++ = (unsigned char)(0xc0 | cp >> 6);
        *o++ = (unsigned char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *o++ = (unsigned char)(0xe0 | cp >> 12);
        *o++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        *o++ = (unsigned char)(0x80 | (cp & 0x3f));
    } else {
        *o++ = (unsigned char)(0xf0 | cp >> 18);
        *o++ = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
        *o++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        *o++ = (unsigned char)(0x80 | (cp & 0x3f));
    }
    return o;
}

/* Validates and unescapes the string body [p, e) (between the quotes, which the caller found:
 * every '"' inside is escaped) into o; returns the bytes written, or -1. */
static long unescape(const unsigned char *p, const unsigned char *e, unsigned char *o)
{
    unsigned char *o0 = o;
    while (p < e) {
        unsigned char c = *p;
        if (c < 0x80 && c != '\\') {
            *o++ = c;
            p++;
            continue;
        }
        if (c >= 0x80) {
            size_t k = utf8_len(p, e);
            if (!k)
                return -1;
            memcpy(o, p, k);
            o += k;
            p += k;
            continue;
        }
        /* an escape: the scan guaranteed a byte after the backslash */
        c = p[1];
        p += 2;
        switch (c) {
        case '"': case '\\': case '/': *o++ = c; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            int v = e - p >= 4 ? hex4(p) : -1;
            if (v <= 0) /* not four hex digits, or \u0000 */
                return -1;
            p += 4;
            uint32_t cp = (uint32_t)v;
            if (cp >= 0xdc00 && cp <= 0xdfff)
                return -1; /* a low surrogate first */
            if (cp >= 0xd800 && cp <= 0xdbff) {
                int lo = e - p >= 6 && p[0] == '\\' && p[1] == 'u' ? hex4(p + 2) : -1;
                if (lo < 0xdc00 || lo > 0xdfff)
                    return -1;
                p += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + ((uint32_t)lo - 0xdc00);
            }
            o = put_utf8(o, cp);
            break;
        }
        default:
            return -1;
        }
    }
    return (long)(o - o0);
}

/* The string whose opening quote is at ps->p, into the arena: *s (NUL-terminated) and *n. */
static int parse_string(struct parser *ps, const char **s, uint32_t *n)
{
    const unsigned char *b = ps->p + 1, *p = b, *e = ps->end;
    bool plain = true;
    for (;;) {
        while (p < e && str_class[*p] == 0)
            p++;
        if (p >= e)
            return VP_ERR_INVALID;
        unsigned char cl = str_class[*p];
        if (*p == '"')
            break;
        if (cl == 2)
            return VP_ERR_INVALID;
        plain = false;
        if (*p == '\\') {
            if (e - p < 2)
                return VP_ERR_INVALID;
            p += 2;
        } else {
            p++;
        }
    }
    size_t raw = (size_t)(p - b);
    if (raw > UINT32_MAX)
        return VP_ERR_INVALID;
    unsigned char *o = doc_alloc(ps->doc, raw + 1);
    if (!o)
        return VP_ERR_NOMEM;
    size_t len = raw;
    if (plain) {
        memcpy(o, b, raw);
    } else {
        long w = unescape(b, p, o);
        if (w < 0)
            return VP_ERR_INVALID;
        len = (size_t)w;
        doc_trim(ps->doc, o, len + 1);
    }
    o[len] = '\0';
    *s = (const char *)o;
    *n = (uint32_t)len;
    ps->p = p + 1;
    return 0;
}

static const double pow10_exact[] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* The number at ps->p into v. */
static int parse_number(struct parser *ps, struct jtree *v)
{
    const unsigned char *p = ps->p, *e = ps->end, *start = p;
    bool neg = false;
    if (*p == '-') {
        neg = true;
        p++;
    }
    uint64_t mant = 0;
    int sig = 0;      /* significant digits seen (after the leading zeros) */
    long e10 = 0;     /* the value is mant * 10^e10 while sig <= 19 */
    if (p >= e || *p < '0' || *p > '9')
        return VP_ERR_INVALID;
    if (*p == '0') {
        p++;
        if (p < e && *p >= '0' && *p <= '9')
            return VP_ERR_INVALID; /* a leading zero */
    } else {
        while (p < e && *p >= '0' && *p <= '9') {
            if (++sig <= 19)
                mant = mant * 10 + (uint64_t)(*p - '0');
            else
                e10++;
            p++;
        }
    }
    bool real = false;
    if (p < e && *p == '.') {
        real = true;
        p++;
        if (p >= e || *p < '0' || *p > '9')
            return VP_ERR_INVALID;
        while (p < e && *p >= '0' && *p <= '9') {
            if (sig || *p != '0')
                sig++;
            if (sig <= 19) {
                mant = mant * 10 + (uint64_t)(*p - '0');
                e10--;
            }
            p++;
        }
    }
    long ex = 0;
    bool ex_big = false;
    if (p < e && (*p == 'e' || *p == 'E')) {
        real = true;
        p++;
        bool eneg = false;
        if (p < e && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        if (p >= e || *p < '0' || *p > '9')
            return VP_ERR_INVALID;
        while (p < e && *p >= '0' && *p <= '9') {
            if (ex < 100000)
                ex = ex * 10 + (*p - '0');
            else
                ex_big = true;
            p++;
        }
        if (eneg)
            ex = -ex;
    }
    ps->p = p;
    if (!real) {
        if (sig > 19 || mant > (uint64_t)INT64_MAX + neg)
            return VP_ERR_INVALID; /* jansson: "too big integer" */
        v->type = JTREE_INT;
        v->u.i = neg ? (int64_t)(0 - mant) : (int64_t)mant;
        return 0;
    }
    v->type = JTREE_REAL;
    if (mant == 0 && !ex_big) {
        v->u.d = neg ? -0.0 : 0.0; /* all digits zero: zero whatever the exponent */
        return 0;
    }
    e10 += ex;
    /* Exact when the digits fit 53 bits and the power of ten is exact: one IEEE operation,
     * correctly rounded, so bit for bit what strtod returns. */
    if (sig <= 19 && !ex_big && mant <= (1ull << 53) && e10 >= -22 && e10 <= 22) {
        double d = (double)mant;
        d = e10 < 0 ? d / pow10_exact[-e10] : d * pow10_exact[e10];
        v->u.d = neg ? -d : d;
        return 0;
    }
    /* Otherwise strtod (the proxy never changes LC_NUMERIC from "C"). */
    size_t n = (size_t)(p - start);
    char small[64], *buf = n < sizeof small ? small : malloc(n + 1);
    if (!buf)
        return VP_ERR_NOMEM;
    memcpy(buf, start, n);
    buf[n] = '\0';
    errno = 0;
    double d = strtod(buf, NULL);
    int err = errno;
    if (buf != small)
        free(buf);
    if ((d == HUGE_VAL || d == -HUGE_VAL) && err == ERANGE)
        return VP_ERR_INVALID; /* jansson: "real number overflow" */
    v->u.d = d;
    return 0;
}

uint64_t jtree_key_hash(const char *k, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, k, 8);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 31;
        k += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, k, n);
    h = (h ^ w) * 0x94D049BB133111EBull;
    return h ^ h >> 29;
}

static int key_cmp(const void *a, const void *b)
{
    const struct jtree_member *x = *(const struct jtree_member *const *)a;
    const struct jtree_member *y = *(const struct jtree_member *const *)b;
    jtree_key_compares++;
    if (x->klen != y->klen)
        return x->klen < y->klen ? -1 : 1;
    return memcmp(x->key, y->key, x->klen);
}

/* true when two of the n members m share a key. */
static int has_dup(const struct jtree_member *m, size_t n, bool *dup)
{
    *dup = false;
    if (n <= DUP_LINEAR) {
        /* a 6-bit hash of (length, first byte, last byte) per key: only keys whose hash was seen
         * before are compared, with the earlier keys of that hash (all of them at worst) */
        uint64_t seen = 0;
        unsigned char h[DUP_LINEAR];
        for (size_t i = 0; i < n; i++) {
            uint32_t kl = m[i].klen;
            const unsigned char *k = (const unsigned char *)m[i].key;
            uint32_t x = kl ? (uint32_t)k[0] | (uint32_t)k[kl - 1] << 8 | kl << 16 : 0;
            h[i] = (unsigned char)((x * 0x9E3779B1u) >> 26);
            if (seen >> h[i] & 1) {
                for (size_t j = 0; j < i; j++) {
                    if (h[j] != h[i])
                        continue;
                    jtree_key_compares++;
                    if (m[j].klen == kl && memcmp(m[j].key, k, kl) == 0) {
                        *dup = true;
                        return 0;
                    }
                }
            }
            seen |= 1ull << h[i];
        }
        return 0;
    }
    /* A hash set of member indexes (open addressing, at most half full). The probes are
     * counted: past DUP_PROBES_PER_KEY per key on average (keys made to collide) the set is
     * dropped and the keys sorted instead, so an object costs O(n log n) at worst. */
    size_t cap = 64;
    while (cap < 2 * n)
        cap *= 2;
    uint32_t *set = calloc(cap, sizeof *set);
    if (!set)
        return VP_ERR_NOMEM;
    uint64_t budget = (uint64_t)n * DUP_PROBES_PER_KEY, probes = 0;
    for (size_t i = 0; i < n && budget; i++) {
        size_t pos = (size_t)jtree_key_hash(m[i].key, m[i].klen) & (cap - 1);
        for (; set[pos]; pos = (pos + 1) & (cap - 1)) {
            const struct jtree_member *o = &m[set[pos] - 1];
            jtree_key_compares++;
            if (o->klen == m[i].klen && memcmp(o->key, m[i].key, o->klen) == 0) {
                *dup = true;
                free(set);
                return 0;
            }
            if (++probes > budget) {
                budget = 0;
                break;
            }
        }
        set[pos] = (uint32_t)i + 1;
    }
    free(set);
    if (budget)
        return 0;
    const struct jtree_member **s = malloc(n * sizeof *s);
    if (!s)
        return VP_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        s[i] = &m[i];
    qsort(s, n, sizeof *s, key_cmp);
    for (size_t i = 1; i < n && !*dup; i++)
        *dup = key_cmp(&s[i - 1], &s[i]) == 0;
    free(s);
    return 0;
}

static int stack_grow(struct parser *ps);

/* Reserves one more entry on the value stack. */
static inline int push(struct parser *ps)
{
    if (__builtin_expect(ps->top == ps->cap, 0))
        return stack_grow(ps);
    ps->top++;
    return 0;
}

/* Grows an array of `used` elements of `size` bytes to `cap`: from its inline (C stack)
 * storage `inl` to the heap the first time, by realloc after that. NULL when out of memory
 * (the array is then as it was). */
static void *array_grow(void *cur, const void *inl, size_t used, size_t cap, size_t size)
{
    if (cur != inl)
        return realloc(cur, cap * size);
    void *n = malloc(cap * size);
    if (n)
        memcpy(n, cur, used * size);
    return n;
}

/* push's slow path: the stack doubles (leaving the C stack the first time). */
static int stack_grow(struct parser *ps)
{
    size_t cap = ps->cap * 2;
    struct jtree_member *n = array_grow(ps->stk, ps->stk_inline, ps->top, cap, sizeof *n);
    if (!n)
        return VP_ERR_NOMEM;
    ps->stk = n;
    ps->cap = cap;
    ps->top++;
    return 0;
}

/* Opens a container whose node is the stack's top entry. */
static int open_frame(struct parser *ps, bool obj)
{
    if (ps->depth == ps->frcap) {
        size_t cap = ps->frcap * 2;
        struct frame *n = array_grow(ps->fr, ps->fr_inline, ps->depth, cap, sizeof *n);
        if (!n)
            return VP_ERR_NOMEM;
        ps->fr = n;
        ps->frcap = cap;
    }
    if (ps->top > UINT32_MAX)
        return VP_ERR_INVALID;
    ps->fr[ps->depth++] = (struct frame){.start = (uint32_t)ps->top, .obj = obj};
    return 0;
}

/* Closes the innermost container: its entries go to the arena, its node is complete. */
static int close_frame(struct parser *ps)
{
    struct frame f = ps->fr[--ps->depth];
    size_t n = ps->top - f.start;
    struct jtree *node = &ps->stk[f.start - 1].v;
    const struct jtree_member *m = &ps->stk[f.start];
    if (n > UINT32_MAX)
        return VP_ERR_INVALID;
    node->n = (uint32_t)n;
    if (f.obj) {
        node->type = JTREE_OBJECT;
        node->u.members = NULL;
        if (n) {
            bool dup;
            int rc = has_dup(m, n, &dup);
            if (rc)
                return rc;
            if (dup)
                return VP_ERR_INVALID;
            struct jtree_member *a = doc_alloc(ps->doc, n * sizeof *a);
            if (!a)
                return VP_ERR_NOMEM;
            memcpy(a, m, n * sizeof *a);
            node->u.members = a;
        }
    } else {
        node->type = JTREE_ARRAY;
        node->u.items = NULL;
        if (n) {
            struct jtree *a = doc_alloc(ps->doc, n * sizeof *a);
            if (!a)
                return VP_ERR_NOMEM;
            for (size_t i = 0; i < n; i++)
                a[i] = m[i].v;
            node->u.items = a;
        }
    }
    ps->top = f.start;
    return 0;
}

static bool literal(struct parser *ps, const char *w, size_t n)
{
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, w, n) != 0)
        return false;
    ps->p += n;
    return true;
}

/* The whole grammar. On success the top value is the value stack's entry 0. */
static int parse(struct parser *ps)
{
    int rc;
    skip_ws(ps);
    if (ps->p >= ps->end || (*ps->p != '{' && *ps->p != '['))
        return VP_ERR_INVALID; /* the top value must be an object or an array */
    if ((rc = push(ps)))
        return rc;
    for (;;) {
        /* a value starts at ps->p (whitespace skipped) into the top entry */
        if (ps->p >= ps->end || ps->depth >= JTREE_MAX_DEPTH)
            return VP_ERR_INVALID;
        struct jtree *v = &ps->stk[ps->top - 1].v;
        switch (*ps->p) {
        case '{':
        case '[': {
            bool obj = *ps->p == '{';
            ps->p++;
            if ((rc = open_frame(ps, obj)))
                return rc;
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == (obj ? '}' : ']')) {
                ps->p++;
                if ((rc = close_frame(ps)))
                    return rc;
                break;
            }
            if ((rc = push(ps)))
                return rc;
            if (obj)
                goto key;
            continue;
        }
        case '"':
            v->type = JTREE_STRING;
            if ((rc = parse_string(ps, &v->u.s, &v->n)))
                return rc;
            break;
        case 't':
            if (!literal(ps, "true", 4))
                return VP_ERR_INVALID;
            v->type = JTREE_TRUE;
            break;
        case 'f':
            if (!literal(ps, "false", 5))
                return VP_ERR_INVALID;
            v->type = JTREE_FALSE;
            break;
        case 'n':
            if (!literal(ps, "null", 4))
                return VP_ERR_INVALID;
            v->type = JTREE_NULL;
            break;
        default:
            if ((rc = parse_number(ps, v)))
                return rc;
            break;
        }
        /* jansson reads one byte past a number or a literal and puts it back; a NUL byte put
         * back that way is lost, so one NUL right after one is skipped (as jansson does). */
        if (v->type != JTREE_STRING && v->type != JTREE_OBJECT && v->type != JTREE_ARRAY &&
            ps->p < ps->end && *ps->p == '\0')
            ps->p++;
        /* a value ended: a separator, a closer or (at the top) the end */
        for (;;) {
            if (ps->depth == 0)
                return 0;
            skip_ws(ps);
            if (ps->p >= ps->end)
                return VP_ERR_INVALID;
            bool obj = ps->fr[ps->depth - 1].obj;
            if (*ps->p == ',') {
                ps->p++;
                skip_ws(ps);
                if ((rc = push(ps)))
                    return rc;
                if (obj)
                    goto key;
                break;
            }
            if (*ps->p != (obj ? '}' : ']'))
                return VP_ERR_INVALID;
            ps->p++;
            if ((rc = close_frame(ps)))
                return rc;
        }
        continue;
    key:
        /* a member's key into the top entry, then its ':' */
        if (ps->p >= ps->end || *ps->p != '"')
            return VP_ERR_INVALID;
        {
            struct jtree_member *m = &ps->stk[ps->top - 1];
            if ((rc = parse_string(ps, &m->key, &m->klen)))
                return rc;
        }
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != ':')
            return VP_ERR_INVALID;
        ps->p++;
        skip_ws(ps);
    }
}

int jtree_load(const char *in, size_t len, struct jtree_doc **out, const struct jtree **root)
{
    /* A beacon's tree takes about twice its text; one block holds it. */
    size_t cap = len < (SIZE_MAX - 512) / 2 ? len * 2 + 512 : SIZE_MAX / 2;
    struct jtree_doc *doc = doc_new(cap > (64u << 20) ? (64u << 20) : cap);
    if (!doc)
        return VP_ERR_NOMEM;
    struct parser pbuf, *ps = &pbuf; /* the inline stacks are written before they are read */
    ps->p = (const unsigned char *)in;
    ps->end = (const unsigned char *)in + len;
    ps->doc = doc;
    ps->stk = ps->stk_inline;
    ps->top = 0;
    ps->cap = STACK_INLINE;
    ps->fr = ps->fr_inline;
    ps->depth = 0;
    ps->frcap = FRAMES_INLINE;
    int rc = parse(ps);
    struct jtree *top = NULL;
    if (!rc) {
        skip_ws(ps);
        if (ps->p != ps->end)
            rc = VP_ERR_INVALID; /* something after the top value */
        else if (!(top = doc_alloc(doc, sizeof *top)))
            rc = VP_ERR_NOMEM;
        else
            *top = ps->stk[0].v;
    }
    if (ps->stk != ps->stk_inline)
        free(ps->stk);
    if (ps->fr != ps->fr_inline)
        free(ps->fr);
    if (rc) {
        jtree_doc_free(doc);
        return rc;
    }
    *out = doc;
    *root = top;
    return 0;
}

double jtree_number(const struct jtree *v)
{
    if (!v)
        return 0;
    if (v->type == JTREE_INT)
        return (double)v->u.i;
    return v->type == JTREE_REAL ? v->u.d : 0;
}

/* ---- writing JSON text ---- */

char *jtree_write_string(char *o, const char *s, size_t len)
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
char *jtree_write_real(char *o, double d)
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

char *jtree_write_int(char *o, int64_t i)
{
    if (i < 0) {
        *o++ = '-';
        return put_u64(o, (uint64_t)0 - (uint64_t)i);
    }
    return put_u64(o, (uint64_t)i);
}

size_t jtree_dump_max(const struct jtree *v)
{
    switch (v->type) {
    case JTREE_STRING:
        return (size_t)v->n * 6 + 2;
    case JTREE_ARRAY: {
        size_t n = 2;
        for (uint32_t i = 0; i < v->n; i++)
            n += jtree_dump_max(&v->u.items[i]) + 1;
        return n;
    }
    case JTREE_OBJECT: {
        size_t n = 2;
        for (uint32_t i = 0; i < v->n; i++)
            n += (size_t)v->u.members[i].klen * 6 + 4 + jtree_dump_max(&v->u.members[i].v);
        return n;
    }
    default:
        return 48;
    }
}

size_t jtree_dump(const struct jtree *v, char *out)
{
    char *o = out;
    switch (v->type) {
    case JTREE_NULL:
        memcpy(o, "null", 4);
        o += 4;
        break;
    case JTREE_FALSE:
        memcpy(o, "false", 5);
        o += 5;
        break;
    case JTREE_TRUE:
        memcpy(o, "true", 4);
        o += 4;
        break;
    case JTREE_INT:
        o = jtree_write_int(o, v->u.i);
        break;
    case JTREE_REAL:
        o = jtree_write_real(o, v->u.d);
        break;
    case JTREE_STRING:
        o = jtree_write_string(o, v->u.s, v->n);
        break;
    case JTREE_ARRAY:
        *o++ = '[';
        for (uint32_t i = 0; i < v->n; i++) {
            if (i)
                *o++ = ',';
            o += jtree_dump(&v->u.items[i], o);
        }
        *o++ = ']';
        break;
    case JTREE_OBJECT:
        *o++ = '{';
        for (uint32_t i = 0; i < v->n; i++) {
            if (i)
                *o++ = ',';
            o = jtree_write_string(o, v->u.members[i].key, v->u.members[i].klen);
            *o++ = ':';
            o += jtree_dump(&v->u.members[i].v, o);
        }
        *o++ = '}';
        break;
    }
    return (size_t)(o - out);
}
