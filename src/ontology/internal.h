/* Private to src/ontology: the domain facts shared by validation, integrity
 * and diff (type lists, widening, cardinality, key rules), JSON pointer
 * building and error reporting. Not part of the ontology.h contract. */
#ifndef OMS_ONTOLOGY_INTERNAL_H
#define OMS_ONTOLOGY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "ontology/ontology.h"

/* Upper bound on the items of any array in a document (properties,
 * parameters, rules, implements, enum values...). */
#define OMS_ONT_MAX_ITEMS 1000
/* Errors reported by one validation or integrity call. */
#define OMS_ONT_MAX_ERRORS 100

/* ---- model.c: domain facts ---------------------------------------------- */

/* NULL-terminated lists of the allowed values of enumerated string fields. */
extern const char *const oms_ont_property_types[];  /* properties, shared properties */
extern const char *const oms_ont_parameter_types[]; /* the above + object_reference */
extern const char *const oms_ont_statuses[];
extern const char *const oms_ont_cardinalities[];
extern const char *const oms_ont_rule_types[];

bool oms_ont_in_list(const char *const *list, const char *s);

/* True when a value of type `from` is always readable as `to` (SPEC §3:
 * integer->long->double, integer->double, date->timestamp). */
bool oms_ont_type_widens(const char *from, const char *to);

/* True when going from cardinality `from` to `to` allows fewer links on
 * either side. Unknown values count as narrowing (fail safe). */
bool oms_ont_cardinality_narrows(const char *from, const char *to);

/* The item of an array of named objects whose api_name is `name`, or NULL;
 * *idx (optional) receives its index. */
json_t *oms_ont_find_named(const json_t *arr, const char *name, size_t *idx);

/* Adds `s` to `set` (a JSON object used as a set of strings); false when
 * it was already there. */
bool oms_ont_set_add(json_t *set, const char *s);

/* String member of an object or NULL (also when not a string). */
const char *oms_ont_str(const json_t *obj, const char *key);

/* Object-type key rules, shared by validation (early 400) and integrity
 * (every commit, e.g. after a merge). Return false and write a message when
 * the rule fails; an absent or non-string field passes (reported elsewhere). */
bool oms_ont_primary_key_ok(const json_t *doc, char *msg, size_t msglen);
bool oms_ont_title_property_ok(const json_t *doc, char *msg, size_t msglen);

/* ---- pointer.c: JSON pointers (RFC 6901) -------------------------------- */

/* A growable JSON pointer. On allocation failure the pointer stays at its
 * last good value and `oom` is set; callers keep going (best effort). */
typedef struct {
    char *buf;
    size_t len, cap;
    bool oom;
} oms_ont_ptr;

void oms_ont_ptr_init(oms_ont_ptr *p);
void oms_ont_ptr_free(oms_ont_ptr *p);
/* Append "/token" (escaped) or "/index"; return a mark for oms_ont_ptr_pop. */
size_t oms_ont_ptr_push(oms_ont_ptr *p, const char *token);
size_t oms_ont_ptr_push_index(oms_ont_ptr *p, size_t index);
void oms_ont_ptr_pop(oms_ont_ptr *p, size_t mark);
/* "" for the root. Valid until the next push. */
const char *oms_ont_ptr_str(const oms_ont_ptr *p);

/* ---- errors -------------------------------------------------------------- */

/* Appends {"path", "message"[, "code"]} to `errors`. */
void oms_ont_error_append(json_t *errors, const char *path, const char *code, const char *message);

#endif
