/* The hash chain over audit events (docs/audit.md "Chain").
 *
 * Each event's hash is SHA-256 over a canonical, length-prefixed
 * serialisation of its fields in column order, ending with prev_hash, the
 * previous event's hash. Sequence numbers and the previous hash come from the
 * one-row chain head, read FOR UPDATE on PostgreSQL (SQLite's BEGIN IMMEDIATE
 * already serialises writers) and updated in the same transaction, so the
 * chain order is the commit order and stays total across instances. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "audit/internal.h"
#include "util/encoding.h"
#include "util/time.h"

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

void oms_audit_walk_init(oms_audit_walk *w, int64_t legacy_upto, int64_t start_after_seq, const char *prev)
{
    memset(w, 0, sizeof *w);
    w->legacy_upto = legacy_upto;
    w->last_seq = start_after_seq;
    snprintf(w->prev, sizeof w->prev, "%s", prev ? prev : AUDIT_GENESIS);
}

static bool walk_fail(oms_audit_walk *w, int64_t seq, const char *reason)
{
    w->bad_seq = seq;
    snprintf(w->reason, sizeof w->reason, "%s", reason);
    return false;
}

bool oms_audit_walk_row(oms_audit_walk *w, const oms_dbres *r, size_t row)
{
    const char *f[AC__COUNT];
    for (int i = 0; i < AC__COUNT; i++)
        f[i] = oms_dbres_get(r, row, (size_t)i);
    return oms_audit_walk_fields(w, f);
}

bool oms_audit_walk_fields(oms_audit_walk *w, const char *const fields[AC__COUNT])
{
    const char *f[AC__COUNT];
    memcpy(f, fields, sizeof f);
    int64_t seq = f[AC_SEQ] ? strtoll(f[AC_SEQ], NULL, 10) : 0;
    const char *stored_prev = f[AC_PREV_HASH], *stored_hash = f[AC_HASH];
    bool legacy = seq <= w->legacy_upto && !stored_hash;
    if (seq <= w->last_seq)
        return walk_fail(w, seq, "sequence out of order");
    /* After version 4 the sequence has no gaps: a missing number is a
     * deleted event. Legacy rows came from a database sequence, which may
     * skip numbers; the checkpoint over them covers deletions there. */
    if (seq > w->legacy_upto && w->last_seq >= w->legacy_upto && seq != w->last_seq + 1)
        return walk_fail(w, w->last_seq + 1, "event missing (deleted)");
    char h[65];
    if (legacy) {
        if (stored_prev)
            return walk_fail(w, seq, "legacy event has a chain link but no hash");
        f[AC_PREV_HASH] = w->prev;
        oms_audit_event_hash(h, f);
    } else {
        if (!stored_hash || !stored_prev)
            return walk_fail(w, seq, "event has no hash");
        oms_audit_event_hash(h, f);
        if (strcmp(h, stored_hash) != 0)
            return walk_fail(w, seq, "event modified (its hash does not match its content)");
        if (strcmp(stored_prev, w->prev) != 0)
            return walk_fail(w, seq, "chain broken (prev_hash does not match the previous event)");
    }
    memcpy(w->prev, h, sizeof w->prev);
    w->last_seq = seq;
    w->count++;
    return true;
}

/* ---- the head ---- */

int oms_audit_head_read(oms_dbconn *c, bool for_update, int64_t *seq, char hash[65], bool *has_hash,
                        int64_t *legacy_upto, oms_error *err)
{
    const char *sql = for_update && oms_db_backend_of_conn(c) == OMS_DB_PG
                          ? "SELECT seq, hash, legacy_upto FROM audit_chain_head WHERE id = 1 FOR UPDATE"
                          : "SELECT seq, hash, legacy_upto FROM audit_chain_head WHERE id = 1";
    oms_dbres *r = NULL;
    int rc = oms_db_exec(c, sql, NULL, 0, &r, err);
    if (rc == OMS_OK && r->nrows != 1)
        rc = oms_err_set(err, OMS_EINTERNAL, "the audit chain head is missing");
    if (rc == OMS_OK) {
        *seq = oms_dbres_int(r, 0, 0);
        const char *h = oms_dbres_get(r, 0, 1);
        *has_hash = h != NULL;
        snprintf(hash, 65, "%s", h ? h : "");
        *legacy_upto = oms_dbres_int(r, 0, 2);
    }
    oms_dbres_free(r);
    return rc;
}

/* Events written before schema version 4 carry no hash. The first append
 * after the upgrade chains them in memory to find the hash the chain
 * continues from; the next checkpoint then seals them like any other. */
