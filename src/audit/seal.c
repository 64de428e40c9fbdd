/* Checkpoints (docs/audit.md "Checkpoints"): every ~250 ms the events
 * written since the last checkpoint are re-hashed from that checkpoint and,
 * when the chain holds, sealed by a new checkpoint: {id, kind, from_seq,
 * upto_seq, chain_hash, event_count, time, sealed_by, detail, prev_hmac}
 * signed with HMAC-SHA256(OMS_AUDIT_KEY). Ids are 1, 2, 3, ... and each names
 * its predecessor's hmac, so a removed or forged checkpoint is found too.
 * On PostgreSQL exactly one instance seals at a time: the sealing
 * transaction holds a transaction-scoped advisory lock, taken with try, so
 * the others skip that round instead of waiting. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit/internal.h"
#include "http/app.h"
#include "ops/log.h"
#include "util/time.h"

#define SEAL_MAX_EVENTS 50000
#define SEAL_PAGE 2000

const char *oms_audit_instance(void)
{
    static char name[128];
    if (!name[0]) {
        char host[64] = "localhost";
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        snprintf(name, sizeof name, "%s:%ld", host, (long)getpid());
    }
    return name;
}

void oms_audit_checkpoint_from_row(oms_audit_checkpoint *cp, const oms_dbres *r, size_t row)
{
    memset(cp, 0, sizeof *cp);
    const char *s;
    cp->id = oms_dbres_int(r, row, 0);
    snprintf(cp->kind, sizeof cp->kind, "%s", (s = oms_dbres_get(r, row, 1)) ? s : "");
    cp->from_seq = oms_dbres_int(r, row, 2);
    cp->upto_seq = oms_dbres_int(r, row, 3);
    snprintf(cp->chain_hash, sizeof cp->chain_hash, "%s", (s = oms_dbres_get(r, row, 4)) ? s : "");
    cp->event_count = oms_dbres_int(r, row, 5);
    cp->time_ms = oms_dbres_int(r, row, 6);
    snprintf(cp->sealed_by, sizeof cp->sealed_by, "%s", (s = oms_dbres_get(r, row, 7)) ? s : "");
    s = oms_dbres_get(r, row, 8);
    cp->detail = s ? strdup(s) : NULL;
    snprintf(cp->prev_hmac, sizeof cp->prev_hmac, "%s", (s = oms_dbres_get(r, row, 9)) ? s : "");
    snprintf(cp->hmac, sizeof cp->hmac, "%s", (s = oms_dbres_get(r, row, 10)) ? s : "");
}

void oms_audit_checkpoint_clear(oms_audit_checkpoint *cp)
{
    free(cp->detail);
    cp->detail = NULL;
}

static void add_field(unsigned char **buf, size_t *len, size_t *cap, const char *s)
{
    char pre[32];
    size_t n = s ? strlen(s) : 0;
    int pl = s ? snprintf(pre, sizeof pre, "|%zu:", n) : snprintf(pre, sizeof pre, "|~");
    if (*len + (size_t)pl + n > *cap) {
        while (*len + (size_t)pl + n > *cap)
            *cap = *cap ? *cap * 2 : 512;
        *buf = realloc(*buf, *cap);
    }
    memcpy(*buf + *len, pre, (size_t)pl);
    *len += (size_t)pl;
    if (n)
        memcpy(*buf + *len, s, n);
    *len += n;
}

bool oms_audit_checkpoint_hmac(char out[65], const oms_audit_checkpoint *cp)
{
    char id[24], from[24], upto[24], count[24], t[24];
    snprintf(id, sizeof id, "%lld", (long long)cp->id);
    snprintf(from, sizeof from, "%lld", (long long)cp->from_seq);
    snprintf(upto, sizeof upto, "%lld", (long long)cp->upto_seq);
    snprintf(count, sizeof count, "%lld", (long long)cp->event_count);
    snprintf(t, sizeof t, "%lld", (long long)cp->time_ms);
    const char *fields[] = {id, cp->kind, from, upto, cp->chain_hash, count, t, cp->sealed_by, cp->detail,
                            cp->prev_hmac};
    static const char k_tag[] = "oms-audit-checkpoint/1";
    size_t cap = 512, len = sizeof k_tag - 1;
    unsigned char *buf = malloc(cap);
    memcpy(buf, k_tag, len);
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        add_field(&buf, &len, &cap, fields[i]);
    bool ok = oms_audit_hmac_hex(out, buf, len);
    free(buf);
    return ok;
}

int oms_audit_checkpoint_insert(oms_dbconn *c, oms_audit_checkpoint *cp, oms_error *err)
{
    oms_dbres *r = NULL;
    int rc = oms_db_exec(c, "SELECT id, hmac FROM audit_checkpoints ORDER BY id DESC LIMIT 1", NULL, 0, &r, err);
    if (rc)
        return rc;
    cp->id = r->nrows ? oms_dbres_int(r, 0, 0) + 1 : 1;
    snprintf(cp->prev_hmac, sizeof cp->prev_hmac, "%s", r->nrows ? oms_dbres_get(r, 0, 1) : AUDIT_GENESIS);
    oms_dbres_free(r);
    snprintf(cp->sealed_by, sizeof cp->sealed_by, "%s", oms_audit_instance());
    if (!oms_audit_checkpoint_hmac(cp->hmac, cp))
        return oms_err_set(err, OMS_ECONFIG, "no audit key: cannot sign a checkpoint");
    oms_dbparam p[] = {DBP_INT(cp->id), DBP_TEXT(cp->kind), DBP_INT(cp->from_seq), DBP_INT(cp->upto_seq),
                       DBP_TEXT(cp->chain_hash), DBP_INT(cp->event_count), DBP_INT(cp->time_ms),
                       DBP_TEXT(cp->sealed_by), DBP_TEXT(cp->detail), DBP_TEXT(cp->prev_hmac),
                       DBP_TEXT(cp->hmac)};
    return oms_db_exec(c,
                       "INSERT INTO audit_checkpoints (" CHECKPOINT_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7,"
                       " $8, $9, $10, $11)",
                       p, 11, NULL, err);
}

/* Where sealing resumes: the checkpoint (seal or archive) that reaches
 * furthest, or the genesis. */
