/* store/jtree's parser. Its rules one by one, each with the answer written here (accepted with
 * the value expected, or refused), so that they hold whatever jansson does: whitespace and top
 * value, duplicate keys, nesting depth, UTF-8, escapes, integers and reals. Then against jansson
 * (fuzz/jtree_diff.h: same accept or refuse, same tree with reals bit for bit and members in
 * order) on a table of edge cases, the beacon and jtree fuzz corpora, seeded random mutations of
 * beacon bodies and edge cases and random numbers in several notations; beacon_check must answer
 * as beacon_parse (same code, same reason). A hostile object (a 64 KiB body of thousands of keys,
 * and of long keys sharing a prefix) is bounded by the duplicate check's key comparisons, counted
 * (no clock). Every allocation jtree_load makes is failed in turn (malloc and realloc wrapped at
 * link time): VP_ERR_NOMEM or the right tree, never a crash or a leak. Loads on several threads
 * at once, while other threads use jansson. Written reals read back as the same double. */
#include "config.h"

#include "store/jtree.h"

#include <dirent.h>
#include <pthread.h>
#include <math.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/vp_err.h"
#include "fuzz/jtree_diff.h"
#include "store/beacon.h"
#include "store/jtree_internal.h"
#include "tap.h"

#ifndef SRCDIR
#define SRCDIR "."
#endif

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* ---- failing allocations (-Wl,--wrap=malloc,--wrap=realloc) ---- */

void *__real_malloc(size_t n);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_realloc(void *p, size_t n);

static _Thread_local long fm_count, fm_fail_at; /* fm_fail_at 0: never fail */

void *__wrap_malloc(size_t n)
{
    if (fm_fail_at && ++fm_count == fm_fail_at)
        return NULL;
    return __real_malloc(n);
}

void *__wrap_realloc(void *p, size_t n)
{
    if (fm_fail_at && ++fm_count == fm_fail_at)
        return NULL;
    return __real_realloc(p, n);
}

/* Compares one input on both parsers; returns false (and says why in why) on a difference. */
static bool same(const char *in, size_t len, char *why, size_t cap)
{
    if (!jtree_diff(in, len, why, cap))
        return false;
    /* and the beacon checks on top of them */
    struct jtree_doc *doc = NULL;
    const struct jtree *root = NULL;
    char r1[96] = "", r2[96] = "";
    json_t *p = NULL;
    int a = beacon_parse(in, len, &p, r1, sizeof r1);
    json_decref(p);
    int b = beacon_check(in, len, &doc, &root, r2, sizeof r2);
    jtree_doc_free(doc);
    if (a != b || strcmp(r1, r2) != 0) {
        snprintf(why, cap, "beacon_parse %d \"%s\", beacon_check %d \"%s\"", a, r1, b, r2);
        return false;
    }
    return true;
}

/* ---- the rules, with the answers written down ---- */

enum want { REFUSE, OK_INT, OK_REAL, OK_STR, OK_TYPE };

struct rule {
    const char *name;
    const char *in;
    size_t len; /* 0: strlen(in) */
    enum want want;
    int64_t i;      /* OK_INT */
    double d;       /* OK_REAL: bit for bit */
    const char *s;  /* OK_STR: the decoded bytes (slen of them) */
    size_t slen;
    int type;       /* OK_TYPE: the first value's type */
};

/* The first value inside the top array (or the top object's first member). */
static const struct jtree *first(const struct jtree *root)
{
    if (root->type == JTREE_ARRAY && root->n)
        return &root->u.items[0];
    if (root->type == JTREE_OBJECT && root->n)
        return &root->u.members[0].v;
    return root;
}

