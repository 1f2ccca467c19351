/* HTML insertion-point scanner: a byte-driven subset of the WHATWG HTML tokenizer
 * (https://html.spec.whatwg.org/multipage/parsing.html#tokenization, section 13.2.5).
 *
 * States kept: data, tag open, end tag open, tag name, the attribute states (before/after name,
 * name, value double/single-quoted/unquoted, after quoted value), self-closing start tag, markup
 * declaration open (matching "--", "doctype", "[CDATA["), the comment states including the
 * abrupt `<!-->` / `<!--->` endings and `--!>`, doctype (to '>'), bogus comment (to '>'), CDATA
 * (to "]]>", a conservative choice: in HTML content the spec ends it at the first '>'), and
 * RAWTEXT/RCDATA (contents of script, style, xmp, iframe, noembed, noframes, noscript, textarea,
 * title end only at a matching `</name` followed by whitespace, '/' or '>'). The script-data
 * escape states are not needed: a script start tag is itself an insertion point, so the scanner
 * decides before any script contents that could hide one, except in a fragment (not a
 * document), where a script body can at worst delay the give-up.
 *
 * Invariants: the scanner never stores document bytes beyond a 15-byte lowercase tag name, an
 * 8-byte attribute name and a bounded src prefix; the span the caller must hold back (from
 * hold_from to pos) never exceeds max_tag, else the scan resolves. Every byte is examined
 * exactly once in the order given, so results do not depend on how the stream is chunked. */
#include "config.h"

#include "inject/html_scan.h"

#include "common/vp_err.h"
#include "inject/inject_alloc.h"

#include <string.h>

enum st {
    S_DATA,
    S_TAG_OPEN,
    S_END_TAG_OPEN,
    S_TAG_NAME,
    S_BEFORE_ATTR_NAME,
    S_ATTR_NAME,
    S_AFTER_ATTR_NAME,
    S_BEFORE_ATTR_VALUE,
    S_ATTR_VALUE_DQ,
    S_ATTR_VALUE_SQ,
    S_ATTR_VALUE_UNQ,
    S_AFTER_ATTR_VALUE_Q,
    S_SELF_CLOSING,
    S_MARKUP_DECL,
    S_COMMENT_START,
    S_COMMENT_START_DASH,
    S_COMMENT,
    S_COMMENT_END_DASH,
    S_COMMENT_END,
    S_COMMENT_END_BANG,
    S_DOCTYPE,
    S_BOGUS_COMMENT,
    S_CDATA,
    S_CDATA_BR1,
    S_CDATA_BR2,
    S_RAW,
    S_RAW_LT,
    S_RAW_END,
};

enum md_kind { MD_NONE, MD_COMMENT, MD_DOCTYPE, MD_CDATA };

#define NAME_CAP 15
#define ATTR_CAP 8
#define SRC_CAP 512

static const char BEACON_PATH[] = "/__vitals/beacon.js";

struct html_scan {
    size_t scan_limit, max_tag;
    uint64_t pos;       /* bytes consumed */
    uint64_t tag_start; /* offset of the '<' of the current tag */
    uint64_t insert_at; /* decided or pending insertion offset */
    enum st st;
    enum html_scan_result result;
    enum html_scan_skip skip;
    bool doc;         /* doctype/html/head/body seen */
    bool after_head;  /* <head> seen; checking the next tag for our beacon */
    bool end_tag;     /* current tag is an end tag */
    bool name_long;   /* tag name longer than NAME_CAP */
    bool hold_tag;    /* the current tag is held back (from tag_start) */
    bool want_attrs;  /* current tag is a script whose src we inspect */
    bool has_beacon;  /* its src holds BEACON_PATH */
    bool attr_is_src; /* the attribute being read is src */
    size_t name_len, attr_len, src_len, md_idx, raw_idx;
    enum md_kind md;
    char name[NAME_CAP + 1];
    char attr[ATTR_CAP + 1];
    char raw_name[NAME_CAP + 1]; /* element whose end tag closes RAWTEXT/RCDATA */
    char src[SRC_CAP];
};