static int adopt_legacy(oms_dbconn *c, int64_t legacy_upto, char out[65], oms_error *err)
{
    oms_audit_walk w;
    oms_audit_walk_init(&w, legacy_upto, 0, NULL);
    for (;;) {
        oms_dbres *r = NULL;
        oms_dbparam p[] = {DBP_INT(w.last_seq), DBP_INT(legacy_upto)};
        int rc = oms_db_exec(c,
                             "SELECT " AUDIT_COLS " FROM audit_events WHERE seq > $1 AND seq <= $2"
                             " ORDER BY seq LIMIT 2000",
                             p, 2, &r, err);
        if (rc)
            return rc;
        size_t n = r->nrows;
        for (size_t i = 0; i < n; i++)
            if (!oms_audit_walk_row(&w, r, i)) {
                oms_dbres_free(r);
                return oms_err_set(err, OMS_EAUDIT, "legacy audit events are inconsistent at seq %lld: %s",
                                   (long long)w.bad_seq, w.reason);
            }
        oms_dbres_free(r);
        if (n < 2000)
            break;
    }
    memcpy(out, w.prev, 65);
    return OMS_OK;
}

/* ---- appending ---- */

static void new_event_id(char out[40])
{
    unsigned char b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b)
        for (size_t i = 0; i < sizeof b; i++) /* never reached on Linux >= 3.17 */
            b[i] = (unsigned char)(oms_mono_ns() >> (i % 8));
    memcpy(out, "evt_", 4);
    oms_hex(out + 4, b, sizeof b);
}

static int insert_one(oms_dbconn *c, const oms_audit_event *ev, int64_t seq, const char *prev, char hash[65],
                      oms_error *err)
{
    char id[40], seqs[24], times[24], status[16];
    new_event_id(id);
    int64_t now = oms_now_ms();
    snprintf(seqs, sizeof seqs, "%lld", (long long)seq);
    snprintf(times, sizeof times, "%lld", (long long)now);
    if (ev->http_status)
        snprintf(status, sizeof status, "%d", ev->http_status);
    const char *f[AC__HASHED] = {
        seqs, id, times, ev->actor_sub, ev->actor_roles, ev->client_addr, ev->user_agent, ev->action,
        ev->outcome, ev->http_status ? status : NULL, ev->request_id, ev->method, ev->route, ev->resource_kind,
        ev->resource_branch, ev->resource_id, ev->issue_keys, ev->override_id, ev->commit_id, ev->before_hash,
        ev->after_hash, ev->changed_paths, ev->detail, prev,
    };
    oms_audit_event_hash(hash, f);
    oms_dbparam p[AC__COUNT];
    p[AC_SEQ] = DBP_INT(seq);
    p[AC_TIME] = DBP_INT(now);
    p[AC_STATUS] = ev->http_status ? DBP_INT(ev->http_status) : DBP_NULL;
    for (int i = 0; i < AC__HASHED; i++)
        if (i != AC_SEQ && i != AC_TIME && i != AC_STATUS)
            p[i] = DBP_TEXT(f[i]);
    p[AC_HASH] = DBP_TEXT(hash);
    return oms_db_exec(c,
                       "INSERT INTO audit_events (" AUDIT_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
                       " $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25)",
                       p, AC__COUNT, NULL, err);
}

int oms_audit_append_many(oms_dbconn *c, const oms_audit_event *const *evs, size_t n, oms_error *err)
{
    int64_t seq, legacy_upto;
    char prev[65];
    bool has_hash;
    int rc = oms_audit_head_read(c, true, &seq, prev, &has_hash, &legacy_upto, err);
    if (rc == OMS_OK && !has_hash)
        rc = adopt_legacy(c, legacy_upto, prev, err);
    for (size_t i = 0; rc == OMS_OK && i < n; i++) {
        char h[65];
        if ((rc = insert_one(c, evs[i], ++seq, prev, h, err)) == OMS_OK)
            memcpy(prev, h, sizeof prev);
    }
    if (rc == OMS_OK) {
        oms_dbparam p[] = {DBP_INT(seq), DBP_TEXT(prev)};
        rc = oms_db_exec(c, "UPDATE audit_chain_head SET seq = $1, hash = $2 WHERE id = 1", p, 2, NULL, err);
    }
    return rc;
}

int oms_audit_append(oms_dbconn *c, const oms_audit_event *ev, oms_error *err)
{
    const oms_audit_event *one[1] = {ev};
    return oms_audit_append_many(c, one, 1, err);
}
