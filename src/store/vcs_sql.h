/* Storage operations of branches and commits (src/vcs): the statements of
 * both dialects side by side (store/dialect.h), so that vcs never asks
 * which database it talks to. Every operation runs inside the caller's
 * transaction on `c`. */
#ifndef OMS_STORE_VCS_SQL_H
#define OMS_STORE_VCS_SQL_H

#include <stdbool.h>
#include <stdint.h>

#include "store/db.h"

/* What a write reads of its branch, with the database clock, in one
 * statement: the row locked until the transaction ends (PostgreSQL FOR
 * UPDATE; SQLite's write transaction already serialises writers). */
typedef struct {
    char head[65];
    bool protect;
    int64_t now_ms;
    char compat[16];  /* compatibility policy: "warn", "block", "none" */
    bool transitive;  /* the policy also holds against reachable tags */
    bool has_forks;   /* branches share its rows (docs/storage.md "Forks share their base's rows") */
} oms_store_write_branch;
/* Queues the read (oms_db_read_later: it travels with the next statement,
 * so the write path's lock reads go in the same round trip); `*rows` holds
 * its rows once sent, for oms_store_branch_for_write_row. */
int oms_store_branch_for_write_later(oms_dbconn *c, const char *branch, oms_dbres **rows, oms_dbres **forks,
                                     oms_error *err);
/* The row read by oms_store_branch_for_write_later (and whether the branch
 * has forks, read after its lock); OMS_ENOTFOUND without it. */
int oms_store_branch_for_write_row(const oms_dbres *rows, const oms_dbres *forks, const char *branch,
                                   oms_store_write_branch *out, oms_error *err);
/* Whether branches share the rows of `branch` (call it holding the
 * branch's row lock). */
int oms_store_branch_has_forks(oms_dbconn *c, const char *branch, bool *out, oms_error *err);
/* The branch's head (and protection, may be NULL); `lock`: as above. */
int oms_store_branch_head(oms_dbconn *c, const char *branch, bool lock, char head[65], bool *protect,
                          oms_error *err);
/* Moves the head from `from` to `to` by compare-and-swap: *moved is false
 * when the head is no longer `from`. */
int oms_store_branch_move_head(oms_dbconn *c, const char *branch, const char *from, const char *to, int64_t now_ms,
                               bool *moved, oms_error *err);
/* The same, held back to travel with the next statement (its rows are not
 * needed: a head that is no longer `from` fails the statement, reported as
 * OMS_EPRECOND "the branch head moved during the write" by the call that
 * sends it). On SQLite it runs at once. */
int oms_store_branch_move_head_later(oms_dbconn *c, const char *branch, const char *from, const char *to,
                                     int64_t now_ms, oms_error *err);

#define OMS_STORE_BRANCH_COLS                                                                                 \
    "name, head, protected, required_approvals, breaking_change_approvals, issue_required, created_at,"     \
    " created_by, updated_at, compatibility, transitive"
/* Column positions of a branch row read with OMS_STORE_BRANCH_COLS. */
enum { OMS_BR_NAME, OMS_BR_HEAD, OMS_BR_PROTECTED, OMS_BR_REQUIRED, OMS_BR_BREAKING_REQUIRED, OMS_BR_ISSUE_REQUIRED,
       OMS_BR_CREATED_AT, OMS_BR_CREATED_BY, OMS_BR_UPDATED_AT, OMS_BR_COMPATIBILITY, OMS_BR_TRANSITIVE };
/* One branch row (OMS_STORE_BRANCH_COLS); `lock`: the row as it is once
 * every transaction holding it has ended, locked until this one ends.
 * OMS_ENOTFOUND when absent. */
int oms_store_branch_load(oms_dbconn *c, const char *name, bool lock, oms_dbres **out, oms_error *err);
/* A page of branch rows after `after`, `limit` rows at most. */
int oms_store_branch_page(oms_dbconn *c, const char *after, int64_t limit, oms_dbres **out, oms_error *err);
/* The head of branch `name`, share-locked (a write or delete of it in
 * flight is waited for, the next ones held off) until the transaction
 * ends. OMS_ENOTFOUND when absent. */
int oms_store_branch_head_shared(oms_dbconn *c, const char *name, char head[65], oms_error *err);
/* Inserts a new branch at `head` (OMS_ECONFLICT when the name is taken). */
int oms_store_branch_insert(oms_dbconn *c, const char *name, const char *head, int64_t now_ms, const char *by,
                            oms_error *err);
/* The base of branch `name` when it is a fork (*fork false: it is a base;
 * docs/storage.md "Forks share their base's rows"). */
int oms_store_branch_base_of(oms_dbconn *c, const char *name, char base[256], bool *fork, oms_error *err);
/* Makes the new branch `name` a fork of base `base`, with a copy of the
 * rows of `copy_from` (NULL: none; a fork of a fork copies the fork's). */
int oms_store_branch_fork(oms_dbconn *c, const char *name, const char *base, const char *copy_from, oms_error *err);
/* Deletes the branch's resource rows, its forks made bases first (each
 * locked, given the rows it shared); then its own row (*deleted counts
 * the branch rows removed). */
int oms_store_branch_delete_rows(oms_dbconn *c, const char *name, oms_error *err);
int oms_store_branch_delete(oms_dbconn *c, const char *name, int64_t *deleted, oms_error *err);
/* The branch's settings (protected, required_approvals,
 * breaking_change_approvals, issue_required), the row locked as in
 * oms_store_branch_for_write; then their update (issue_required NULL: the
 * server's default). */