static int frontier(oms_dbconn *c, int64_t *upto, char hash[65], oms_error *err)
{
    oms_dbres *r = NULL;
    int rc = oms_db_exec(c,
                         "SELECT upto_seq, chain_hash FROM audit_checkpoints ORDER BY upto_seq DESC, id DESC"
                         " LIMIT 1",
                         NULL, 0, &r, err);
    if (rc)
        return rc;
    *upto = r->nrows ? oms_dbres_int(r, 0, 0) : 0;
    snprintf(hash, 65, "%s", r->nrows ? oms_dbres_get(r, 0, 1) : AUDIT_GENESIS);
    oms_dbres_free(r);
    return OMS_OK;
}

static int64_t g_logged_bad_seq; /* tampering seen by the sealer, logged once */

/* Re-hashes the events after the frontier; *w ends at the last good one. */
static int walk_new(oms_dbconn *c, oms_audit_walk *w, int64_t head_seq, bool *broken, oms_error *err)
{
    *broken = false;
    while (w->count < SEAL_MAX_EVENTS) {
        oms_dbres *r = NULL;
        /* Never past the head: a row the head does not account for was not
         * written by the service, and is not signed. */
        oms_dbparam p[] = {DBP_INT(w->last_seq), DBP_INT(head_seq)};
        int rc = oms_db_exec(c,
                             "SELECT " AUDIT_COLS " FROM audit_events WHERE seq > $1 AND seq <= $2 ORDER BY seq"
                             " LIMIT 2000",
                             p, 2, &r, err);
        if (rc)
            return rc;
        size_t n = r->nrows;
        for (size_t i = 0; i < n && !*broken; i++)
            *broken = !oms_audit_walk_row(w, r, i);
        oms_dbres_free(r);
        if (*broken || n < SEAL_PAGE)
            break;
    }
    return OMS_OK;
}

