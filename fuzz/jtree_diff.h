/* The differential check of store/jtree against jansson, shared by fuzz/fuzz_jtree.c and
 * tests/unit/test_jtree.c: json_loadb(JSON_REJECT_DUPLICATES) and jtree_load must both accept or
 * both refuse, and when they accept build the same tree: types, integers exactly, reals bit for
 * bit (so -0.0 is not 0.0), strings byte for byte with their lengths, members in input order. */
#ifndef VP_FUZZ_JTREE_DIFF_H
#define VP_FUZZ_JTREE_DIFF_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/vp_err.h"
#include "store/jtree.h"

/* true when jansson's j and jtree's t are the same value. */
static bool jtree_diff_same_value(const json_t *j, const struct jtree *t)
{
    switch (json_typeof(j)) {
    case JSON_NULL:
        return t->type == JTREE_NULL;
    case JSON_TRUE:
        return t->type == JTREE_TRUE;
    case JSON_FALSE:
        return t->type == JTREE_FALSE;
    case JSON_INTEGER:
        return t->type == JTREE_INT && t->u.i == (int64_t)json_integer_value(j);
    case JSON_REAL: {
        double a = json_real_value(j), b = t->u.d;
        return t->type == JTREE_REAL && memcmp(&a, &b, sizeof a) == 0;
    }
    case JSON_STRING:
        return t->type == JTREE_STRING && t->n == json_string_length(j) &&
               memcmp(t->u.s, json_string_value(j), t->n) == 0 && t->u.s[t->n] == '\0';
    case JSON_ARRAY:
        if (t->type != JTREE_ARRAY || t->n != json_array_size(j))
            return false;
        for (uint32_t i = 0; i < t->n; i++)
            if (!jtree_diff_same_value(json_array_get(j, i), &t->u.items[i]))
                return false;
        return true;
    case JSON_OBJECT: {
        if (t->type != JTREE_OBJECT || t->n != json_object_size(j))
            return false;
        uint32_t i = 0;
        for (void *it = json_object_iter((json_t *)j); it;
             it = json_object_iter_next((json_t *)j, it), i++) {
            if (i >= t->n)
                return false;
            const struct jtree_member *m = &t->u.members[i];
            size_t kl = json_object_iter_key_len(it);
            if (m->klen != kl || memcmp(m->key, json_object_iter_key(it), kl) != 0 ||
                m->key[kl] != '\0' || !jtree_diff_same_value(json_object_iter_value(it), &m->v))
                return false;
        }
        return i == t->n;
    }
    }
    return false;
}

/* Loads len bytes of in with both; true when they agree. On a difference, why says which. */
static bool jtree_diff(const char *in, size_t len, char *why, size_t cap)
{
    json_error_t jerr;
    json_t *j = json_loadb(in, len, JSON_REJECT_DUPLICATES, &jerr);
    struct jtree_doc *doc = NULL;
    const struct jtree *root = NULL;
    int rc = jtree_load(in, len, &doc, &root);
    bool ok = true;
    if (rc == VP_ERR_NOMEM || (!j && json_error_code(&jerr) == json_error_out_of_memory)) {
        ok = true; /* out of memory answers nothing */
    } else if ((j != NULL) != (rc == 0)) {
        snprintf(why, cap, "jansson %s, jtree rc %d%s%s", j ? "accepts" : "refuses", rc,
                 j ? "" : ": ", j ? "" : jerr.text);
        ok = false;
    } else if (j && !jtree_diff_same_value(j, root)) {
        snprintf(why, cap, "both accept, values differ");
        ok = false;
    }
    json_decref(j);
    jtree_doc_free(doc);
    return ok;
}

#endif
