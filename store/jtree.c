/* A read-only JSON tree in one arena (store/jtree.h), built from jansson's parse.
 *
 * Design: jtree_load runs json_loadb, walks the result once and copies it into a chunked arena
 * (nodes, members, strings; one malloc for a typical beacon), then drops jansson's tree.
 *
 * jansson allocates every value, key and hash table separately. The allocation functions below
 * are installed once, by a constructor, before main and so before any thread exists (jansson's
 * json_set_alloc_funcs is a plain global write, so it must not happen while other threads use
 * jansson). On a thread that is not inside jtree_load they are exactly malloc and free: the only
 * pointers they treat specially lie in the calling thread's own bump buffer, which malloc never
 * returns. Inside jtree_load, on its thread only, allocations are carved from that thread's
 * buffer and freeing one of them is a no-op; what does not fit goes to malloc (and is counted).
 * The tree jansson builds there never leaves the function: it is copied, then released (a
 * json_decref only when some of it came from malloc) and the buffer is rewound. A buffer that
 * overflowed grows for the next body, up to BUMP_MAX; it is freed when its thread exits. */
#include "config.h"

#include "store/jtree.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/vp_err.h"

/* ---- jansson's allocator during jtree_load ---- */

#define BUMP_MIN (64 * 1024)
#define BUMP_MAX (1024 * 1024) /* per thread; a larger tree overflows to malloc */

struct bump {
    char *base;
    size_t used, cap;
    size_t want;      /* bytes the last load asked for (the next buffer's size) */
    size_t fallbacks; /* malloc calls of this load that did not fit */
    bool active;
};

static _Thread_local struct bump tl_bump;
static pthread_key_t bump_key;
static bool bump_key_ok;

static void *bump_malloc(size_t n)
{
    struct bump *b = &tl_bump;
    if (b->active) {
        if (n == 0)
            n = 1; /* a distinct pointer strictly inside the buffer, as for any other size */
        size_t need = (n + 15) & ~(size_t)15;
        b->want += need;
        if (need >= n && b->cap - b->used >= need) {
            void *p = b->base + b->used;
            b->used += need;
            return p;
        }
        b->fallbacks++;
    }
    return malloc(n);
}

static void bump_free(void *p)
{
    const struct bump *b = &tl_bump;
    if (b->base && (char *)p >= b->base && (char *)p < b->base + b->cap)
        return;
    free(p);
}

static void bump_thread_exit(void *base)
{
    free(base);
}

__attribute__((constructor)) static void bump_install(void)
{
    bump_key_ok = pthread_key_create(&bump_key, bump_thread_exit) == 0;
    json_set_alloc_funcs(bump_malloc, bump_free);
}

/* Starts a load on this thread: the buffer is (re)sized to what the last load wanted. Without a
 * buffer jansson simply uses malloc. */
static void bump_begin(void)
{
    struct bump *b = &tl_bump;
    size_t want = b->want < BUMP_MIN ? BUMP_MIN : b->want > BUMP_MAX ? BUMP_MAX : b->want;
    if (bump_key_ok && b->cap < want) {
        char *n = malloc(want);
        if (n && pthread_setspecific(bump_key, n) == 0) {
            free(b->base); /* no pointer into it is live: the last load rewound it */
            b->base = n;
            b->cap = want;
        } else {
            free(n); /* keep the old buffer (still the key's value), or none */
        }
    }
    b->used = 0;
    b->want = 0;
    b->fallbacks = 0;
    b->active = b->base != NULL;
}

/* Ends the load: frees root (NULL: nothing) and rewinds the buffer. */
static void bump_end(json_t *root)
{
    struct bump *b = &tl_bump;
    if (root && b->fallbacks)
        json_decref(root); /* frees what came from malloc; the buffer's blocks are no-ops */
    b->active = false;
    b->used = 0;
}

/* ---- the arena of a document ---- */

struct blk {
    struct blk *next;
    size_t used, cap;
    _Alignas(16) char data[];
};

struct jtree_doc {
    struct blk *head;
    size_t hint; /* size of the next block */
};

static void *doc_alloc(struct jtree_doc *d, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    struct blk *b = d->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > d->hint ? n : d->hint;
        b = malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->next = d->head;
        b->used = 0;
        b->cap = cap;
        d->head = b;
        d->hint = cap * 2;
    }
    void *r = b->data + b->used;
    b->used += n;
    return r;
}

void jtree_doc_free(struct jtree_doc *d)
{
    if (!d)
        return;
    for (struct blk *b = d->head, *n; b; b = n) {
        n = b->next;
        free(b);
    }
    free(d);
}

static const char *doc_str(struct jtree_doc *d, const char *s, size_t n)
{
    char *c = doc_alloc(d, n + 1);
    if (c) {
        memcpy(c, s, n);
        c[n] = '\0';
    }
    return c;
}

