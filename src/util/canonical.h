/* Canonical JSON (SPEC §4): object keys sorted, no insignificant whitespace,
 * UTF-8 as is, integers in decimal, reals as jansson prints them (%.17g).
 * The content hash of a document is the hex SHA-256 of this text. */
#ifndef OMS_CANONICAL_H
#define OMS_CANONICAL_H

#include <jansson.h>
#include <stdbool.h>

#include "util/buf.h"

/* malloc'd canonical text, or NULL on OOM. */
char *oms_canonical_dump(const json_t *v);
/* Canonical text into *text (malloc'd, may be NULL if unwanted) and its hash. */
int oms_canonical_hash(const json_t *v, char out_hash[65], char **text);

/* The canonical text of an object whose members are all strings, built
 * without a jansson tree (a snapshot's buckets and root are sealed on every
 * commit). Members are added with keys in strcmp order, the order
 * JSON_SORT_KEYS gives. Only strings that canonical JSON prints as they are
 * (printable ASCII without '"' or '\\') are accepted: `add` answers false
 * for anything else, and the caller builds the object with jansson
 * instead, so the bytes are always those of oms_canonical_dump. */
typedef struct {
    oms_buf text;
    size_t n;
} oms_canonical_map;

void oms_canonical_map_init(oms_canonical_map *m, size_t expect_bytes);
bool oms_canonical_map_add(oms_canonical_map *m, const char *key, const char *value);
/* The same without the scan, for strings the caller made of hex digits (a
 * snapshot's root: 256 bucket names and hashes, on every commit). */
void oms_canonical_map_add_printable(oms_canonical_map *m, const char *key, size_t klen, const char *value,
                                     size_t vlen);
/* Closes the object and hashes it; the map is reset for reuse. */
void oms_canonical_map_hash(oms_canonical_map *m, char out_hash[65]);
void oms_canonical_map_free(oms_canonical_map *m);

/* The raw text (between the quotes, escapes as they are) of the string
 * member `key` of the top-level object of a canonical JSON text, found by
 * a scan without building a tree (a list filtered by status looks at every
 * resource of a kind). False when the text is not an object, has no such
 * member at top level, or the member is not a string. */
bool oms_canonical_top_string(const char *text, size_t len, const char *key, const char **value, size_t *vlen);

#endif
