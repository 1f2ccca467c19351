/* The injector filter: decode -> scan -> insert -> re-encode, one instance per HTML response.
 *
 * Modes: SCAN until the scanner decides, then PASS (pure pass-through of decoded bytes to the
 * encoder, or of the input evbuffer itself for identity, moved without copying). Identity
 * responses are never re-encoded; in SCAN the only copies are of the first scan_limit bytes.
 *
 * Held bytes: the scanner may need the bytes of one unfinished tag (or the whitespace after
 * `<head>`) before it knows where the tag goes; they sit in `hold` (absolute offsets
 * hold_start..scanner position, at most max_tag plus one call's bytes). Everything before the
 * hold offset is emitted on every call.
 *
 * Compressed responses and the "never decoded for nothing" optimisation: until the scan shows a
 * document (or a FLUSH makes us emit), decoded bytes wait in `plain` and a copy of the input
 * waits in `raw` (both bounded by scan_limit). If the scan then gives up (a fragment: no
 * doctype/<html>/<head>/<body>), the original bytes go out untouched and the rest of the
 * response passes through without decoding (RAW). Once output has started from our encoder
 * (committed), the stream must be decoded and re-encoded to its end, injected or not: the
 * upstream's compressed bytes cannot be spliced onto ours. FLUSH makes the encoder sync-flush;
 * END finishes it. */
#include "config.h"

#include "inject/injector.h"

#include <event2/buffer.h>
#include <string.h>

#include "common/vp_err.h"
#include "inject/codec.h"
#include "inject/html_scan.h"
#include "inject/inject_alloc.h"

#define INJECT_RATIO_GRACE (1024u * 1024u)
#define SINK_STOP 1 /* sink -> decoder: stop, the response goes out raw */

enum mode { M_SCAN, M_PASS, M_RAW, M_FAILED, M_ENDED };

struct injector {
    enum inject_coding coding;
    enum mode mode;
    struct injector_options opt;
    char *tag;
    size_t tag_len, tag_cap;
    bool injected;
    bool committed; /* compressed: our encoder's output has started */
    struct html_scan *scan;
    struct evbuffer *hold; /* decoded bytes from hold_start on, held for the scanner */
    uint64_t hold_start;
    struct evbuffer *plain; /* compressed: decoded output not yet encoded */
    struct evbuffer *raw;   /* compressed, before commit: the input as received */
    struct codec_dec *dec;
    struct codec_enc *enc;
    struct evbuffer *out; /* the current call's output (borrowed during injector_feed) */
};

void injector_options_default(struct injector_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->scan_limit = HTML_SCAN_DEFAULT_LIMIT;
    opt->max_decoded = (size_t)256 * 1024 * 1024;
    /* Chosen with bench/inject_bench (see inject/README.md): speed first, then heap per
     * response, then ratio. */
    opt->gzip_level = 1;
    opt->br_quality = 4;
    opt->zstd_level = 3;
    opt->max_ratio = 200;
    opt->max_tag = HTML_SCAN_DEFAULT_MAX_TAG;
    opt->br_lgwin = 18;
    opt->zstd_window_log = 20;
    opt->igzip_level = 1;
}

int injector_new(struct injector **out, enum inject_coding coding, const char *tag, size_t tag_len,
                 const struct injector_options *opt)
{
    if (coding == INJECT_CODING_UNSUPPORTED || (unsigned)coding > INJECT_CODING_UNSUPPORTED ||
        !tag || tag_len == 0)
        return VP_ERR_INVALID;
    struct injector *inj = inject_calloc(1, sizeof *inj);
    if (!inj)
        return VP_ERR_NOMEM;
    inj->coding = coding;
    if (opt)
        inj->opt = *opt;
    else
        injector_options_default(&inj->opt);
    inj->tag = inject_malloc(tag_len);
    if (!inj->tag)
        goto fail;
    memcpy(inj->tag, tag, tag_len);
    inj->tag_len = inj->tag_cap = tag_len;
    if (html_scan_new(&inj->scan, inj->opt.scan_limit, inj->opt.max_tag))
        goto fail;
    if (!(inj->hold = evbuffer_new()))
        goto fail;
    if (coding != INJECT_CODING_IDENTITY) {
        struct codec_limits lim = {inj->opt.max_decoded, inj->opt.max_ratio, INJECT_RATIO_GRACE};
        if (!(inj->plain = evbuffer_new()) || !(inj->raw = evbuffer_new()))
            goto fail;
        if (codec_dec_new(&inj->dec, coding, &lim))
            goto fail;
    }
    inj->mode = M_SCAN;
    *out = inj;
    return 0;
fail:
    injector_free(inj);
    return VP_ERR_NOMEM;
}