int html_scan_new(struct html_scan **out, size_t scan_limit, size_t max_tag)
{
    struct html_scan *s = inject_calloc(1, sizeof *s);
    if (!s)
        return VP_ERR_NOMEM;
    s->scan_limit = scan_limit ? scan_limit : HTML_SCAN_DEFAULT_LIMIT;
    s->max_tag = max_tag ? max_tag : HTML_SCAN_DEFAULT_MAX_TAG;
    s->st = S_DATA;
    *out = s;
    return 0;
}

void html_scan_free(struct html_scan *s)
{
    inject_free(s);
}

void html_scan_reset(struct html_scan *s)
{
    size_t limit = s->scan_limit, max_tag = s->max_tag;
    memset(s, 0, sizeof *s);
    s->scan_limit = limit;
    s->max_tag = max_tag;
    s->st = S_DATA;
}

static bool is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

static bool name_is(const struct html_scan *s, const char *lit)
{
    return !s->name_long && strcmp(s->name, lit) == 0;
}

static enum html_scan_result decide_insert(struct html_scan *s, uint64_t at)
{
    s->result = HTML_SCAN_INSERT;
    s->insert_at = at;
    return s->result;
}

static enum html_scan_result decide_skip(struct html_scan *s, enum html_scan_skip why)
{
    s->result = HTML_SCAN_SKIP;
    s->skip = why;
    return s->result;
}

/* The end of the scan (limit, end of stream) without a decision. */
static enum html_scan_result resolve_undecided(struct html_scan *s)
{
    if (s->after_head)
        return decide_insert(s, s->insert_at);
    return decide_skip(s, s->doc ? HTML_SCAN_SKIP_NO_POINT : HTML_SCAN_SKIP_NOT_DOCUMENT);
}

static bool is_raw_element(const struct html_scan *s)
{
    static const char *const raw[] = {"script",   "style",    "xmp",      "iframe", "noembed",
                                      "noframes", "noscript", "textarea", "title"};
    for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++)
        if (name_is(s, raw[i]))
            return true;
    return false;
}

/* The tag name is complete (the byte that ended it is not yet handled). */
static enum html_scan_result name_done(struct html_scan *s)
{
    s->hold_tag = false;
    s->want_attrs = false;
    if (s->end_tag)
        return s->after_head ? decide_insert(s, s->insert_at) : HTML_SCAN_MORE;
    if (s->after_head) {
        if (name_is(s, "script")) {
            s->want_attrs = s->hold_tag = true;
            return HTML_SCAN_MORE;
        }
        return decide_insert(s, s->insert_at);
    }
    if (name_is(s, "html")) {
        s->doc = true;
    } else if (name_is(s, "head")) {
        s->doc = true; /* decided at the end of the tag */
    } else if (name_is(s, "body")) {
        s->doc = true;
        return decide_insert(s, s->tag_start);
    } else if (s->doc && (name_is(s, "link") || name_is(s, "style") || name_is(s, "meta"))) {
        return decide_insert(s, s->tag_start);
    } else if (s->doc && name_is(s, "script")) {
        s->want_attrs = s->hold_tag = true;
    } else if (name_is(s, "plaintext")) {
        return decide_skip(s, HTML_SCAN_SKIP_PLAINTEXT);
    }
    return HTML_SCAN_MORE;
}