static const struct rule rules[] = {
    /* top value and whitespace */
    {.name = "top_object", .in = "{}", .len = 0, .want = OK_TYPE, .type = JTREE_OBJECT},
    {.name = "top_array", .in = "[]", .len = 0, .want = OK_TYPE, .type = JTREE_ARRAY},
    {.name = "ws_around", .in = " \t\r\n[ 1 ]\n\r\t ", .len = 0, .want = OK_INT, .i = 1},
    {.name = "top_string", .in = "\"s\"", .len = 0, .want = REFUSE},
    {.name = "top_number", .in = "1", .len = 0, .want = REFUSE},
    {.name = "top_literal", .in = "null", .len = 0, .want = REFUSE},
    {.name = "empty", .in = "", .len = 0, .want = REFUSE},
    {.name = "only_ws", .in = "   ", .len = 0, .want = REFUSE},
    {.name = "ws_formfeed", .in = "[\f1]", .len = 0, .want = REFUSE},
    {.name = "ws_vtab", .in = "[\v1]", .len = 0, .want = REFUSE},
    {.name = "bom", .in = "\xef\xbb\xbf{}", .len = 0, .want = REFUSE},
    {.name = "trailing_value", .in = "{}{}", .len = 0, .want = REFUSE},
    {.name = "trailing_junk", .in = "[] x", .len = 0, .want = REFUSE},
    {.name = "trailing_nul", .in = "[]\0", .len = 3, .want = REFUSE},
    {.name = "unclosed", .in = "[1", .len = 0, .want = REFUSE},
    {.name = "trailing_comma", .in = "[1,]", .len = 0, .want = REFUSE},
    {.name = "leading_comma", .in = "[,1]", .len = 0, .want = REFUSE},
    {.name = "obj_trailing_comma", .in = "{\"a\":1,}", .len = 0, .want = REFUSE},
    {.name = "missing_colon", .in = "{\"a\" 1}", .len = 0, .want = REFUSE},
    {.name = "missing_value", .in = "{\"a\":}", .len = 0, .want = REFUSE},
    {.name = "number_key", .in = "{1:2}", .len = 0, .want = REFUSE},
    {.name = "missing_comma", .in = "[1 2]", .len = 0, .want = REFUSE},
    {.name = "glued_strings", .in = "[\"a\"\"b\"]", .len = 0, .want = REFUSE},
    {.name = "glued_literal", .in = "[true1]", .len = 0, .want = REFUSE},
    /* literals */
    {.name = "true", .in = "[true]", .len = 0, .want = OK_TYPE, .type = JTREE_TRUE},
    {.name = "false", .in = "[false]", .len = 0, .want = OK_TYPE, .type = JTREE_FALSE},
    {.name = "null", .in = "[null]", .len = 0, .want = OK_TYPE, .type = JTREE_NULL},
    {.name = "literal_case", .in = "[True]", .len = 0, .want = REFUSE},
    {.name = "literal_short", .in = "[tru]", .len = 0, .want = REFUSE},
    {.name = "literal_long", .in = "[truex]", .len = 0, .want = REFUSE},
    {.name = "nan", .in = "[NaN]", .len = 0, .want = REFUSE},
    {.name = "infinity", .in = "[Infinity]", .len = 0, .want = REFUSE},
    {.name = "neg_infinity", .in = "[-Infinity]", .len = 0, .want = REFUSE},
    /* duplicate keys */
    {.name = "dup", .in = "{\"a\":1,\"a\":2}", .len = 0, .want = REFUSE},
    {.name = "dup_nested", .in = "{\"x\":[{\"a\":1,\"b\":2,\"a\":3}]}", .len = 0, .want = REFUSE},
    {.name = "dup_after_unescape", .in = "{\"a\":1,\"\\u0061\":2}", .len = 0, .want = REFUSE},
    {.name = "dup_empty", .in = "{\"\":1,\"\":2}", .len = 0, .want = REFUSE},
    {.name = "no_dup_case", .in = "{\"a\":1,\"A\":2}", .len = 0, .want = OK_INT, .i = 1},
    {.name = "no_dup_prefix", .in = "{\"ab\":1,\"a\":2,\"abc\":3}", .len = 0, .want = OK_INT, .i = 1},
    {.name = "same_key_other_objects", .in = "[{\"a\":1},{\"a\":2}]", .len = 0, .want = OK_TYPE, .type = JTREE_OBJECT},
    /* integers */
    {.name = "int", .in = "[42]", .len = 0, .want = OK_INT, .i = 42},
    {.name = "int_neg", .in = "[-42]", .len = 0, .want = OK_INT, .i = -42},
    {.name = "int_zero", .in = "[0]", .len = 0, .want = OK_INT, .i = 0},
    {.name = "int_neg_zero", .in = "[-0]", .len = 0, .want = OK_INT, .i = 0},
    {.name = "int_max", .in = "[9223372036854775807]", .len = 0, .want = OK_INT, .i = INT64_MAX},
    {.name = "int_min", .in = "[-9223372036854775808]", .len = 0, .want = OK_INT, .i = INT64_MIN},
    {.name = "int_over", .in = "[9223372036854775808]", .len = 0, .want = REFUSE},
    {.name = "int_under", .in = "[-9223372036854775809]", .len = 0, .want = REFUSE},
    {.name = "int_20_digits", .in = "[12345678901234567890]", .len = 0, .want = REFUSE},
    {.name = "int_leading_zero", .in = "[01]", .len = 0, .want = REFUSE},
    {.name = "int_neg_leading_zero", .in = "[-01]", .len = 0, .want = REFUSE},
    {.name = "int_plus", .in = "[+1]", .len = 0, .want = REFUSE},
    {.name = "minus_alone", .in = "[-]", .len = 0, .want = REFUSE},
    {.name = "minus_letter", .in = "[-a]", .len = 0, .want = REFUSE},
    {.name = "hex", .in = "[0x1]", .len = 0, .want = REFUSE},
    /* reals */
    {.name = "real", .in = "[1850.5]", .len = 0, .want = OK_REAL, .d = 1850.5},
    {.name = "real_tenth", .in = "[0.1]", .len = 0, .want = OK_REAL, .d = 0.1},
    {.name = "real_exp", .in = "[1e2]", .len = 0, .want = OK_REAL, .d = 100.0},
    {.name = "real_exp_upper_signed", .in = "[1.5E+3]", .len = 0, .want = OK_REAL, .d = 1500.0},
    {.name = "real_exp_neg", .in = "[25e-1]", .len = 0, .want = OK_REAL, .d = 2.5},
    {.name = "real_neg_zero", .in = "[-0.0]", .len = 0, .want = OK_REAL, .d = -0.0},
    {.name = "real_neg_zero_exp", .in = "[-0e5]", .len = 0, .want = OK_REAL, .d = -0.0},
    {.name = "real_zero_huge_exp", .in = "[0e99999999999999999999]", .len = 0, .want = OK_REAL, .d = 0.0},
    {.name = "real_max", .in = "[1.7976931348623157e308]", .len = 0, .want = OK_REAL, .d = 1.7976931348623157e308},
    {.name = "real_overflow", .in = "[1e309]", .len = 0, .want = REFUSE},
    {.name = "real_overflow_neg", .in = "[-1.8e308]", .len = 0, .want = REFUSE},
    {.name = "real_overflow_long_exp", .in = "[1e0000000000000000000000400]", .len = 0, .want = REFUSE},
    {.name = "real_underflow", .in = "[1e-400]", .len = 0, .want = OK_REAL, .d = 0.0},
    {.name = "real_underflow_neg", .in = "[-1e-400]", .len = 0, .want = OK_REAL, .d = -0.0},
    {.name = "real_min_subnormal", .in = "[4.9e-324]", .len = 0, .want = OK_REAL, .d = 4.9e-324},
    {.name = "real_halfway_rounds_even", .in = "[9007199254740993.0]", .len = 0, .want = OK_REAL, .d = 9007199254740992.0},
    {.name = "real_many_digits", .in = "[0.1000000000000000055511151231257827021181583404541015625]", .len = 0, .want = OK_REAL, .d = 0.1},
    {.name = "real_big_int_part", .in = "[123456789012345678901234567890.0]", .len = 0, .want = OK_REAL,
     .d = 123456789012345678901234567890.0},
    {.name = "real_trailing_dot", .in = "[1.]", .len = 0, .want = REFUSE},
    {.name = "real_bare_dot", .in = "[.5]", .len = 0, .want = REFUSE},
    {.name = "real_dot_exp", .in = "[1.e5]", .len = 0, .want = REFUSE},
    {.name = "real_empty_exp", .in = "[1e]", .len = 0, .want = REFUSE},
    {.name = "real_sign_only_exp", .in = "[1e+]", .len = 0, .want = REFUSE},
    {.name = "real_two_dots", .in = "[1.5.3]", .len = 0, .want = REFUSE},
    /* strings and escapes */
    {.name = "str", .in = "[\"abc\"]", .len = 0, .want = OK_STR, .s = "abc", .slen = 3},
    {.name = "str_empty", .in = "[\"\"]", .len = 0, .want = OK_STR, .s = "", .slen = 0},
    {.name = "str_escapes", .in = "[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]", .len = 0, .want = OK_STR, .s = "\"\\/\b\f\n\r\t",
     .slen = 8},
    {.name = "str_u_bmp", .in = "[\"\\u00e9\\u20AC\"]", .len = 0, .want = OK_STR, .s = "\xc3\xa9\xe2\x82\xac", .slen = 5},
    {.name = "str_u_pair", .in = "[\"\\ud83d\\ude00\"]", .len = 0, .want = OK_STR, .s = "\xf0\x9f\x98\x80", .slen = 4},
    {.name = "str_u_max", .in = "[\"\\udbff\\udfff\"]", .len = 0, .want = OK_STR, .s = "\xf4\x8f\xbf\xbf", .slen = 4},
    {.name = "str_u_nul", .in = "[\"\\u0000\"]", .len = 0, .want = REFUSE},
    {.name = "str_u_nul_key", .in = "{\"\\u0000\":1}", .len = 0, .want = REFUSE},
    {.name = "str_lone_high", .in = "[\"\\ud800\"]", .len = 0, .want = REFUSE},
    {.name = "str_lone_low", .in = "[\"\\udc00\"]", .len = 0, .want = REFUSE},
    {.name = "str_high_high", .in = "[\"\\ud800\\ud800\"]", .len = 0, .want = REFUSE},
    {.name = "str_high_then_char", .in = "[\"\\ud800x\"]", .len = 0, .want = REFUSE},
    {.name = "str_u_short", .in = "[\"\\u12\"]", .len = 0, .want = REFUSE},
    {.name = "str_u_not_hex", .in = "[\"\\uZZZZ\"]", .len = 0, .want = REFUSE},
    {.name = "str_bad_escape", .in = "[\"\\x\"]", .len = 0, .want = REFUSE},
    {.name = "str_escaped_quote_unclosed", .in = "[\"\\\"]", .len = 0, .want = REFUSE},
    {.name = "str_unclosed", .in = "[\"abc", .len = 0, .want = REFUSE},
    {.name = "str_tab", .in = "[\"\t\"]", .len = 0, .want = REFUSE},
    {.name = "str_ctrl_1f", .in = "[\"\x1f\"]", .len = 0, .want = REFUSE},
    {.name = "str_nul_byte", .in = "[\"a\0\"]", .len = 5, .want = REFUSE},
    {.name = "str_del", .in = "[\"\x7f\"]", .len = 0, .want = OK_STR, .s = "\x7f", .slen = 1},
    /* UTF-8 */
    {.name = "utf8_ok", .in = "[\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xef\xbf\xbf\xf4\x8f\xbf\xbf\"]", .len = 0, .want = OK_STR,
     .s = "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xef\xbf\xbf\xf4\x8f\xbf\xbf", .slen = 16},
    {.name = "utf8_overlong_c0", .in = "[\"\xc0\x80\"]", .len = 0, .want = REFUSE},
    {.name = "utf8_overlong_c1", .in = "[\"\xc1\xbf\"]", .len = 0, .want = REFUSE},
    {.name = "utf8_overlong_e0", .in = "[\"\xe0\x9f\xbf\"]", .len = 0, .want = REFUSE},
    {.name = "utf8_overlong_f0", .in = "[\"\xf0\x8f\xbf\xbf\"]", .len = 0, .want = REFUSE},
    {.name = "utf8_surrogate_high", .in = "[\"\xed\xa0\x80\"]", .len = 0, .want = REFUSE},
    {.name = "utf8_surrogate_low", .in = "[\"\xed\xbf\xbf\"]", .len = 0, .want = REFUSE},
    {.name = "utf8_above_max", .in = "[\"\xf4\x90\x80\x80\"]", .len = 0, .want = REFUSE},
    {.name = "utf8_f5", .in = "[\"\xf5\x80\x80\x80\"]", .len = 0, .want = REFUSE},
    {.name = "utf8_ff", .in = "[\"\xff\"]", .len = 0, .want = REFUSE},
    {.name = "utf8_lone_continuation", .in = "[\"\x80\"]", .len = 0, .want = REFUSE},
    {.name = "utf8_truncated_2", .in = "[\"\xc3\"]", .len = 0, .want = REFUSE},
    {.name = "utf8_truncated_3", .in = "[\"\xe2\x82\"]", .len = 0, .want = REFUSE},
    {.name = "utf8_truncated_4", .in = "[\"\xf0\x9f\x98\"]", .len = 0, .want = REFUSE},
    {.name = "utf8_truncated_at_end", .in = "[\"\xe2\x82", .len = 0, .want = REFUSE},
    {.name = "utf8_outside_string", .in = "[\xc3\xa9]", .len = 0, .want = REFUSE},
    {.name = "utf8_in_key", .in = "{\"\xc3\xa9\":7}", .len = 0, .want = OK_INT, .i = 7},
    {.name = "utf8_bad_key", .in = "{\"\xed\xa0\x80\":7}", .len = 0, .want = REFUSE},
    /* jansson's lost NUL: one right after a number or a literal is skipped, nowhere else */
    {.name = "nul_after_number", .in = "[1\0,2]", .len = 6, .want = OK_INT, .i = 1},
    {.name = "nul_after_literal", .in = "[true\0]", .len = 7, .want = OK_TYPE, .type = JTREE_TRUE},
    {.name = "nul_after_string", .in = "[\"a\"\0]", .len = 6, .want = REFUSE},
    {.name = "nul_twice", .in = "[1\0\0]", .len = 5, .want = REFUSE},
    {.name = "nul_before_value", .in = "[\0" "1]", .len = 4, .want = REFUSE},
};

