#include "store/proposals_sql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/dialect.h"
#include "util/alloc.h"
#include "util/json_strings.h"

int oms_store_proposal_load(oms_dbconn *c, const char *id, bool lock, oms_dbres **out, oms_error *err)
{
    static const oms_sql plain = OMS_SQL_BOTH("SELECT " OMS_STORE_PROPOSAL_COLS " FROM proposals WHERE id = $1");
    static const oms_sql locked = {"SELECT " OMS_STORE_PROPOSAL_COLS " FROM proposals WHERE id = $1",
                                   "SELECT " OMS_STORE_PROPOSAL_COLS " FROM proposals WHERE id = $1 FOR UPDATE"};
    oms_dbparam p[] = {DBP_TEXT(id)};
    int rc = oms_db_run(c, lock ? &locked : &plain, p, 1, out, err);
    if (rc == OMS_OK && (*out)->nrows == 0) {
        oms_dbres_free(*out);
        *out = NULL;
    }
    return rc;
}

int oms_store_proposal_target(oms_dbconn *c, const char *id, char *out, size_t cap, bool *found, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("SELECT target FROM proposals WHERE id = $1");
    oms_dbres *r = NULL;
    oms_dbparam p[] = {DBP_TEXT(id)};
    int rc = oms_db_run(c, &q, p, 1, &r, err);
    *found = rc == OMS_OK && r->nrows > 0;
    if (*found)
        snprintf(out, cap, "%s", oms_dbres_get(r, 0, 0));
    oms_dbres_free(r);
    return rc;
}

int oms_store_proposal_page(oms_dbconn *c, const char *after, const char *state, const char *target,
                            const char *needs_review_by, int64_t limit, oms_dbres **out, oms_error *err)
{
    /* needs_review_by: open proposals that name the reviewer and have no
     * verdict of theirs on the source's current head. With a state (or
     * needs_review_by, which means open), a plain `state = $2` lets the
     * (state, created_at) index find the few open proposals: in the form
     * "$2 IS NULL OR state = $2" the list walked every merged and closed
     * proposal after the cursor. */
#define PROPOSAL_PAGE(STATE)                                                                                     \
    "SELECT id, source, target, title, state, author, created_at FROM proposals"                               \
    " WHERE id > $1 AND " STATE " AND (CAST($3 AS TEXT) IS NULL OR target = $3)"                                \
    " AND (CAST($5 AS TEXT) IS NULL OR (state = 'open'"                                                          \
    "  AND EXISTS (SELECT 1 FROM proposal_reviewers rr WHERE rr.proposal_id = proposals.id AND rr.reviewer = $5)" \
    "  AND NOT EXISTS (SELECT 1 FROM proposal_reviews v JOIN branches b ON b.name = proposals.source"             \
    "   WHERE v.proposal_id = proposals.id AND v.reviewer = $5 AND v.source_head = b.head"                        \
    "   AND v.verdict IN ('approved', 'rejected', 'changes_requested'))))"                                       \
    " ORDER BY id LIMIT $4"
    static const oms_sql any = OMS_SQL_BOTH(PROPOSAL_PAGE("CAST($2 AS TEXT) IS NULL"));
    static const oms_sql one = OMS_SQL_BOTH(PROPOSAL_PAGE("state = $2"));
#undef PROPOSAL_PAGE
    if (!state && needs_review_by)
        state = "open";
    oms_dbparam p[] = {DBP_TEXT(after ? after : ""), DBP_TEXT(state), DBP_TEXT(target), DBP_INT(limit),
                       DBP_TEXT(needs_review_by)};
    return oms_db_run(c, state ? &one : &any, p, 5, out, err);
}

int oms_store_proposal_insert(oms_dbconn *c, const char *id, const char *source, const char *target, const char *title,
                              const char *description, const char *state, const char *author, const char *issue_keys,
                              int64_t now_ms, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH(
        "INSERT INTO proposals (id, source, target, title, description, state, author, issue_keys,"
        " created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)");
    oms_dbparam p[] = {DBP_TEXT(id),    DBP_TEXT(source), DBP_TEXT(target),     DBP_TEXT(title), DBP_TEXT(description),
                       DBP_TEXT(state), DBP_TEXT(author), DBP_TEXT(issue_keys), DBP_INT(now_ms)};
    return oms_db_run(c, &q, p, 9, NULL, err);
}

int oms_store_proposal_set_state(oms_dbconn *c, const char *id, const char *state, const char *closed_reason,
                                 int64_t now_ms, oms_error *err)
{
    static const oms_sql q =
        OMS_SQL_BOTH("UPDATE proposals SET state = $1, updated_at = $2, closed_reason = $3 WHERE id = $4");
    oms_dbparam p[] = {DBP_TEXT(state), DBP_INT(now_ms), DBP_TEXT(closed_reason), DBP_TEXT(id)};
    return oms_db_run(c, &q, p, 4, NULL, err);
}

