/* store/jtree: a read-only JSON tree held in one arena, for the beacon ingestion path. jtree_load
 * parses strictly, in one pass, straight into the arena (store/jtree.c), and accepts exactly what
 * jansson's json_loadb with JSON_REJECT_DUPLICATES accepts (top value an object or an array,
 * depth, duplicate keys, UTF-8, \u0000, number ranges), building the same values. A node is 16
 * bytes (32 with its key), lookups are linear scans over a handful of members and one free
 * releases everything; no per-value malloc. The rest are accessors and writers of compact JSON
 * text for values that are already in the tree. Re-entrant: no shared state (a thread-local
 * counter for the tests). */
#ifndef VP_JTREE_H
#define VP_JTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum jtree_type {
    JTREE_NULL,
    JTREE_FALSE,
    JTREE_TRUE,
    JTREE_INT,
    JTREE_REAL,
    JTREE_STRING,
    JTREE_ARRAY,
    JTREE_OBJECT,
};

struct jtree_member;

struct jtree {
    uint8_t type;    /* enum jtree_type */
    uint32_t n;      /* STRING: bytes; ARRAY, OBJECT: entries */
    union {
        int64_t i;                    /* INT */
        double d;                     /* REAL */
        const char *s;                /* STRING: n bytes, NUL-terminated in the arena */
        struct jtree *items;          /* ARRAY */
        struct jtree_member *members; /* OBJECT, in input order */
    } u;
};

struct jtree_member {
    const char *key; /* klen bytes, NUL-terminated in the arena */
    uint32_t klen;
    struct jtree v;
};

/* The memory of one tree: every node and string. */
struct jtree_doc;

/* Parses len bytes of in (borrowed; the tree keeps no pointer into it) into a new document. On
 * success *out is the document (free with jtree_doc_free) and *root its top value (an object or
 * an array). Returns 0, VP_ERR_INVALID (not JSON, or JSON that json_loadb with
 * JSON_REJECT_DUPLICATES refuses) or VP_ERR_NOMEM. */
int jtree_load(const char *in, size_t len, struct jtree_doc **out, const struct jtree **root)
    __attribute__((warn_unused_result));

/* NULL is a no-op. */
void jtree_doc_free(struct jtree_doc *d);

/* The member key (klen bytes) of object o, or NULL when o is not an object or has no such
 * member. Inline: with a literal key the length and most of the comparison fold away. */
static inline const struct jtree *jtree_getn(const struct jtree *o, const char *key, size_t klen)
{
    if (!o || o->type != JTREE_OBJECT)
        return NULL;
    for (uint32_t i = 0; i < o->n; i++) {
        const struct jtree_member *m = &o->u.members[i];
        if (m->klen == klen && (klen == 0 || (m->key[0] == key[0] &&
                                              memcmp(m->key, key, klen) == 0)))
            return &m->v;
    }
    return NULL;
}

/* The same with a NUL-terminated key. */
static inline const struct jtree *jtree_get(const struct jtree *o, const char *key)
{
    return jtree_getn(o, key, strlen(key));
}

/* A number's value as a double (INT converted), 0 for other types. */
double jtree_number(const struct jtree *v);

static inline bool jtree_is_number(const struct jtree *v)
{
    return v && (v->type == JTREE_INT || v->type == JTREE_REAL);
}

static inline bool jtree_is_string(const struct jtree *v)
{
    return v && v->type == JTREE_STRING;
}

/* true when string v equals the NUL-terminated lit. */
static inline bool jtree_str_eq(const struct jtree *v, const char *lit)
{
    size_t n = strlen(lit);
    return v && v->type == JTREE_STRING && v->n == n && memcmp(v->u.s, lit, n) == 0;
}

/* Writers of compact JSON text, each returning the position after what it wrote (no NUL).
 * jtree_write_string: len bytes of UTF-8 s as a JSON string ('"', '\\' and control characters
 * escaped, the rest as is: what json_dumps writes by default), at most 6 * len + 2 bytes.
 * jtree_write_int: at most 20 bytes. jtree_write_real: a finite double, in the shortest of a few
 * exact decimal forms that reads back as the same double, else "%.17g"; always with a '.' or an
 * exponent, so it stays a real; at most 32 bytes. */
char *jtree_write_string(char *o, const char *s, size_t len);
char *jtree_write_int(char *o, int64_t i);
char *jtree_write_real(char *o, double d);

/* v as compact JSON text (members in input order) into out, which holds at least
 * jtree_dump_max(v) bytes; returns the length (no NUL). */
size_t jtree_dump_max(const struct jtree *v);
size_t jtree_dump(const struct jtree *v, char *out);

#endif
