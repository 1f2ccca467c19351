/* Beacon payload validation (web/beacon-protocol.md v1). store/jtree parses (it rejects invalid
 * UTF-8, NaN/Infinity, overflowing numbers and nesting deeper than 2048, as jansson does); this file
 * checks every field the writer will read: type, range, length, enumerated value. Unknown fields
 * are ignored. Reasons are composed of constant text and our own field names only, so they are
 * safe to return to a client and form a small vocabulary for the rejection counters. */
#include "config.h"

#include "store/beacon.h"
#include "store/query.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/vp_err.h"

const struct beacon_field beacon_res_fields[] = {
    {"u", "url", BEACON_K_URL},
    {"i", "initiator", BEACON_K_TOKEN},
    {"s", "start_ms", BEACON_K_TIME},
    {"d", "duration_ms", BEACON_K_TIME},
    {"rds", "redirect_start", BEACON_K_TIME},
    {"rde", "redirect_end", BEACON_K_TIME},
    {"fs", "fetch_start", BEACON_K_TIME},
    {"dls", "dns_start", BEACON_K_TIME},
    {"dle", "dns_end", BEACON_K_TIME},
    {"cs", "connect_start", BEACON_K_TIME},
    {"ce", "connect_end", BEACON_K_TIME},
    {"scs", "secure_start", BEACON_K_TIME},
    {"rqs", "request_start", BEACON_K_TIME},
    {"rps", "response_start", BEACON_K_TIME},
    {"rpe", "response_end", BEACON_K_TIME},
    {"ts", "transfer_size", BEACON_K_SIZE},
    {"eb", "encoded_size", BEACON_K_SIZE},
    {"db", "decoded_size", BEACON_K_SIZE},
    {"p", "protocol", BEACON_K_TOKEN},
    {"rb", "render_blocking", BEACON_K_TOKEN},
    {"st", "status", BEACON_K_STATUS},
    {"dt", "delivery_type", BEACON_K_TOKEN},
    {"sv", "server_timing", BEACON_K_SV},
    {NULL, NULL, BEACON_K_TIME},
};

const struct beacon_field beacon_nav_fields[] = {
    {"di", "dom_interactive", BEACON_K_TIME},
    {"dcl", "dcl_start", BEACON_K_TIME},
    {"dcle", "dcl_end", BEACON_K_TIME},
    {"dc", "dom_complete", BEACON_K_TIME},
    {"ls", "load_start", BEACON_K_TIME},
    {"le", "load_end", BEACON_K_TIME},
    {"ty", "type", BEACON_K_TOKEN},
    {"rc", "redirect_count", BEACON_K_COUNT},
    {NULL, NULL, BEACON_K_TIME},
};

_Static_assert(sizeof beacon_res_fields / sizeof beacon_res_fields[0] <= BEACON_MAX_FIELDS + 1 &&
                   sizeof beacon_nav_fields / sizeof beacon_nav_fields[0] <= BEACON_MAX_FIELDS + 1,
               "beacon_field_slots fills at most BEACON_MAX_FIELDS slots");

const char *const beacon_metric_names[] = {"LCP", "CLS", "INP", "FCP", "TTFB", NULL};

static const char *const nav_types[] = {"navigate",           "reload",  "back-forward",
                                        "back-forward-cache", "prerender", "restore",
                                        "soft-navigation",    NULL};
static const char *const dev_classes[] = {"mobile", "tablet", "desktop", NULL};
static const char *const ect_values[] = {"slow-2g", "2g", "3g", "4g", NULL};
static const char *const ratings[] = {"good", "needs-improvement", "poor", NULL};

/* Attribution keys per metric: kind URL/TOKEN for strings (selectors use SELECTOR), TIME else. */
enum akind { A_TIME, A_SEL, A_URL, A_TOKEN, A_CLS };
struct akey {
    const char *key;
    enum akind kind;
};
static const struct akey attr_lcp[] = {{"target", A_SEL},      {"url", A_URL},
                                       {"ttfb", A_TIME},       {"loadDelay", A_TIME},
                                       {"loadDuration", A_TIME}, {"renderDelay", A_TIME},
                                       {NULL, A_TIME}};