/* The tag ended with '>' at offset pos (not yet counted). */
static enum html_scan_result tag_done(struct html_scan *s)
{
    uint64_t end = s->pos + 1;
    if (s->end_tag) {
        s->st = S_DATA;
        return HTML_SCAN_MORE;
    }
    if (s->want_attrs) { /* a script at the insertion point */
        if (s->has_beacon)
            return decide_skip(s, HTML_SCAN_SKIP_ALREADY);
        return decide_insert(s, s->after_head ? s->insert_at : s->tag_start);
    }
    if (name_is(s, "head") && !s->after_head) {
        s->after_head = true;
        s->insert_at = end;
        s->st = S_DATA;
        return HTML_SCAN_MORE;
    }
    if (is_raw_element(s)) { /* a self-closing flag is ignored on HTML elements */
        memcpy(s->raw_name, s->name, sizeof s->raw_name);
        s->st = S_RAW;
        return HTML_SCAN_MORE;
    }
    s->st = S_DATA;
    return HTML_SCAN_MORE;
}

static void attr_start(struct html_scan *s)
{
    s->attr_len = 0;
    s->attr_is_src = false;
}

static void attr_name_done(struct html_scan *s)
{
    s->attr[s->attr_len < ATTR_CAP ? s->attr_len : ATTR_CAP] = '\0';
    s->attr_is_src = s->want_attrs && s->attr_len == 3 && strcmp(s->attr, "src") == 0;
    s->src_len = 0;
}

static void attr_value_byte(struct html_scan *s, unsigned char c)
{
    if (s->attr_is_src && s->src_len < SRC_CAP)
        s->src[s->src_len++] = (char)c;
}

static void attr_value_done(struct html_scan *s)
{
    if (s->attr_is_src && memmem(s->src, s->src_len, BEACON_PATH, sizeof BEACON_PATH - 1))
        s->has_beacon = true;
    s->attr_is_src = false;
}

static void start_tag_name(struct html_scan *s, unsigned char c, bool end)
{
    s->end_tag = end;
    s->name_len = 0;
    s->name_long = false;
    s->has_beacon = false;
    s->want_attrs = false;
    s->name[0] = '\0';
    (void)c;
    s->st = S_TAG_NAME;
}

/* One byte. Returns the decision; sets *again when the byte must be processed again in the new
 * state (the tokenizer's "reconsume"). */