void injector_free(struct injector *inj)
{
    if (!inj)
        return;
    codec_dec_free(inj->dec);
    codec_enc_free(inj->enc);
    if (inj->raw)
        evbuffer_free(inj->raw);
    if (inj->plain)
        evbuffer_free(inj->plain);
    if (inj->hold)
        evbuffer_free(inj->hold);
    html_scan_free(inj->scan);
    inject_free(inj->tag);
    inject_free(inj);
}

int injector_reuse(struct injector *inj, const char *tag, size_t tag_len)
{
    if (inj->coding != INJECT_CODING_IDENTITY || !tag || tag_len == 0)
        return VP_ERR_INVALID;
    if (tag_len > inj->tag_cap) {
        char *t = inject_malloc(tag_len);
        if (!t)
            return VP_ERR_NOMEM;
        inject_free(inj->tag);
        inj->tag = t;
        inj->tag_cap = tag_len;
    }
    memcpy(inj->tag, tag, tag_len);
    inj->tag_len = tag_len;
    if (evbuffer_drain(inj->hold, evbuffer_get_length(inj->hold)) != 0)
        return VP_ERR_NOMEM;
    html_scan_reset(inj->scan);
    inj->hold_start = 0;
    inj->injected = inj->committed = false;
    inj->out = NULL;
    inj->mode = M_SCAN;
    return 0;
}

bool injector_is_identity(const struct injector *inj)
{
    return inj->coding == INJECT_CODING_IDENTITY;
}

bool injector_injected(const struct injector *inj)
{
    return inj->injected;
}

bool injector_identity_growth(const struct injector *inj, size_t *growth)
{
    if (inj->coding != INJECT_CODING_IDENTITY || (inj->mode != M_PASS && inj->mode != M_ENDED))
        return false;
    *growth = inj->injected ? inj->tag_len : 0;
    return true;
}

/* Moves the first n bytes of src to dst. Not evbuffer_remove_buffer: libevent 2.1 ignores an
 * allocation failure inside it for a partial chain and reports the bytes as moved. */
static int move_bytes(struct evbuffer *src, struct evbuffer *dst, size_t n)
{
    size_t left = n;
    struct evbuffer_ptr pos;
    if (evbuffer_ptr_set(src, &pos, 0, EVBUFFER_PTR_SET) != 0)
        return VP_ERR_NOMEM;
    while (left > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(src, (ev_ssize_t)left, &pos, &v, 1) < 1)
            return VP_ERR_NOMEM;
        size_t take = v.iov_len < left ? v.iov_len : left;
        if (evbuffer_add(dst, v.iov_base, take) != 0)
            return VP_ERR_NOMEM;
        left -= take;
        if (left && evbuffer_ptr_set(src, &pos, take, EVBUFFER_PTR_ADD) != 0)
            return VP_ERR_NOMEM;
    }
    return evbuffer_drain(src, n) == 0 ? 0 : VP_ERR_NOMEM;
}

/* Moves held bytes up to absolute offset upto into dst. */
static int release(struct injector *inj, uint64_t upto, struct evbuffer *dst)
{
    if (upto <= inj->hold_start)
        return 0;
    int e = move_bytes(inj->hold, dst, (size_t)(upto - inj->hold_start));
    if (e)
        return e;
    inj->hold_start = upto;
    return 0;
}

/* The scanner decided: emit the held bytes with the tag at its place; go pass-through. */
static int decide(struct injector *inj, enum html_scan_result r, struct evbuffer *dst)
{
    if (r == HTML_SCAN_INSERT) {
        int e = release(inj, html_scan_insert_offset(inj->scan), dst);
        if (e)
            return e;
        if (evbuffer_add(dst, inj->tag, inj->tag_len))
            return VP_ERR_NOMEM;
        inj->injected = true;
    }
    size_t rest = evbuffer_get_length(inj->hold);
    int e = move_bytes(inj->hold, dst, rest);
    if (e)
        return e;
    inj->hold_start += rest;
    inj->mode = M_PASS;
    return 0;
}

