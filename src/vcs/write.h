/* The write path: every change to a branch is one database transaction that
 * reads the head, applies the operations to the head's snapshot, checks
 * integrity, consults the lock hook, stores new objects and the commit,
 * moves the head by compare-and-swap and appends the audit event. */
#ifndef OMS_WRITE_H
#define OMS_WRITE_H

#include <jansson.h>
#include <stdbool.h>

#include "http/request.h"
#include "ontology/ontology.h"
#include "vcs/snapshot.h"

typedef enum { OMS_OP_CREATE, OMS_OP_REPLACE, OMS_OP_DELETE } oms_op_type;

typedef struct {
    oms_op_type op;
    oms_kind kind;
    const char *api_name;
    json_t *doc;          /* validated document (borrowed); NULL for delete */
    const char *if_match; /* expected current content hash, or NULL */
    /* results */
    char old_hash[65], new_hash[65];
} oms_write_op;

typedef struct {
    const char *branch;
    const char *if_match_head; /* expected branch head, or NULL */
    oms_write_op *ops;
    size_t nops;
    const char *message;       /* NULL: a message is made from the operations */
    const json_t *issue_keys;  /* array, may be NULL */
    const char *override_id;
    bool dry_run;              /* validate only: nothing is written */
    const char *audit_action;
    /* merges, reverts, proposals */
    const char *merge_parent;  /* second parent of a merge commit, or NULL */
    bool bypass_protection;    /* the change arrives by an approved path (proposal merge, override) */
    const char *audit_resource_kind, *audit_resource_id; /* override the single-op defaults */
    const char *audit_detail;  /* JSON object text, or NULL */
    int success_status;        /* HTTP status recorded with the event; 0: derived from the operation */
    bool allow_empty;          /* commit even when no resource changes (merge commits) */
    /* Runs inside the transaction after the head moved, with the new commit:
     * for state that must change atomically with the commit (a proposal
     * becoming merged). */
    int (*in_tx)(oms_dbconn *c, void *ctx, const char *commit, oms_error *err);
    void *in_tx_ctx;
} oms_write;

typedef struct {
    char commit[65];     /* the new commit (or the unchanged head for a no-op) */
    bool changed;        /* false when every operation was a no-op */
    bool breaking;
    json_t *changes;     /* [{resource, change, breaking, fields}] (owned) */
    oms_snapshot *snap;  /* the resulting snapshot (owned reference) */
    /* on refusal */
    const char *problem_code; /* e.g. "integrity_violation" */
    json_t *problem_extra;    /* members for the problem document (owned) */
} oms_write_result;

int oms_vcs_write(oms_request *req, oms_write *w, oms_write_result *res, oms_error *err);
void oms_write_result_clear(oms_write_result *res);

/* JSON diff of one resource between two entries (either may be NULL). */
json_t *oms_entry_diff(const oms_entry *old_e, const oms_entry *new_e, bool *breaking);

#endif
