/* store/pending: the side file ("DB-pending") that keeps acknowledged items the database refused
 * at shutdown (full disk), and its reader for the replay at the next store_open. store/ only
 * (store.c and the unit tests); no SQLite, no threads.
 *
 * Format (text framing, binary-safe fields):
 *   file   = 1*block
 *   block  = "vitals-pending 1\n" *record "end " count " " hash "\n"
 *   record = kind *field "\n"                kind: one byte 'A'..'Z'
 *   field  = length ":" bytes ","  /  "-,"   length: 1 to 9 decimal digits; "-," is absent (NULL)
 *   count  = the block's records, decimal; hash = FNV-1a 64 of the block's bytes before "end ",
 *            16 lower-case hex digits.
 * A shutdown that finds the file still there writes a new file holding the old bytes and one
 * more block, then renames it over the old one, so the file is never left half-written. The
 * reader checks every block's framing, count and hash before anything is used: a truncated or
 * altered file is refused as a whole. */
#ifndef VP_STORE_PENDING_H
#define VP_STORE_PENDING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Fields per record at most, and the largest side file read back. */
#define PENDING_MAX_FIELDS 32
#define PENDING_MAX_FILE (256u * 1024 * 1024)

/* A block being built in memory. err is set (and further calls do nothing) once an allocation
 * failed. */
struct pending_out {
    char *buf;
    size_t len, cap;
    size_t block_start;
    unsigned count;
    bool err;
};

void pending_out_init(struct pending_out *o);
void pending_out_dispose(struct pending_out *o);
/* Starts a block. */
void pending_block_begin(struct pending_out *o);
/* Starts a record of this kind ('A'..'Z'). */
void pending_record_begin(struct pending_out *o, char kind);
/* One field: len bytes at p (borrowed), or absent when p is NULL. */
void pending_field(struct pending_out *o, const char *p, size_t len);
/* One field holding v in decimal. */
void pending_field_i64(struct pending_out *o, int64_t v);
void pending_record_end(struct pending_out *o);
/* Ends the block with its count and hash. */
void pending_block_end(struct pending_out *o);

/* Writes o's bytes to path: a new file path.tmp holds the bytes of path when it exists (whatever
 * they are) followed by o's, is synced and renamed over path. Returns 0, or VP_ERR_IO /
 * VP_ERR_NOMEM with a reason (strerror and the file) in err; path is then as it was. */
int pending_write(const char *path, const struct pending_out *o, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* One field as read: a slice into the buffer, or absent (p NULL). */
struct pending_field {
    const char *p;
    size_t len;
};

/* Reads path (a regular file of at most PENDING_MAX_FILE bytes) into *buf (malloc'd, the
 * caller frees) and checks every block. Returns 0 with *nrec the records in all blocks, 1 when
 * path does not exist (nothing to replay), or VP_ERR_IO / VP_ERR_INVALID / VP_ERR_NOMEM
 * with the reason in err (*buf NULL then). */
int pending_read(const char *path, char **buf, size_t *len, size_t *nrec, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The checks of pending_read on len bytes at buf (borrowed): 0 with *nrec, or VP_ERR_INVALID
 * with the reason in err. */
int pending_check(const char *buf, size_t len, size_t *nrec, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Iterates the records of a buffer pending_check accepted: *pos starts at 0. Returns true with
 * the kind, the fields (at most PENDING_MAX_FIELDS) and their number, false after the last. */
bool pending_next(const char *buf, size_t len, size_t *pos, char *kind, struct pending_field *f,
                  size_t *nf);

/* Parses a field as a decimal int64 (optional '-'); false when absent, empty, not a number or
 * out of range. */
bool pending_i64(const struct pending_field *f, int64_t *out);

#endif