static void rules_test(void)
{
    for (size_t k = 0; k < sizeof rules / sizeof rules[0]; k++) {
        const struct rule *r = &rules[k];
        size_t len = r->len ? r->len : strlen(r->in);
        struct jtree_doc *doc = NULL;
        const struct jtree *root = NULL;
        int rc = jtree_load(r->in, len, &doc, &root);
        bool ok;
        if (r->want == REFUSE) {
            ok = rc == VP_ERR_INVALID;
        } else if (rc != 0) {
            ok = false;
        } else {
            const struct jtree *v = first(root);
            switch (r->want) {
            case OK_INT:
                ok = v->type == JTREE_INT && v->u.i == r->i;
                break;
            case OK_REAL:
                ok = v->type == JTREE_REAL && memcmp(&v->u.d, &r->d, sizeof r->d) == 0;
                break;
            case OK_STR:
                ok = v->type == JTREE_STRING && v->n == r->slen &&
                     memcmp(v->u.s, r->s, r->slen) == 0 && v->u.s[v->n] == '\0';
                break;
            default:
                ok = v->type == r->type;
                break;
            }
        }
        jtree_doc_free(doc);
        /* and jansson answers the same (the rule is jansson's behaviour, not only ours) */
        char why[256] = "";
        bool agree = jtree_diff(r->in, len, why, sizeof why);
        TAP_OK(ok && agree, "jtree/rule_%s%s%s", r->name, agree ? "" : ": ", why);
    }
}