static const struct akey attr_cls[] = {{"target", A_SEL},
                                       {"time", A_TIME},
                                       {"value", A_CLS},
                                       {"loadState", A_TOKEN},
                                       {NULL, A_TIME}};
static const struct akey attr_inp[] = {
    {"target", A_SEL},      {"type", A_TOKEN},      {"time", A_TIME},
    {"inputDelay", A_TIME}, {"processing", A_TIME}, {"presentation", A_TIME},
    {"loadState", A_TOKEN}, {"scriptUrl", A_URL},   {"scriptDuration", A_TIME},
    {NULL, A_TIME}};
static const struct akey attr_fcp[] = {
    {"ttfb", A_TIME}, {"firstByteToFCP", A_TIME}, {"loadState", A_TOKEN}, {NULL, A_TIME}};
static const struct akey attr_ttfb[] = {{"waiting", A_TIME},    {"cache", A_TIME},
                                        {"dns", A_TIME},        {"connection", A_TIME},
                                        {"request", A_TIME},    {NULL, A_TIME}};

static int fail(char *reason, size_t cap, const char *a, const char *b)
{
    if (cap > 0) {
        int w = snprintf(reason, cap, "%s%s", a, b ? b : "");
        if (w < 0)
            reason[0] = '\0';
    }
    return VP_ERR_INVALID;
}

bool beacon_valid_view_id(const char *s)
{
    size_t n = 0;
    if (!s)
        return false;
    for (; s[n]; n++) {
        char c = s[n];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
        if (n >= 64)
            return false;
    }
    return n >= 8;
}

static const struct akey *attr_keys(const char *metric)
{
    if (strcmp(metric, "LCP") == 0)
        return attr_lcp;
    if (strcmp(metric, "CLS") == 0)
        return attr_cls;
    if (strcmp(metric, "INP") == 0)
        return attr_inp;
    if (strcmp(metric, "FCP") == 0)
        return attr_fcp;
    return attr_ttfb;
}

const char *beacon_rating_of(const char *metric, double value)
{
    double good, poor;
    if (query_thresholds(metric, &good, &poor) != 0)
        return NULL;
    return value <= good ? ratings[0] : value <= poor ? ratings[1] : ratings[2];
}

/* The filtered form of an accepted body: each metric's rating derived from its value and the
 * contract's thresholds (boundaries count toward the better bucket; a client-sent rating is
 * checked but never trusted), its attribution reduced to the known keys. */
static int filter_metrics(json_t *root)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(root, "m"), i, e) {
        const char *name = json_string_value(json_object_get(e, "n"));
        const char *rating = beacon_rating_of(name, json_number_value(json_object_get(e, "v")));
        if (rating && json_object_set_new(e, "r", json_string(rating)) != 0)
            return VP_ERR_NOMEM;
        const json_t *a = json_object_get(e, "a");
        if (!a || json_is_null(a))
            continue;
        json_t *o = json_object();
        if (!o)
            return VP_ERR_NOMEM;
        for (const struct akey *k = attr_keys(name); k->key; k++) {
            json_t *v = json_object_get(a, k->key);
            if (v && !json_is_null(v) && json_object_set(o, k->key, v) != 0) {
                json_decref(o);
                return VP_ERR_NOMEM;
            }
        }
        if (json_object_set_new(e, "a", o) != 0)
            return VP_ERR_NOMEM;
    }
    return 0;
}

/* The rules live once, in beacon_check; this gives the accepted body as a filtered jansson
 * object for callers that want one. */
int beacon_parse(const char *body, size_t len, json_t **out, char *reason, size_t reasonlen)
{
    struct jtree_doc *doc = NULL;
    const struct jtree *tree = NULL;
    int rc = beacon_check(body, len, &doc, &tree, reason, reasonlen);
    if (rc)
        return rc;
    jtree_doc_free(doc);
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) /* the same load beacon_check just accepted: only memory can fail */
        return VP_ERR_NOMEM;
    if ((rc = filter_metrics(root)) != 0) {
        json_decref(root);
        return rc;
    }
    *out = root;
    return 0;
}

