/* Names of the resource kinds (SPEC §3). */
#include <string.h>

#include "ontology/ontology.h"

static const struct {
    const char *segment; /* URL segment, and KIND in "KIND/API_NAME" */
    const char *noun;    /* audit actions: object_type.create */
} KINDS[OMS_KIND__COUNT] = {
    [OMS_KIND_OBJECT_TYPE] = {"object-types", "object_type"},
    [OMS_KIND_LINK_TYPE] = {"link-types", "link_type"},
    [OMS_KIND_ACTION_TYPE] = {"action-types", "action_type"},
    [OMS_KIND_FUNCTION_TYPE] = {"function-types", "function_type"},
    [OMS_KIND_INTERFACE] = {"interfaces", "interface"},
    [OMS_KIND_SHARED_PROPERTY] = {"shared-properties", "shared_property"},
};

const char *oms_kind_segment(oms_kind k)
{
    return (unsigned)k < OMS_KIND__COUNT ? KINDS[k].segment : "unknown";
}

const char *oms_kind_noun(oms_kind k)
{
    return (unsigned)k < OMS_KIND__COUNT ? KINDS[k].noun : "unknown";
}

int oms_kind_parse(oms_kind *out, const char *segment)
{
    if (!segment)
        return -1;
    for (int k = 0; k < OMS_KIND__COUNT; k++) {
        if (strcmp(KINDS[k].segment, segment) == 0) {
            *out = (oms_kind)k;
            return 0;
        }
    }
    return -1;
}