int oms_store_proposal_mark_merged(oms_dbconn *c, const char *id, const char *commit, int64_t now_ms, bool *changed,
                                   oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH("UPDATE proposals SET state = 'merged', merged_commit = $1, updated_at = $2"
                                          " WHERE id = $3 AND state = 'open'");
    oms_dbparam p[] = {DBP_TEXT(commit), DBP_INT(now_ms), DBP_TEXT(id)};
    oms_dbres *r = NULL;
    int rc = oms_db_run(c, &q, p, 3, &r, err);
    *changed = rc == OMS_OK && r->changes == 1;
    oms_dbres_free(r);
    return rc;
}

int oms_store_proposal_review(oms_dbconn *c, const char *id, const char *reviewer, const char *verdict,
                              const char *source_head, const char *comment, int64_t now_ms, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH(
        "INSERT INTO proposal_reviews (proposal_id, reviewer, verdict, source_head, created_at, comment)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (proposal_id, reviewer, source_head)"
        " DO UPDATE SET verdict = excluded.verdict, created_at = excluded.created_at, comment = excluded.comment");
    oms_dbparam p[] = {DBP_TEXT(id),         DBP_TEXT(reviewer), DBP_TEXT(verdict),
                       DBP_TEXT(source_head), DBP_INT(now_ms),   DBP_TEXT(comment)};
    return oms_db_run(c, &q, p, 6, NULL, err);
}

int oms_store_proposal_changes_requested(oms_dbconn *c, const char *id, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH(
        "SELECT r.reviewer, r.source_head, r.created_at, r.comment FROM proposal_reviews r"
        " WHERE r.proposal_id = $1 AND r.verdict = 'changes_requested' AND NOT EXISTS ("
        "  SELECT 1 FROM proposal_reviews l WHERE l.proposal_id = r.proposal_id AND l.reviewer = r.reviewer"
        "  AND l.created_at > r.created_at)"
        " ORDER BY r.created_at, r.reviewer");
    oms_dbparam p[] = {DBP_TEXT(id)};
    return oms_db_run(c, &q, p, 1, out, err);
}

int oms_store_proposal_comment_insert(oms_dbconn *c, const char *proposal, const char *id, const char *author,
                                      const char *body, const char *resource, const char *pointer,
                                      const char *verdict, const char *source_head, int64_t now_ms, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH(
        "INSERT INTO proposal_comments (proposal_id, seq, id, author, body, resource, pointer, verdict, source_head,"
        " created_at) SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5, $6, $7, $8, $9"
        " FROM proposal_comments WHERE proposal_id = $1");
    oms_dbparam p[] = {DBP_TEXT(proposal), DBP_TEXT(id),      DBP_TEXT(author),      DBP_TEXT(body),
                       DBP_TEXT(resource), DBP_TEXT(pointer), DBP_TEXT(verdict),     DBP_TEXT(source_head),
                       DBP_INT(now_ms)};
    return oms_db_run(c, &q, p, 9, NULL, err);
}

int oms_store_proposal_comments(oms_dbconn *c, const char *proposal, int64_t after_seq, int64_t limit,
                                oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH(
        "SELECT seq, id, author, body, resource, pointer, verdict, source_head, created_at FROM proposal_comments"
        " WHERE proposal_id = $1 AND seq > $2 ORDER BY seq LIMIT $3");
    oms_dbparam p[] = {DBP_TEXT(proposal), DBP_INT(after_seq), DBP_INT(limit)};
    return oms_db_run(c, &q, p, 3, out, err);
}

int oms_store_proposal_comment_get(oms_dbconn *c, const char *id, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH(
        "SELECT seq, id, author, body, resource, pointer, verdict, source_head, created_at FROM proposal_comments"
        " WHERE id = $1");
    oms_dbparam p[] = {DBP_TEXT(id)};
    return oms_db_run(c, &q, p, 1, out, err);
}

int oms_store_proposal_reviewer_add(oms_dbconn *c, const char *proposal, const char *reviewer, const char *by,
                                    int64_t now_ms, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH(
        "INSERT INTO proposal_reviewers (proposal_id, reviewer, requested_by, created_at) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (proposal_id, reviewer) DO NOTHING");
    oms_dbparam p[] = {DBP_TEXT(proposal), DBP_TEXT(reviewer), DBP_TEXT(by), DBP_INT(now_ms)};
    return oms_db_run(c, &q, p, 4, NULL, err);
}

int oms_store_proposal_reviewers(oms_dbconn *c, const char *proposal, oms_dbres **out, oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH(
        "SELECT reviewer FROM proposal_reviewers WHERE proposal_id = $1 ORDER BY created_at, reviewer");
    oms_dbparam p[] = {DBP_TEXT(proposal)};
    return oms_db_run(c, &q, p, 1, out, err);
}

/* Gives the distinct strings of the JSON arrays in column 1 of rows 1.. of
 * `r` to `each`, sorted bytewise (the same order on both backends). */