/* ---- the filtered attribution as JSON text, without a second tree ---- */

size_t beacon_attr_json_max(const struct jtree *a, const char *metric)
{
    size_t n = 2;
    for (const struct akey *k = attr_keys(metric); k->key; k++) {
        const struct jtree *v = jtree_get(a, k->key);
        if (!v || v->type == JTREE_NULL)
            continue;
        n += strlen(k->key) + 4; /* "key": and a comma */
        n += v->type == JTREE_STRING ? (size_t)v->n * 6 + 2 : 48;
    }
    return n;
}

size_t beacon_attr_json(const struct jtree *a, const char *metric, char *out)
{
    char *o = out;
    *o++ = '{';
    for (const struct akey *k = attr_keys(metric); k->key; k++) {
        const struct jtree *v = jtree_get(a, k->key);
        if (!v || v->type == JTREE_NULL)
            continue;
        if (o != out + 1)
            *o++ = ',';
        o = jtree_write_string(o, k->key, strlen(k->key));
        *o++ = ':';
        if (v->type == JTREE_STRING) {
            o = jtree_write_string(o, v->u.s, v->n);
        } else if (v->type == JTREE_INT) {
            o = jtree_write_int(o, v->u.i);
        } else {
            o = jtree_write_real(o, v->u.d);
        }
    }
    *o++ = '}';
    return (size_t)(o - out);
}

/* ---- the same checks on the store's tree (store/jtree.h) ----
 * One function per function above, in the same order, with the same reasons: beacon_check must
 * accept and refuse exactly what beacon_parse does (tests/unit/test_beacon.c compares them on
 * every case of its table, tests/unit/test_jtree.c on mutated bodies). */

static bool b_in_set(const struct jtree *v, const char *const *set)
{
    for (size_t i = 0; set[i]; i++)
        if (jtree_str_eq(v, set[i]))
            return true;
    return false;
}

static bool b_is_null(const struct jtree *v) { return v && v->type == JTREE_NULL; }

static bool b_num_in(const struct jtree *v, double lo, double hi)
{
    if (!jtree_is_number(v))
        return false;
    double d = jtree_number(v);
    return isfinite(d) && d >= lo && d <= hi;
}

static bool b_int_in(const struct jtree *v, int64_t lo, int64_t hi)
{
    return v && v->type == JTREE_INT && v->u.i >= lo && v->u.i <= hi;
}

static bool b_str_max(const struct jtree *v, size_t max)
{
    return jtree_is_string(v) && v->n <= max;
}

/* A URL or token as a browser reports it: at most max bytes and no C0 control or DEL, which the
 * URL standard percent-encodes; raw, an escape sequence in a stored URL would reach a terminal
 * through report --format csv. */
static bool b_text_max(const struct jtree *v, size_t max)
{
    if (!b_str_max(v, max))
        return false;
    for (uint32_t i = 0; i < v->n; i++)
        if ((unsigned char)v->u.s[i] < 0x20 || v->u.s[i] == 0x7f)
            return false;
    return true;
}

