/* The side file of acknowledged items (format and guarantees in store/pending.h). The reader
 * treats the file as hostile: every length is checked against what is left of the buffer before
 * it is used, numbers are parsed with overflow checks, and a block is used only when its record
 * count and hash match; nothing is allocated per field (fields are slices of the one buffer). */
#include "config.h"

#include "store/pending.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/vp_buf.h"
#include "common/vp_err.h"

#define MAGIC "vitals-pending 1\n"
#define MAGIC_LEN (sizeof MAGIC - 1)
#define FIELD_MAX 999999999u /* 9 digits */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    if (w < 0)
        err[0] = '\0';
}

void pending_out_init(struct pending_out *o)
{
    memset(o, 0, sizeof *o);
}

void pending_out_dispose(struct pending_out *o)
{
    free(o->buf);
    memset(o, 0, sizeof *o);
}

static void put(struct pending_out *o, const void *p, size_t n)
{
    if (o->err)
        return;
    if (o->cap - o->len < n) {
        size_t cap = o->cap ? o->cap : 4096;
        while (cap - o->len < n) {
            if (cap > SIZE_MAX / 2) {
                o->err = true;
                return;
            }
            cap *= 2;
        }
        char *nb = realloc(o->buf, cap);
        if (!nb) {
            o->err = true;
            return;
        }
        o->buf = nb;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, p, n);
    o->len += n;
}

void pending_block_begin(struct pending_out *o)
{
    o->block_start = o->len;
    o->count = 0;
    put(o, MAGIC, MAGIC_LEN);
}

void pending_record_begin(struct pending_out *o, char kind)
{
    put(o, &kind, 1);
    o->count++;
}

void pending_field(struct pending_out *o, const char *p, size_t len)
{
    if (!p) {
        put(o, "-,", 2);
        return;
    }
    if (len > FIELD_MAX) {
        o->err = true;
        return;
    }
    char n[16];
    int w = snprintf(n, sizeof n, "%zu:", len);
    if (w < 0 || (size_t)w >= sizeof n) {
        o->err = true;
        return;
    }
    put(o, n, (size_t)w);
    put(o, p, len);
    put(o, ",", 1);
}

void pending_field_i64(struct pending_out *o, int64_t v)
{
    char n[24];
    int w = snprintf(n, sizeof n, "%lld", (long long)v);
    if (w < 0 || (size_t)w >= sizeof n) {
        o->err = true;
        return;
    }
    pending_field(o, n, (size_t)w);
}

void pending_record_end(struct pending_out *o)
{
    put(o, "\n", 1);
}

void pending_block_end(struct pending_out *o)
{
    if (o->err)
        return;
    uint64_t h = vp_fnv1a(o->buf + o->block_start, o->len - o->block_start);
    char end[64];
    int w = snprintf(end, sizeof end, "end %u %016llx\n", o->count, (unsigned long long)h);
    if (w < 0 || (size_t)w >= sizeof end) {
        o->err = true;
        return;
    }
    put(o, end, (size_t)w);
}

/* write(2) until done. */
static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Copies the regular file at path (when it exists) to fd. */
static int copy_old(const char *path, int fd)
{
    int in = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
    if (in < 0)
        return errno == ENOENT ? 0 : -1;
    struct stat st;
    if (fstat(in, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(in);
        errno = EINVAL; /* not a regular file: left alone */
        return -1;
    }
    char buf[65536];
    for (;;) {
        ssize_t r = read(in, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            close(in);
            return -1;
        }
        if (r == 0)
            break;
        if (write_all(fd, buf, (size_t)r) != 0) {
            int e = errno;
            close(in);
            errno = e;
            return -1;
        }
    }
    close(in);
    return 0;
}

int pending_write(const char *path, const struct pending_out *o, char *err, size_t errlen)
{
    if (o->err) {
        set_err(err, errlen, "out of memory");
        return VP_ERR_NOMEM;
    }
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 5);
    char *dir = malloc(pl + 1);
    if (!tmp || !dir) {
        free(tmp);
        free(dir);
        set_err(err, errlen, "out of memory");
        return VP_ERR_NOMEM;
    }
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp", 5);
    memcpy(dir, path, pl + 1);
    int saved = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    const char *what = "cannot create";
    if (fd < 0) {
        saved = errno;
        goto fail;
    }
    what = "cannot copy the earlier side file into";
    if (copy_old(path, fd) != 0) {
        saved = errno;
        goto fail_fd;
    }
    what = "cannot write";
    if (write_all(fd, o->buf, o->len) != 0 || fsync(fd) != 0) {
        saved = errno;
        goto fail_fd;
    }
    if (close(fd) != 0) {
        saved = errno;
        goto fail_unlink;
    }
    what = "cannot rename into place";
    if (rename(tmp, path) != 0) {
        saved = errno;
        goto fail_unlink;
    }
    /* The rename itself is durable once the directory is synced. */
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    free(tmp);
    free(dir);
    return 0;

fail_fd:
    close(fd);
fail_unlink:
    unlink(tmp);
fail:
    if (errlen) {
        int w = snprintf(err, errlen, "%s %s: %s", what, tmp, strerror(saved));
        if (w < 0)
            err[0] = '\0';
    }
    free(tmp);
    free(dir);
    return VP_ERR_IO;
}

/* A decimal length of 1..9 digits at p (before end) followed by ':'; its value and the position
 * after the ':'. */
static bool read_len(const char *p, const char *end, size_t *len, const char **after)
{
    size_t v = 0, d = 0;
    while (p + d < end && d < 10 && p[d] >= '0' && p[d] <= '9')
        v = v * 10 + (size_t)(p[d++] - '0');
    if (d == 0 || d > 9 || p + d >= end || p[d] != ':' || (d > 1 && p[0] == '0'))
        return false;
    *len = v;
    *after = p + d + 1;
    return true;
}

