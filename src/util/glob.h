/* Branch globs (SPEC §6.2, §6.3): '*' matches within one '/'-separated
 * segment, '**' matches across segments (any sequence, '/' and nothing
 * included); everything else matches itself. */
#ifndef OMS_GLOB_H
#define OMS_GLOB_H

#include <stdbool.h>

bool oms_glob_match(const char *pattern, const char *name);
/* A comma-separated list of globs (spaces around items ignored). */
bool oms_glob_list_match(const char *globs, const char *name);

#endif
