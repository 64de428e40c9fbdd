/* The raw request path, checked before routing and authentication (SPEC §5).
 * The path is split on '/' before any decoding; routes match raw segments;
 * each path parameter is then percent-decoded exactly once and checked
 * against its own grammar. There is exactly one spelling of every route. */
#ifndef OMS_PATH_H
#define OMS_PATH_H

#include <stdbool.h>
#include <stddef.h>

#include "ontology/names.h" /* oms_valid_branch_name, oms_valid_api_name */
#include "util/arena.h"
#include "util/error.h"

#define OMS_MAX_URI 8192
#define OMS_MAX_SEGMENTS 16

typedef struct {
    const char *seg[OMS_MAX_SEGMENTS]; /* raw, NUL-terminated, in the arena */
    size_t nseg;
} oms_path;

/* Splits and checks a raw path (no query). Refuses with OMS_EBADPATH: no
 * leading '/', empty segments (including "//" and a trailing '/'), dot
 * segments raw or encoded (also inside an encoded '/'), NUL raw or encoded,
 * encoded or raw '\', control bytes, bad escapes, too many segments.
 * "/" alone gives zero segments. */
int oms_path_parse(oms_path *out, const char *raw, size_t len, oms_arena *a, oms_error *err);

/* Percent-decodes once. Returns NULL (and sets err) on a bad escape or an
 * encoded NUL; the result is in the arena. */
char *oms_pct_decode(const char *s, size_t len, oms_arena *a, size_t *out_len, oms_error *err);

/* Percent-encodes `s` as one path segment (RFC 3986 unreserved bytes
 * stay, everything else, '/' included, becomes %XX); in the arena, NULL
 * when it is full. What a Location header names must route back here. */
char *oms_pct_encode_segment(oms_arena *a, const char *s);

/* Grammars of path parameters and names (SPEC §3, §4). */
bool oms_valid_opaque_id(const char *s); /* ids of locks, proposals, ...: [A-Za-z0-9_-]{1,128} */
bool oms_valid_request_id(const char *s); /* a client's X-Request-ID we echo */

#endif