/* Scans decoded bytes; emits all it can into dst. *used: bytes consumed (all of them unless the
 * scanner decided, after which the caller passes the rest on as is). */
static int scan_bytes(struct injector *inj, const char *p, size_t n, struct evbuffer *dst,
                      size_t *used)
{
    uint64_t at = inj->hold_start + evbuffer_get_length(inj->hold); /* offset of p[0] */
    enum html_scan_result r = html_scan_feed(inj->scan, p, n, used);
    uint64_t keep;
    if (r == HTML_SCAN_MORE && (keep = html_scan_hold_offset(inj->scan)) >= at) {
        /* Nothing held is needed any more, nor p's bytes before the hold offset (text, closed
         * tags): those go to dst at once instead of through hold, a copy and a move less. */
        int e = release(inj, at, dst);
        if (e)
            return e;
        size_t direct = keep - at < *used ? (size_t)(keep - at) : *used;
        if (direct && evbuffer_add(dst, p, direct))
            return VP_ERR_NOMEM;
        inj->hold_start = at + direct;
        if (*used > direct && evbuffer_add(inj->hold, p + direct, *used - direct))
            return VP_ERR_NOMEM;
        return 0;
    }
    if (*used && evbuffer_add(inj->hold, p, *used))
        return VP_ERR_NOMEM;
    if (r != HTML_SCAN_MORE)
        return decide(inj, r, dst);
    return release(inj, html_scan_hold_offset(inj->scan), dst);
}

static int scan_flush(struct injector *inj, bool end, struct evbuffer *dst)
{
    if (inj->mode != M_SCAN)
        return 0;
    enum html_scan_result r = html_scan_flush(inj->scan, end);
    return r == HTML_SCAN_MORE ? 0 : decide(inj, r, dst);
}

/* ---- identity ---- */

static int feed_identity(struct injector *inj, struct evbuffer *in, struct evbuffer *out,
                         unsigned flags)
{
    while (inj->mode == M_SCAN && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        size_t used;
        int e = scan_bytes(inj, v.iov_base, v.iov_len, out, &used);
        if (e)
            return e;
        if (evbuffer_drain(in, used))
            return VP_ERR_NOMEM;
    }
    if (flags & (INJECTOR_FLUSH | INJECTOR_END)) {
        int e = scan_flush(inj, (flags & INJECTOR_END) != 0, out);
        if (e)
            return e;
    }
    if (evbuffer_get_length(in) && evbuffer_add_buffer(out, in))
        return VP_ERR_NOMEM;
    return 0;
}

/* ---- compressed ---- */

static int encode_plain(struct injector *inj, unsigned cflags)
{
    struct evbuffer_iovec v;
    while (evbuffer_peek(inj->plain, -1, NULL, &v, 1) >= 1 && v.iov_len > 0) {
        int e = codec_enc_feed(inj->enc, v.iov_base, v.iov_len, 0, inj->out);
        if (e)
            return e;
        if (evbuffer_drain(inj->plain, v.iov_len))
            return VP_ERR_NOMEM;
    }
    return cflags ? codec_enc_feed(inj->enc, NULL, 0, cflags, inj->out) : 0;
}

/* Our output starts: from now on the response is decoded and re-encoded to its end. */
static int commit(struct injector *inj)
{
    int level = inj->coding == INJECT_CODING_BR     ? inj->opt.br_quality
                : inj->coding == INJECT_CODING_ZSTD ? inj->opt.zstd_level
                                                    : inj->opt.gzip_level;
    int wlog = inj->coding == INJECT_CODING_BR     ? inj->opt.br_lgwin
               : inj->coding == INJECT_CODING_ZSTD ? inj->opt.zstd_window_log
                                                   : 0;
    bool zlib_family = inj->coding == INJECT_CODING_GZIP || inj->coding == INJECT_CODING_DEFLATE;
    int e =
        zlib_family && inj->opt.igzip_level >= 0
            ? codec_enc_new_igzip(&inj->enc, inj->coding, inj->opt.igzip_level,
                                  codec_dec_raw_deflate(inj->dec))
            : codec_enc_new(&inj->enc, inj->coding, level, wlog, codec_dec_raw_deflate(inj->dec));
    if (e)
        return e;
    inj->committed = true;
    evbuffer_free(inj->raw);
    inj->raw = NULL;
    return encode_plain(inj, 0);
}