/* Nesting: a value's depth is its enclosing containers plus one; 2048 is accepted, 2049 not. */
static void depth_test(void)
{
    static char buf[16384];
    for (int d = 2047; d <= 2049; d++) {
        for (int obj = 0; obj < 2; obj++) {
            size_t n = 0;
            /* d values deep: d - 1 containers around an innermost empty one */
            for (int i = 0; i < d; i++) {
                if (obj && i < d - 1) {
                    memcpy(buf + n, "{\"k\":", 5);
                    n += 5;
                } else {
                    buf[n++] = '[';
                }
            }
            for (int i = d - 1; i >= 0; i--)
                buf[n++] = obj && i < d - 1 ? '}' : ']';
            struct jtree_doc *doc = NULL;
            const struct jtree *root = NULL;
            int rc = jtree_load(buf, n, &doc, &root);
            jtree_doc_free(doc);
            bool want = d <= 2048;
            TAP_OK((rc == 0) == want, "jtree/depth_%d%s: %s (rc %d)", d, obj ? "_objects" : "",
                   want ? "accepted" : "refused", rc);
        }
    }
}

/* A 64 KiB body of n keys: the duplicate check's comparisons stay within n log2 n (sorted), not
 * n^2 / 2 (pairwise); also keys that share a long prefix, many small objects (pairwise
 * each), and the same bodies with one duplicate at the end (refused). */
