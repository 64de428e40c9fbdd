/* The ontology's resource kinds (SPEC §3): document validation, references,
 * integrity rules and breaking-change detection. Pure functions over jansson
 * values: no storage, no HTTP. */
#ifndef OMS_ONTOLOGY_H
#define OMS_ONTOLOGY_H

#include <jansson.h>
#include <stdbool.h>

typedef enum {
    OMS_KIND_OBJECT_TYPE,
    OMS_KIND_LINK_TYPE,
    OMS_KIND_ACTION_TYPE,
    OMS_KIND_FUNCTION_TYPE,
    OMS_KIND_INTERFACE,
    OMS_KIND_SHARED_PROPERTY,
    OMS_KIND__COUNT
} oms_kind;

/* "object-types" etc. (URL segment, and the KIND in "KIND/API_NAME"). */
const char *oms_kind_segment(oms_kind k);
/* "object_type" etc. (audit actions: object_type.create). */
const char *oms_kind_noun(oms_kind k);
/* Returns 0 and sets *out, or -1 for an unknown segment. */
int oms_kind_parse(oms_kind *out, const char *segment);

/* A resource's lifecycle status (SPEC §3: experimental, active, deprecated)
 * as a small number: 0, 1 or 2 for the `len` bytes at `s`, -1 for anything
 * else. */
int oms_status_index(const char *s, size_t len);

/* Validates a resource document of kind k, as a client sent it.
 * - Unknown fields are errors (typos never pass). A `meta` member is
 *   ignored (removed from `doc`), as SPEC §3 says server data is ignored on input.
 * - `api_name`: when `url_api_name` is non-NULL the document's api_name must
 *   equal it, or be absent (then it is set from the URL).
 * - Defaults are filled in place so that the stored form is complete and
 *   canonical: status "experimental", description "", and per property
 *   array=false, required=false, description "" (display_name defaults to api_name).
 * Errors are appended to `errors` (a JSON array) as
 * {"path": "/properties/0/type", "message": "..."}; returns the number added. */
int oms_validate_document(oms_kind k, json_t *doc, const char *url_api_name, json_t *errors);

/* Calls fn for every resource a (valid) document refers to: link ends,
 * implements[], extends[], property shared_property, action rule targets and
 * parameter object types (object_reference), function inputs/output object
 * types if any. `path` is a JSON pointer into the document, valid only
 * during the call. */
typedef void (*oms_ref_fn)(void *ctx, oms_kind kind, const char *api_name, const char *path);
void oms_document_refs(oms_kind k, const json_t *doc, oms_ref_fn fn, void *ctx);

/* Looks a resource up on the same branch (NULL when absent). */
typedef const json_t *(*oms_lookup_fn)(void *ctx, oms_kind kind, const char *api_name);

/* Integrity rules of SPEC §3 for one document against the branch state:
 * every reference resolves; primary_key names a required, non-array
 * string/integer/long property; title_property names a property; an object
 * type has every property of every interface it implements (transitively
 * through `extends`) with the same type and array flag; `extends` has no
 * cycle; a property with shared_property has the shared property's type.
 * Appends {"path","message", "code"} errors; returns how many. */
int oms_check_integrity(oms_kind k, const json_t *doc, oms_lookup_fn lookup, void *ctx, json_t *errors);

/* Field-level diff of two versions of one resource (either may be NULL for
 * add/remove). Returns a JSON array of
 *   {"path": JSON pointer, "op": "add"|"remove"|"replace", "old": v, "new": v, "breaking": bool}
 * and, on a breaking op, "rule" (a code: resource_removed, item_removed,
 * required_item_added, type_changed, made_required, cardinality_narrowed,
 * primary_key_changed, link_endpoint_changed, array_flag_changed,
 * object_type_changed, list_changed) and "reason" (a sentence naming the
 * pointer, for a reviewer).
 * Arrays of named items (properties, parameters, inputs) are matched by
 * api_name, and their pointers use the api_name as the token:
 * /properties/email/type. Other arrays are compared as values.
 * Breaking rules (SPEC §3), never for resources whose old status is
 * "experimental": deleting a type or a property, changing a property type
 * except widening (integer->long->double, integer->double, date->timestamp),
 * making a property required, changing a primary key, narrowing a link
 * cardinality, removing an action parameter or adding a required one,
 * removing an interface property; also changing a link's `from`/`to`, a
 * parameter's, input's or output's type or object type, a shared property's
 * type, any array flag, and adding a required property. `*breaking` is set
 * when any is. Returns NULL only when memory runs out. */
json_t *oms_diff_documents(oms_kind k, const json_t *old_doc, const json_t *new_doc, bool *breaking);

#endif
