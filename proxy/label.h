/* proxy/label: the current run label, tagged onto every view and request recorded from the
 * moment it is set (`--label NAME` at start-up, `POST /__vitals/api/label` while running).
 * A label is 1..64 bytes of [A-Za-z0-9._-] (label_valid), or none. It is switched through
 * the API's callbacks (web.h, struct web_api_config: label_cb_get / label_cb_set, for
 * `GET /__vitals/api/label` and `POST /__vitals/api/label?name=X`) or with a JSON body
 * (label_handle_post, for `POST /__vitals/api/label` with Content-Type: application/json).
 * Thread-safe: a mutex guards one global string; readers get a copy, so a label never changes
 * under a record being filled. */
#ifndef VP_LABEL_H
#define VP_LABEL_H

#include <stdbool.h>
#include <stddef.h>

struct web_reply;

#define LABEL_MAX 64

/* true when s is a valid label: 1..64 bytes of [A-Za-z0-9._-]. */
bool label_valid(const char *s);

/* Sets the current label (NULL or "" clears it). Returns 0 or VP_ERR_INVALID (not a valid
 * label: the current one is kept). */
int label_set(const char *name) __attribute__((warn_unused_result));

/* Copies the current label into out (cap >= LABEL_MAX + 1 for any label) and returns true, or
 * returns false (out[0] = '\0' when cap > 0) when there is none or it does not fit. */
bool label_get(char *out, size_t cap);

/* Body of `POST /__vitals/api/label`: JSON {"label":"name"} switches the label, {"label":null}
 * clears it. Fills reply (borrowed; its body evbuffer is appended to): 200 {"label":...,
 * "switchable":true,"previous":...}, or 400 {"error":"..."} for a body that is not such an object or a label that
 * is not valid, 413 for a body over 1 KiB. body: len bytes, borrowed, may be NULL. Returns 0 or
 * VP_ERR_NOMEM. */
int label_handle_post(const char *body, size_t len, struct web_reply *reply)
    __attribute__((warn_unused_result));

/* struct web_api_config callbacks (arg unused): label_cb_get copies the current label ("" for
 * none) into out and returns 0 (VP_ERR_LIMIT when cap < LABEL_MAX + 1); label_cb_set is
 * label_set. Thread-safe. */
int label_cb_get(void *arg, char *out, size_t cap);
int label_cb_set(void *arg, const char *name);

#endif
