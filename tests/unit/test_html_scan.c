/* Unit tests for inject/html_scan: every case of the shared corpus fed whole, byte by byte and
 * split at every position (two chunks, and three chunks around every pair for short ones); the
 * decision and the insertion offset must be the same for every chunking. Plus the limits. */
#include "config.h"
#include "inject/html_scan.h"

#include <stdint.h>
#include <string.h>

#include "common/vp_err.h"
#include "tests/support/tap.h"
#include "tests/unit/inject_cases.h"

struct outcome {
    enum html_scan_result r;
    uint64_t at;
    int skip;
    bool ok; /* consumed counts and hold offsets were consistent */
};

/* Feeds doc[0..n) in chunks ending at the offsets in cuts[0..ncuts), then the end. */
static struct outcome scan_chunks(const char *doc, size_t n, const size_t *cuts, size_t ncuts,
                                  size_t limit, size_t max_tag)
{
    struct outcome o = {HTML_SCAN_MORE, 0, 0, true};
    struct html_scan *s;
    if (html_scan_new(&s, limit, max_tag) != 0) {
        o.ok = false;
        return o;
    }
    size_t start = 0;
    for (size_t k = 0; k <= ncuts && o.r == HTML_SCAN_MORE; k++) {
        size_t end = k < ncuts ? cuts[k] : n;
        size_t used = 0;
        o.r = html_scan_feed(s, doc + start, end - start, &used);
        if (o.r == HTML_SCAN_MORE && used != end - start)
            o.ok = false;
        if (html_scan_hold_offset(s) > html_scan_offset(s))
            o.ok = false;
        start = end;
    }
    if (o.r == HTML_SCAN_MORE)
        o.r = html_scan_flush(s, true);
    o.at = html_scan_insert_offset(s);
    o.skip = (int)html_scan_skip_reason(s);
    if (o.r == HTML_SCAN_INSERT && o.at > html_scan_offset(s))
        o.ok = false;
    html_scan_free(s);
    return o;
}

static bool matches(const struct inject_case *c, long at, struct outcome o)
{
    if (!o.ok)
        return false;
    if (at >= 0)
        return o.r == HTML_SCAN_INSERT && o.at == (uint64_t)at;
    return o.r == HTML_SCAN_SKIP && o.skip == c->skip;
}

static void run_case(const struct inject_case *c)
{
    char doc[4096];
    long at;
    size_t n = inject_case_doc(c, doc, sizeof doc, &at);
    struct outcome o = scan_chunks(doc, n, NULL, 0, 0, 0);
    TAP_OK(matches(c, at, o), "html_scan/%s/whole (r=%d at=%llu skip=%d, want at=%ld skip=%d)",
           c->name, (int)o.r, (unsigned long long)o.at, o.skip, at, c->skip);

    size_t cuts[4096];
    for (size_t i = 0; i + 1 < n; i++)
        cuts[i] = i + 1;
    o = scan_chunks(doc, n, cuts, n ? n - 1 : 0, 0, 0);
    TAP_OK(matches(c, at, o), "html_scan/%s/bytewise", c->name);

    size_t bad = 0, runs = 0;
    for (size_t i = 0; i <= n; i++) {
        o = scan_chunks(doc, n, &i, 1, 0, 0);
        runs++;
        if (!matches(c, at, o))
            bad++;
    }
    if (n <= 200) {
        for (size_t i = 0; i <= n; i++)
            for (size_t j = i; j <= n; j++) {
                size_t cc[2] = {i, j};
                o = scan_chunks(doc, n, cc, 2, 0, 0);
                runs++;
                if (!matches(c, at, o))
                    bad++;
            }
    }
    TAP_OK(bad == 0, "html_scan/%s/every_split (%zu of %zu chunkings differ)", c->name, bad, runs);
}

