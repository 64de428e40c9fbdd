/* One JSON Schema (2020-12) per resource kind, generated from the tables
 * that drive oms_validate_document (src/ontology/validate.c). */
#ifndef OMS_KIND_SCHEMA_H
#define OMS_KIND_SCHEMA_H

#include <jansson.h>

#include "ontology/ontology.h"

/* A new schema object for kind k (NULL for an unknown kind). */
json_t *oms_kind_json_schema(oms_kind k);

#endif
