/* Minimal TAP producer for unit tests: each CHECK is one numbered result line; a table of named
 * cases is the norm ("html_scan/comment_split"). Exit status is non-zero when any check failed. */
#ifndef VP_TAP_H
#define VP_TAP_H
#include <stdio.h>
#include <stdlib.h>

static int tap_n, tap_failed;

#define TAP_OK(cond, ...)                                                                         \
    do {                                                                                          \
        int tap_c_ = (cond) ? 1 : 0;                                                              \
        tap_n++;                                                                                  \
        if (!tap_c_)                                                                              \
            tap_failed++;                                                                         \
        printf("%s %d - ", tap_c_ ? "ok" : "not ok", tap_n);                                      \
        printf(__VA_ARGS__);                                                                      \
        printf("\n");                                                                             \
        if (!tap_c_)                                                                              \
            printf("# failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);                         \
    } while (0)

#define TAP_DONE()                                                                                \
    do {                                                                                          \
        printf("1..%d\n", tap_n);                                                                 \
        return tap_failed ? 1 : 0;                                                                \
    } while (0)

#endif
