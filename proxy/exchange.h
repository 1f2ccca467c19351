/* proxy/exchange: the timing record of one exchange and the request log.
 * Times are epoch microseconds (0 = did not happen). Event-loop thread only. */
#ifndef VP_EXCHANGE_H
#define VP_EXCHANGE_H

#include <stdbool.h>
#include <stdint.h>

struct conn;

struct exchange_times {
    int64_t accept_us, head_done_us, connect_start_us, connect_end_us, sent_us, first_byte_us,
        last_byte_us;
    uint64_t bytes_in, bytes_out, upstream_bytes;
};

struct exchange_info {
    struct exchange_times t;
    int status;
    int minor;
    const char *method, *target, *peer, *host, *referer, *user_agent;
    const char *content_type, *content_encoding, *cache_control, *error;
    const char *protocol;    /* client protocol: "h1" or "h2" */
    const char *tls_version; /* "TLSv1.3", ... or NULL for plain TCP */
    bool reused;
    bool forwarded; /* reached (or tried to reach) the upstream */
    bool injected;
    const char *view_id; /* NULL unless the beacon tag was inserted */
};

/* Epoch microseconds (CLOCK_REALTIME). */
int64_t exchange_now_us(void);

/* Logs the current exchange of c once (one line on stderr unless --quiet; text or JSON), hands
 * its timing record to the store when it was forwarded (a full queue drops the record and counts
 * it: the loop never waits), and marks it logged. */
void exchange_finish_log(struct conn *c);

#endif