static void hostile_keys_test(void)
{
    static char big[65536];
    for (int shape = 0; shape < 3; shape++) {
        for (int dup = 0; dup < 2; dup++) {
            size_t n = 0;
            int keys = 0;
            big[n++] = shape == 2 ? '[' : '{';
            for (;;) {
                char one[160];
                int w;
                if (shape == 0) /* short distinct keys */
                    w = snprintf(one, sizeof one, "%s\"%x\":0", keys ? "," : "", keys);
                else if (shape == 1) /* 100-byte keys differing at the end */
                    w = snprintf(one, sizeof one, "%s\"%0100x\":0", keys ? "," : "", keys);
                else /* objects of 16 keys alike in length, first and last byte (one hash) */
                    w = snprintf(one, sizeof one, "%s{\"a0a\":0,\"a1a\":0,\"a2a\":0,\"a3a\":0,"
                                 "\"a4a\":0,\"a5a\":0,\"a6a\":0,\"a7a\":0,\"a8a\":0,\"a9a\":0,"
                                 "\"aAa\":0,\"aBa\":0,\"aCa\":0,\"aDa\":0,\"aEa\":0,\"aFa\":0}",
                                 keys ? "," : "");
                if (w <= 0 || n + (size_t)w + 32 > sizeof big)
                    break;
                memcpy(big + n, one, (size_t)w);
                n += (size_t)w;
                keys += shape == 2 ? 16 : 1;
            }
            if (dup) {
                if (shape == 2) { /* the last object gets a second "a0a" */
                    n--;
                    memcpy(big + n, ",\"a0a\":1}", 9);
                    n += 9;
                } else {
                    n += (size_t)snprintf(big + n, sizeof big - n,
                                          shape ? ",\"%0100x\":1" : ",\"%x\":1", 0);
                }
            }
            big[n++] = shape == 2 ? ']' : '}';
            uint64_t before = jtree_key_compares;
            struct jtree_doc *doc = NULL;
            const struct jtree *root = NULL;
            int rc = jtree_load(big, n, &doc, &root);
            uint64_t cmp = jtree_key_compares - before;
            jtree_doc_free(doc);
            double bound = shape == 2 ? keys * 8.0 : keys * (log2(keys) + 2);
            char why[256] = "";
            bool agree = jtree_diff(big, n, why, sizeof why);
            TAP_OK((rc == 0) == !dup && cmp <= bound && agree,
                   "jtree/hostile_keys_%s%s: %zu bytes, %d keys, %llu key comparisons "
                   "(bound %.0f; pairwise would be %.0f)%s%s",
                   shape == 0 ? "short" : shape == 1 ? "long_prefix" : "small_objects",
                   dup ? "_dup" : "", n, keys, (unsigned long long)cmp, bound,
                   shape == 2 ? keys * 7.5 : (double)keys * (keys - 1) / 2, agree ? "" : ": ",
                   why);
        }
    }
}

/* Keys made to collide in the large-object hash set (every one lands on one slot): the check
 * gives up the set after its probe budget and sorts, so it stays within n * 4 + n log2 n
 * comparisons instead of n^2 / 2; with one duplicate among them it is still found. */
static void colliding_keys_test(void)
{
    enum { N = 1000, CAP = 2048 }; /* the set's size for N keys: 2 N rounded up to a power of 2 */
    static char body[N * 16 + 64];
    for (int dup = 0; dup < 2; dup++) {
        size_t n = 0;
        body[n++] = '{';
        uint64_t want = 0;
        int made = 0;
        for (unsigned c = 0; made < N; c++) {
            char k[16];
            int w = snprintf(k, sizeof k, "%x", c);
            if (w <= 0)
                break;
            uint64_t h = jtree_key_hash(k, (size_t)w) & (CAP - 1);
            if (made == 0)
                want = h;
            if (h != want)
                continue;
            if (dup && made == N - 1) /* the last key repeats the first */
                w = snprintf(k, sizeof k, "%x", (unsigned)strtoul(body + 2, NULL, 16));
            n += (size_t)snprintf(body + n, sizeof body - n, "%s\"%.*s\":0", made ? "," : "", w,
                                  k);
            made++;
        }
        body[n++] = '}';
        uint64_t before = jtree_key_compares;
        struct jtree_doc *doc = NULL;
        const struct jtree *root = NULL;
        int rc = jtree_load(body, n, &doc, &root);
        uint64_t cmp = jtree_key_compares - before;
        jtree_doc_free(doc);
        double bound = N * 4.0 + N * (log2(N) + 2);
        char why[256] = "";
        bool agree = jtree_diff(body, n, why, sizeof why);
        TAP_OK(made == N && (rc == 0) == !dup && cmp <= bound && agree,
               "jtree/colliding_keys%s: %d keys on one slot, %llu key comparisons (bound %.0f; "
               "probing all would be %d)%s%s", dup ? "_dup" : "", made, (unsigned long long)cmp,
               bound, N * (N - 1) / 2, agree ? "" : ": ", why);
    }
}

/* Every allocation of a load fails in turn: VP_ERR_NOMEM, or (the failure missed) the tree. */
static void failmalloc_test(void)
{
    static char big[20000];
    size_t n = 0;
    big[n++] = '[';
    for (int i = 0; i < 300; i++) /* more than the inline stacks hold, deeper than their frames */
        n += (size_t)snprintf(big + n, sizeof big - n, "%s{\"k%d\":[%d,\"s\\u00e9%d\"]}",
                              i ? "," : "", i, i, i);
    big[n++] = ',';
    for (int i = 0; i < 40; i++)
        big[n++] = '[';
    n += (size_t)snprintf(big + n, sizeof big - n, "1.00000000000000000000001");
    for (int i = 0; i < 40; i++)
        big[n++] = ']';
    big[n++] = ',';
    big[n++] = '{';
    for (int i = 0; i < 40; i++) /* sorted duplicate check */
        n += (size_t)snprintf(big + n, sizeof big - n, "%s\"m%d\":0", i ? "," : "", i);
    big[n++] = '}';
    big[n++] = ']';
    int runs = 0, nomem = 0, bad = 0;
    for (long at = 1;; at++) {
        fm_count = 0;
        fm_fail_at = at;
        struct jtree_doc *doc = NULL;
        const struct jtree *root = NULL;
        int rc = jtree_load(big, n, &doc, &root);
        long made = fm_count;
        fm_fail_at = 0;
        runs++;
        if (rc == VP_ERR_NOMEM) {
            nomem++;
        } else {
            char why[256] = "";
            if (rc != 0 || !jtree_diff(big, n, why, sizeof why)) {
                bad++;
                fprintf(stderr, "# failmalloc at %ld: rc %d %s\n", at, rc, why);
            }
        }
        jtree_doc_free(doc);
        if (made < at)
            break; /* this run made fewer allocations than the one failed: all were tried */
    }
    TAP_OK(bad == 0 && nomem >= 5, "jtree/failmalloc: %d runs, %d out of memory, %d wrong", runs,
           nomem, bad);
}