/* The compatibility policy of a branch ("warn", "block", "none") and its
 * transitive flag (*found false when there is no such branch); its update. */
int oms_store_branch_compat(oms_dbconn *c, const char *name, char policy[16], bool *transitive, bool *found,
                            oms_error *err);
int oms_store_branch_compat_update(oms_dbconn *c, const char *name, const char *policy, int64_t transitive,
                                   oms_error *err);
int oms_store_branch_settings_for_update(oms_dbconn *c, const char *name, oms_dbres **out, oms_error *err);
int oms_store_branch_settings_update(oms_dbconn *c, const char *name, int64_t protect, int64_t required,
                                     int64_t breaking_required, const int64_t *issue_required, int64_t now_ms,
                                     oms_error *err);

/* The content of object `hash`: *out NULL (and OMS_OK) when absent. */
int oms_store_object_content(oms_dbconn *c, const char *hash, oms_dbres **out, oms_error *err);
/* The changes a commit recorded: resource, change, old_hash, new_hash,
 * ordered by resource. */
int oms_store_commit_changes(oms_dbconn *c, const char *commit, oms_dbres **out, oms_error *err);
/* First-parent history from `start`, `limit` + 1 commits: id, tree,
 * parents, author, time_ms, issue_keys, message. */
int oms_store_commit_history(oms_dbconn *c, const char *start, int64_t limit, oms_dbres **out, oms_error *err);
/* Commits linked to an issue after `after` (same columns). */
/* The first-parent history from `start` filtered to commits that changed
 * `resource` ("KIND/API_NAME") and were made by `author` (each NULL for
 * any) within [since_ms, until_ms]; at most `limit` rows. */
int oms_store_commit_history_filtered(oms_dbconn *c, const char *start, const char *resource, const char *author,
                                      int64_t since_ms, int64_t until_ms, int64_t limit, oms_dbres **out,
                                      oms_error *err);
int oms_store_issue_commits(oms_dbconn *c, const char *key, const char *after, int64_t limit, oms_dbres **out,
                            oms_error *err);

/* The commit's generation: *found false when there is no such commit. */
int oms_store_commit_generation(oms_dbconn *c, const char *commit, int64_t *generation, bool *found, oms_error *err);
/* Every branch's name and head, main first. */
int oms_store_branch_heads(oms_dbconn *c, oms_dbres **out, oms_error *err);
/* Is `commit` (of `generation`) an ancestor of or equal to `head`?
 * Generations only grow along parent links: the walk stops below it. */
int oms_store_commit_reachable(oms_dbconn *c, const char *head, const char *commit, int64_t generation, bool *out,
                               oms_error *err);
/* The head of branch `name` (a ref lookup), or the commit `id` itself when
 * stored: *found false when neither. */
int oms_store_branch_head_of(oms_dbconn *c, const char *name, char out[65], bool *found, oms_error *err);
int oms_store_commit_exists(oms_dbconn *c, const char *id, bool *found, oms_error *err);

/* ---- commits and objects ---- */

/* The head of `branch` and its resource rows with their documents, in one
 * statement (one state on both backends): head, resource, hash, commit_id,
 * author, time_ms, content; one row with NULL resource for an empty
 * branch, none when there is no branch. */
int oms_store_branch_rows(oms_dbconn *c, const char *branch, oms_dbres **out, oms_error *err);
/* hash, content of the objects named in `hashes_json` (a JSON array). */
int oms_store_objects_in(oms_dbconn *c, const char *hashes_json, oms_dbres **out, oms_error *err);
/* tree, author, time_ms of commit `id` (no row when absent). */
int oms_store_commit_tree(oms_dbconn *c, const char *id, oms_dbres **out, oms_error *err);
/* id, tree, parents, author, message, time_ms, issue_keys, override_id,
 * generation of commit `id` (no row when absent). */
int oms_store_commit_load(oms_dbconn *c, const char *id, oms_dbres **out, oms_error *err);
/* Inserts a commit row unless present; its generation is 1 + the highest
 * of its parents' (`first`, `second`, either may be NULL). */
int oms_store_commit_insert(oms_dbconn *c, const char *id, const char *tree, const char *first, const char *second,
                            const char *parents_json, const char *author, const char *message, int64_t time_ms,
                            const char *issue_keys_json, const char *override_id, oms_error *err);
int oms_store_commit_parent_insert(oms_dbconn *c, const char *id, int64_t idx, const char *parent, oms_error *err);
int oms_store_commit_issue_insert(oms_dbconn *c, const char *issue_key, const char *id, oms_error *err);
/* A lowest common ancestor of `a` and `b` (deepest by generation, then
 * smallest id): *found false when the histories share no commit. */
int oms_store_merge_base(oms_dbconn *c, const char *a, const char *b, char out[65], bool *found, oms_error *err);
/* Commit `id` and its ancestors down to `window` generations below it, for
 * the in-memory commit graph (src/vcs/commit_graph.c): rows (id,
 * generation, parents as a JSON array, issue_keys as a JSON array); no row
 * when there is no such commit. */
int oms_store_commit_graph_window(oms_dbconn *c, const char *id, int64_t window, oms_dbres **out, oms_error *err);

#endif