int oms_audit_seal(oms_store *s, int64_t *sealed_upto, oms_error *err)
{
    if (sealed_upto)
        *sealed_upto = 0;
    if (!oms_audit_have_key())
        return oms_err_set(err, OMS_ECONFIG, "no audit key: cannot seal");
    oms_dbconn *c;
    int rc = oms_db_conn(s->db, &c, err);
    if (rc)
        return rc;
    bool pg = oms_db_backend_of(s->db) == OMS_DB_PG;
    /* PostgreSQL: the whole round in one transaction under the sealer's
     * lock (reads never block writers there). SQLite: read and hash outside
     * any transaction, then take the write lock only to append the
     * checkpoint, after checking nobody sealed meanwhile. */
    if (pg) {
        if ((rc = oms_db_begin(c, true, err)))
            return rc;
        oms_dbres *r = NULL;
        rc = oms_db_exec(c, "SELECT pg_try_advisory_xact_lock(" AUDIT_SEAL_LOCK_KEY ")", NULL, 0, &r, err);
        bool got = rc == OMS_OK && oms_dbres_get(r, 0, 0) && oms_dbres_get(r, 0, 0)[0] == 't';
        oms_dbres_free(r);
        if (!got) {
            oms_db_rollback(c);
            return rc;
        }
    }
    int64_t upto, seq, legacy_upto;
    char hash[65], head_hash[65];
    bool has_hash, broken = false;
    oms_audit_walk w;
    if ((rc = frontier(c, &upto, hash, err)) ||
        (rc = oms_audit_head_read(c, false, &seq, head_hash, &has_hash, &legacy_upto, err)))
        goto done;
    if (seq <= upto || !has_hash) /* nothing new, or legacy rows not adopted yet */
        goto done;
    oms_audit_walk_init(&w, legacy_upto, upto, hash);
    if ((rc = walk_new(c, &w, seq, &broken, err)))
        goto done;
    if (broken && w.bad_seq != g_logged_bad_seq) {
        g_logged_bad_seq = w.bad_seq;
        oms_log_write(OMS_LOG_ERROR, NULL, NULL,
                      "audit chain broken at seq %lld (%s): events from there on are not sealed; run oms audit verify",
                      (long long)w.bad_seq, w.reason);
    }
    if (w.count == 0)
        goto done;
    if (!pg) {
        if ((rc = oms_db_begin(c, true, err)))
            return rc;
        int64_t again;
        char h2[65];
        if ((rc = frontier(c, &again, h2, err)))
            goto done;
        if (again != upto) /* another process sealed meanwhile */
            goto done;
    }
    {
        oms_audit_checkpoint cp = {.kind = "seal", .from_seq = upto + 1, .upto_seq = w.last_seq,
                                   .event_count = w.count, .time_ms = oms_now_ms()};
        memcpy(cp.chain_hash, w.prev, sizeof cp.chain_hash);
        if ((rc = oms_audit_checkpoint_insert(c, &cp, err)))
            goto done;
        if ((rc = oms_db_commit(c, err)))
            return rc;
        if (sealed_upto)
            *sealed_upto = cp.upto_seq;
        return OMS_OK;
    }
done:
    if (oms_db_in_tx(c))
        oms_db_rollback(c);
    return rc;
}

void oms_audit_seal_task(oms_app *app)
{
    static int64_t last_error_log;
    oms_error err;
    if (oms_audit_seal(app->store, NULL, &err) != OMS_OK) {
        if (err.code == OMS_EDB)
            oms_db_conn_reset(app->store->db);
        int64_t now = oms_now_ms();
        if (now - last_error_log > 10000) { /* at most one line per 10 s */
            last_error_log = now;
            oms_log_write(OMS_LOG_ERROR, NULL, NULL, "audit sealing failed: %s", err.msg);
        }
    }
}