static const char *const edge[] = {
    "{}", "[]", " {} ", "{}x", "{},", "[1,]", "[,1]", "{\"a\":1,}", "{\"a\" 1}", "{\"a\":}",
    "{1:2}", "{\"a\":1,\"a\":2}", "{\"a\":{\"b\":1,\"b\":1}}", "{\"a\":1,\"A\":2}", "\"str\"",
    "1", "true", "null", "[true,false,null]", "[tru]", "[truex]", "[nul]", "[True]", "[0]",
    "[-0]", "[-0.0]", "[01]", "[-01]", "[1.]", "[.5]", "[1.5e]", "[1e+]", "[1E-2]", "[1e2]",
    "[+1]", "[-]", "[1e999]", "[-1e999]", "[1e-999]", "[9223372036854775807]",
    "[9223372036854775808]", "[-9223372036854775808]", "[-9223372036854775809]",
    "[123456789012345678901234567890]", "[0.1]", "[0.30000000000000004]", "[1764000000000.5]",
    "[3599999.9]", "[2.2250738585072014e-308]", "[4.9e-324]", "[1.7976931348623157e308]",
    "[0.000000000000000000000000000001]", "[12345678901234567890.5]", "[1.23456789012345678]",
    "[\"\\u0000\"]", "[\"a\\u0000b\"]", "{\"\\u0000\":1}", "[\"\\ud800\"]", "[\"\\udc00\"]",
    "[\"\\ud800\\udc00\"]", "[\"\\ud83d\\ude00\"]", "[\"\\ud800\\u0041\"]", "[\"\\ud800x\"]",
    "[\"\\u00e9\\u20AC\"]", "[\"\\uZZZZ\"]", "[\"\\u12\"]", "[\"\\x\"]", "[\"\\/\\b\\f\\n\\r\\t\"]",
    "[\"\t\"]", "[\"\x7f\"]", "[\"\xc3\xa9\"]", "[\"\xc0\x80\"]", "[\"\xc1\xbf\"]",
    "[\"\xe0\x80\x80\"]", "[\"\xed\xa0\x80\"]", "[\"\xef\xbf\xbf\"]", "[\"\xf0\x90\x80\x80\"]",
    "[\"\xf4\x8f\xbf\xbf\"]", "[\"\xf4\x90\x80\x80\"]", "[\"\xf5\x80\x80\x80\"]", "[\"\xff\"]",
    "[\"\xe2\x82\"]", "[\"\xc3\"]", "[\"abc", "[\"abc\\", "[1", "{\"a\"", "{\"a\":1", "\xef\xbb\xbf{}",
    "{\"a\":\"\xc3\xa9\",\"\xc3\xa9\":1}", "[1 2]", "{\"a\":1 \"b\":2}", "[\n\r\t 1 ]", "[\f1]",
    "{\"v\":1,\"vid\":\"abcdefgh12\",\"url\":\"/p\",\"t0\":1764000000000,\"m\":[{\"n\":\"LCP\",\"id\":\"x\","
    "\"v\":1.0,\"a\":{\"target\":\"a\\\"b\",\"url\":\"\\u00e9\",\"ttfb\":-0.0}}]}",
};

static const char *const seeds[] = {
    "{\"v\":1,\"vid\":\"abcdefgh12\",\"url\":\"/products/42?x=1\",\"nav\":\"navigate\",\"t0\":1764000000000.5,"
    "\"dev\":\"desktop\",\"ect\":\"4g\",\"mem\":8,\"pvid\":\"parent_01\",\"m\":[{\"n\":\"LCP\",\"id\":\"abcdefgh12-LCP\","
    "\"v\":1850.5,\"d\":1850.5,\"r\":\"good\",\"a\":{\"target\":\"main>img\",\"url\":\"/h.jpg\",\"ttfb\":80.1,"
    "\"loadDelay\":120.5,\"loadDuration\":310.2,\"renderDelay\":45.3}},{\"n\":\"CLS\",\"id\":\"abcdefgh12-CLS\","
    "\"v\":0.042,\"d\":0.01,\"a\":{\"target\":\"div\",\"time\":900.4,\"value\":0.01,\"loadState\":\"complete\"}},"
    "{\"n\":\"INP\",\"id\":\"i\",\"v\":136,\"d\":136,\"a\":{\"type\":\"pointer\",\"inputDelay\":3.2}},"
    "{\"n\":\"TTFB\",\"id\":\"t\",\"v\":120.3,\"a\":{\"waiting\":3.1,\"dns\":10.2}}],"
    "\"nt\":{\"u\":\"/products/42\",\"s\":0,\"d\":800,\"dcl\":500,\"ls\":700,\"ty\":\"navigate\",\"rc\":0,"
    "\"sv\":[{\"n\":\"db\",\"d\":12.5,\"de\":\"q\"}]},\"ri\":3,\"res\":[{\"u\":\"/a.js\",\"i\":\"script\",\"s\":120.1,"
    "\"d\":40.2,\"fs\":120.1,\"rqs\":151.1,\"rps\":170.3,\"rpe\":160.5,\"ts\":11000,\"eb\":10700,\"db\":40000,"
    "\"p\":\"h2\",\"rb\":\"blocking\",\"st\":200,\"sv\":[]},{\"u\":\"https://cdn.example/x.css\",\"i\":\"link\","
    "\"s\":5,\"dls\":5.1,\"dle\":13.2,\"cs\":13.2,\"ce\":35.5,\"scs\":19.1,\"st\":0,\"dt\":\"cache\"}]}",
    "{\"v\":1,\"vid\":\"x_-12345678\",\"url\":\"/\\u00e9\\n\\\"q\\\"\",\"t0\":1.7640000000005e12,"
    "\"m\":[],\"res\":null,\"nt\":null,\"unknown\":{\"deep\":[1,[2,{\"k\":[true,false,null]}]],\"s\":\"\\ud83d\\ude00\"}}",
};

