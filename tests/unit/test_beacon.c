/* Beacon validation table: each bad payload must give the expected error and reason; good
 * payloads pass and keep only known attribution keys; User-Agent classification. */
#include "config.h"

#include "store/beacon.h"

#include <stdlib.h>
#include <string.h>

#include "common/vp_err.h"
#include "tap.h"

#define CTX "\"v\":1,\"vid\":\"abcdefgh12\",\"url\":\"/p/1\",\"t0\":1764000000000.5"

static const struct {
    const char *name, *body;
    int want;
    const char *reason; /* substring expected in the reason */
} cases[] = {
    {"minimal", "{" CTX "}", 0, ""},
    {"full",
     "{" CTX ",\"pvid\":\"parent_01\",\"nav\":\"soft-navigation\",\"dev\":\"mobile\",\"ect\":\"4g\","
     "\"mem\":8,\"m\":[{\"n\":\"LCP\",\"id\":\"v6-1-2\",\"v\":1234.5,\"d\":1234.5,\"r\":\"good\","
     "\"a\":{\"target\":\"img.hero\",\"url\":\"/h.jpg\",\"ttfb\":10,\"junk\":1}},"
     "{\"n\":\"CLS\",\"id\":\"c\",\"v\":0.02,\"d\":-0.01}],"
     "\"nt\":{\"u\":\"/p/1\",\"s\":0,\"d\":800,\"dcl\":500,\"ls\":700,\"ty\":\"navigate\",\"rc\":0,"
     "\"sv\":[{\"n\":\"db\",\"d\":12.5,\"de\":\"q\"}]},"
     "\"res\":[{\"u\":\"/a.js\",\"i\":\"script\",\"s\":1,\"d\":2,\"ts\":300,\"st\":200}],\"ri\":3,"
     "\"unknown\":{\"deep\":[1,2]}}",
     0, ""},
    {"empty_body", "", VP_ERR_INVALID, "empty body"},
    {"truncated", "{\"v\":1,\"vid\":", VP_ERR_INVALID, "malformed JSON"},
    {"not_object", "[1,2]", VP_ERR_INVALID, "JSON object"},
    {"nan_literal", "{" CTX ",\"mem\":NaN}", VP_ERR_INVALID, "malformed JSON"},
    {"huge_number", "{" CTX ",\"mem\":1e999}", VP_ERR_INVALID, "malformed JSON"},
    {"invalid_utf8", "{" CTX ",\"x\":\"\xff\xfe\"}", VP_ERR_INVALID, "malformed JSON"},
    {"duplicate_key", "{" CTX ",\"v\":1}", VP_ERR_INVALID, "malformed JSON"},
    {"no_version", "{\"vid\":\"abcdefgh12\",\"url\":\"/\",\"t0\":1764000000000}", VP_ERR_INVALID,
     "unsupported version"},
    {"version_2", "{\"v\":2,\"vid\":\"abcdefgh12\",\"url\":\"/\",\"t0\":1764000000000}",
     VP_ERR_INVALID, "unsupported version"},
    {"vid_short", "{\"v\":1,\"vid\":\"abc\",\"url\":\"/\",\"t0\":1764000000000}", VP_ERR_INVALID,
     "bad vid"},
    {"vid_charset", "{\"v\":1,\"vid\":\"abc'; DROP TABLE views;--\",\"url\":\"/\",\"t0\":1764000000000}",
     VP_ERR_INVALID, "bad vid"},
    {"vid_nul", "{\"v\":1,\"vid\":\"abcdefgh\\u0000x\",\"url\":\"/\",\"t0\":1764000000000}",
     VP_ERR_INVALID, "malformed JSON"}, /* jansson refuses \u0000 */
    {"vid_number", "{\"v\":1,\"vid\":12345678,\"url\":\"/\",\"t0\":1764000000000}", VP_ERR_INVALID,
     "bad vid"},
    {"pvid_bad", "{" CTX ",\"pvid\":\"<x>\"}", VP_ERR_INVALID, "bad pvid"},
    {"url_missing", "{\"v\":1,\"vid\":\"abcdefgh12\",\"t0\":1764000000000}", VP_ERR_INVALID,
     "missing url"},
    {"t0_string", "{\"v\":1,\"vid\":\"abcdefgh12\",\"url\":\"/\",\"t0\":\"Infinity\"}",
     VP_ERR_INVALID, "bad t0"},
    {"t0_negative", "{\"v\":1,\"vid\":\"abcdefgh12\",\"url\":\"/\",\"t0\":-5}", VP_ERR_INVALID,
     "bad t0"},
    {"nav_unknown", "{" CTX ",\"nav\":\"teleport\"}", VP_ERR_INVALID, "bad nav"},
    {"dev_unknown", "{" CTX ",\"dev\":\"fridge\"}", VP_ERR_INVALID, "bad dev"},
    {"ect_unknown", "{" CTX ",\"ect\":\"5g\"}", VP_ERR_INVALID, "bad ect"},
    {"mem_negative", "{" CTX ",\"mem\":-1}", VP_ERR_INVALID, "bad mem"},
    {"m_not_array", "{" CTX ",\"m\":{}}", VP_ERR_INVALID, "m must be an array"},
    {"metric_unknown", "{" CTX ",\"m\":[{\"n\":\"FID\",\"id\":\"x\",\"v\":1}]}", VP_ERR_INVALID,
     "unknown metric name"},
    {"metric_no_id", "{" CTX ",\"m\":[{\"n\":\"LCP\",\"v\":1}]}", VP_ERR_INVALID, "m: bad id"},
    {"metric_negative", "{" CTX ",\"m\":[{\"n\":\"LCP\",\"id\":\"x\",\"v\":-1}]}", VP_ERR_INVALID,
     "value out of range"},
    {"metric_too_long", "{" CTX ",\"m\":[{\"n\":\"INP\",\"id\":\"x\",\"v\":3600000.1}]}",
     VP_ERR_INVALID, "value out of range"},
    {"metric_time_max_ok", "{" CTX ",\"m\":[{\"n\":\"INP\",\"id\":\"x\",\"v\":3600000}]}", 0, ""},
    {"cls_over", "{" CTX ",\"m\":[{\"n\":\"CLS\",\"id\":\"x\",\"v\":100.5}]}", VP_ERR_INVALID,
     "value out of range"},
    {"metric_value_string", "{" CTX ",\"m\":[{\"n\":\"LCP\",\"id\":\"x\",\"v\":\"NaN\"}]}",
     VP_ERR_INVALID, "value out of range"},
    {"rating_bad", "{" CTX ",\"m\":[{\"n\":\"LCP\",\"id\":\"x\",\"v\":1,\"r\":\"meh\"}]}",
     VP_ERR_INVALID, "bad rating"},
    {"attr_not_object", "{" CTX ",\"m\":[{\"n\":\"LCP\",\"id\":\"x\",\"v\":1,\"a\":[]}]}",
     VP_ERR_INVALID, "attribution must be an object"},
    {"attr_selector_long", NULL, VP_ERR_INVALID, "bad attribution target"},
    {"nt_bad_time", "{" CTX ",\"nt\":{\"rps\":-3}}", VP_ERR_INVALID, "nt: bad rps"},
    {"nt_bad_rc", "{" CTX ",\"nt\":{\"rc\":1.5}}", VP_ERR_INVALID, "nt: bad rc"},
    {"res_not_array", "{" CTX ",\"res\":\"x\"}", VP_ERR_INVALID, "res must be an array"},
    {"res_entry_type", "{" CTX ",\"res\":[1]}", VP_ERR_INVALID, "res: entry must be an object"},
    {"res_status", "{" CTX ",\"res\":[{\"st\":1000}]}", VP_ERR_INVALID, "res: bad st"},
    {"res_size_string", "{" CTX ",\"res\":[{\"ts\":\"9\"}]}", VP_ERR_INVALID, "res: bad ts"},
    {"res_sv_bad", "{" CTX ",\"res\":[{\"sv\":[{\"d\":1}]}]}", VP_ERR_INVALID, "res: bad sv"},
    {"ri_negative", "{" CTX ",\"ri\":-1}", VP_ERR_INVALID, "bad ri"},
    {"too_many_res", NULL, VP_ERR_INVALID, "too many resources"},
    {"url_too_long", NULL, VP_ERR_INVALID, "url too long"},
    /* A browser's URLs never hold C0 controls or DEL (the URL standard percent-encodes them);
     * stored, an ESC sequence in a route would reach a terminal through report --format csv. */
    {"url_escape_sequence", "{\"v\":1,\"vid\":\"abcdefgh12\",\"t0\":1764000000000,"
     "\"url\":\"/x\\u001b]0;title\\u0007\"}", VP_ERR_INVALID, "bad url"},
    {"url_del", "{\"v\":1,\"vid\":\"abcdefgh12\",\"t0\":1764000000000,\"url\":\"/x\\u007f\"}",
     VP_ERR_INVALID, "bad url"},
    {"url_newline", "{\"v\":1,\"vid\":\"abcdefgh12\",\"t0\":1764000000000,\"url\":\"/x\\ny\"}",
     VP_ERR_INVALID, "bad url"},
    {"url_non_ascii_ok", "{\"v\":1,\"vid\":\"abcdefgh12\",\"t0\":1764000000000,"
     "\"url\":\"/caf\\u00e9\"}", 0, ""},
    {"res_url_control", "{" CTX ",\"res\":[{\"u\":\"/a\\u001b[2J.js\"}]}", VP_ERR_INVALID,
     "res: bad u"},
    {"nt_url_control", "{" CTX ",\"nt\":{\"u\":\"/\\u0008\"}}", VP_ERR_INVALID, "nt: bad u"},
    {"attr_url_control", "{" CTX ",\"m\":[{\"n\":\"LCP\",\"id\":\"x\",\"v\":1,"
     "\"a\":{\"url\":\"/h\\u001b.jpg\"}}]}", VP_ERR_INVALID, "bad attribution url"},
    {"res_protocol_control", "{" CTX ",\"res\":[{\"p\":\"h2\\u001b\"}]}", VP_ERR_INVALID,
     "res: bad p"},
    {"body_too_large", NULL, VP_ERR_LIMIT, "body too large"},
    {"deep_nesting", NULL, VP_ERR_INVALID, "malformed JSON"},
};