/* Parses one record at buf[*pos..len): its kind and fields; false when malformed. */
static bool parse_record(const char *buf, size_t len, size_t *pos, char *kind,
                         struct pending_field *f, size_t *nf)
{
    const char *p = buf + *pos, *end = buf + len;
    if (p >= end || *p < 'A' || *p > 'Z')
        return false;
    *kind = *p++;
    size_t n = 0;
    while (p < end && *p != '\n') {
        if (n == PENDING_MAX_FIELDS)
            return false;
        if (*p == '-') {
            if (end - p < 2 || p[1] != ',')
                return false;
            f[n].p = NULL;
            f[n].len = 0;
            p += 2;
        } else {
            size_t fl;
            const char *data;
            if (!read_len(p, end, &fl, &data) || (size_t)(end - data) < fl + 1 || data[fl] != ',')
                return false;
            f[n].p = data;
            f[n].len = fl;
            p = data + fl + 1;
        }
        n++;
    }
    if (p >= end)
        return false; /* no newline: truncated */
    *nf = n;
    *pos = (size_t)(p + 1 - buf);
    return true;
}

/* The block at buf[*pos..len): checks its framing, count and hash; *pos past its end line. */
static bool check_block(const char *buf, size_t len, size_t *pos, size_t *nrec, const char **why)
{
    size_t start = *pos, p = start;
    if (len - p < MAGIC_LEN || memcmp(buf + p, MAGIC, MAGIC_LEN) != 0) {
        *why = "not a vitals-pending file (or an unknown version)";
        return false;
    }
    p += MAGIC_LEN;
    size_t n = 0;
    struct pending_field f[PENDING_MAX_FIELDS];
    while (!(len - p >= 4 && memcmp(buf + p, "end ", 4) == 0)) {
        char kind;
        size_t nf;
        if (!parse_record(buf, len, &p, &kind, f, &nf)) {
            *why = "truncated, or a malformed record";
            return false;
        }
        n++;
    }
    uint64_t h = vp_fnv1a(buf + start, p - start);
    char want[64];
    int w = snprintf(want, sizeof want, "end %zu %016llx\n", n, (unsigned long long)h);
    if (w < 0 || (size_t)w >= sizeof want) {
        *why = "malformed end line";
        return false;
    }
    if (len - p < (size_t)w || memcmp(buf + p, want, (size_t)w) != 0) {
        const char *nl = memchr(buf + p, '\n', len - p);
        *why = !nl ? "truncated" : "record count or checksum mismatch (altered or damaged)";
        return false;
    }
    *pos = p + (size_t)w;
    *nrec += n;
    return true;
}

int pending_read(const char *path, char **buf, size_t *len, size_t *nrec, char *err, size_t errlen)
{
    *buf = NULL;
    *len = 0;
    *nrec = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        set_err(err, errlen, "cannot open: %s", strerror(errno));
        return VP_ERR_IO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        set_err(err, errlen, "not a regular file");
        return VP_ERR_IO;
    }
    if (st.st_size <= 0 || (uint64_t)st.st_size > PENDING_MAX_FILE) {
        close(fd);
        set_err(err, errlen, "%s", st.st_size <= 0 ? "empty" : "larger than 256 MiB");
        return VP_ERR_INVALID;
    }
    size_t n = (size_t)st.st_size;
    char *b = malloc(n);
    if (!b) {
        close(fd);
        set_err(err, errlen, "out of memory");
        return VP_ERR_NOMEM;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            const char *e = r < 0 ? strerror(errno) : "shorter than its size";
            close(fd);
            free(b);
            set_err(err, errlen, "cannot read: %s", e);
            return VP_ERR_IO;
        }
        got += (size_t)r;
    }
    close(fd);
    int rc = pending_check(b, n, nrec, err, errlen);
    if (rc) {
        free(b);
        return rc;
    }
    *buf = b;
    *len = n;
    return 0;
}

int pending_check(const char *buf, size_t len, size_t *nrec, char *err, size_t errlen)
{
    size_t pos = 0, count = 0;
    *nrec = 0;
    if (len == 0) {
        set_err(err, errlen, "empty");
        return VP_ERR_INVALID;
    }
    while (pos < len) {
        const char *why = NULL;
        if (!check_block(buf, len, &pos, &count, &why)) {
            set_err(err, errlen, "%s (block at byte %zu)", why, pos);
            return VP_ERR_INVALID;
        }
    }
    *nrec = count;
    return 0;
}

bool pending_next(const char *buf, size_t len, size_t *pos, char *kind, struct pending_field *f,
                  size_t *nf)
{
    for (;;) {
        if (*pos >= len)
            return false;
        if (len - *pos >= MAGIC_LEN && memcmp(buf + *pos, MAGIC, MAGIC_LEN) == 0) {
            *pos += MAGIC_LEN;
            continue;
        }
        if (len - *pos >= 4 && memcmp(buf + *pos, "end ", 4) == 0) {
            const char *nl = memchr(buf + *pos, '\n', len - *pos);
            if (!nl)
                return false;
            *pos = (size_t)(nl + 1 - buf);
            continue;
        }
        return parse_record(buf, len, pos, kind, f, nf);
    }
}

bool pending_i64(const struct pending_field *f, int64_t *out)
{
    if (!f->p || f->len == 0 || f->len > 20)
        return false;
    size_t i = 0;
    bool neg = f->p[0] == '-';
    if (neg)
        i = 1;
    if (i == f->len)
        return false;
    uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < f->len; i++) {
        char c = f->p[i];
        if (c < '0' || c > '9')
            return false;
        unsigned d = (unsigned)(c - '0');
        if (v > (lim - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    return true;
}
