/* The write path: every change to a branch is one change transaction
 * (src/txn/change.h) whose step reads the head, applies the operations to
 * the head's snapshot, checks integrity and locks, stores new objects and
 * the commit and moves the head by compare-and-swap; the helper appends the
 * audit event and commits.
 *
 * Refusals come back as the error (with its precise problem code, e.g.
 * "integrity_violation") and the problem members in ctx->problem_extra. */
#ifndef OMS_WRITE_H
#define OMS_WRITE_H

#include <jansson.h>
#include <stdbool.h>

#include "core/context.h"
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
    /* The commit's issue references are ctx->issue_keys. */
    bool dry_run;              /* validate only: nothing is written */
    const char *audit_action;
    /* merges, reverts, proposals */
    const char *merge_parent;  /* second parent of a merge commit, or NULL */
    bool bypass_protection;    /* the change arrives by an approved path (proposal merge, override) */
    const char *audit_resource_kind, *audit_resource_id; /* override the single-op defaults */
    const json_t *audit_detail; /* object, or NULL: {"operations", "breaking"} */
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
} oms_write_result;

/* Runs the write (a dry run validates only, in a read transaction, and
 * records nothing). */
int oms_vcs_write(oms_ctx *ctx, oms_write *w, oms_write_result *res, oms_error *err);
void oms_write_result_clear(oms_write_result *res);

/* Called inside the transaction of every commit that moves a branch head
 * (the search index moves with it), when a branch is created and when one
 * is deleted. Registered once at start-up by the module that keeps state
 * per commit; NULL hooks are skipped. */
typedef int (*oms_vcs_commit_hook)(oms_dbconn *c, const char *branch, const oms_snapshot *state,
                                   const json_t *changes, const char *commit, oms_error *err);
typedef int (*oms_vcs_branch_create_hook)(oms_dbconn *c, const char *branch, const char *from, const char *commit,
                                          oms_error *err);
typedef int (*oms_vcs_branch_delete_hook)(oms_dbconn *c, const char *branch, oms_error *err);
void oms_vcs_set_commit_hook(oms_vcs_commit_hook on_commit, oms_vcs_branch_create_hook on_branch_create,
                             oms_vcs_branch_delete_hook on_branch_delete);
int oms_vcs_run_commit_hook(oms_dbconn *c, const char *branch, const oms_snapshot *state, const json_t *changes,
                            const char *commit, oms_error *err);
int oms_vcs_run_branch_create_hook(oms_dbconn *c, const char *branch, const char *from, const char *commit,
                                   oms_error *err);
int oms_vcs_run_branch_delete_hook(oms_dbconn *c, const char *branch, oms_error *err);

/* JSON diff of one resource between two entries (either may be NULL; a new
 * array). Remembered per pair of versions (write.c). */
json_t *oms_entry_diff(const oms_entry *old_e, const oms_entry *new_e, bool *breaking);
/* Entry diffs answered from memory, and computed, since the start. */
void oms_entry_diff_memo_counts(unsigned long *hits, unsigned long *misses);

#endif