static enum html_scan_result step(struct html_scan *s, unsigned char c, bool *again)
{
    *again = false;
    switch (s->st) {
    case S_DATA:
        if (c == '<') {
            s->tag_start = s->pos;
            s->hold_tag = true;
            s->st = S_TAG_OPEN;
        } else if (s->after_head && !is_ws(c)) {
            return decide_insert(s, s->insert_at);
        }
        return HTML_SCAN_MORE;
    case S_TAG_OPEN:
        if (is_alpha(c)) {
            start_tag_name(s, c, false);
            *again = true;
        } else if (s->after_head) {
            return decide_insert(s, s->insert_at);
        } else if (c == '!') {
            s->hold_tag = false;
            s->md = MD_NONE;
            s->md_idx = 0;
            s->st = S_MARKUP_DECL;
        } else if (c == '/') {
            s->st = S_END_TAG_OPEN;
        } else if (c == '?') {
            s->hold_tag = false;
            s->st = S_BOGUS_COMMENT;
        } else {
            s->hold_tag = false;
            s->st = S_DATA;
            *again = true;
        }
        return HTML_SCAN_MORE;
    case S_END_TAG_OPEN:
        s->hold_tag = false;
        if (is_alpha(c)) {
            start_tag_name(s, c, true);
            *again = true;
        } else if (c == '>') {
            s->st = S_DATA;
        } else {
            s->st = S_BOGUS_COMMENT;
            *again = true;
        }
        return HTML_SCAN_MORE;
    case S_TAG_NAME:
        if (is_ws(c) || c == '/' || c == '>') {
            s->name[s->name_len <= NAME_CAP ? s->name_len : NAME_CAP] = '\0';
            enum html_scan_result r = name_done(s);
            if (r != HTML_SCAN_MORE)
                return r;
            if (c == '>')
                return tag_done(s);
            s->st = c == '/' ? S_SELF_CLOSING : S_BEFORE_ATTR_NAME;
        } else if (s->name_len < NAME_CAP) {
            s->name[s->name_len++] = (char)lower(c);
        } else {
            s->name_long = true;
        }
        return HTML_SCAN_MORE;
    case S_BEFORE_ATTR_NAME:
        if (is_ws(c))
            return HTML_SCAN_MORE;
        if (c == '/' || c == '>') {
            s->st = S_AFTER_ATTR_NAME;
            *again = true;
            return HTML_SCAN_MORE;
        }
        attr_start(s);
        s->st = S_ATTR_NAME;
        if (c == '=') /* the spec starts a name with it */
            s->attr_len = 1;
        else
            *again = true;
        return HTML_SCAN_MORE;
    case S_ATTR_NAME:
        if (is_ws(c) || c == '/' || c == '>') {
            attr_name_done(s);
            s->st = S_AFTER_ATTR_NAME;
            *again = true;
        } else if (c == '=') {
            attr_name_done(s);
            s->st = S_BEFORE_ATTR_VALUE;
        } else {
            if (s->attr_len < ATTR_CAP)
                s->attr[s->attr_len] = (char)lower(c);
            if (s->attr_len <= ATTR_CAP)
                s->attr_len++;
        }
        return HTML_SCAN_MORE;
    case S_AFTER_ATTR_NAME:
        if (is_ws(c))
            return HTML_SCAN_MORE;
        if (c == '/') {
            s->st = S_SELF_CLOSING;
        } else if (c == '=') {
            s->st = S_BEFORE_ATTR_VALUE;
        } else if (c == '>') {
            return tag_done(s);
        } else {
            attr_start(s);
            s->st = S_ATTR_NAME;
            *again = true;
        }
        return HTML_SCAN_MORE;
    case S_BEFORE_ATTR_VALUE:
        if (is_ws(c))
            return HTML_SCAN_MORE;
        if (c == '"') {
            s->st = S_ATTR_VALUE_DQ;
        } else if (c == '\'') {
            s->st = S_ATTR_VALUE_SQ;
        } else if (c == '>') {
            attr_value_done(s);
            return tag_done(s);
        } else {
            s->st = S_ATTR_VALUE_UNQ;
            *again = true;
        }
        return HTML_SCAN_MORE;
    case S_ATTR_VALUE_DQ:
    case S_ATTR_VALUE_SQ:
        if (c == (s->st == S_ATTR_VALUE_DQ ? '"' : '\'')) {
            attr_value_done(s);
            s->st = S_AFTER_ATTR_VALUE_Q;
        } else {
            attr_value_byte(s, c);
        }
        return HTML_SCAN_MORE;
    case S_ATTR_VALUE_UNQ:
        if (is_ws(c)) {
            attr_value_done(s);
            s->st = S_BEFORE_ATTR_NAME;
        } else if (c == '>') {
            attr_value_done(s);
            return tag_done(s);
        } else {
            attr_value_byte(s, c);
        }
        return HTML_SCAN_MORE;
    case S_AFTER_ATTR_VALUE_Q:
        if (is_ws(c)) {
            s->st = S_BEFORE_ATTR_NAME;
        } else if (c == '/') {
            s->st = S_SELF_CLOSING;
        } else if (c == '>') {
            return tag_done(s);
        } else {
            s->st = S_BEFORE_ATTR_NAME;
            *again = true;
        }
        return HTML_SCAN_MORE;
    case S_SELF_CLOSING:
        if (c == '>')
            return tag_done(s);
        s->st = S_BEFORE_ATTR_NAME;
        *again = true;
        return HTML_SCAN_MORE;
    case S_MARKUP_DECL: {
        static const char *const want[] = {"", "--", "doctype", "[CDATA["};
        if (s->md == MD_NONE) {
            if (c == '-')
                s->md = MD_COMMENT;
            else if (lower(c) == 'd')
                s->md = MD_DOCTYPE;
            else if (c == '[')
                s->md = MD_CDATA;
            else {
                s->st = S_BOGUS_COMMENT;
                *again = true;
                return HTML_SCAN_MORE;
            }
            s->md_idx = 1;
        } else {
            const char *w = want[s->md];
            unsigned char e = (unsigned char)w[s->md_idx];
            if ((s->md == MD_DOCTYPE ? lower(c) : c) != e) {
                s->st = S_BOGUS_COMMENT;
                *again = true;
                return HTML_SCAN_MORE;
            }
            s->md_idx++;
        }
        if (want[s->md][s->md_idx] == '\0') {
            if (s->md == MD_COMMENT) {
                s->st = S_COMMENT_START;
            } else if (s->md == MD_DOCTYPE) {
                s->doc = true;
                s->st = S_DOCTYPE;
            } else {
                s->st = S_CDATA;
            }
        }
        return HTML_SCAN_MORE;
    }
    case S_COMMENT_START:
        if (c == '-')
            s->st = S_COMMENT_START_DASH;
        else if (c == '>')
            s->st = S_DATA;
        else
            s->st = S_COMMENT;
        return HTML_SCAN_MORE;
    case S_COMMENT_START_DASH:
        if (c == '-')
            s->st = S_COMMENT_END;
        else if (c == '>')
            s->st = S_DATA;
        else
            s->st = S_COMMENT;
        return HTML_SCAN_MORE;
    case S_COMMENT:
        if (c == '-')
            s->st = S_COMMENT_END_DASH;
        return HTML_SCAN_MORE;
    case S_COMMENT_END_DASH:
        s->st = c == '-' ? S_COMMENT_END : S_COMMENT;
        return HTML_SCAN_MORE;
    case S_COMMENT_END:
        if (c == '>')
            s->st = S_DATA;
        else if (c == '!')
            s->st = S_COMMENT_END_BANG;
        else if (c != '-')
            s->st = S_COMMENT;
        return HTML_SCAN_MORE;
    case S_COMMENT_END_BANG:
        if (c == '>')
            s->st = S_DATA;
        else if (c == '-')
            s->st = S_COMMENT_END_DASH;
        else
            s->st = S_COMMENT;
        return HTML_SCAN_MORE;
    case S_DOCTYPE:
    case S_BOGUS_COMMENT:
        if (c == '>')
            s->st = S_DATA;
        return HTML_SCAN_MORE;
    case S_CDATA:
        if (c == ']')
            s->st = S_CDATA_BR1;
        return HTML_SCAN_MORE;
    case S_CDATA_BR1:
        s->st = c == ']' ? S_CDATA_BR2 : S_CDATA;
        return HTML_SCAN_MORE;
    case S_CDATA_BR2:
        if (c == '>')
            s->st = S_DATA;
        else if (c != ']')
            s->st = S_CDATA;
        return HTML_SCAN_MORE;
    case S_RAW:
        if (c == '<')
            s->st = S_RAW_LT;
        return HTML_SCAN_MORE;
    case S_RAW_LT:
        if (c == '/') {
            s->raw_idx = 0;
            s->st = S_RAW_END;
        } else {
            s->st = S_RAW;
            *again = true;
        }
        return HTML_SCAN_MORE;
    case S_RAW_END:
        if (s->raw_name[s->raw_idx] == '\0') {
            if (is_ws(c) || c == '/' || c == '>') {
                /* an appropriate end tag: tokenize its remainder like any end tag */
                s->end_tag = true;
                s->want_attrs = false;
                s->hold_tag = false;
                s->st = c == '>' ? S_DATA : (c == '/' ? S_SELF_CLOSING : S_BEFORE_ATTR_NAME);
            } else {
                s->st = S_RAW;
                *again = true;
            }
        } else if (lower(c) == (unsigned char)s->raw_name[s->raw_idx]) {
            s->raw_idx++;
        } else {
            s->st = S_RAW;
            *again = true;
        }
        return HTML_SCAN_MORE;
    }
    return HTML_SCAN_MORE;
}

