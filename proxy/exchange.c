/* Timing record and request log of one exchange. The log line is built in a stack buffer and
 * written with one write(2), so lines from several worker threads never interleave. Strings from
 * the network are escaped (text: quotes and control bytes as \xHH; JSON: RFC 8259 escapes), so a
 * hostile header cannot forge log lines. */
#include "config.h"
#include "proxy/exchange.h"

#include "proxy/conn_h1.h"
#include "proxy/label.h"
#include "store/store.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int64_t exchange_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct line {
    char buf[4096];
    size_t len;
};

static void addf(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void addf(struct line *l, const char *fmt, ...)
{
    if (l->len >= sizeof l->buf - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(l->buf + l->len, sizeof l->buf - l->len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    l->len += (size_t)n;
    if (l->len > sizeof l->buf - 1)
        l->len = sizeof l->buf - 1;
}

/* Appends s escaped: json = JSON string body, else log-safe text. Capped at 512 bytes. */
static void add_esc(struct line *l, const char *s, bool json)
{
    if (!s)
        s = "";
    for (size_t i = 0; s[i] && i < 512; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            addf(l, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            addf(l, json ? "\\u%04x" : "\\x%02x", c);
        else if (c >= 0x80 && json)
            addf(l, "\\u%04x", c); /* bytes, not UTF-8: keep the line valid JSON */
        else
            addf(l, "%c", c);
    }
}

/* The target as logged: under /__vitals the value of each token= query parameter (the report
 * token, a credential) becomes "-"; into buf (cap bytes, at least add_esc's 512 plus one), or
 * target itself when there is nothing to hide. */
static const char *log_target(const char *target, char *buf, size_t cap)
{
    static const char prefix[] = "/__vitals";
    if (!target || strncmp(target, prefix, sizeof prefix - 1) != 0)
        return target;
    const char *q = strchr(target, '?');
    if (!q || !strstr(q, "token="))
        return target;
    size_t o = 0;
    const char *s = target;
    while (*s && o + 1 < cap) {
        bool at_param = s > q && (s[-1] == '?' || s[-1] == '&');
        if (at_param && strncmp(s, "token=", 6) == 0) {
            const char *end = strchr(s, '&');
            end = end ? end : s + strlen(s);
            int n = snprintf(buf + o, cap - o, "token=-");
            if (n < 0 || (size_t)n >= cap - o)
                break;
            o += (size_t)n;
            s = end;
            continue;
        }
        buf[o++] = *s++;
    }
    buf[o] = '\0';
    return buf;
}

static double ms(int64_t from, int64_t to) { return from && to ? (double)(to - from) / 1000.0 : -1; }

static void record(struct proxy *px, const struct exchange_info *x)
{
    if (!px->store || !x->forwarded)
        return;
    char method[32];
    size_t ml = strnlen(x->method, sizeof method - 1);
    memcpy(method, x->method, ml);
    method[ml] = '\0';
    char label[LABEL_MAX + 1];
    struct store_request_rec r = {
        .accept_us = x->t.accept_us,
        .head_done_us = x->t.head_done_us,
        .connect_start_us = x->t.connect_start_us,
        .connect_end_us = x->t.connect_end_us,
        .sent_us = x->t.sent_us,
        .first_byte_us = x->t.first_byte_us,
        .last_byte_us = x->t.last_byte_us,
        .bytes_in = x->t.bytes_in,
        .bytes_out = x->t.bytes_out,
        .upstream_bytes = x->t.upstream_bytes,
        .status = x->status,
        .injected = x->injected,
        .reused = x->reused,
        .method = method,
        .url = x->target,
        .host = x->host,
        .protocol = x->protocol ? x->protocol : "h1",
        .tls_version = x->tls_version,
        .view_id = x->view_id,
        .referer = x->referer,
        .user_agent = x->user_agent,
        .content_type = x->content_type,
        .content_encoding = x->content_encoding,
        .cache_control = x->cache_control,
        .error = x->error,
        .label = label_get(label, sizeof label) ? label : NULL,
    };
    if (store_record_request(px->store, &r) != 0)
        atomic_fetch_add(&px->records_dropped, 1);
}

void exchange_finish_log(struct conn *c)
{
    conn_mark_logged(c);
    struct worker *w = conn_worker(c);
    const struct vp_options *o = w->px->opt;
    struct exchange_info x;
    conn_exchange_info(c, &x);
    record(w->px, &x);
    if (o->quiet)
        return;
    bool h2 = x.protocol && strcmp(x.protocol, "h2") == 0;
    int64_t start = x.t.head_done_us ? x.t.head_done_us : x.t.accept_us;
    double total = ms(start, x.t.last_byte_us ? x.t.last_byte_us : exchange_now_us());
    double up = ms(x.t.sent_us, x.t.first_byte_us);
    char tbuf[520];
    const char *target = log_target(x.target, tbuf, sizeof tbuf);
    struct line l; /* no initializer: it would zero the 4 KiB buffer on every request */
    l.len = 0;
    time_t secs = (time_t)(start / 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    if (o->log_json) {
        char ts[32];
        strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
        addf(&l, "{\"ts\":\"%s.%03dZ\",\"peer\":\"", ts, (int)(start / 1000 % 1000));
        add_esc(&l, x.peer, true);
        addf(&l, "\",\"method\":\"");
        add_esc(&l, x.method, true);
        addf(&l, "\",\"url\":\"");
        add_esc(&l, target, true);
        addf(&l, "\",\"protocol\":\"HTTP/%s%d\",\"status\":%d,\"bytes_in\":%llu,"
                 "\"bytes_out\":%llu,\"upstream_bytes\":%llu,\"ms\":%.3f,\"upstream_ms\":%.3f,"
                 "\"reused\":%s,\"host\":\"",
             h2 ? "2." : "1.", h2 ? 0 : x.minor, x.status, (unsigned long long)x.t.bytes_in,
             (unsigned long long)x.t.bytes_out, (unsigned long long)x.t.upstream_bytes, total, up,
             x.reused ? "true" : "false");
        add_esc(&l, x.host, true);
        addf(&l, "\",\"referer\":\"");
        add_esc(&l, x.referer, true);
        addf(&l, "\",\"user_agent\":\"");
        add_esc(&l, x.user_agent, true);
        addf(&l, "\"");
        if (x.error) {
            addf(&l, ",\"error\":\"");
            add_esc(&l, x.error, true);
            addf(&l, "\"");
        }
        addf(&l, "}");
    } else {
        char ts[40];
        strftime(ts, sizeof ts, "%d/%b/%Y:%H:%M:%S +0000", &tm);
        add_esc(&l, x.peer, false);
        addf(&l, " - - [%s] \"", ts);
        add_esc(&l, x.method, false);
        addf(&l, " ");
        add_esc(&l, target, false);
        addf(&l, " HTTP/%s%d\" %d %llu \"", h2 ? "2." : "1.", h2 ? 0 : x.minor, x.status,
             (unsigned long long)x.t.bytes_out);
        add_esc(&l, x.referer ? x.referer : "-", false);
        addf(&l, "\" \"");
        add_esc(&l, x.user_agent ? x.user_agent : "-", false);
        addf(&l, "\" rt=%.3f urt=%.3f%s", total, up, x.reused ? " reused" : "");
        if (x.error) {
            addf(&l, " err=\"");
            add_esc(&l, x.error, false);
            addf(&l, "\"");
        }
    }
    if (l.len > sizeof l.buf - 2)
        l.len = sizeof l.buf - 2;
    l.buf[l.len++] = '\n';
    ssize_t wr = write(STDERR_FILENO, l.buf, l.len);
    (void)wr;
}
