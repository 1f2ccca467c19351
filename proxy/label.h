/* proxy/label: the current run label, tagged onto every view and request recorded from the
 * moment it is set (`--label NAME` at start-up, `POST /__vitals/api/label` while running).
 * A label is 1..64 bytes of [A-Za-z0-9._-] (store/labels.h: labels_valid), or none.
 * Thread-safe: a mutex guards one global string; readers get a copy, so a label never changes
 * under a record being filled. */
#ifndef VP_LABEL_H
#define VP_LABEL_H

#include <stdbool.h>
#include <stddef.h>

struct web_reply;

#define LABEL_MAX 64

/* Sets the current label (NULL or "" clears it). Returns 0 or VP_ERR_INVALID (not a valid
 * label: the current one is kept). */
int label_set(const char *name) __attribute__((warn_unused_result));

/* Copies the current label into out (cap >= LABEL_MAX + 1 for any label) and returns true, or
 * returns false (out[0] = '\0' when cap > 0) when there is none or it does not fit. */
bool label_get(char *out, size_t cap);

/* Body of `POST /__vitals/api/label`: JSON {"label":"name"} switches the label, {"label":null}
 * clears it. Fills reply (borrowed; its body evbuffer is appended to): 200 {"label":...,
 * "previous":...}, or 400 {"error":"..."} for a body that is not such an object or a label that
 * is not valid, 413 for a body over 1 KiB. body: len bytes, borrowed, may be NULL. Returns 0 or
 * VP_ERR_NOMEM. */
int label_handle_post(const char *body, size_t len, struct web_reply *reply)
    __attribute__((warn_unused_result));

#endif
