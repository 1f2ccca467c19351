/* store/beacon: parsing and validation of one beacon payload (web/beacon-protocol.md, version 1)
 * and User-Agent classification. Pure functions, no SQLite, safe on any thread: the event loop
 * calls beacon_check (store_ingest_beacon) before anything is queued, so nothing unvalidated ever
 * reaches the writer. The rules live in beacon_check only; beacon_parse is beacon_check followed
 * by a jansson load of the accepted body, filtered (for tests, the fuzz target and benches).
 *
 * A validated payload has these guarantees (the store relies on them and reads nothing else):
 * "vid" matches [A-Za-z0-9_-]{8,64}; "t0" is a number; "url" a string <= BEACON_MAX_URL;
 * optional context fields have their documented types and enumerated values; every "m" entry
 * has a known "n", a string "id", numbers "v"/"d" within range, and an "a" whose known keys have
 * their types (beacon_parse replaces it by an object holding only those, and "r" by the derived
 * rating; beacon_check leaves both as sent); "nt" and every "res" entry hold fields of the types
 * in beacon_res_fields / beacon_nav_fields (unknown keys are left in place but never read). */
#ifndef VP_BEACON_H
#define VP_BEACON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "store/jtree.h"

#define BEACON_MAX_BODY (64 * 1024)  /* bytes; larger bodies are VP_ERR_LIMIT */
#define BEACON_MAX_RESOURCES 500     /* entries in one "res" array */
#define BEACON_MAX_RES_INDEX 100000  /* "ri" + entries: resources per view */
#define BEACON_MAX_METRICS 32        /* entries in one "m" array */
#define BEACON_MAX_URL 2048          /* bytes of any URL string */
#define BEACON_MAX_SELECTOR 256      /* bytes of a selector / short string */
#define BEACON_MAX_TIME_MS 3600000.0 /* times and durations: 0 .. 1 h */
#define BEACON_MAX_CLS 100.0
#define BEACON_MAX_SERVER_TIMING 32  /* entries of "sv" */

/* Kinds of resource / navigation entry fields. */
enum beacon_kind {
    BEACON_K_TIME,   /* number 0 .. BEACON_MAX_TIME_MS */
    BEACON_K_SIZE,   /* number 0 .. 1e12 (bytes) */
    BEACON_K_STATUS, /* integer 0 .. 999 */
    BEACON_K_COUNT,  /* integer 0 .. 1000 */
    BEACON_K_URL,    /* string <= BEACON_MAX_URL */
    BEACON_K_TOKEN,  /* string <= 64 */
    BEACON_K_SV,     /* serverTiming array: [{"n": str<=256, "d": time, "de": str<=256}] */
};

struct beacon_field {
    const char *key;    /* wire key ("rps") */
    const char *column; /* SQL column and JSON output name ("response_start") */
    enum beacon_kind kind;
};

#define BEACON_MAX_FIELDS 32 /* entries of either table below */

/* The waterfall fields of a resource entry, then the navigation-only extras. NULL-terminated. */
extern const struct beacon_field beacon_res_fields[];
extern const struct beacon_field beacon_nav_fields[];

/* Metric names in the order the report lists them, NULL-terminated. */
extern const char *const beacon_metric_names[];

/* Parses and validates body (len bytes, borrowed). On success *out is the validated object
 * (caller owns it: json_decref) and 0 is returned. Errors: VP_ERR_LIMIT (len > BEACON_MAX_BODY),
 * VP_ERR_INVALID (malformed JSON or a failed check), VP_ERR_NOMEM. On error a short reason made
 * of fixed text and field names only (never input bytes: safe to send and to count) is written
 * into reason (reasonlen bytes, may be 0). Re-entrant. */
int beacon_parse(const char *body, size_t len, json_t **out, char *reason, size_t reasonlen)
    __attribute__((warn_unused_result));

/* Parses body with jansson (copied into the arena tree of store/jtree.h) and applies every
 * check, with beacon_parse's errors and reasons (beacon_parse calls it), without rewriting
 * anything: on success *doc holds
 * the document (jtree_doc_free; it keeps no pointer into body) and *root the payload
 * as sent ("r" not replaced, "a" not filtered: the store derives the rating with
 * beacon_rating_of and writes the filtered attribution with beacon_attr_json). */
int beacon_check(const char *body, size_t len, struct jtree_doc **doc, const struct jtree **root,
                 char *reason, size_t reasonlen) __attribute__((warn_unused_result));

/* One scan of object obj (borrowed): slots[k] (BEACON_MAX_FIELDS entries) becomes its value for
 * fields[k].key, or NULL when absent. */
void beacon_field_slots(const struct jtree *obj, const struct beacon_field *fields,
                        const struct jtree **slots);

/* The rating of value for metric by the contract's thresholds ("good", "needs-improvement",
 * "poor"; boundaries count toward the better bucket), or NULL for an unknown metric. */
const char *beacon_rating_of(const char *metric, double value);

/* The filtered attribution of a checked metric entry (a: its "a" object, borrowed; metric: its
 * "n") as compact JSON, known keys only, in the order of the protocol's key list: the values
 * json_dumps of beacon_parse's filtered object holds, reals written in the shortest of a few
 * exact decimal forms (the same double when read back). beacon_attr_json_max gives an upper
 * bound of the bytes; beacon_attr_json writes into out (at least that many bytes, no NUL) and
 * returns the length. */
size_t beacon_attr_json_max(const struct jtree *a, const char *metric);
size_t beacon_attr_json(const struct jtree *a, const char *metric, char *out);

/* Classifies a User-Agent string (NUL-terminated, may be NULL): family is written into family
 * (cap bytes; "Chrome", "Edge", "Firefox", "Safari", "Opera", "Samsung", "Chromium", "other"),
 * the major version into *major (0 when unknown). */
void beacon_browser_of(const char *ua, char *family, size_t cap, int *major);

/* true when s (NUL-terminated) is a valid view id: [A-Za-z0-9_-]{8,64}. */
bool beacon_valid_view_id(const char *s);

#endif