static bool want_commit(const struct injector *inj)
{
    return html_scan_is_document(inj->scan) || inj->mode == M_PASS ||
           evbuffer_get_length(inj->raw) > inj->opt.scan_limit;
}

/* Decoder sink: decoded bytes in order. */
static int on_decoded(void *arg, const char *p, size_t n)
{
    struct injector *inj = arg;
    int e;
    while (n > 0 && inj->mode == M_SCAN) {
        size_t used;
        e = scan_bytes(inj, p, n, inj->plain, &used);
        if (e)
            return e;
        p += used;
        n -= used;
        if (inj->mode == M_PASS && !inj->committed && !inj->injected)
            return SINK_STOP; /* gave up before any output: send the original bytes */
    }
    if (n > 0 && evbuffer_add(inj->plain, p, n))
        return VP_ERR_NOMEM;
    if (!inj->committed) {
        if (!want_commit(inj))
            return 0;
        if ((e = commit(inj)))
            return e;
    }
    return encode_plain(inj, 0);
}

/* Sends the original bytes (raw, then the rest of in) and stops decoding. */
static int go_raw(struct injector *inj, struct evbuffer *in)
{
    if (evbuffer_add_buffer(inj->out, inj->raw) || evbuffer_add_buffer(inj->out, in))
        return VP_ERR_NOMEM;
    codec_dec_free(inj->dec);
    inj->dec = NULL;
    inj->mode = M_RAW;
    return 0;
}

static int feed_coded(struct injector *inj, struct evbuffer *in, unsigned flags)
{
    struct evbuffer_iovec v;
    while (evbuffer_get_length(in) > 0) {
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        if (!inj->committed && evbuffer_add(inj->raw, v.iov_base, v.iov_len))
            return VP_ERR_NOMEM;
        int e = codec_dec_feed(inj->dec, v.iov_base, v.iov_len, on_decoded, inj);
        if (evbuffer_drain(in, v.iov_len))
            return VP_ERR_NOMEM;
        if (e == SINK_STOP)
            return go_raw(inj, in);
        if (e)
            return e;
    }
    bool end = (flags & INJECTOR_END) != 0;
    if (flags & (INJECTOR_FLUSH | INJECTOR_END)) {
        int e = scan_flush(inj, end, inj->plain);
        if (e)
            return e;
        if (!inj->committed) {
            if (end && !inj->injected) { /* never emitted a byte: the original goes out */
                if ((e = codec_dec_finish(inj->dec)))
                    return e; /* corrupt or truncated: the caller aborts either way */
                return go_raw(inj, in);
            }
            if ((e = commit(inj)))
                return e;
        }
    }
    if (end) {
        int e = codec_dec_finish(inj->dec);
        if (e)
            return e;
    }
    if (!inj->committed)
        return 0; /* still deciding whether to re-encode; nothing to emit yet */
    return encode_plain(inj, end ? CODEC_END : (flags & INJECTOR_FLUSH) ? CODEC_FLUSH : 0);
}

int injector_feed(struct injector *inj, struct evbuffer *in, struct evbuffer *out, unsigned flags)
{
    if (inj->mode == M_FAILED || inj->mode == M_ENDED)
        return VP_ERR_INVALID;
    int e;
    if (inj->mode == M_RAW || (inj->coding == INJECT_CODING_IDENTITY && inj->mode == M_PASS)) {
        e = evbuffer_add_buffer(out, in) ? VP_ERR_NOMEM : 0;
    } else if (inj->coding == INJECT_CODING_IDENTITY) {
        e = feed_identity(inj, in, out, flags);
    } else {
        inj->out = out;
        e = feed_coded(inj, in, flags);
        inj->out = NULL;
    }
    if (e)
        inj->mode = M_FAILED;
    else if (flags & INJECTOR_END)
        inj->mode = M_ENDED;
    return e;
}