/* One mutation of src (len bytes) into dst (cap bytes); returns the new length. */
static size_t mutate(const char *src, size_t len, char *dst, size_t cap)
{
    static const char alphabet[] = "{}[],:\"\\0123456789.eE+-tfnul \x80\xc3\xa9\xed\xf0\x00";
    size_t n = len < cap ? len : cap;
    memcpy(dst, src, n);
    int k = 1 + (int)(next() % 3);
    for (int m = 0; m < k && n > 0; m++) {
        size_t at = (size_t)(next() % n);
        switch (next() % 5) {
        case 0: /* replace a byte */
            dst[at] = alphabet[next() % (sizeof alphabet - 1)];
            break;
        case 1: /* insert a byte */
            if (n + 1 < cap) {
                memmove(dst + at + 1, dst + at, n - at);
                dst[at] = alphabet[next() % (sizeof alphabet - 1)];
                n++;
            }
            break;
        case 2: { /* delete a range */
            size_t l = 1 + (size_t)(next() % 8);
            if (at + l > n)
                l = n - at;
            memmove(dst + at, dst + at + l, n - at - l);
            n -= l;
            break;
        }
        case 3: { /* duplicate a range (keys, values) */
            size_t l = 1 + (size_t)(next() % 24);
            if (at + l > n)
                l = n - at;
            if (n + l < cap) {
                memmove(dst + at + l, dst + at, n - at);
                n += l;
            }
            break;
        }
        default: /* truncate */
            n = at;
            break;
        }
    }
    return n;
}

/* ---- jansson on several threads at once ---- */

#define T_ROUNDS 300

static pthread_mutex_t hand_mu = PTHREAD_MUTEX_INITIALIZER;
static json_t *hand; /* a tree built on one thread, freed on another */
static int thread_bad[3];

static void *loader(void *arg)
{
    (void)arg;
    static char big[40000];
    size_t n = 0;
    big[n++] = '{';
    for (int i = 0; i < 1500; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "%s\"key%d\":[%d,\"s%d\"]", i ? "," : "",
                              i, i, i);
    big[n++] = '}';
    char why[256];
    for (int r = 0; r < T_ROUNDS; r++) {
        const char *in = r % 3 == 2 ? big : seeds[r % 2];
        size_t len = r % 3 == 2 ? n : strlen(in);
        if (!same(in, len, why, sizeof why))
            thread_bad[0]++;
    }
    return NULL;
}

