/* libFuzzer target for store/pending, the reader of the side file a full disk leaves at
 * shutdown (the file is hostile input at the next start). The input is one candidate file.
 * Checks: whatever pending_check accepts iterates to exactly the records it counted, every field
 * lies inside the input, pending_i64 accepts only what it can represent; and since the format is
 * canonical (lengths without leading zeros, one hash per block), writing the records back with
 * the writer gives the input byte for byte, one block per input block. */
#include "config.h"
#include "store/pending.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAGIC "vitals-pending 1\n"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *b = (const char *)data;
    size_t nrec = 0;
    char err[200];
    if (pending_check(b, size, &nrec, err, sizeof err) != 0) {
        if (!memchr(err, '\0', sizeof err))
            abort();
        return 0;
    }
    struct pending_out o;
    pending_out_init(&o);
    size_t pos = 0, seen = 0;
    char kind;
    struct pending_field f[PENDING_MAX_FIELDS];
    size_t nf;
    while (pos < size) {
        /* Blocks are mirrored in the copy: a magic line starts one, an end line ends it. */
        if (size - pos >= sizeof MAGIC - 1 && memcmp(b + pos, MAGIC, sizeof MAGIC - 1) == 0) {
            pending_block_begin(&o);
            pos += sizeof MAGIC - 1;
            continue;
        }
        if (size - pos >= 4 && memcmp(b + pos, "end ", 4) == 0) {
            const char *nl = memchr(b + pos, '\n', size - pos);
            if (!nl)
                abort(); /* pending_check accepted it */
            pending_block_end(&o);
            pos = (size_t)(nl + 1 - b);
            continue;
        }
        size_t before = pos;
        if (!pending_next(b, size, &pos, &kind, f, &nf) || pos <= before ||
            nf > PENDING_MAX_FIELDS || kind < 'A' || kind > 'Z')
            abort();
        pending_record_begin(&o, kind);
        for (size_t i = 0; i < nf; i++) {
            if (f[i].p && (f[i].p < b || f[i].len > size || (size_t)(f[i].p - b) > size - f[i].len))
                abort();
            /* A number pending_i64 accepts is digits after an optional '-', and its value
             * survives a round trip through its decimal form. */
            int64_t v, back;
            if (pending_i64(&f[i], &v)) {
                char t[24];
                int w = snprintf(t, sizeof t, "%lld", (long long)v);
                struct pending_field tf = {t, w > 0 ? (size_t)w : 0};
                size_t d = f[i].p[0] == '-';
                if (w <= 0 || strspn(f[i].p + d, "0123456789") < f[i].len - d ||
                    !pending_i64(&tf, &back) || back != v)
                    abort();
            }
            pending_field(&o, f[i].p, f[i].len);
        }
        pending_record_end(&o);
        seen++;
    }
    if (seen != nrec || o.err || o.len != size || memcmp(o.buf, b, size) != 0)
        abort();
    pending_out_dispose(&o);
    return 0;
}