/* Fast path: in states where only one byte value matters (text, raw text, comment body,
 * CDATA, quoted attribute values not being captured), the bytes before it are skipped with
 * memchr. The run is clamped so the scan limit and the held-tag cap are still checked at the
 * byte where they trip, exactly as the byte-at-a-time path would. */
static size_t skip_run(const struct html_scan *s, const char *p, size_t n)
{
    int stop;
    switch (s->st) {
    case S_DATA:
        if (s->after_head)
            return 0;
        stop = '<';
        break;
    case S_RAW:
        stop = '<';
        break;
    case S_COMMENT:
        stop = '-';
        break;
    case S_CDATA:
        stop = ']';
        break;
    case S_DOCTYPE:
    case S_BOGUS_COMMENT:
        stop = '>';
        break;
    case S_ATTR_VALUE_DQ:
    case S_ATTR_VALUE_SQ:
        if (s->attr_is_src)
            return 0;
        stop = s->st == S_ATTR_VALUE_DQ ? '"' : '\'';
        break;
    default:
        return 0;
    }
    uint64_t room = s->scan_limit - s->pos;
    if (s->hold_tag) {
        uint64_t used = s->pos - s->tag_start;
        uint64_t tag_room = used < s->max_tag ? s->max_tag - used : 0;
        if (tag_room < room)
            room = tag_room;
    }
    if (n > room)
        n = (size_t)room;
    const char *hit = memchr(p, stop, n);
    return hit ? (size_t)(hit - p) : n;
}

