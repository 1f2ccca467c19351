/* inject/codec: streaming content decoders and encoders (gzip, deflate, br, zstd).
 *
 * Decoders push decoded bytes to a sink callback in blocks of at most CODEC_BLOCK bytes and
 * enforce a total cap and a decoded/encoded ratio cap (decompression bombs give VP_ERR_LIMIT
 * before the block that crosses them reaches the sink). Encoders append to an evbuffer (borrowed,
 * used as a byte container only). All allocations, the libraries' included, go through
 * inject_alloc.h. One object per response; no globals; not thread-safe per object.
 *
 * gzip: concatenated members are decoded in turn; bytes after a complete member that do not
 * start a valid member are trailing garbage and are ignored (as gzip(1) does). deflate: the
 * zlib wrapper (RFC 1950) or, as browsers accept, raw deflate (RFC 1951), detected from the first
 * two bytes; the encoder reproduces the same framing. zstd: the decoder window is capped at
 * 8 MiB (RFC 8878 section 3.1.1.1.2 for HTTP). */
#ifndef VP_INJECT_CODEC_H
#define VP_INJECT_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inject/injector.h"

struct evbuffer;

#define CODEC_BLOCK (16u * 1024u)

struct codec_limits {
    uint64_t max_decoded; /* total decoded bytes (0: unlimited) */
    unsigned max_ratio;   /* decoded / encoded once past ratio_grace (0: unlimited) */
    uint64_t ratio_grace; /* decoded bytes before the ratio applies */
};

/* Receives decoded bytes (borrowed, valid during the call). Returns 0 or a negative vp_err,
 * which the decoder returns unchanged. */
typedef int (*codec_sink_cb)(void *arg, const char *p, size_t n);

struct codec_dec;

/* Creates a decoder for coding (not IDENTITY/UNSUPPORTED: VP_ERR_INVALID). lim borrowed, copied.
 * Returns 0 and sets *out, or VP_ERR_NOMEM. */
int codec_dec_new(struct codec_dec **out, enum inject_coding coding, const struct codec_limits *lim)
    __attribute__((warn_unused_result));

/* Decodes in[0..n) (borrowed) and passes every decoded byte to sink before returning. Returns
 * 0, VP_ERR_PROTO (corrupt), VP_ERR_LIMIT (caps), VP_ERR_NOMEM, or the sink's error. After an
 * error the decoder is unusable. */
int codec_dec_feed(struct codec_dec *d, const void *in, size_t n, codec_sink_cb sink, void *arg)
    __attribute__((warn_unused_result));

/* End of input: 0 when the stream ended cleanly, VP_ERR_PROTO when it is truncated. */
int codec_dec_finish(struct codec_dec *d) __attribute__((warn_unused_result));

/* For deflate: true once the stream was seen to be raw deflate (no zlib wrapper). */
bool codec_dec_raw_deflate(const struct codec_dec *d);

/* Decoded and encoded byte counts so far. */
uint64_t codec_dec_total_out(const struct codec_dec *d);
uint64_t codec_dec_total_in(const struct codec_dec *d);

/* Frees the decoder (NULL is a no-op). */
void codec_dec_free(struct codec_dec *d);

#define CODEC_FLUSH 1u /* emit everything so far (sync flush) */
#define CODEC_END 2u   /* finish the stream */

struct codec_enc;

/* Creates an encoder for coding: level is the gzip/deflate level, brotli quality or zstd level;
 * window_log the brotli lgwin or zstd windowLog (0: 22 for brotli, the level's default for
 * zstd; ignored for zlib, which always uses 32 KiB); raw_deflate selects headerless deflate for
 * INJECT_CODING_DEFLATE. Returns 0 and sets *out, VP_ERR_INVALID (IDENTITY/UNSUPPORTED, level
 * or window out of range), or VP_ERR_NOMEM. */
int codec_enc_new(struct codec_enc **out, enum inject_coding coding, int level, int window_log,
                  bool raw_deflate) __attribute__((warn_unused_result));

/* Like codec_enc_new for INJECT_CODING_GZIP or INJECT_CODING_DEFLATE, with the ISA-L igzip
 * encoder at level 0..3 instead of zlib (same framing, same flush and end semantics). Returns 0
 * and sets *out, VP_ERR_INVALID (other coding, level out of range), or VP_ERR_NOMEM. */
int codec_enc_new_igzip(struct codec_enc **out, enum inject_coding coding, int level,
                        bool raw_deflate) __attribute__((warn_unused_result));

/* Encodes in[0..n) (borrowed) and appends output to out (borrowed). flags: 0, CODEC_FLUSH
 * (output decodes to everything given so far) or CODEC_END (finish; no call after it). A flush
 * with nothing new since the last one emits nothing. Returns 0, VP_ERR_NOMEM, or VP_ERR_INVALID
 * when called after the end. After an error the encoder is unusable. */
int codec_enc_feed(struct codec_enc *e, const void *in, size_t n, unsigned flags,
                   struct evbuffer *out) __attribute__((warn_unused_result));

/* Frees the encoder (NULL is a no-op). */
void codec_enc_free(struct codec_enc *e);

#endif
