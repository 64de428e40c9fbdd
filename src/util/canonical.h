/* Canonical JSON (SPEC §4): object keys sorted, no insignificant whitespace,
 * UTF-8 as is, integers in decimal, reals as jansson prints them (%.17g).
 * The content hash of a document is the hex SHA-256 of this text. */
#ifndef OMS_CANONICAL_H
#define OMS_CANONICAL_H

#include <jansson.h>

/* malloc'd canonical text, or NULL on OOM. */
char *oms_canonical_dump(const json_t *v);
/* Canonical text into *text (malloc'd, may be NULL if unwanted) and its hash. */
int oms_canonical_hash(const json_t *v, char out_hash[65], char **text);

#endif