static void test_limits(void)
{
    static char big[80 * 1024];
    /* a document with no insertion point in the first scan_limit bytes */
    size_t n = (size_t)snprintf(big, sizeof big, "<!doctype html><p>");
    memset(big + n, 'a', 70000);
    n += 70000;
    memcpy(big + n, "<head>", 6);
    n += 6;
    struct outcome o = scan_chunks(big, n, NULL, 0, 0, 0);
    TAP_OK(o.r == HTML_SCAN_SKIP && o.skip == HTML_SCAN_SKIP_NO_POINT, "html_scan/scan_limit_doc");

    /* not a document within the limit, although one follows */
    n = 0;
    memset(big, 'b', 65536);
    n = 65536;
    memcpy(big + n, "<!doctype html><head>", 21);
    n += 21;
    o = scan_chunks(big, n, NULL, 0, 0, 0);
    TAP_OK(o.r == HTML_SCAN_SKIP && o.skip == HTML_SCAN_SKIP_NOT_DOCUMENT,
           "html_scan/scan_limit_fragment");

    /* a configured smaller limit */
    const char *late = "<!doctype html>0123456789012345678901234567890123456789<head>";
    o = scan_chunks(late, strlen(late), NULL, 0, 32, 0);
    TAP_OK(o.r == HTML_SCAN_SKIP, "html_scan/scan_limit_option");
    o = scan_chunks(late, strlen(late), NULL, 0, 100, 0);
    TAP_OK(o.r == HTML_SCAN_INSERT && o.at == strlen(late), "html_scan/scan_limit_option_fits");

    /* one unfinished script tag past max_tag: give up */
    n = (size_t)snprintf(big, sizeof big, "<!doctype html><html><script data-x=\"");
    memset(big + n, 'x', 9000);
    n += 9000;
    memcpy(big + n, "\"></script>", 11);
    n += 11;
    o = scan_chunks(big, n, NULL, 0, 0, 0);
    TAP_OK(o.r == HTML_SCAN_SKIP && o.skip == HTML_SCAN_SKIP_TAG_LIMIT, "html_scan/tag_limit");

    /* the same tag under a larger max_tag: insertion before it */
    o = scan_chunks(big, n, NULL, 0, 0, 16 * 1024);
    TAP_OK(o.r == HTML_SCAN_INSERT && o.at == 21, "html_scan/tag_limit_option");

    /* a long non-candidate tag is not held, so it never hits the cap */
    n = (size_t)snprintf(big, sizeof big, "<!doctype html><div data-x=\"");
    memset(big + n, 'x', 20000);
    n += 20000;
    n += (size_t)snprintf(big + n, sizeof big - n, "\"></div><head>");
    o = scan_chunks(big, n, NULL, 0, 0, 0);
    TAP_OK(o.r == HTML_SCAN_INSERT && o.at == n, "html_scan/long_other_tag");

    /* lots of whitespace after <head>: the held span is capped as well */
    n = (size_t)snprintf(big, sizeof big, "<!doctype html><head>");
    memset(big + n, ' ', 20000);
    n += 20000;
    struct html_scan *hs;
    size_t used;
    TAP_OK(html_scan_new(&hs, 0, 0) == 0 && html_scan_feed(hs, big, n, &used) == HTML_SCAN_INSERT &&
               html_scan_insert_offset(hs) == 21 && used <= 21 + HTML_SCAN_DEFAULT_MAX_TAG,
           "html_scan/after_head_whitespace_cap");
    html_scan_free(hs);

    /* a long tag after <head>: the held span is capped, the tag goes after <head> */
    n = (size_t)snprintf(big, sizeof big, "<!doctype html><head><script data-x=\"");
    memset(big + n, 'x', 9000);
    n += 9000;
    o = scan_chunks(big, n, NULL, 0, 0, 0);
    TAP_OK(o.r == HTML_SCAN_INSERT && o.at == 21, "html_scan/after_head_tag_limit");
}

static void test_flush(void)
{
    struct html_scan *s;
    size_t used;
    const char *a = "<!doctype html><head>  ";
    TAP_OK(html_scan_new(&s, 0, 0) == 0, "html_scan/flush_new");
    TAP_OK(html_scan_feed(s, a, strlen(a), &used) == HTML_SCAN_MORE, "html_scan/flush_pending");
    TAP_OK(html_scan_hold_offset(s) == 21, "html_scan/flush_holds_after_head");
    TAP_OK(html_scan_flush(s, false) == HTML_SCAN_INSERT && html_scan_insert_offset(s) == 21,
           "html_scan/flush_resolves_whitespace");
    TAP_OK(html_scan_feed(s, "x", 1, &used) == HTML_SCAN_INSERT && used == 0,
           "html_scan/decided_consumes_nothing");
    html_scan_free(s);

    const char *b = "<!doctype html><head><scr";
    TAP_OK(html_scan_new(&s, 0, 0) == 0, "html_scan/flush_new2");
    TAP_OK(html_scan_feed(s, b, strlen(b), &used) == HTML_SCAN_MORE, "html_scan/flush_in_tag");
    TAP_OK(html_scan_flush(s, false) == HTML_SCAN_MORE, "html_scan/flush_keeps_unfinished_tag");
    const char *c = "ipt src=\"/__vitals/beacon.js\">";
    TAP_OK(html_scan_feed(s, c, strlen(c), &used) == HTML_SCAN_SKIP &&
               html_scan_skip_reason(s) == HTML_SCAN_SKIP_ALREADY,
           "html_scan/flush_then_chained");
    html_scan_free(s);

    const char *d = "<!doctype html><p>x";
    TAP_OK(html_scan_new(&s, 0, 0) == 0, "html_scan/flush_new3");
    TAP_OK(html_scan_feed(s, d, strlen(d), &used) == HTML_SCAN_MORE &&
               html_scan_hold_offset(s) == strlen(d),
           "html_scan/no_hold_in_text");
    TAP_OK(html_scan_flush(s, false) == HTML_SCAN_MORE, "html_scan/flush_undecided");
    TAP_OK(html_scan_is_document(s), "html_scan/is_document");
    html_scan_free(s);
    html_scan_free(NULL);
}

int main(void)
{
    for (size_t i = 0; i < INJECT_NCASES; i++)
        run_case(&inject_cases[i]);
    test_limits();
    test_flush();
    TAP_DONE();
}