static void each_key_sorted(const oms_dbres *r, void (*each)(void *ctx, const char *key), void *ctx)
{
    const char **docs = oms_xcalloc(r->nrows ? r->nrows : 1, sizeof *docs);
    for (size_t i = 1; i < r->nrows; i++)
        docs[i - 1] = oms_dbres_get(r, i, 1);
    oms_json_distinct_strings(docs, r->nrows ? r->nrows - 1 : 0, each, ctx);
    free(docs);
}

int oms_store_commits_issue_keys_between(oms_dbconn *c, const char *head, const char *exclude,
                                         void (*each)(void *ctx, const char *key), void *ctx, oms_error *err)
{
    /* The walks are bounded by a generation floor (as the merge base's,
     * vcs_sql.c): above it, both ancestor sets are exact. A source commit
     * below the floor would hang from a commit found above it, not on the
     * target, with a parent below the floor; the first row counts those
     * ("open"), and while there are any the floor drops fourfold. The
     * cost follows the source's own commits, not the target's history.
     * Each source commit's keys are read from its own row (a primary-key
     * search): commit_issues is keyed by issue first, and joining it by
     * commit scanned the whole table, a cost that grew with the history
     * (13.7 % of the server's samples by minute 18 of a soak). */
    static const oms_sql q = OMS_SQL_BOTH(
        "WITH RECURSIVE"
        " lim(g) AS (SELECT MIN(generation) - $3 FROM commits WHERE id IN ($1, $2)),"
        " anc_h(id) AS (SELECT CAST($1 AS TEXT) UNION SELECT p.parent_id FROM commit_parents p"
        "  JOIN anc_h ON p.commit_id = anc_h.id JOIN commits k ON k.id = p.parent_id"
        "  WHERE k.generation >= (SELECT g FROM lim)),"
        " anc_x(id) AS (SELECT CAST($2 AS TEXT) UNION SELECT p.parent_id FROM commit_parents p"
        "  JOIN anc_x ON p.commit_id = anc_x.id JOIN commits k ON k.id = p.parent_id"
        "  WHERE k.generation >= (SELECT g FROM lim)),"
        " only_h(id) AS (SELECT id FROM anc_h EXCEPT SELECT id FROM anc_x)"
        " SELECT 0 AS part, '' AS issue_keys, (SELECT g FROM lim) AS floor,"
        "  (SELECT COUNT(*) FROM only_h o JOIN commit_parents p ON p.commit_id = o.id"
        "   JOIN commits k ON k.id = p.parent_id WHERE k.generation < (SELECT g FROM lim)) AS open"
        " UNION ALL"
        " SELECT 1, k.issue_keys, NULL, NULL FROM only_h JOIN commits k ON k.id = only_h.id"
        "  WHERE k.issue_keys <> '[]'"
        " ORDER BY 1");
    for (int64_t window = 64;; window *= 4) {
        oms_dbres *r = NULL;
        oms_dbparam p[] = {DBP_TEXT(head), DBP_TEXT(exclude), DBP_INT(window)};
        int rc = oms_db_run(c, &q, p, 3, &r, err);
        if (rc)
            return rc;
        /* no floor: one of the commits does not exist, and the walks saw
         * only the commits themselves */
        bool done = !oms_dbres_get(r, 0, 2) || oms_dbres_int(r, 0, 2) <= 1 || oms_dbres_int(r, 0, 3) == 0;
        if (done)
            each_key_sorted(r, each, ctx);
        oms_dbres_free(r);
        if (done || rc)
            return rc;
    }
}

int oms_store_proposal_approvals(oms_dbconn *c, const char *id, const char *source_head, oms_dbres **out,
                                 oms_error *err)
{
    static const oms_sql q = OMS_SQL_BOTH(
        "SELECT reviewer, created_at FROM proposal_reviews WHERE proposal_id = $1 AND source_head = $2"
        " AND verdict = 'approved' ORDER BY created_at, reviewer");
    oms_dbparam p[] = {DBP_TEXT(id), DBP_TEXT(source_head)};
    return oms_db_run(c, &q, p, 2, out, err);
}

int oms_store_branch_rules(oms_dbconn *c, const char *branch, int64_t *required, int64_t *breaking_required,
                           oms_error *err)
{
    static const oms_sql q =
        OMS_SQL_BOTH("SELECT required_approvals, breaking_change_approvals FROM branches WHERE name = $1");
    oms_dbres *r = NULL;
    oms_dbparam p[] = {DBP_TEXT(branch)};
    int rc = oms_db_run(c, &q, p, 1, &r, err);
    if (rc == OMS_OK && r->nrows == 0)
        rc = oms_err_set(err, OMS_ENOTFOUND, "the target branch %s no longer exists", branch);
    if (rc == OMS_OK) {
        *required = oms_dbres_int(r, 0, 0);
        *breaking_required = oms_dbres_int(r, 0, 1);
    }
    oms_dbres_free(r);
    return rc;
}
