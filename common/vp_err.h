/* vitals-proxy error codes shared by every module.
 *
 * Success is 0; failures are the negative codes below. Modules return them and never log;
 * the caller able to act turns them into a status code, a closed connection or a CLI line. */
#ifndef VP_ERR_H
#define VP_ERR_H

enum vp_err {
    VP_OK = 0,
    VP_ERR_NOMEM = -1,    /* allocation failed */
    VP_ERR_INVALID = -2,  /* malformed input or argument */
    VP_ERR_LIMIT = -3,    /* a configured limit was exceeded */
    VP_ERR_PROTO = -4,    /* protocol violation by a peer */
    VP_ERR_IO = -5,       /* system call / file / socket failure */
    VP_ERR_DB = -6,       /* SQLite failure */
    VP_ERR_FULL = -7,     /* a bounded queue is full: try again later */
    VP_ERR_NOTFOUND = -8, /* no such object */
    VP_ERR_VERSION = -9,  /* data made by a newer version */
};

#define VP_WUR __attribute__((warn_unused_result))

/* Returns a static, human-readable name for an error code (never NULL). */
const char *vp_strerror(int err);

#endif