/* Builds the generated bodies (NULL in the table). Caller frees. */
static char *generated(const char *name)
{
    size_t cap = 200000;
    char *b = malloc(cap);
    if (!b)
        return NULL;
    size_t o = 0;
    if (strcmp(name, "attr_selector_long") == 0) {
        o += (size_t)snprintf(b, cap, "{" CTX ",\"m\":[{\"n\":\"INP\",\"id\":\"x\",\"v\":1,\"a\":{\"target\":\"");
        memset(b + o, 'd', 257);
        o += 257;
        snprintf(b + o, cap - o, "\"}}]}");
    } else if (strcmp(name, "too_many_res") == 0) {
        o += (size_t)snprintf(b, cap, "{" CTX ",\"res\":[");
        for (int i = 0; i < 501; i++)
            o += (size_t)snprintf(b + o, cap - o, "%s{}", i ? "," : "");
        snprintf(b + o, cap - o, "]}");
    } else if (strcmp(name, "url_too_long") == 0) {
        o += (size_t)snprintf(b, cap, "{\"v\":1,\"vid\":\"abcdefgh12\",\"t0\":1764000000000,\"url\":\"/");
        memset(b + o, 'a', 2048);
        o += 2048;
        snprintf(b + o, cap - o, "\"}");
    } else if (strcmp(name, "body_too_large") == 0) {
        o += (size_t)snprintf(b, cap, "{" CTX ",\"pad\":\"");
        memset(b + o, ' ', 70000);
        o += 70000;
        snprintf(b + o, cap - o, "\"}");
    } else if (strcmp(name, "deep_nesting") == 0) {
        for (int i = 0; i < 5000; i++)
            b[o++] = '[';
        for (int i = 0; i < 5000; i++)
            b[o++] = ']';
        b[o] = '\0';
    } else {
        b[0] = '\0';
    }
    return b;
}