/* ---- jansson's tree into the arena ---- */

static int copy(struct jtree_doc *d, const json_t *j, struct jtree *out)
{
    switch (json_typeof(j)) {
    case JSON_NULL:
        out->type = JTREE_NULL;
        return 0;
    case JSON_TRUE:
        out->type = JTREE_TRUE;
        return 0;
    case JSON_FALSE:
        out->type = JTREE_FALSE;
        return 0;
    case JSON_INTEGER:
        out->type = JTREE_INT;
        out->u.i = (int64_t)json_integer_value(j);
        return 0;
    case JSON_REAL:
        out->type = JTREE_REAL;
        out->u.d = json_real_value(j);
        return 0;
    case JSON_STRING: {
        size_t n = json_string_length(j);
        if (n > UINT32_MAX)
            return VP_ERR_INVALID;
        out->type = JTREE_STRING;
        out->n = (uint32_t)n;
        out->u.s = doc_str(d, json_string_value(j), n);
        return out->u.s ? 0 : VP_ERR_NOMEM;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        if (n > UINT32_MAX)
            return VP_ERR_INVALID;
        out->type = JTREE_ARRAY;
        out->n = (uint32_t)n;
        out->u.items = NULL;
        if (n == 0)
            return 0;
        struct jtree *v = doc_alloc(d, n * sizeof *v);
        if (!v)
            return VP_ERR_NOMEM;
        out->u.items = v;
        for (size_t i = 0; i < n; i++) {
            v[i] = (struct jtree){0};
            int rc = copy(d, json_array_get(j, i), &v[i]);
            if (rc)
                return rc;
        }
        return 0;
    }
    case JSON_OBJECT: {
        size_t n = json_object_size(j);
        if (n > UINT32_MAX)
            return VP_ERR_INVALID;
        out->type = JTREE_OBJECT;
        out->n = (uint32_t)n;
        out->u.members = NULL;
        if (n == 0)
            return 0;
        struct jtree_member *m = doc_alloc(d, n * sizeof *m);
        if (!m)
            return VP_ERR_NOMEM;
        out->u.members = m;
        size_t i = 0;
        /* Members in input order: jansson's iteration follows insertion order. */
        for (void *it = json_object_iter((json_t *)j); it && i < n;
             it = json_object_iter_next((json_t *)j, it), i++) {
            size_t kl = json_object_iter_key_len(it);
            if (kl > UINT32_MAX)
                return VP_ERR_INVALID;
            m[i] = (struct jtree_member){0};
            m[i].klen = (uint32_t)kl;
            if (!(m[i].key = doc_str(d, json_object_iter_key(it), kl)))
                return VP_ERR_NOMEM;
            int rc = copy(d, json_object_iter_value(it), &m[i].v);
            if (rc)
                return rc;
        }
        out->n = (uint32_t)i;
        return 0;
    }
    }
    return VP_ERR_INVALID;
}

int jtree_load(const char *in, size_t len, struct jtree_doc **out, const struct jtree **root)
{
    struct jtree_doc *doc = calloc(1, sizeof *doc);
    if (!doc)
        return VP_ERR_NOMEM;
    doc->hint = len * 2 + 512;
    json_error_t jerr;
    bump_begin();
    json_t *j = json_loadb(in, len, JSON_REJECT_DUPLICATES, &jerr);
    int rc;
    struct jtree *top = NULL;
    if (!j) {
        rc = json_error_code(&jerr) == json_error_out_of_memory ? VP_ERR_NOMEM : VP_ERR_INVALID;
    } else if (!(top = doc_alloc(doc, sizeof *top))) {
        rc = VP_ERR_NOMEM;
    } else {
        *top = (struct jtree){0};
        rc = copy(doc, j, top);
    }
    bump_end(j);
    if (rc) {
        jtree_doc_free(doc);
        return rc;
    }
    *out = doc;
    *root = top;
    return 0;
}

const struct jtree *jtree_get(const struct jtree *o, const char *key)
{
    if (!o || o->type != JTREE_OBJECT)
        return NULL;
    size_t kl = strlen(key);
    for (uint32_t i = 0; i < o->n; i++) {
        const struct jtree_member *m = &o->u.members[i];
        if (m->klen == kl && memcmp(m->key, key, kl) == 0)
            return &m->v;
    }
    return NULL;
}

double jtree_number(const struct jtree *v)
{
    if (!v)
        return 0;
    if (v->type == JTREE_INT)
        return (double)v->u.i;
    return v->type == JTREE_REAL ? v->u.d : 0;
}

bool jtree_str_eq(const struct jtree *v, const char *lit)
{
    size_t n = strlen(lit);
    return v && v->type == JTREE_STRING && v->n == n && memcmp(v->u.s, lit, n) == 0;
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