enum html_scan_result html_scan_feed(struct html_scan *s, const char *p, size_t n, size_t *used)
{
    size_t i = 0;
    while (s->result == HTML_SCAN_MORE && i < n) {
        if (s->pos >= s->scan_limit) {
            resolve_undecided(s);
            break;
        }
        if (s->after_head && s->pos - s->insert_at >= s->max_tag) {
            decide_insert(s, s->insert_at); /* the held span after <head> is capped too */
            break;
        }
        if (s->hold_tag && s->pos - s->tag_start >= s->max_tag) {
            if (s->after_head)
                decide_insert(s, s->insert_at);
            else
                decide_skip(s, HTML_SCAN_SKIP_TAG_LIMIT);
            break;
        }
        size_t run = skip_run(s, p + i, n - i);
        if (run) { /* bytes that cannot change the state: skip them in one go */
            s->pos += run;
            i += run;
            continue;
        }
        bool again;
        enum html_scan_result r;
        unsigned guard = 0;
        do {
            r = step(s, (unsigned char)p[i], &again);
        } while (r == HTML_SCAN_MORE && again && ++guard < 16);
        if (r != HTML_SCAN_MORE)
            break; /* the deciding byte is not consumed: insertion points are never after it */
        s->pos++;
        i++;
    }
    *used = i;
    return s->result;
}

enum html_scan_result html_scan_flush(struct html_scan *s, bool end)
{
    if (s->result != HTML_SCAN_MORE)
        return s->result;
    if (end)
        return resolve_undecided(s);
    if (s->after_head && s->st == S_DATA)
        return decide_insert(s, s->insert_at);
    return s->result;
}

uint64_t html_scan_insert_offset(const struct html_scan *s)
{
    return s->insert_at;
}

uint64_t html_scan_hold_offset(const struct html_scan *s)
{
    if (s->result != HTML_SCAN_MORE)
        return s->pos;
    if (s->after_head)
        return s->insert_at;
    return s->hold_tag ? s->tag_start : s->pos;
}

uint64_t html_scan_offset(const struct html_scan *s)
{
    return s->pos;
}

bool html_scan_is_document(const struct html_scan *s)
{
    return s->doc;
}

enum html_scan_skip html_scan_skip_reason(const struct html_scan *s)
{
    return s->skip;
}
