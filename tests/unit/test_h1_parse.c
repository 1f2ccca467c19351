/* Unit tests for proxy/h1_parse: a table of named request/response heads and chunked bodies.
 * Each case is fed whole, byte by byte, and split in two at every point; the result (a
 * signature string of everything the parser reports) must be the expected one every time. */
#include "config.h"
#include "proxy/h1_parse.h"

#include "common/vp_err.h"
#include "tests/support/tap.h"

#include <stdio.h>
#include <string.h>

struct head_case {
    const char *name;
    enum h1_kind kind;
    bool head_req;
    const char *in;
    const char *want; /* signature */
};

static const struct h1_limits LIM = {.max_line = 64, .max_head = 256, .max_headers = 8};

/* Builds the signature of one parse; pieces = split sizes (0 ends). */
static void sig_head(const struct head_case *tc, const size_t *cuts, size_t ncuts, char *out,
                     size_t cap)
{
    struct h1_parser *p;
    if (h1_parser_new(&p, tc->kind, &LIM) != 0) {
        snprintf(out, cap, "NOMEM");
        return;
    }
    h1_parser_reset(p, tc->head_req);
    size_t len = strlen(tc->in), off = 0, total = 0;
    int rc = H1_AGAIN;
    for (size_t k = 0; k <= ncuts && rc == H1_AGAIN; k++) {
        size_t end = k < ncuts ? cuts[k] : len;
        size_t consumed = 0;
        rc = h1_parser_feed(p, tc->in + off, end - off, &consumed);
        total += consumed;
        off = end;
    }
    if (rc == H1_AGAIN) {
        snprintf(out, cap, "AGAIN");
    } else if (rc < 0) {
        snprintf(out, cap, "ERR %d", h1_parser_status(p));
    } else {
        int w;
        if (tc->kind == H1_REQUEST)
            w = snprintf(out, cap, "%s %s 1.%d", h1_parser_method(p), h1_parser_target(p),
                         h1_parser_version_minor(p));
        else
            w = snprintf(out, cap, "%d [%s] 1.%d", h1_parser_status_code(p), h1_parser_reason(p),
                         h1_parser_version_minor(p));
        static const char *fr[] = {"none", "len", "chunked", "close"};
        w += snprintf(out + w, cap - (size_t)w, " f=%s", fr[h1_parser_framing(p)]);
        if (h1_parser_framing(p) == H1_BODY_LENGTH)
            w += snprintf(out + w, cap - (size_t)w, ":%llu",
                          (unsigned long long)h1_parser_content_length(p));
        w += snprintf(out + w, cap - (size_t)w, "%s%s%s", h1_parser_keep_alive(p) ? " ka" : "",
                      h1_parser_upgrade(p) ? " up" : "",
                      h1_parser_expect_continue(p) ? " 100c" : "");
        for (size_t i = 0; i < h1_parser_header_count(p); i++) {
            const char *n, *v;
            h1_parser_header(p, i, &n, &v);
            w += snprintf(out + w, cap - (size_t)w, " |%s=%s", n, v);
        }
        snprintf(out + w, cap - (size_t)w, " rest=%zu", len - total);
    }
    h1_parser_free(p);
}

