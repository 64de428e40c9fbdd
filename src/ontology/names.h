/* Grammars of branch and resource names (SPEC §3, §4): domain rules the
 * transport also applies to path parameters. */
#ifndef OMS_ONTOLOGY_NAMES_H
#define OMS_ONTOLOGY_NAMES_H

#include <stdbool.h>

bool oms_valid_branch_name(const char *s);
bool oms_valid_api_name(const char *s);

#endif