static bool b_valid_view_id(const struct jtree *v)
{
    if (!jtree_is_string(v) || v->n < 8 || v->n > 64)
        return false;
    for (uint32_t i = 0; i < v->n; i++) {
        char c = v->u.s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

static int b_check_sv(const struct jtree *sv, char *reason, size_t cap, const char *where)
{
    if (sv->type != JTREE_ARRAY || sv->n > BEACON_MAX_SERVER_TIMING)
        return fail(reason, cap, where, ": bad sv");
    for (uint32_t i = 0; i < sv->n; i++) {
        const struct jtree *e = &sv->u.items[i];
        if (e->type != JTREE_OBJECT)
            return fail(reason, cap, where, ": bad sv entry");
        const struct jtree *n = jtree_get(e, "n"), *d = jtree_get(e, "d"),
                           *de = jtree_get(e, "de");
        if (!b_str_max(n, BEACON_MAX_SELECTOR) || (d && !b_num_in(d, 0, BEACON_MAX_TIME_MS)) ||
            (de && !b_str_max(de, BEACON_MAX_SELECTOR)))
            return fail(reason, cap, where, ": bad sv entry");
    }
    return 0;
}

/* true when the NUL-terminated key is the n bytes of s (which hold no NUL: jtree refuses one in
 * a key). Inline: the table's keys are a few bytes. */
static inline bool key_is(const char *key, const char *s, size_t n)
{
    for (size_t j = 0; j < n; j++)
        if (key[j] != s[j]) /* also stops at the end of a shorter key */
            return false;
    return key[n] == '\0';
}

void beacon_field_slots(const struct jtree *obj, const struct beacon_field *fields,
                        const struct jtree **slots)
{
    size_t nf = 0;
    while (fields[nf].key)
        slots[nf++] = NULL;
    /* beacon.js sends the fields in the table's order, so each search starts after the last
     * match: one comparison per member in the usual case, the whole table at worst */
    size_t at = 0;
    for (uint32_t i = 0; i < obj->n && nf; i++) {
        const struct jtree_member *m = &obj->u.members[i];
        for (size_t t = 0; t < nf; t++) {
            size_t k = at + t < nf ? at + t : at + t - nf;
            if (key_is(fields[k].key, m->key, m->klen)) {
                slots[k] = &m->v;
                at = k + 1 < nf ? k + 1 : 0;
                break;
            }
        }
    }
}

static int b_check_fields(const struct jtree *obj, const struct beacon_field *fields,
                          char *reason, size_t cap, const char *where)
{
    const struct jtree *slots[BEACON_MAX_FIELDS];
    beacon_field_slots(obj, fields, slots);
    size_t idx = 0;
    for (const struct beacon_field *f = fields; f->key; f++) {
        const struct jtree *v = slots[idx++];
        if (!v || v->type == JTREE_NULL)
            continue;
        bool ok = true;
        switch (f->kind) {
        case BEACON_K_TIME:
            ok = b_num_in(v, 0, BEACON_MAX_TIME_MS);
            break;
        case BEACON_K_SIZE:
            ok = b_num_in(v, 0, 1e12);
            break;
        case BEACON_K_STATUS:
            ok = b_int_in(v, 0, 999);
            break;
        case BEACON_K_COUNT:
            ok = b_int_in(v, 0, 1000);
            break;
        case BEACON_K_URL:
            ok = b_text_max(v, BEACON_MAX_URL);
            break;
        case BEACON_K_TOKEN:
            ok = b_text_max(v, 64);
            break;
        case BEACON_K_SV: {
            int rc = b_check_sv(v, reason, cap, where);
            if (rc)
                return rc;
            break;
        }
        }
        if (!ok) {
            char buf[48];
            int w = snprintf(buf, sizeof buf, ": bad %s", f->key);
            return fail(reason, cap, where, w > 0 && (size_t)w < sizeof buf ? buf : ": bad field");
        }
    }
    return 0;
}

static int b_check_attr(const struct jtree *a, const char *metric, char *reason, size_t cap)
{
    if (a->type != JTREE_OBJECT)
        return fail(reason, cap, "m: attribution must be an object", NULL);
    for (const struct akey *k = attr_keys(metric); k->key; k++) {
        const struct jtree *v = jtree_get(a, k->key);
        if (!v || v->type == JTREE_NULL)
            continue;
        bool ok;
        switch (k->kind) {
        case A_TIME:
            ok = b_num_in(v, 0, BEACON_MAX_TIME_MS);
            break;
        case A_CLS:
            ok = b_num_in(v, 0, BEACON_MAX_CLS);
            break;
        case A_SEL:
            ok = b_str_max(v, BEACON_MAX_SELECTOR);
            break;
        case A_URL:
            ok = b_text_max(v, BEACON_MAX_URL);
            break;
        default:
            ok = b_str_max(v, 64);
            break;
        }
        if (!ok) {
            char buf[64];
            int w = snprintf(buf, sizeof buf, "m: bad attribution %s", k->key);
            return fail(reason, cap, w > 0 && (size_t)w < sizeof buf ? buf : "m: bad attribution",
                        NULL);
        }
    }
    return 0;
}

static int b_check_metric(const struct jtree *m, char *reason, size_t cap)
{
    if (m->type != JTREE_OBJECT)
        return fail(reason, cap, "m: entry must be an object", NULL);
    const struct jtree *n = jtree_get(m, "n"), *id = jtree_get(m, "id"), *v = jtree_get(m, "v"),
                       *d = jtree_get(m, "d"), *r = jtree_get(m, "r");
    const char *name = NULL;
    for (size_t i = 0; beacon_metric_names[i] && !name; i++)
        if (jtree_str_eq(n, beacon_metric_names[i]))
            name = beacon_metric_names[i];
    if (!name)
        return fail(reason, cap, "m: unknown metric name", NULL);
    if (!jtree_is_string(id) || id->n == 0 || id->n > 128)
        return fail(reason, cap, "m: bad id", NULL);
    bool cls = strcmp(name, "CLS") == 0;
    double max = cls ? BEACON_MAX_CLS : BEACON_MAX_TIME_MS;
    if (!b_num_in(v, 0, max))
        return fail(reason, cap, "m: value out of range", NULL);
    if (d && !b_is_null(d) && !b_num_in(d, -max, max))
        return fail(reason, cap, "m: delta out of range", NULL);
    if (r && !b_is_null(r) && (!jtree_is_string(r) || !b_in_set(r, ratings)))
        return fail(reason, cap, "m: bad rating", NULL);
    const struct jtree *a = jtree_get(m, "a");
    if (a && !b_is_null(a))
        return b_check_attr(a, name, reason, cap);
    return 0;
}

static int b_opt_enum(const struct jtree *obj, const char *key, const char *const *set,
                      char *reason, size_t cap)
{
    const struct jtree *v = jtree_get(obj, key);
    if (!v || v->type == JTREE_NULL)
        return 0;
    if (!jtree_is_string(v) || !b_in_set(v, set))
        return fail(reason, cap, "bad ", key);
    return 0;
}

static int b_validate(const struct jtree *root, char *reason, size_t cap)
{
    int rc;
    if (root->type != JTREE_OBJECT)
        return fail(reason, cap, "payload must be a JSON object", NULL);
    const struct jtree *ver = jtree_get(root, "v");
    if (!ver || ver->type != JTREE_INT || ver->u.i != 1)
        return fail(reason, cap, "unsupported version", NULL);
    if (!b_valid_view_id(jtree_get(root, "vid")))
        return fail(reason, cap, "bad vid", NULL);
    const struct jtree *pvid = jtree_get(root, "pvid");
    if (pvid && !b_is_null(pvid) && !b_valid_view_id(pvid))
        return fail(reason, cap, "bad pvid", NULL);
    const struct jtree *url = jtree_get(root, "url");
    if (!jtree_is_string(url) || url->n == 0)
        return fail(reason, cap, "missing url", NULL);
    if (url->n > BEACON_MAX_URL)
        return fail(reason, cap, "url too long", NULL);
    if (!b_text_max(url, BEACON_MAX_URL))
        return fail(reason, cap, "bad url", ": control character");
    if (!b_num_in(jtree_get(root, "t0"), 946684800000.0, 4102444800000.0))
        return fail(reason, cap, "bad t0", NULL);
    if ((rc = b_opt_enum(root, "nav", nav_types, reason, cap)) ||
        (rc = b_opt_enum(root, "dev", dev_classes, reason, cap)) ||
        (rc = b_opt_enum(root, "ect", ect_values, reason, cap)))
        return rc;
    const struct jtree *mem = jtree_get(root, "mem");
    if (mem && !b_is_null(mem) && !b_num_in(mem, 0, 1024))
        return fail(reason, cap, "bad mem", NULL);

    const struct jtree *m = jtree_get(root, "m");
    if (m && !b_is_null(m)) {
        if (m->type != JTREE_ARRAY)
            return fail(reason, cap, "m must be an array", NULL);
        if (m->n > BEACON_MAX_METRICS)
            return fail(reason, cap, "too many metrics", NULL);
        for (uint32_t i = 0; i < m->n; i++)
            if ((rc = b_check_metric(&m->u.items[i], reason, cap)))
                return rc;
    }
    const struct jtree *nt = jtree_get(root, "nt");
    if (nt && !b_is_null(nt)) {
        if (nt->type != JTREE_OBJECT)
            return fail(reason, cap, "nt must be an object", NULL);
        if ((rc = b_check_fields(nt, beacon_res_fields, reason, cap, "nt")) ||
            (rc = b_check_fields(nt, beacon_nav_fields, reason, cap, "nt")))
            return rc;
    }
    const struct jtree *res = jtree_get(root, "res"), *ri = jtree_get(root, "ri");
    int64_t base = 0;
    if (ri && !b_is_null(ri)) {
        if (!b_int_in(ri, 0, BEACON_MAX_RES_INDEX))
            return fail(reason, cap, "bad ri", NULL);
        base = ri->u.i;
    }
    if (res && !b_is_null(res)) {
        if (res->type != JTREE_ARRAY)
            return fail(reason, cap, "res must be an array", NULL);
        if (res->n > BEACON_MAX_RESOURCES)
            return fail(reason, cap, "too many resources", NULL);
        if (base + (int64_t)res->n > BEACON_MAX_RES_INDEX)
            return fail(reason, cap, "bad ri", NULL);
        for (uint32_t i = 0; i < res->n; i++) {
            if (res->u.items[i].type != JTREE_OBJECT)
                return fail(reason, cap, "res: entry must be an object", NULL);
            if ((rc = b_check_fields(&res->u.items[i], beacon_res_fields, reason, cap, "res")))
                return rc;
        }
    }
    return 0;
}

int beacon_check(const char *body, size_t len, struct jtree_doc **doc, const struct jtree **root,
                 char *reason, size_t reasonlen)
{
    if (reasonlen > 0)
        reason[0] = '\0';
    if (len > BEACON_MAX_BODY) {
        fail(reason, reasonlen, "body too large", NULL);
        return VP_ERR_LIMIT;
    }
    if (len == 0)
        return fail(reason, reasonlen, "empty body", NULL);
    struct jtree_doc *d = NULL;
    const struct jtree *r = NULL;
    int rc = jtree_load(body, len, &d, &r);
    if (rc == VP_ERR_NOMEM)
        return rc;
    if (rc)
        return fail(reason, reasonlen, "malformed JSON", NULL);
    if ((rc = b_validate(r, reason, reasonlen)) != 0) {
        jtree_doc_free(d);
        return rc;
    }
    *doc = d;
    *root = r;
    return 0;
}

/* Finds tok in ua and parses the integer after it. */
static bool ua_find(const char *ua, const char *tok, int *major)
{
    const char *p = strstr(ua, tok);
    if (!p)
        return false;
    p += strlen(tok);
    int v = 0;
    while (*p >= '0' && *p <= '9' && v < 100000) {
        v = v * 10 + (*p - '0');
        p++;
    }
    *major = v;
    return true;
}

void beacon_browser_of(const char *ua, char *family, size_t cap, int *major)
{
    /* Order matters: Chromium derivatives also claim Chrome and Safari; Chrome claims Safari. */
    static const struct {
        const char *tok, *family;
    } rules[] = {
        {"SamsungBrowser/", "Samsung"}, {"EdgA/", "Edge"},     {"EdgiOS/", "Edge"},
        {"Edg/", "Edge"},               {"Edge/", "Edge"},     {"OPR/", "Opera"},
        {"Opera/", "Opera"},            {"FxiOS/", "Firefox"}, {"Firefox/", "Firefox"},
        {"CriOS/", "Chrome"},           {"Chromium/", "Chromium"}, {"Chrome/", "Chrome"},
    };
    const char *fam = "other";
    *major = 0;
    if (ua) {
        bool found = false;
        for (size_t i = 0; i < sizeof rules / sizeof rules[0] && !found; i++) {
            if (ua_find(ua, rules[i].tok, major)) {
                fam = rules[i].family;
                found = true;
            }
        }
        if (!found && strstr(ua, "Safari/")) {
            fam = "Safari";
            if (!ua_find(ua, "Version/", major))
                *major = 0;
        }
    }
    if (cap > 0) {
        int w = snprintf(family, cap, "%s", fam);
        if (w < 0)
            family[0] = '\0';
    }
}
