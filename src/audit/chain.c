/* The hash chain over audit events (docs/audit.md "Chain").
 *
 * The chain is a separate append-only table, audit_chain(pos, event_seq,
 * prev_hash, hash), written after the events commit by the chainer
 * (chainer.c). The hash at a position is SHA-256 over a canonical,
 * length-prefixed serialisation of its event's fields in column order,
 * ending with the previous position's hash. Positions give the order; an
 * event's seq is only its name, so chain order need not be seq order.
 *
 * This file holds the canonical hash and the walker that sealing,
 * verification and archiving share. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/internal.h"
#include "util/encoding.h"

const char *const oms_audit_col_names[AC__COUNT] = {
    "seq", "event_id", "time_ms", "actor_sub", "actor_roles", "client_addr", "user_agent", "action", "outcome",
    "http_status", "request_id", "method", "route", "resource_kind", "resource_branch", "resource_id",
    "issue_keys", "override_id", "commit_id", "before_hash", "after_hash", "changed_paths", "detail",
    "prev_hash", "hash",
};

void oms_audit_event_hash(char out[65], const char *const fields[AC__HASHED])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    static const char k_tag[] = "oms-audit-event/1";
    EVP_DigestUpdate(ctx, k_tag, sizeof k_tag - 1);
    for (int i = 0; i < AC__HASHED; i++) {
        char pre[32];
        int n;
        if (!fields[i]) {
            EVP_DigestUpdate(ctx, "|~", 2);
            continue;
        }
        size_t len = strlen(fields[i]);
        n = snprintf(pre, sizeof pre, "|%zu:", len);
        EVP_DigestUpdate(ctx, pre, (size_t)n);
        EVP_DigestUpdate(ctx, fields[i], len);
    }
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    oms_hex(out, md, sizeof md);
}

/* ---- the walker ---- */

void oms_audit_walk_init(oms_audit_walk *w, int64_t legacy_upto, int64_t start_pos, const char *prev)
{
    memset(w, 0, sizeof *w);
    w->legacy_upto = legacy_upto;
    w->last_pos = start_pos;
    snprintf(w->prev, sizeof w->prev, "%s", prev ? prev : AUDIT_GENESIS);
}

static bool walk_fail(oms_audit_walk *w, int64_t pos, int64_t seq, const char *reason)
{
    w->bad_pos = pos;
    w->bad_seq = seq;
    snprintf(w->reason, sizeof w->reason, "%s", reason);
    return false;
}

/* An event written before version 4 that the version 4-7 chain adopted in
 * memory: no hash of its own, hashed with the running previous hash. Its
 * position is its seq; a database sequence may skip numbers there, so
 * deletions in that range show only in the hash the chain continues from
 * (and in the checkpoint that sealed it). */
static bool walk_legacy(oms_audit_walk *w, int64_t pos, const char *const fields[AC__COUNT])
{
    if (pos <= w->last_pos)
        return walk_fail(w, pos, pos, "sequence out of order");
    if (fields[AC_PREV_HASH])
        return walk_fail(w, pos, pos, "legacy event has a chain link but no hash");
    const char *f[AC__COUNT];
    memcpy(f, fields, sizeof f);
    f[AC_PREV_HASH] = w->prev;
    oms_audit_event_hash(w->prev, f);
    w->last_pos = pos;
    w->count++;
    return true;
}

bool oms_audit_walk_row(oms_audit_walk *w, int64_t pos, int64_t event_seq, const char *const fields[AC__COUNT])
{
    if (pos <= w->legacy_upto && !fields[AC_HASH] && fields[AC_SEQ])
        return walk_legacy(w, pos, fields);
    if (pos <= w->last_pos)
        return walk_fail(w, pos, event_seq, "chain position out of order");
    /* Chain positions have no gaps (legacy positions before them may, and
     * so may a version-1 archive file, which marks its whole range legacy). */
    int64_t expect = (w->last_pos > w->legacy_upto ? w->last_pos : w->legacy_upto) + 1;
    if (pos > w->legacy_upto && pos != expect) {
        char why[160];
        snprintf(why, sizeof why, "chain positions %lld to %lld are missing (chain rows deleted)", (long long)expect,
                 (long long)pos - 1);
        w->next_seq = event_seq;
        return walk_fail(w, expect, 0, why);
    }
    if (!fields[AC_SEQ])
        return walk_fail(w, pos, event_seq, "event missing (deleted)");
    if (strtoll(fields[AC_SEQ], NULL, 10) != event_seq)
        return walk_fail(w, pos, event_seq, "chain row names another event");
    const char *stored_prev = fields[AC_PREV_HASH], *stored_hash = fields[AC_HASH];
    if (!stored_hash || !stored_prev)
        return walk_fail(w, pos, event_seq, "chain row has no hash");
    char h[65];
    oms_audit_event_hash(h, fields);
    if (strcmp(h, stored_hash) != 0)
        return walk_fail(w, pos, event_seq, "event modified (its hash does not match its content)");
    if (strcmp(stored_prev, w->prev) != 0)
        return walk_fail(w, pos, event_seq, "chain broken (prev_hash does not match the previous position)");
    memcpy(w->prev, h, sizeof w->prev);
    w->last_pos = pos;
    w->count++;
    return true;
}

/* ---- walking the database ---- */

int oms_audit_legacy_upto(oms_dbconn *c, int64_t *out, oms_error *err)
{
    return oms_store_audit_legacy_upto(c, out, err);
}

int oms_audit_walk_db(oms_dbconn *c, oms_audit_walk *w, int64_t upto_pos, int64_t max_rows, oms_audit_visit visit,
                      void *ctx, bool *broken, oms_error *err)
{
    /* Both pages give: position, event seq, the event's columns, link. */
    *broken = false;
    bool in_legacy = w->last_pos < w->legacy_upto, stop = false;
    int64_t done = 0;
    while (!stop && !*broken) {
        int64_t hi = upto_pos > 0 ? upto_pos : INT64_MAX;
        if (in_legacy && w->legacy_upto < hi)
            hi = w->legacy_upto;
        if (w->last_pos >= hi && !in_legacy)
            break;
        oms_dbres *r = NULL;
        int rc = oms_store_audit_walk_page(c, in_legacy, w->last_pos, hi, &r, err);
        if (rc)
            return rc;
        size_t n = r->nrows;
        for (size_t i = 0; i < n; i++) {
            const char *f[AC__COUNT];
            for (int k = 0; k < AC__COUNT; k++)
                f[k] = oms_dbres_get(r, i, (size_t)k + 2);
            if (!oms_audit_walk_row(w, oms_dbres_int(r, i, 0), oms_dbres_int(r, i, 1), f)) {
                *broken = true;
                break;
            }
            done++;
            if ((visit && !visit(ctx, w, f)) || (max_rows > 0 && done >= max_rows)) {
                stop = true;
                break;
            }
        }
        oms_dbres_free(r);
        if (n < OMS_AUDIT_WALK_PAGE) {
            if (!in_legacy)
                break;
            in_legacy = false; /* the legacy prefix ends here; chain rows follow */
        }
    }
    return OMS_OK;
}