#define H "Host: a\r\n"
static const struct head_case heads[] = {
    {"req/simple_get", H1_REQUEST, false, "GET / HTTP/1.1\r\n" H "\r\n", "GET / 1.1 f=none ka |Host=a rest=0"},
    {"req/pipelined_rest", H1_REQUEST, false, "GET /a HTTP/1.1\r\n" H "\r\nGET /b HTTP/1.1\r\n",
     "GET /a 1.1 f=none ka |Host=a rest=17"},
    {"req/leading_crlf", H1_REQUEST, false, "\r\n\r\nGET / HTTP/1.1\r\n" H "\r\n", "GET / 1.1 f=none ka |Host=a rest=0"},
    {"req/http10_close", H1_REQUEST, false, "GET / HTTP/1.0\r\n\r\n", "GET / 1.0 f=none rest=0"},
    {"req/http10_keepalive", H1_REQUEST, false, "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
     "GET / 1.0 f=none ka |Connection=Keep-Alive rest=0"},
    {"req/connection_close", H1_REQUEST, false, "GET / HTTP/1.1\r\n" H "Connection: close\r\n\r\n",
     "GET / 1.1 f=none |Host=a |Connection=close rest=0"},
    {"req/content_length", H1_REQUEST, false, "POST /u HTTP/1.1\r\n" H "Content-Length: 5\r\n\r\nhello",
     "POST /u 1.1 f=len:5 ka |Host=a |Content-Length=5 rest=5"},
    {"req/cl_zero", H1_REQUEST, false, "POST /u HTTP/1.1\r\n" H "Content-Length: 0\r\n\r\n",
     "POST /u 1.1 f=none ka |Host=a |Content-Length=0 rest=0"},
    {"req/cl_same_dup", H1_REQUEST, false, "POST / HTTP/1.1\r\n" H "Content-Length: 3\r\nContent-Length: 3\r\n\r\n",
     "POST / 1.1 f=len:3 ka |Host=a |Content-Length=3 |Content-Length=3 rest=0"},
    {"req/cl_list_same", H1_REQUEST, false, "POST / HTTP/1.1\r\n" H "Content-Length: 3, 3\r\n\r\n",
     "POST / 1.1 f=len:3 ka |Host=a |Content-Length=3, 3 rest=0"},
    {"req/cl_differ", H1_REQUEST, false, "POST / HTTP/1.1\r\n" H "Content-Length: 3\r\nContent-Length: 4\r\n\r\n", "ERR 400"},
    {"req/cl_list_differ", H1_REQUEST, false, "POST / HTTP/1.1\r\n" H "Content-Length: 3,4\r\n\r\n", "ERR 400"},
    {"req/cl_negative", H1_REQUEST, false, "POST / HTTP/1.1\r\n" H "Content-Length: -1\r\n\r\n", "ERR 400"},
    {"req/cl_plus", H1_REQUEST, false, "POST / HTTP/1.1\r\n" H "Content-Length: +1\r\n\r\n", "ERR 400"},
    {"req/cl_huge", H1_REQUEST, false, "POST / HTTP/1.1\r\n" H "Content-Length: 99999999999999999999\r\n\r\n", "ERR 400"},
    {"req/cl_hex", H1_REQUEST, false, "POST / HTTP/1.1\r\n" H "Content-Length: 0x10\r\n\r\n", "ERR 400"},
    {"req/chunked", H1_REQUEST, false, "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n",
     "POST / 1.1 f=chunked ka |Host=a |Transfer-Encoding=chunked rest=0"},
    {"req/cl_and_te", H1_REQUEST, false, "POST / HTTP/1.1\r\n" H "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", "ERR 400"},
    {"req/te_and_cl", H1_REQUEST, false, "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", "ERR 400"},
    {"req/te_gzip_chunked", H1_REQUEST, false, "POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip, chunked\r\n\r\n", "ERR 400"},
    {"req/te_twice", H1_REQUEST, false, "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", "ERR 400"},
    {"req/te_identity", H1_REQUEST, false, "POST / HTTP/1.1\r\n" H "Transfer-Encoding: identity\r\n\r\n", "ERR 400"},
    {"req/te_http10", H1_REQUEST, false, "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", "ERR 400"},
    {"req/te_space_in_name", H1_REQUEST, false, "POST / HTTP/1.1\r\n" H "Transfer-Encoding : chunked\r\n\r\n", "ERR 400"},
    {"req/obs_fold", H1_REQUEST, false, "GET / HTTP/1.1\r\n" H "X-A: b\r\n c\r\n\r\n", "ERR 400"},
    {"req/ws_before_first_header", H1_REQUEST, false, "GET / HTTP/1.1\r\n Host: a\r\n\r\n", "ERR 400"},
    {"req/bare_cr_value", H1_REQUEST, false, "GET / HTTP/1.1\r\n" H "X-A: b\rc\r\n\r\n", "ERR 400"},
    {"req/bare_cr_line", H1_REQUEST, false, "GET / HTTP/1.1\rX\n" H "\r\n", "ERR 400"},
    {"req/bare_lf_line", H1_REQUEST, false, "GET / HTTP/1.1\n" H "\r\n", "ERR 400"},
    {"req/bare_lf_header", H1_REQUEST, false, "GET / HTTP/1.1\r\nHost: a\n\r\n", "ERR 400"},
    {"req/nul_in_value", H1_REQUEST, false, "GET / HTTP/1.1\r\n" H "X-A: b\x01" "c\r\n\r\n", "ERR 400"},
    {"req/bad_method", H1_REQUEST, false, "G(T / HTTP/1.1\r\n" H "\r\n", "ERR 400"},
    {"req/lower_method_ok", H1_REQUEST, false, "get / HTTP/1.1\r\n" H "\r\n", "get / 1.1 f=none ka |Host=a rest=0"},
    {"req/double_space", H1_REQUEST, false, "GET  / HTTP/1.1\r\n" H "\r\n", "ERR 400"},
    {"req/target_space", H1_REQUEST, false, "GET /a b HTTP/1.1\r\n" H "\r\n", "ERR 400"},
    {"req/target_8bit", H1_REQUEST, false, "GET /\xc3\xa9 HTTP/1.1\r\n" H "\r\n", "ERR 400"},
    {"req/target_relative", H1_REQUEST, false, "GET a HTTP/1.1\r\n" H "\r\n", "ERR 400"},
    {"req/target_absolute", H1_REQUEST, false, "GET http://x.example/p?q HTTP/1.1\r\n" H "\r\n",
     "GET /p?q 1.1 f=none ka |Host=a rest=0"},
    {"req/target_absolute_nopath", H1_REQUEST, false, "GET https://x.example HTTP/1.1\r\n" H "\r\n",
     "GET / 1.1 f=none ka |Host=a rest=0"},
    {"req/asterisk_options", H1_REQUEST, false, "OPTIONS * HTTP/1.1\r\n" H "\r\n", "OPTIONS * 1.1 f=none ka |Host=a rest=0"},
    {"req/asterisk_get", H1_REQUEST, false, "GET * HTTP/1.1\r\n" H "\r\n", "ERR 400"},
    {"req/connect", H1_REQUEST, false, "CONNECT a:443 HTTP/1.1\r\n" H "\r\n", "ERR 400"},
    {"req/version_bad", H1_REQUEST, false, "GET / HTTP/1.x\r\n" H "\r\n", "ERR 400"},
    {"req/version_2", H1_REQUEST, false, "GET / HTTP/2.0\r\n" H "\r\n", "ERR 400"},
    {"req/version_long", H1_REQUEST, false, "GET / HTTP/1.11\r\n" H "\r\n", "ERR 400"},
    {"req/version_lower", H1_REQUEST, false, "GET / http/1.1\r\n" H "\r\n", "ERR 400"},
    {"req/no_host", H1_REQUEST, false, "GET / HTTP/1.1\r\n\r\n", "ERR 400"},
    {"req/two_hosts", H1_REQUEST, false, "GET / HTTP/1.1\r\n" H H "\r\n", "ERR 400"},
    {"req/host_slash", H1_REQUEST, false, "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", "ERR 400"},
    {"req/host_quote", H1_REQUEST, false, "GET / HTTP/1.1\r\nHost: a\"b\r\n\r\n", "ERR 400"},
    {"req/host_angle", H1_REQUEST, false, "GET / HTTP/1.1\r\nHost: a<b>\r\n\r\n", "ERR 400"},
    {"req/host_high_bit", H1_REQUEST, false, "GET / HTTP/1.1\r\nHost: \xc3\xa9.test\r\n\r\n",
     "ERR 400"},
    {"req/host_at", H1_REQUEST, false, "GET / HTTP/1.1\r\nHost: u@evil\r\n\r\n", "ERR 400"},
    {"req/host_v6_port", H1_REQUEST, false, "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
     "GET / 1.1 f=none ka |Host=[::1]:8080 rest=0"},
    {"req/host_empty", H1_REQUEST, false, "GET / HTTP/1.1\r\nHost:\r\n\r\n",
     "GET / 1.1 f=none ka |Host= rest=0"},
    {"req/host_pct_subdelims", H1_REQUEST, false, "GET / HTTP/1.1\r\nHost: a%41-b_c~!$&'()*+,;=.x:1\r\n\r\n",
     "GET / 1.1 f=none ka |Host=a%41-b_c~!$&'()*+,;=.x:1 rest=0"},
    /* Host = uri-host [":" port]: the port is digits, a bracket only wraps a whole IP literal. */
    {"req/host_port_letters", H1_REQUEST, false, "GET / HTTP/1.1\r\nHost: a:abc\r\n\r\n", "ERR 400"},
    {"req/host_two_ports", H1_REQUEST, false, "GET / HTTP/1.1\r\nHost: a:80:80\r\n\r\n", "ERR 400"},
    {"req/host_v6_unclosed", H1_REQUEST, false, "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", "ERR 400"},
    {"req/host_v6_junk", H1_REQUEST, false, "GET / HTTP/1.1\r\nHost: [a]b\r\n\r\n", "ERR 400"},
    {"req/host_v6_not_hex", H1_REQUEST, false, "GET / HTTP/1.1\r\nHost: [zz]\r\n\r\n", "ERR 400"},
    {"req/host_bracket_inside", H1_REQUEST, false, "GET / HTTP/1.1\r\nHost: a[::1]\r\n\r\n",
     "ERR 400"},
    {"req/host_v6_bad_port", H1_REQUEST, false, "GET / HTTP/1.1\r\nHost: [::1]:8a\r\n\r\n",
     "ERR 400"},
    {"req/host_v4_mapped", H1_REQUEST, false, "GET / HTTP/1.1\r\nHost: [::ffff:127.0.0.1]\r\n\r\n",
     "GET / 1.1 f=none ka |Host=[::ffff:127.0.0.1] rest=0"},
    {"req/host_empty_port", H1_REQUEST, false, "GET / HTTP/1.1\r\nHost: a:\r\n\r\n",
     "GET / 1.1 f=none ka |Host=a: rest=0"},
    {"req/empty_name", H1_REQUEST, false, "GET / HTTP/1.1\r\n" H ": v\r\n\r\n", "ERR 400"},
    {"req/ows_trim", H1_REQUEST, false, "GET / HTTP/1.1\r\n" H "X-A: \t v w \t\r\nX-E:\r\n\r\n",
     "GET / 1.1 f=none ka |Host=a |X-A=v w |X-E= rest=0"},
    {"req/upgrade", H1_REQUEST, false, "GET /ws HTTP/1.1\r\n" H "Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n",
     "GET /ws 1.1 f=none ka up |Host=a |Connection=keep-alive, Upgrade |Upgrade=websocket rest=0"},
    {"req/upgrade_no_conn", H1_REQUEST, false, "GET /ws HTTP/1.1\r\n" H "Upgrade: websocket\r\n\r\n",
     "GET /ws 1.1 f=none ka |Host=a |Upgrade=websocket rest=0"},
    {"req/expect", H1_REQUEST, false, "PUT /u HTTP/1.1\r\n" H "Expect: 100-Continue\r\nContent-Length: 2\r\n\r\n",
     "PUT /u 1.1 f=len:2 ka 100c |Host=a |Expect=100-Continue |Content-Length=2 rest=0"},
    {"req/line_limit_414", H1_REQUEST, false, "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n" H "\r\n", "ERR 414"},
    {"req/line_limit_exact", H1_REQUEST, false, "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n" H "\r\n",
     "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 1.1 f=none ka |Host=a rest=0"},
    {"req/head_limit_431", H1_REQUEST, false, "GET / HTTP/1.1\r\n" H
     "X-A: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
     "X-B: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
     "X-C: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n", "ERR 431"},
    {"req/too_many_headers", H1_REQUEST, false, "GET / HTTP/1.1\r\n" H "a:1\r\nb:1\r\nc:1\r\nd:1\r\ne:1\r\nf:1\r\ng:1\r\nh:1\r\n\r\n", "ERR 431"},
    {"req/incomplete", H1_REQUEST, false, "GET / HTTP/1.1\r\nHost: a\r\n", "AGAIN"},
    {"req/crlf_flood_414", H1_REQUEST, false,
     "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n", "ERR 414"},
    /* Boundaries of the whole-line fast paths (a line taken at once must give what the byte loop
     * gives, limits included). */
    {"req/crlf_then_line_ok", H1_REQUEST, false, "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n" H "\r\n",
     "GET / 1.1 f=none ka |Host=a rest=0"},
    {"req/crlf_then_line_414", H1_REQUEST, false, "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n" H "\r\n", "ERR 414"},
    {"req/head_limit_exact", H1_REQUEST, false, "GET / HTTP/1.1\r\n" H "X-A: vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv\r\n\r\n",
     "GET / 1.1 f=none ka |Host=a |X-A=vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv rest=0"},
    {"req/head_limit_plus_one", H1_REQUEST, false, "GET / HTTP/1.1\r\n" H "X-A: vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv\r\n\r\n",
     "ERR 431"},
    {"req/max_headers_exact", H1_REQUEST, false, "GET / HTTP/1.1\r\n" H "a:1\r\nb:1\r\nc:1\r\nd:1\r\ne:1\r\nf:1\r\ng:1\r\n\r\n",
     "GET / 1.1 f=none ka |Host=a |a=1 |b=1 |c=1 |d=1 |e=1 |f=1 |g=1 rest=0"},
    {"req/value_del", H1_REQUEST, false, "GET / HTTP/1.1\r\n" H "X-A: 0123456789abcdef0123\x7f\r\n\r\n", "ERR 400"},
    {"req/value_tab_long", H1_REQUEST, false, "GET / HTTP/1.1\r\n" H "X-A: 0123456789\tabcdef0123456789 \t \r\n\r\n",
     "GET / 1.1 f=none ka |Host=a |X-A=0123456789\tabcdef0123456789 rest=0"},
    {"req/version_minor_0_fast", H1_REQUEST, false, "PUT /x HTTP/1.0\r\nContent-Length: 1\r\n\r\nz",
     "PUT /x 1.0 f=len:1 |Content-Length=1 rest=1"},
    {"resp/reason_two_spaces", H1_RESPONSE, false, "HTTP/1.1 200  OK\r\nContent-Length: 0\r\n\r\n",
     "200 [ OK] 1.1 f=none ka |Content-Length=0 rest=0"},
    {"resp/reason_bad_byte", H1_RESPONSE, false, "HTTP/1.1 200 O\x01K\r\n\r\n", "ERR 502"},
    {"resp/status_99", H1_RESPONSE, false, "HTTP/1.1 099 X\r\n\r\n", "ERR 502"},
    {"resp/version_bad_fast", H1_RESPONSE, false, "HTTP/1.x 200 OK\r\n\r\n", "ERR 502"},
    {"resp/ok_length", H1_RESPONSE, false, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", "200 [OK] 1.1 f=len:10 ka |Content-Length=10 rest=0"},
    {"resp/chunked", H1_RESPONSE, false, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n",
     "200 [OK] 1.1 f=chunked ka |Transfer-Encoding=chunked rest=3"},
    {"resp/close_delimited", H1_RESPONSE, false, "HTTP/1.1 200 OK\r\n\r\n", "200 [OK] 1.1 f=close rest=0"},
    {"resp/no_reason", H1_RESPONSE, false, "HTTP/1.1 204\r\n\r\n", "204 [] 1.1 f=none ka rest=0"},
    {"resp/empty_reason", H1_RESPONSE, false, "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", "404 [] 1.1 f=none ka |Content-Length=0 rest=0"},
    {"resp/head", H1_RESPONSE, true, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", "200 [OK] 1.1 f=none ka |Content-Length=10 rest=0"},
    {"resp/304", H1_RESPONSE, false, "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", "304 [Not Modified] 1.1 f=none ka |Content-Length=10 rest=0"},
    {"resp/100", H1_RESPONSE, false, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n", "100 [Continue] 1.1 f=none ka rest=17"},
    {"resp/101", H1_RESPONSE, false, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
     "101 [Switching Protocols] 1.1 f=none ka up |Upgrade=websocket |Connection=Upgrade rest=0"},
    {"resp/http10", H1_RESPONSE, false, "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", "200 [OK] 1.0 f=len:1 |Content-Length=1 rest=0"},
    {"resp/status_short", H1_RESPONSE, false, "HTTP/1.1 20 OK\r\n\r\n", "ERR 502"},
    {"resp/status_600", H1_RESPONSE, false, "HTTP/1.1 600 X\r\n\r\n", "ERR 502"},
    {"resp/garbage", H1_RESPONSE, false, "SSH-2.0-OpenSSH\r\n\r\n", "ERR 502"},
    {"resp/cl_te", H1_RESPONSE, false, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", "ERR 502"},
    {"resp/cl_differ", H1_RESPONSE, false, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 2\r\n\r\n", "ERR 502"},
    {"resp/too_long", H1_RESPONSE, false, "HTTP/1.1 200 OKaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n", "ERR 502"},
};

/* ---- chunked ---- */

struct chunk_case {
    const char *name;
    const char *in;
    /* "<payload>|END rest=N" or "ERR" or "MORE <payload>"; with keep, the trailer runs joined
     * ("|T=<bytes>", CRLF shown as "~") before "|END"; " cut" when h1_chunked_cut(). */
    const char *want;
    bool keep; /* h1_chunked_keep_trailers */
};

#define LONG70 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static const struct chunk_case chunks[] = {
    {"chunked/simple", "5\r\nhello\r\n0\r\n\r\n", "hello|END rest=0", false},
    {"chunked/two", "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nNEXT", "abcde|END rest=4", false},
    {"chunked/hex_upper", "A\r\n0123456789\r\n0\r\n\r\n", "0123456789|END rest=0", false},
    {"chunked/ext", "3;name=val\r\nabc\r\n0;x\r\n\r\n", "abc|END rest=0", false},
    {"chunked/trailers", "1\r\nz\r\n0\r\nX-T: 1\r\nX-U: 2\r\n\r\n", "z|END rest=0", false},
    {"chunked/leading_zeros", "0003\r\nabc\r\n0\r\n\r\n", "abc|END rest=0", false},
    {"chunked/no_digits", "\r\nabc\r\n0\r\n\r\n", "ERR", false},
    {"chunked/bad_hex", "3g\r\nabc\r\n0\r\n\r\n", "ERR", false},
    {"chunked/negative", "-3\r\nabc\r\n0\r\n\r\n", "ERR", false},
    {"chunked/overflow", "10000000000000000\r\n", "ERR", false},
    {"chunked/missing_crlf", "3\r\nabcd\r\n0\r\n\r\n", "ERR", false},
    {"chunked/bare_lf_size", "3\nabc\r\n0\r\n\r\n", "ERR", false},
    {"chunked/bare_cr_end", "3\r\nabc\r\n0\r\n\rX", "abc|END rest=1 cut", false},
    {"chunked/trailer_fold", "0\r\nX: 1\r\n 2\r\n\r\n", "|END rest=6 cut", false},
    {"chunked/ext_ctl", "3;a\x01\r\nabc\r\n0\r\n\r\n", "ERR", false},
    {"chunked/ext_too_long", "3;aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nabc\r\n0\r\n\r\n", "ERR", false},
    {"chunked/incomplete", "5\r\nhel", "MORE hel", false},
    /* Trailer sections kept for forwarding (h1_chunked_keep_trailers). */
    {"trailers/kept", "1\r\nz\r\n0\r\nX-T: 1\r\nX-U:2\r\n\r\nNEXT", "z|T=X-T: 1~X-U:2~|END rest=4", true},
    {"trailers/none", "1\r\nz\r\n0\r\n\r\n", "z|END rest=0", true},
    {"trailers/after_ext", "2\r\nab\r\n0;e=1\r\ngrpc-status: 0\r\n\r\n", "ab|T=grpc-status: 0~|END rest=0", true},
    {"trailers/empty_value", "0\r\nX-E:\r\n\r\n", "|T=X-E:~|END rest=0", true},
    {"trailers/obs_text", "0\r\nX-O: caf\xc3\xa9\r\n\r\n", "|T=X-O: caf\xc3\xa9~|END rest=0", true},
    {"trailers/incomplete", "0\r\nX-T: 1\r\nX-U", "MORE |T=X-T: 1~X-U", true},
    {"trailers/fold", "0\r\nX: 1\r\n 2\r\n\r\n", "|END rest=6 cut", true},
    {"trailers/space_before_colon", "0\r\nX : 1\r\n\r\n", "|END rest=8 cut", true},
    {"trailers/bad_name", "0\r\nX(y): 1\r\n\r\n", "|END rest=10 cut", true},
    {"trailers/ctl_in_value", "0\r\nX: a\x01b\r\n\r\n", "|END rest=5 cut", true},
    {"trailers/bare_lf", "0\r\nX: 1\n\r\n", "|END rest=3 cut", true},
    {"trailers/bare_cr_line", "0\r\nX: 1\rY\r\n\r\n", "|END rest=5 cut", true},
    {"trailers/bare_cr_end", "0\r\nX: 1\r\n\rY", "|END rest=1 cut", true},
    /* 64 bytes of trailer section at most (the tests' limit), the LF of the last-chunk line
     * included: the 64th byte is accepted, the 65th ends the message. */
    {"trailers/over_limit", "0\r\nX-Long: " LONG70 "\r\n\r\n", "|END rest=19 cut", true},
    {"trailers/at_limit", "0\r\nX-Long: " "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" "\r\n\r\n", "|T=X-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa~|END rest=0", true},
    {"trailers/dropped_over_limit", "0\r\nX-Long: " LONG70 "\r\n\r\n", "|END rest=19 cut", false},
    {"trailers/data_errors_still_fail", "3\r\nabcd\r\n0\r\nX: 1\r\n\r\n", "ERR", true},
};

static void sig_chunk(const struct chunk_case *tc, const size_t *cuts, size_t ncuts, char *out,
                      size_t cap)
{
    struct h1_chunked c;
    h1_chunked_init(&c, 64);
    if (tc->keep)
        h1_chunked_keep_trailers(&c);
    char payload[256], tr[256];
    size_t plen = 0, tlen = 0;
    size_t len = strlen(tc->in), off = 0;
    for (size_t k = 0; k <= ncuts; k++) {
        size_t end = k < ncuts ? cuts[k] : len;
        while (off < end) {
            size_t consumed = 0, dl = 0;
            int rc = h1_chunked_feed(&c, tc->in + off, end - off, &consumed, &dl);
            if (rc < 0) {
                snprintf(out, cap, "ERR");
                return;
            }
            if (rc == H1_CHUNK_TRAILER && !tc->keep) {
                snprintf(out, cap, "TRAILER without keep");
                return;
            }
            char *buf = rc == H1_CHUNK_TRAILER ? tr : payload;
            size_t *bl = rc == H1_CHUNK_TRAILER ? &tlen : &plen;
            if (dl > consumed || (rc != H1_CHUNK_DATA && rc != H1_CHUNK_TRAILER && dl)) {
                snprintf(out, cap, "bad data_len");
                return;
            }
            for (size_t i = 0; i < dl && *bl + 1 < sizeof payload; i++) {
                char ch = tc->in[off + consumed - dl + i];
                buf[(*bl)++] = rc == H1_CHUNK_TRAILER && (ch == '\r' || ch == '\n') ? '~' : ch;
            }
            off += consumed;
            if (rc == H1_CHUNK_END) {
                /* A cut section is discarded, whatever part of it was reported. */
                if (h1_chunked_cut(&c))
                    tlen = 0;
                /* CRLF shows as "~~": collapse each pair to one "~" */
                size_t w = 0;
                for (size_t i = 0; i < tlen; i++)
                    if (!(tr[i] == '~' && i + 1 < tlen && tr[i + 1] == '~' && (i == 0 || tr[i - 1] != '~')))
                        tr[w++] = tr[i];
                snprintf(out, cap, "%.*s%s%.*s|END rest=%zu%s", (int)plen, payload,
                         w ? "|T=" : "", (int)w, tr, len - off, h1_chunked_cut(&c) ? " cut" : "");
                return;
            }
            if (consumed == 0 && rc != H1_CHUNK_DATA) {
                snprintf(out, cap, "no progress");
                return;
            }
        }
    }
    size_t w = 0;
    for (size_t i = 0; i < tlen; i++)
        if (!(tr[i] == '~' && i + 1 < tlen && tr[i + 1] == '~' && (i == 0 || tr[i - 1] != '~')))
            tr[w++] = tr[i];
    snprintf(out, cap, "MORE %.*s%s%.*s", (int)plen, payload, w ? "|T=" : "", (int)w, tr);
}

/* h1_trailer_next over a collected section, and h1_trailer_forbidden. */
static void trailer_helpers(void)
{
    static const char sec[] = "grpc-status: 0\r\nX-E:\r\nServer-Timing:  db;dur=53 \t\r\nbroken";
    size_t off = 0, nl, vl;
    const char *n, *v;
    char got[256] = "";
    size_t gl = 0;
    while (h1_trailer_next(sec, sizeof sec - 1, &off, &n, &nl, &v, &vl))
        gl += (size_t)snprintf(got + gl, sizeof got - gl, "[%.*s=%.*s]", (int)nl, n, (int)vl, v);
    TAP_OK(strcmp(got, "[grpc-status=0][X-E=][Server-Timing=db;dur=53]") == 0 &&
               off == sizeof sec - 1 - 6,
           "trailers/next_fields");
    if (strcmp(got, "[grpc-status=0][X-E=][Server-Timing=db;dur=53]") != 0)
        printf("# got: %s\n", got);
    off = 0;
    TAP_OK(!h1_trailer_next(":x\r\n", 4, &off, &n, &nl, &v, &vl) && off == 0,
           "trailers/next_empty_name");
    TAP_OK(!h1_trailer_next("X: 1\r", 5, &off, &n, &nl, &v, &vl), "trailers/next_no_lf");
    static const char *const bad[] = {"Content-Length", "transfer-encoding", "Host", "TE",
                                      "Trailer", "Connection", "keep-alive", "Upgrade",
                                      "Authorization", "Set-Cookie", "Cookie", "Content-Type",
                                      "Content-Encoding", "Cache-Control", "Proxy-Authorization",
                                      ":status", ":path", "x y", ""};
    bool all = true;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (!h1_trailer_forbidden(bad[i], strlen(bad[i]))) {
            printf("# allowed: %s\n", bad[i]);
            all = false;
        }
    TAP_OK(all, "trailers/forbidden");
    static const char *const good[] = {"grpc-status", "grpc-message", "Server-Timing", "X-Checksum",
                                       "Digest", "content-md5", "hosts", "tee"};
    all = true;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (h1_trailer_forbidden(good[i], strlen(good[i]))) {
            printf("# refused: %s\n", good[i]);
            all = false;
        }
    TAP_OK(all, "trailers/allowed");
}

int main(void)
{
    char whole[2048], got[2048];
    size_t cuts[4096];
    for (size_t t = 0; t < sizeof heads / sizeof heads[0]; t++) {
        const struct head_case *tc = &heads[t];
        size_t len = strlen(tc->in);
        sig_head(tc, NULL, 0, whole, sizeof whole);
        TAP_OK(strcmp(whole, tc->want) == 0, "%s whole", tc->name);
        if (strcmp(whole, tc->want) != 0)
            printf("# got:  %s\n# want: %s\n", whole, tc->want);
        for (size_t i = 0; i + 1 < len; i++)
            cuts[i] = i + 1;
        sig_head(tc, cuts, len ? len - 1 : 0, got, sizeof got);
        TAP_OK(strcmp(got, whole) == 0, "%s byte_by_byte", tc->name);
        bool same = true;
        for (size_t s = 0; s <= len && same; s++) {
            cuts[0] = s;
            sig_head(tc, cuts, 1, got, sizeof got);
            if (strcmp(got, whole) != 0) {
                printf("# split at %zu: %s\n", s, got);
                same = false;
            }
        }
        TAP_OK(same, "%s every_split", tc->name);
    }
    for (size_t t = 0; t < sizeof chunks / sizeof chunks[0]; t++) {
        const struct chunk_case *tc = &chunks[t];
        size_t len = strlen(tc->in);
        sig_chunk(tc, NULL, 0, whole, sizeof whole);
        TAP_OK(strcmp(whole, tc->want) == 0, "%s whole", tc->name);
        if (strcmp(whole, tc->want) != 0)
            printf("# got:  %s\n# want: %s\n", whole, tc->want);
        for (size_t i = 0; i + 1 < len; i++)
            cuts[i] = i + 1;
        sig_chunk(tc, cuts, len ? len - 1 : 0, got, sizeof got);
        TAP_OK(strcmp(got, whole) == 0, "%s byte_by_byte", tc->name);
        bool same = true;
        for (size_t s = 0; s <= len && same; s++) {
            cuts[0] = s;
            sig_chunk(tc, cuts, 1, got, sizeof got);
            same = strcmp(got, whole) == 0;
        }
        TAP_OK(same, "%s every_split", tc->name);
    }

    trailer_helpers();

    /* Reuse after reset: a second message parses identically (keep-alive). */
    struct h1_parser *p;
    TAP_OK(h1_parser_new(&p, H1_REQUEST, &LIM) == 0, "reset/new");
    const char *m = "GET /x HTTP/1.1\r\nHost: a\r\n\r\n";
    size_t used = 0;
    int r1 = h1_parser_feed(p, m, strlen(m), &used);
    h1_parser_reset(p, false);
    int r2 = h1_parser_feed(p, m, strlen(m), &used);
    TAP_OK(r1 == H1_DONE && r2 == H1_DONE && strcmp(h1_parser_target(p), "/x") == 0 &&
               strcmp(h1_parser_find(p, "HOST"), "a") == 0,
           "reset/second_message");
    TAP_OK(h1_parser_feed(p, "x", 1, &used) == H1_DONE && used == 0, "reset/done_is_sticky");
    h1_parser_reset(p, false);
    TAP_OK(h1_parser_feed(p, "\x7f", 1, &used) == VP_ERR_PROTO &&
               h1_parser_feed(p, "GET", 3, &used) == VP_ERR_PROTO,
           "reset/error_is_sticky");
    h1_parser_free(p);
    /* Heads larger than the parser's initial buffer: the buffer grows under the feed, and the
     * result is the same whole, byte by byte and in uneven pieces. 60 fields of 500 bytes make a
     * 30 KiB head; the same head against a limit one byte short of it gives 431. */
    static char big[40000];
    size_t bl = 0;
    bl += (size_t)snprintf(big + bl, sizeof big - bl, "GET /big HTTP/1.1\r\nHost: a\r\n");
    for (int i = 0; i < 60; i++) {
        bl += (size_t)snprintf(big + bl, sizeof big - bl, "X-F%02d: ", i);
        for (int j = 0; j < 500; j++)
            big[bl++] = (char)('a' + (i + j) % 26);
        big[bl++] = '\r';
        big[bl++] = '\n';
    }
    bl += (size_t)snprintf(big + bl, sizeof big - bl, "\r\n");
    const struct h1_limits biglim = {.max_line = 8192, .max_head = bl, .max_headers = 100};
    const size_t steps[] = {0, 1, 7, 1000, 4093};
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        TAP_OK(h1_parser_new(&p, H1_REQUEST, &biglim) == 0, "grow/new");
        h1_parser_reset(p, false);
        int rc = H1_AGAIN;
        size_t off = 0, total = 0;
        while (rc == H1_AGAIN && off < bl) {
            size_t n = steps[k] ? (bl - off < steps[k] ? bl - off : steps[k]) : bl - off;
            rc = h1_parser_feed(p, big + off, n, &used);
            total += used;
            off += n;
        }
        bool ok = rc == H1_DONE && total == bl && h1_parser_header_count(p) == 61 &&
                  strcmp(h1_parser_target(p), "/big") == 0;
        for (size_t i = 1; ok && i < 61; i++) {
            const char *n, *v;
            h1_parser_header(p, i, &n, &v);
            char want[8];
            snprintf(want, sizeof want, "X-F%02zu", i - 1);
            ok = strcmp(n, want) == 0 && strlen(v) == 500;
            for (size_t j = 0; ok && j < 500; j++)
                ok = v[j] == (char)('a' + (i - 1 + j) % 26);
        }
        TAP_OK(ok, "grow/big_head_pieces_of_%zu", steps[k]);
        h1_parser_reset(p, false);
        TAP_OK(h1_parser_feed(p, big, bl, &used) == H1_DONE && h1_parser_header_count(p) == 61,
               "grow/reset_keeps_buffer_%zu", steps[k]);
        h1_parser_free(p);
    }
    const struct h1_limits shortlim = {.max_line = 8192, .max_head = bl - 1, .max_headers = 100};
    TAP_OK(h1_parser_new(&p, H1_REQUEST, &shortlim) == 0, "grow/new_short");
    h1_parser_reset(p, false);
    TAP_OK(h1_parser_feed(p, big, bl, &used) == VP_ERR_LIMIT && h1_parser_status(p) == 431,
           "grow/limit_still_431");
    h1_parser_free(p);
    struct h1_limits zero = {0, 0, 0};
    TAP_OK(h1_parser_new(&p, H1_REQUEST, &zero) == VP_ERR_INVALID, "new/zero_limits");

    /* Long field values go 16 bytes at a time: a control byte or DEL at any offset of a 70-byte
     * value is still refused, HTAB and bytes >= 0x80 anywhere are kept, fed whole and in two
     * pieces cut at every point. */
    const struct h1_limits vlim = {.max_line = 256, .max_head = 1024, .max_headers = 8};
    TAP_OK(h1_parser_new(&p, H1_REQUEST, &vlim) == 0, "value_run/new");
    const unsigned char bad[] = {0x00, 0x01, 0x0b, 0x1f, 0x7f, '\n'};
    bool refused = true, kept = true;
    for (size_t at = 0; at < 70; at++) {
        char head[256], val[71];
        for (size_t k = 0; k < 70; k++)
            val[k] = (char)("abcdefghij0123456789 ,;=/"[k % 25]);
        val[70] = '\0';
        val[0] = 'v'; /* leading OWS would be dropped */
        for (size_t b = 0; b < sizeof bad; b++) {
            val[at] = (char)bad[b];
            static const char pre[] = "GET / HTTP/1.1\r\nHost: h\r\nX-V: ";
            memcpy(head, pre, sizeof pre - 1);
            memcpy(head + sizeof pre - 1, val, 70);
            memcpy(head + sizeof pre - 1 + 70, "\r\n\r\n", 4);
            int hl = (int)(sizeof pre - 1 + 74);
            for (size_t cut = 0; cut <= (size_t)hl && refused; cut += 7) {
                h1_parser_reset(p, false);
                size_t u1 = 0, u2 = 0;
                int r = h1_parser_feed(p, head, cut, &u1);
                if (r == H1_AGAIN)
                    r = h1_parser_feed(p, head + cut, (size_t)hl - cut, &u2);
                refused = r == VP_ERR_PROTO && h1_parser_status(p) == 400;
            }
        }
        val[at] = at % 2 ? '\t' : (char)0xe9;
        if (at == 69)
            val[at] = 'z'; /* trailing HTAB would be trimmed */
        int hl = snprintf(head, sizeof head, "GET / HTTP/1.1\r\nHost: h\r\nX-V: %s\r\n\r\n", val);
        for (size_t cut = 0; cut <= (size_t)hl && kept; cut++) {
            h1_parser_reset(p, false);
            size_t u1 = 0, u2 = 0;
            int r = h1_parser_feed(p, head, cut, &u1);
            if (r == H1_AGAIN)
                r = h1_parser_feed(p, head + cut, (size_t)hl - cut, &u2);
            const char *v = h1_parser_find(p, "x-v");
            kept = r == H1_DONE && v && strcmp(v, val) == 0;
        }
    }
    TAP_OK(refused, "value_run/control_bytes_refused");
    TAP_OK(kept, "value_run/htab_and_high_bytes_kept");
    h1_parser_free(p);
    TAP_DONE();
}
