/* The resource kinds, by their URL segment (SPEC §3): also the folder
 * names of an exported directory. */
#include <string.h>

#include "cli/cli.h"

const char *const oms_cli_kinds[] = {"object-types", "link-types", "action-types", "function-types",
                                     "interfaces", "shared-properties", NULL};

bool oms_cli_is_kind(const char *s)
{
    for (size_t i = 0; oms_cli_kinds[i]; i++)
        if (!strcmp(s, oms_cli_kinds[i]))
            return true;
    return false;
}
