/* store/bjson: a strict JSON parser (RFC 8259) into a read-only tree held in one arena, for the
 * beacon ingestion path. It accepts exactly what jansson's json_loadb(JSON_REJECT_DUPLICATES)
 * accepts (tests/unit/test_bjson.c checks this against jansson on a corpus and mutations):
 * an object or array at the top; valid UTF-8 only (no overlong forms, surrogates or code points
 * above U+10FFFF); no raw control characters in strings; no \u0000; paired surrogate escapes;
 * no duplicate keys in any object; integers (no fraction, no exponent) within int64; reals that
 * do not overflow a double; nesting at most 2048 values deep. Nothing else is allocated per
 * value: strings without escapes point into the input, the others into the arena.
 * Re-entrant; no global state. */
#ifndef VP_BJSON_H
#define VP_BJSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum bjson_type {
    BJSON_NULL,
    BJSON_FALSE,
    BJSON_TRUE,
    BJSON_INT,
    BJSON_REAL,
    BJSON_STRING,
    BJSON_ARRAY,
    BJSON_OBJECT,
};

struct bjson_member;

struct bjson {
    uint8_t type;    /* enum bjson_type */
    uint32_t n;      /* STRING: bytes; ARRAY, OBJECT: entries */
    union {
        int64_t i;                    /* INT */
        double d;                     /* REAL */
        const char *s;                /* STRING: n bytes, not NUL-terminated */
        struct bjson *items;          /* ARRAY */
        struct bjson_member *members; /* OBJECT, in input order */
    } u;
};

struct bjson_member {
    const char *key; /* klen bytes, not NUL-terminated */
    uint32_t klen;
    struct bjson v;
};

/* The parser's memory: every node and decoded string of one document. */
struct bjson_doc;

/* Parses len bytes of in (borrowed: the tree points into it, so in must outlive *out). On
 * success *out is the document (free with bjson_doc_free) and *root its top value. Returns 0,
 * VP_ERR_INVALID (not JSON as described above) or VP_ERR_NOMEM. */
int bjson_parse(const char *in, size_t len, struct bjson_doc **out, const struct bjson **root)
    __attribute__((warn_unused_result));

/* NULL is a no-op. */
void bjson_doc_free(struct bjson_doc *d);

/* The member key of object o (NUL-terminated), or NULL when o is not an object or has no such
 * member. */
const struct bjson *bjson_get(const struct bjson *o, const char *key);

/* A number's value as a double (INT converted), 0 for other types. */
double bjson_number(const struct bjson *v);

static inline bool bjson_is_number(const struct bjson *v)
{
    return v && (v->type == BJSON_INT || v->type == BJSON_REAL);
}

static inline bool bjson_is_string(const struct bjson *v)
{
    return v && v->type == BJSON_STRING;
}

/* true when string v equals the NUL-terminated lit. */
bool bjson_str_eq(const struct bjson *v, const char *lit);

/* Writers of compact JSON text, each returning the position after what it wrote (no NUL).
 * bjson_write_string: len bytes of UTF-8 s as a JSON string ('"', '\\' and control characters
 * escaped, the rest as is: what json_dumps writes by default), at most 6 * len + 2 bytes.
 * bjson_write_int: at most 20 bytes. bjson_write_real: a finite double, in the shortest of a few
 * exact decimal forms that reads back as the same double, else "%.17g"; always with a '.' or an
 * exponent, so it stays a real; at most 32 bytes. */
char *bjson_write_string(char *o, const char *s, size_t len);
char *bjson_write_int(char *o, int64_t i);
char *bjson_write_real(char *o, double d);

/* v as compact JSON text (members in input order) into out, which holds at least
 * bjson_dump_max(v) bytes; returns the length (no NUL). */
size_t bjson_dump_max(const struct bjson *v);
size_t bjson_dump(const struct bjson *v, char *out);

#endif