static void *builder(void *arg)
{
    (void)arg;
    for (int r = 0; r < T_ROUNDS; r++) {
        json_t *j = json_loads(seeds[r % 2], JSON_REJECT_DUPLICATES, NULL);
        char *txt = j ? json_dumps(j, JSON_COMPACT) : NULL;
        if (!txt)
            thread_bad[1]++;
        free(txt);
        pthread_mutex_lock(&hand_mu);
        json_decref(hand); /* the consumer did not take the last one */
        hand = j;
        pthread_mutex_unlock(&hand_mu);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    (void)arg;
    for (int r = 0; r < T_ROUNDS * 4; r++) {
        pthread_mutex_lock(&hand_mu);
        json_t *j = hand;
        hand = NULL;
        pthread_mutex_unlock(&hand_mu);
        if (j && !json_is_object(j))
            thread_bad[2]++;
        json_t *extra = json_pack("{s:i,s:s}", "n", r, "s", "x");
        if (!extra)
            thread_bad[2]++;
        json_decref(extra);
        json_decref(j);
    }
    return NULL;
}

static void threads_test(void)
{
    pthread_t t[3];
    void *(*fn[3])(void *) = {loader, builder, consumer};
    int started = 0;
    for (int i = 0; i < 3; i++)
        if (pthread_create(&t[i], NULL, fn[i], NULL) == 0)
            started++;
    for (int i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    json_decref(hand);
    hand = NULL;
    /* and the main thread still loads after the others ended */
    char why[256];
    bool after = same(seeds[0], strlen(seeds[0]), why, sizeof why);
    TAP_OK(started == 3 && thread_bad[0] == 0 && thread_bad[1] == 0 && thread_bad[2] == 0 && after,
           "jtree/threads: %d threads, differences %d/%d/%d", started, thread_bad[0],
           thread_bad[1], thread_bad[2]);
}

int main(void)
{
    char why[256];
    if (getenv("JTREE_SEED"))
        rng = strtoull(getenv("JTREE_SEED"), NULL, 0) | 1;
    rules_test();
    depth_test();
    hostile_keys_test();
    colliding_keys_test();
    failmalloc_test();
    for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++) {
        bool ok = same(edge[i], strlen(edge[i]), why, sizeof why);
        TAP_OK(ok, "jtree/edge_%zu%s%s", i, ok ? "" : ": ", ok ? "" : why);
    }
    /* nesting around jansson's 2048 limit, against jansson */
    static char deep[8192];
    for (int d = 2045; d <= 2050; d++) {
        for (int scalar = 0; scalar < 2; scalar++) {
            size_t n = 0;
            for (int i = 0; i < d; i++)
                deep[n++] = '[';
            if (scalar)
                deep[n++] = '1';
            for (int i = 0; i < d; i++)
                deep[n++] = ']';
            TAP_OK(same(deep, n, why, sizeof why), "jtree/depth_%d%s: %s", d,
                   scalar ? "_scalar" : "", why);
        }
    }
    /* a large object (the sorted duplicate check) with and without a duplicate */
    {
        static char big[65536];
        for (int dup = 0; dup < 2; dup++) {
            size_t n = 0;
            big[n++] = '{';
            for (int i = 0; i < 3000; i++)
                n += (size_t)snprintf(big + n, sizeof big - n, "%s\"k%d\":%d", i ? "," : "",
                                      dup && i == 2999 ? 17 : i, i);
            big[n++] = '}';
            TAP_OK(same(big, n, why, sizeof why), "jtree/large_object%s: %s", dup ? "_dup" : "",
                   why);
        }
    }
    /* numbers: bit-identical doubles in several notations */
    {
        int bad = 0;
        char num[64], arr[80];
        for (int i = 0; i < 20000 && bad < 5; i++) {
            uint64_t r = next();
            double d;
            switch (i % 5) {
            case 0:
                memcpy(&d, &r, sizeof d);
                if (!isfinite(d))
                    continue;
                snprintf(num, sizeof num, "%.17g", d);
                break;
            case 1:
                snprintf(num, sizeof num, "%.1f", (double)(r % 36000000) / 10.0);
                break;
            case 2:
                snprintf(num, sizeof num, "%.4f", (double)(r % 1000000) / 10000.0);
                break;
            case 3:
                snprintf(num, sizeof num, "%.*e", (int)(r % 20), (double)(r >> 11) * 1e-9);
                break;
            default:
                snprintf(num, sizeof num, "%llu.%llue%d", (unsigned long long)(r % 100000000),
                         (unsigned long long)((r >> 27) % 10000000), (int)(r >> 60) - 8);
                break;
            }
            int w = snprintf(arr, sizeof arr, "[%s]", num);
            if (w <= 0 || (size_t)w >= sizeof arr)
                continue;
            json_t *j = json_loadb(arr, (size_t)w, 0, NULL);
            struct jtree_doc *doc = NULL;
            const struct jtree *root = NULL;
            int rc = jtree_load(arr, (size_t)w, &doc, &root);
            double a = j ? json_number_value(json_array_get(j, 0)) : 0;
            double b = rc == 0 ? jtree_number(&root->u.items[0]) : 0;
            if ((j != NULL) != (rc == 0) || memcmp(&a, &b, sizeof a) != 0) {
                bad++;
                fprintf(stderr, "# number %s: jansson %.17g, jtree %.17g (rc %d)\n", num, a, b,
                        rc);
            }
            /* and written back, it reads as the same double */
            char out[64];
            char *e = jtree_write_real(out, b);
            *e = '\0';
            if (rc == 0 && root->u.items[0].type == JTREE_REAL && strtod(out, NULL) != b) {
                bad++;
                fprintf(stderr, "# number %s written as %s\n", num, out);
            }
            json_decref(j);
            jtree_doc_free(doc);
        }
        TAP_OK(bad == 0, "jtree/numbers_bit_identical: %d differences", bad);
    }
    /* the beacon and jtree fuzz corpora */
    static const char *const corpora[] = {"fuzz_beacon", "fuzz_jtree"};
    for (size_t c = 0; c < sizeof corpora / sizeof corpora[0]; c++) {
        int files = 0, bad = 0;
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/fuzz/corpus/%s", SRCDIR, corpora[c]);
        DIR *d = opendir(dir);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            char path[2048];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            FILE *f = fopen(path, "rb");
            if (!f)
                continue;
            static char buf[1 << 17];
            size_t n = fread(buf, 1, sizeof buf, f);
            fclose(f);
            files++;
            if (!same(buf, n, why, sizeof why)) {
                bad++;
                fprintf(stderr, "# corpus %s/%s: %s\n", corpora[c], e->d_name, why);
            }
        }
        if (d)
            closedir(d);
        TAP_OK(files > 0 && bad == 0, "jtree/corpus_%s: %d files, %d differences", corpora[c],
               files, bad);
    }
    /* seeded mutations of beacon bodies and of the edge cases */
    {
        static char buf[8192];
        int bad = 0, accepted = 0, total = 0;
        int rounds = getenv("JTREE_ROUNDS") ? (int)strtol(getenv("JTREE_ROUNDS"), NULL, 10) : 30000;
        for (int i = 0; i < rounds && bad < 5; i++) {
            const char *src;
            if (i % 3 == 0)
                src = edge[next() % (sizeof edge / sizeof edge[0])];
            else
                src = seeds[next() % (sizeof seeds / sizeof seeds[0])];
            size_t n = mutate(src, strlen(src), buf, sizeof buf);
            total++;
            if (!same(buf, n, why, sizeof why)) {
                bad++;
                fprintf(stderr, "# mutation %d (%zu bytes): ", i, n);
                for (size_t k = 0; k < n && k < 400; k++)
                    fprintf(stderr, (unsigned char)buf[k] < 0x20 || (unsigned char)buf[k] >= 0x7f
                                        ? "\\x%02x" : "%c", (unsigned char)buf[k]);
                fprintf(stderr, " -- %s\n", why);
            } else {
                struct jtree_doc *doc = NULL;
                const struct jtree *root = NULL;
                char r[96];
                if (beacon_check(buf, n, &doc, &root, r, sizeof r) == 0)
                    accepted++;
                jtree_doc_free(doc);
            }
        }
        TAP_OK(bad == 0 && accepted > 100, "jtree/mutations: %d bodies, %d valid beacons, %d "
               "differences", total, accepted, bad);
    }
    threads_test();
    TAP_DONE();
}
