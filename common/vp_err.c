/* Error code names; see vp_err.h. */
#include "config.h"
#include "common/vp_err.h"

const char *vp_strerror(int err)
{
    switch (err) {
    case VP_OK: return "ok";
    case VP_ERR_NOMEM: return "out of memory";
    case VP_ERR_INVALID: return "invalid input";
    case VP_ERR_LIMIT: return "limit exceeded";
    case VP_ERR_PROTO: return "protocol error";
    case VP_ERR_IO: return "I/O error";
    case VP_ERR_DB: return "database error";
    case VP_ERR_FULL: return "queue full";
    case VP_ERR_NOTFOUND: return "not found";
    case VP_ERR_VERSION: return "made by a newer version";
    default: return "unknown error";
    }
}
