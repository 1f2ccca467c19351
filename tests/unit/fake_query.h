/* What the store/query.h test double saw last (see fake_query.c). */
#ifndef VP_TEST_FAKE_QUERY_H
#define VP_TEST_FAKE_QUERY_H
#include <stdint.h>
struct fake_query_log {
    int calls;
    int64_t since_ms;
    int limit;
    char route[600];
    char prefix[300];
};
extern struct fake_query_log fake_query_log;
#endif
