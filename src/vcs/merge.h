/* Three-way merge (SPEC §4; docs/merge.md): merge base, per-resource and
 * per-field merge of snapshots, conflicts reported with base, source and
 * target values, never resolved silently. */
#ifndef OMS_MERGE_H
#define OMS_MERGE_H

#include <jansson.h>
#include <stdbool.h>

#include "store/db.h"
#include "vcs/snapshot.h"

/* The merge base of two commits: the common ancestor with the highest
 * generation, ties broken by the smallest id (deterministic for criss-cross
 * histories, where several lowest common ancestors exist). */
int oms_merge_base(oms_dbconn *c, const char *a, const char *b, char out[65], oms_error *err);

/* Field-level three-way merge of one document. Any of base/source/target
 * may be NULL (absent). Returns the merged document (new reference; NULL
 * when the result is "absent") and appends {path, base, source, target}
 * to `conflicts` for every field changed differently on both sides. Arrays
 * of named items (properties, parameters, inputs) merge by api_name. */
json_t *oms_merge_documents(const json_t *base, const json_t *source, const json_t *target, json_t *conflicts);

/* A resolution that settles fields, not a whole document: an object whose
 * keys are all JSON pointers ({"/properties/2/type": "source"}). */
bool oms_merge_is_field_resolution(const json_t *res);

typedef struct {
    json_t *result;    /* KIND/NAME -> merged document, or null to delete; only keys that differ from target */
    json_t *conflicts; /* [{resource, type, base, source, target, fields: [...]}] */
} oms_merge_outcome;

/* Merges snapshots resource by resource; equal buckets are skipped. A
 * resolution per resource ("source", "target" or a document) settles its
 * conflict; resolved documents are taken as given (validated by the caller). */
int oms_merge_snapshots(const oms_snapshot *base, const oms_snapshot *source, const oms_snapshot *target,
                        const json_t *resolutions, oms_merge_outcome *out);
void oms_merge_outcome_clear(oms_merge_outcome *o);

#endif
