/* The distinct strings of a set of JSON arrays (issue keys kept per commit
 * as a JSON array), in one order on every backend and instance. */
#ifndef OMS_UTIL_JSON_STRINGS_H
#define OMS_UTIL_JSON_STRINGS_H

#include <stddef.h>

/* Gives `each` the distinct strings in the JSON arrays `docs` (texts; NULL
 * entries, other values and malformed texts are skipped), sorted bytewise. */
void oms_json_distinct_strings(const char *const *docs, size_t ndocs, void (*each)(void *ctx, const char *s),
                               void *ctx);

#endif
