/* Shared corpus of HTML documents for the inject/ unit tests (and the seed corpora). In each
 * document the byte \x01 marks the expected insertion point and is removed before use; a case
 * without it expects the scanner to skip for `skip` (an enum html_scan_skip value). */
#ifndef VP_TEST_INJECT_CASES_H
#define VP_TEST_INJECT_CASES_H

#include "inject/html_scan.h"

struct inject_case {
    const char *name;
    const char *doc;
    int skip;
};

static const struct inject_case inject_cases[] = {
    {"next_app_router",
     "<!DOCTYPE html><html lang=\"en\"><head>\x01<meta charSet=\"utf-8\"/><meta name=\"viewport\" "
     "content=\"width=device-width, initial-scale=1\"/><link rel=\"stylesheet\" "
     "href=\"/_next/static/css/app/layout.css?v=1732\" data-precedence=\"next_static/css/app/"
     "layout.css\"/><link rel=\"preload\" as=\"script\" fetchPriority=\"low\" "
     "href=\"/_next/static/chunks/webpack.js?v=1732\"/><script src=\"/_next/static/chunks/"
     "main-app.js?v=1732\" async=\"\"></script><title>Create Next App</title></head><body "
     "class=\"__variable_1e4310\"><main><h1>Hello</h1></main><script>(self.__next_f=self.__next_f"
     "||[]).push([0]);self.__next_f.push([2,null])</script></body></html>",
     0},
    {"head_attrs", "<!doctype html><html><head lang=\"x\" data-a='<head>' b=c>\x01<title>t</title>",
     0},
    {"head_newline", "<!doctype html><html><head\n>\x01<meta>", 0},
    {"head_selfclosing", "<!doctype html><html><head/>\x01<meta>", 0},
    {"comment_first", "<!DOCTYPE html><!-- <head> --><html><head>\x01<meta charset=utf-8>", 0},
    {"comment_abrupt", "<!doctype html><!--><head>\x01<meta>", 0},
    {"comment_abrupt_dash", "<!doctype html><!---><head>\x01<meta>", 0},
    {"comment_bang_end", "<!doctype html><!-- a --!><head>\x01<meta>", 0},
    {"comment_dashes", "<!doctype html><!-- a --- <head> ---><head>\x01<meta>", 0},
    {"title_rcdata", "<html><title>a <head> b</title><head>\x01<meta>", 0},
    {"textarea_rcdata", "<!doctype html><textarea><head></textarea><head>\x01<meta>", 0},
    {"title_end_attrs", "<html><title>x</title  x=\"<head>\"><head>\x01<meta>", 0},
    {"noscript_raw", "<!doctype html><noscript><head></noscript ><head>\x01", 0},
    {"attr_holds_head", "<!DOCTYPE html><html data-x=\"<head>\" data-y='<head>'><head>\x01<meta>",
     0},
    {"uppercase", "<!DOCTYPE HTML><HTML><HEAD>\x01<META CHARSET=utf-8></HEAD>", 0},
    {"mixed_case", "<!DocType html><Html><hEaD>\x01<Meta>", 0},
    {"no_head_meta", "<!doctype html><html lang=en>\x01<meta charset=utf-8><title>x</title>", 0},
    {"no_head_link", "<html>\n\x01<link rel=stylesheet href=/a.css>", 0},
    {"no_head_style", "<!doctype html>\x01<style>p{}</style>", 0},
    {"no_head_body", "<!doctype html><p>hi</p>\x01<body>", 0},
    {"body_only", "\x01<body><p>x</p></body>", 0},
    {"script_before_head", "<!doctype html><html>\x01<script>var s=\"<head>\";</script><head>", 0},
    {"bom_ws", "\xEF\xBB\xBF\n  <!DOCTYPE html>\n<html>\n<head>\x01\n<meta>", 0},
    {"xhtml",
     "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 "
     "Strict//EN\" \"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd\">\n<html "
     "xmlns=\"http://www.w3.org/1999/xhtml\"><head>\x01<title>x</title></head></html>",
     0},
    {"header_element", "<!doctype html><header>x</header>\x01<link rel=icon>", 0},
    {"cdata", "<!doctype html><![CDATA[<head>]]><head>\x01", 0},
    {"bogus_comment", "<!doctype html><? <head> ?><head>\x01", 0},
    {"lt_in_text", "<!doctype html>a < b <3 </ > <head>\x01", 0},
    {"head_then_comment", "<!DOCTYPE html><html><head>\x01<!-- c --><meta>", 0},
    {"head_then_ws_script", "<!doctype html><head>\x01 \n\t<script src=\"/app.js\"></script>", 0},
    {"head_then_text", "<!doctype html><head>\x01x", 0},
    {"head_then_endtag", "<!doctype html><head>\x01</head><body>", 0},
    {"head_at_eof", "<!doctype html><head>\x01", 0},
    {"head_then_script_eof", "<!doctype html><head>\x01<script src=/app.js", 0},
    {"meta_csp",
     "<!doctype html><html><head>\x01<meta http-equiv=\"Content-Security-Policy\" "
     "content=\"script-src 'self'\">",
     0},
    {"fragment", "<div class=\"x\"><script src=\"/a.js\"></script><link rel=x></div>",
     HTML_SCAN_SKIP_NOT_DOCUMENT},
    {"fragment_text", "hello world", HTML_SCAN_SKIP_NOT_DOCUMENT},
    {"empty", "", HTML_SCAN_SKIP_NOT_DOCUMENT},
    {"fragment_script_hides_head", "<script>x=\"<html><head>\"</script><p>",
     HTML_SCAN_SKIP_NOT_DOCUMENT},
    {"fragment_comment_hides_head", "<!-- <!doctype html><head> --><p>x</p>",
     HTML_SCAN_SKIP_NOT_DOCUMENT},
    {"doc_no_point", "<!doctype html><p>only text</p>", HTML_SCAN_SKIP_NO_POINT},
    {"chained_head",
     "<!doctype html><html><head><script src=\"/__vitals/beacon.js?v=ab12\" data-vid=\"x\" "
     "async=\"\"></script><meta>",
     HTML_SCAN_SKIP_ALREADY},
    {"chained_head_ws",
     "<!doctype html><html><head>\n  <SCRIPT SRC='/__vitals/beacon.js' async=\"\"></script>",
     HTML_SCAN_SKIP_ALREADY},
    {"chained_no_head",
     "<!doctype html><html><script src=/__vitals/beacon.js?v=1 async=\"\"></script><link rel=x>",
     HTML_SCAN_SKIP_ALREADY},
    {"plaintext", "<!doctype html><plaintext><head>", HTML_SCAN_SKIP_PLAINTEXT},
};

#define INJECT_NCASES (sizeof inject_cases / sizeof inject_cases[0])

/* Copies c->doc without the marker into out (cap bytes); returns its length and sets *at to the
 * marker's offset (or -1). */
static inline size_t inject_case_doc(const struct inject_case *c, char *out, size_t cap, long *at)
{
    size_t n = 0;
    *at = -1;
    for (const char *p = c->doc; *p && n + 1 < cap; p++) {
        if (*p == '\x01')
            *at = (long)n;
        else
            out[n++] = *p;
    }
    out[n] = '\0';
    return n;
}

#endif