int main(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *gen = cases[i].body ? NULL : generated(cases[i].name);
        const char *body = cases[i].body ? cases[i].body : gen;
        char reason[96] = "unset";
        json_t *out = NULL;
        int rc = body ? beacon_parse(body, strlen(body), &out, reason, sizeof reason) : -100;
        bool reason_ok = cases[i].want == 0 ? reason[0] == '\0' : strstr(reason, cases[i].reason) != NULL;
        TAP_OK(rc == cases[i].want && reason_ok && (rc == 0) == (out != NULL),
               "beacon/%s: rc %d (want %d) reason \"%s\"", cases[i].name, rc, cases[i].want,
               reason);
        json_decref(out);
        /* beacon_check (the store's path) applies the same checks with the same answers. */
        char reason2[96] = "unset";
        struct jtree_doc *doc = NULL;
        const struct jtree *root = NULL;
        int rc2 = body ? beacon_check(body, strlen(body), &doc, &root, reason2, sizeof reason2)
                       : -100;
        TAP_OK(rc2 == rc && strcmp(reason2, reason) == 0 && (rc2 == 0) == (doc != NULL),
               "beacon/check_%s: rc %d reason \"%s\"", cases[i].name, rc2, reason2);
        jtree_doc_free(doc);
        free(gen);
    }

    /* Attribution is filtered to known keys; unknown top-level fields are left but unread. */
    const char *full = cases[1].body;
    json_t *p = NULL;
    char reason[96];
    int rc = beacon_parse(full, strlen(full), &p, reason, sizeof reason);
    json_t *a = rc == 0 ? json_object_get(json_array_get(json_object_get(p, "m"), 0), "a") : NULL;
    TAP_OK(a && json_object_get(a, "target") && !json_object_get(a, "junk") &&
               json_object_size(a) == 3,
           "beacon/attribution_filtered");
    json_decref(p);

    /* The attribution text the store writes (beacon_attr_json from beacon_check's tree) holds
     * the same JSON values as json_dumps of beacon_parse's filtered object. */
    static const char *const attr_bodies[] = {
        "{" CTX ",\"m\":[{\"n\":\"LCP\",\"id\":\"a\",\"v\":2600,\"r\":\"good\",\"a\":{\"junk\":[1,{}],"
        "\"renderDelay\":80.1,\"url\":\"/i.jpg?a=\\\"q\\\"&b=\\\\\\u00e9\",\"ttfb\":100,"
        "\"loadDelay\":0.30000000000000004,\"loadDuration\":1e-7,"
        "\"target\":\"div>img\\\\\\n\\u0001\"}}]}",
        "{" CTX ",\"m\":[{\"n\":\"CLS\",\"id\":\"c\",\"v\":0.042,\"a\":{\"value\":0.0123,"
        "\"time\":3599999.9,\"loadState\":\"complete\",\"target\":null}}]}",
        "{" CTX ",\"m\":[{\"n\":\"INP\",\"id\":\"i\",\"v\":0,\"a\":{}}]}",
        "{" CTX ",\"m\":[{\"n\":\"TTFB\",\"id\":\"t\",\"v\":5.5,\"a\":{\"waiting\":0,\"cache\":0.0,"
        "\"dns\":12345.678901,\"connection\":2.5e3,\"request\":7}}]}",
    };
    for (size_t i = 0; i < sizeof attr_bodies / sizeof attr_bodies[0]; i++) {
        const char *b = attr_bodies[i];
        json_t *f = NULL, *mine = NULL;
        struct jtree_doc *doc = NULL;
        const struct jtree *c = NULL;
        char *want = NULL;
        bool ok = beacon_parse(b, strlen(b), &f, reason, sizeof reason) == 0 &&
                  beacon_check(b, strlen(b), &doc, &c, reason, sizeof reason) == 0;
        const json_t *fm = ok ? json_array_get(json_object_get(f, "m"), 0) : NULL;
        const struct jtree *cm = ok ? &jtree_get(c, "m")->u.items[0] : NULL;
        const char *name = fm ? json_string_value(json_object_get(fm, "n")) : NULL;
        char text[4096] = "";
        if (name) {
            const struct jtree *ca = jtree_get(cm, "a");
            size_t max = beacon_attr_json_max(ca, name);
            size_t n = max < sizeof text ? beacon_attr_json(ca, name, text) : 0;
            ok = n > 0 && n <= max;
            text[n] = '\0';
            want = json_dumps(json_object_get(fm, "a"), JSON_COMPACT);
            mine = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
            ok = ok && want && mine && json_equal(mine, json_object_get(fm, "a"));
            /* reals stay reals, integers integers */
            const char *key;
            json_t *v;
            json_object_foreach(mine, key, v) {
                json_t *w = json_object_get(json_object_get(fm, "a"), key);
                if (json_typeof(v) != json_typeof(w))
                    ok = false;
            }
            /* and the derived rating is the one beacon_parse writes */
            const char *r = beacon_rating_of(name, jtree_number(jtree_get(cm, "v")));
            ok = ok && r && strcmp(r, json_string_value(json_object_get(fm, "r"))) == 0;
        }
        TAP_OK(ok, "beacon/attr_json_%zu: %s (json_dumps: %s)", i, text, want ? want : "-");
        free(want);
        json_decref(mine);
        json_decref(f);
        jtree_doc_free(doc);
    }
    {
        /* exact forms: shortest decimal for times sent at 0.1 ms, ".0" on whole reals */
        const char *b = "{" CTX ",\"m\":[{\"n\":\"LCP\",\"id\":\"a\",\"v\":1,\"a\":{\"ttfb\":80.1,"
                        "\"loadDelay\":120.0,\"loadDuration\":7,\"renderDelay\":0.5}}]}";
        struct jtree_doc *doc = NULL;
        const struct jtree *c = NULL;
        char text[256] = "";
        if (beacon_check(b, strlen(b), &doc, &c, reason, sizeof reason) == 0) {
            const struct jtree *at = jtree_get(&jtree_get(c, "m")->u.items[0], "a");
            text[beacon_attr_json(at, "LCP", text)] = '\0';
        }
        TAP_OK(strcmp(text, "{\"ttfb\":80.1,\"loadDelay\":120.0,\"loadDuration\":7,"
                            "\"renderDelay\":0.5}") == 0,
               "beacon/attr_json_exact: %s", text);
        jtree_doc_free(doc);
        TAP_OK(strcmp(beacon_rating_of("LCP", 2500), "good") == 0 &&
                   strcmp(beacon_rating_of("LCP", 2500.1), "needs-improvement") == 0 &&
                   strcmp(beacon_rating_of("CLS", 0.26), "poor") == 0 &&
                   beacon_rating_of("FID", 1) == NULL,
               "beacon/rating_of");
    }

    /* The reason never echoes input bytes. */
    const char *evil = "{\"v\":1,\"vid\":\"<script>alert(1)</script>\",\"url\":\"/\",\"t0\":1764000000000}";
    rc = beacon_parse(evil, strlen(evil), &p, reason, sizeof reason);
    TAP_OK(rc == VP_ERR_INVALID && !strchr(reason, '<'), "beacon/reason_is_safe: %s", reason);

    /* A tiny reason buffer is honoured (truncated, NUL-terminated). */
    char tiny[4];
    rc = beacon_parse("[]", 2, &p, tiny, sizeof tiny);
    TAP_OK(rc == VP_ERR_INVALID && strlen(tiny) == 3, "beacon/reason_truncated");

    static const struct {
        const char *ua, *family;
        int major;
    } uas[] = {
        {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "Chrome", 131},
        {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.2849.68", "Edge", 130},
        {"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox", 133},
        {"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15", "Safari", 18},
        {"Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36 OPR/115.0.0.0", "Opera", 115},
        {"Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36", "Samsung", 26},
        {"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1", "Chrome", 131},
        {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36", "Chrome", 131},
        {"curl/8.0", "other", 0},
        {NULL, "other", 0},
    };
    for (size_t i = 0; i < sizeof uas / sizeof uas[0]; i++) {
        char fam[32];
        int major = -1;
        beacon_browser_of(uas[i].ua, fam, sizeof fam, &major);
        TAP_OK(strcmp(fam, uas[i].family) == 0 && major == uas[i].major,
               "beacon/ua_%zu: %s %d (got %s %d)", i, uas[i].family, uas[i].major, fam, major);
    }
    TAP_DONE();
}
