/* Verification (docs/audit.md "Verification"): every checkpoint's HMAC and
 * its link to the previous one, then the chain recomputed from the last
 * archive record (or the first event), each row checked for its sequence
 * number, its own hash and its link, and the chain hash compared with every
 * checkpoint it passes. The first failure names the sequence number. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/internal.h"
#include "util/encoding.h"
#include "util/time.h"

#define PAGE 2000

typedef struct {
    oms_audit_checkpoint *v;
    size_t n;
} cp_list;

static void cp_list_free(cp_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        oms_audit_checkpoint_clear(&l->v[i]);
    free(l->v);
}

/* Records a finding: the first bad sequence and the first bad checkpoint
 * are kept apart; the reason is the first finding's. */
static void bad(oms_audit_verify_result *out, int64_t seq, int64_t cp, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void bad(oms_audit_verify_result *out, int64_t seq, int64_t cp, const char *fmt, ...)
{
    if (seq && !out->first_bad_seq)
        out->first_bad_seq = seq;
    if (cp && !out->bad_checkpoint)
        out->bad_checkpoint = cp;
    if (out->ok) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(out->reason, sizeof out->reason, fmt, ap);
        va_end(ap);
    }
    out->ok = false;
}

/* HMACs, ids 1..n without gaps, each linked to its predecessor. valid[i]
 * says whether checkpoint i may be trusted by the walk. */
static void check_checkpoints(const cp_list *l, bool *valid, oms_audit_verify_result *out)
{
    const char *prev = AUDIT_GENESIS;
    for (size_t i = 0; i < l->n; i++) {
        const oms_audit_checkpoint *cp = &l->v[i];
        char h[65];
        valid[i] = false;
        if (cp->id != (int64_t)i + 1)
            bad(out, 0, (int64_t)i + 1, "checkpoint %lld is missing", (long long)i + 1);
        if (strlen(cp->hmac) != 64 || !oms_audit_checkpoint_hmac(h, cp) || !oms_ct_equal(h, cp->hmac, 64)) {
            bad(out, 0, cp->id, "checkpoint %lld is forged or modified (its HMAC does not verify)",
                (long long)cp->id);
        } else {
            if (strcmp(cp->prev_hmac, prev) != 0)
                bad(out, 0, cp->id, "checkpoint %lld does not follow its predecessor", (long long)cp->id);
            valid[i] = true;
        }
        prev = cp->hmac;
        out->checkpoints++;
        if (!valid[i])
            continue;
        if (strcmp(cp->kind, "archive") == 0 && cp->upto_seq > out->archived_upto)
            out->archived_upto = cp->upto_seq;
        if (cp->upto_seq > out->sealed_upto)
            out->sealed_upto = cp->upto_seq;
    }
}

static int load_checkpoints(oms_dbconn *c, cp_list *l, oms_error *err)
{
    oms_dbres *r = NULL;
    int rc = oms_db_exec(c, "SELECT " CHECKPOINT_COLS " FROM audit_checkpoints ORDER BY id", NULL, 0, &r, err);
    if (rc)
        return rc;
    l->n = r->nrows;
    l->v = calloc(l->n ? l->n : 1, sizeof *l->v);
    for (size_t i = 0; i < l->n; i++)
        oms_audit_checkpoint_from_row(&l->v[i], r, i);
    oms_dbres_free(r);
    return OMS_OK;
}

static int cmp_upto(const void *a, const void *b)
{
    const oms_audit_checkpoint *x = *(oms_audit_checkpoint *const *)a, *y = *(oms_audit_checkpoint *const *)b;
    return x->upto_seq < y->upto_seq ? -1 : x->upto_seq > y->upto_seq;
}

int oms_audit_verify(oms_store *s, oms_audit_verify_result *out, oms_error *err)
{
    memset(out, 0, sizeof *out);
    out->ok = true;
    if (!oms_audit_have_key())
        return oms_err_set(err, OMS_ECONFIG, "no audit key: checkpoints cannot be verified");
    oms_dbconn *c;
    int rc = oms_db_conn(s->db, &c, err);
    if (rc)
        return rc;
    cp_list l = {0};
    oms_audit_checkpoint **seals = NULL;
    bool *valid = NULL;
    if ((rc = load_checkpoints(c, &l, err)))
        goto done;
    valid = calloc(l.n ? l.n : 1, sizeof *valid);
    check_checkpoints(&l, valid, out);

    /* Where the chain starts: after the newest archive record. */
    int64_t start_after = 0;
    const char *start_hash = AUDIT_GENESIS;
    for (size_t i = 0; i < l.n; i++)
        if (valid[i] && strcmp(l.v[i].kind, "archive") == 0 && l.v[i].upto_seq >= start_after) {
            start_after = l.v[i].upto_seq;
            start_hash = l.v[i].chain_hash;
        }
    /* The checkpoints the walk must meet, in sequence order. */
    seals = calloc(l.n ? l.n : 1, sizeof *seals);
    size_t ns = 0, next = 0;
    for (size_t i = 0; i < l.n; i++)
        if (valid[i] && l.v[i].upto_seq > start_after)
            seals[ns++] = &l.v[i];
    qsort(seals, ns, sizeof *seals, cmp_upto);

    int64_t head_seq, legacy_upto;
    char head_hash[65];
    bool has_hash;
    if ((rc = oms_audit_head_read(c, false, &head_seq, head_hash, &has_hash, &legacy_upto, err)))
        goto done;
    oms_audit_walk w;
    oms_audit_walk_init(&w, legacy_upto, start_after, start_hash);
    bool broken = false;
    for (;;) {
        oms_dbres *r = NULL;
        oms_dbparam p[] = {DBP_INT(w.last_seq)};
        if ((rc = oms_db_exec(c, "SELECT " AUDIT_COLS " FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT 2000",
                              p, 1, &r, err)))
            goto done;
        size_t n = r->nrows;
        for (size_t i = 0; i < n && !broken; i++) {
            if (!out->first_seq)
                out->first_seq = oms_dbres_int(r, i, AC_SEQ);
            if (!oms_audit_walk_row(&w, r, i)) {
                broken = true;
                break;
            }
            /* A checkpoint the walk stepped over: its range lost events. */
            while (next < ns && seals[next]->upto_seq < w.last_seq) {
                bad(out, seals[next]->upto_seq, seals[next]->id, "event %lld, sealed by a checkpoint, is missing",
                    (long long)seals[next]->upto_seq);
                next++;
                broken = true;
            }
            if (!broken && next < ns && seals[next]->upto_seq == w.last_seq) {
                if (strcmp(seals[next]->chain_hash, w.prev) != 0) {
                    /* Row-level checks passed, so the range was rewritten
                     * consistently: only the signed checkpoint shows it. */
                    int64_t from = next ? seals[next - 1]->upto_seq + 1 : start_after + 1;
                    bad(out, from, seals[next]->id,
                        "events %lld to %lld do not match the signed checkpoint %lld (rewritten)", (long long)from,
                        (long long)w.last_seq, (long long)seals[next]->id);
                    broken = true;
                }
                next++;
            }
        }
        oms_dbres_free(r);
        if (broken || n < PAGE)
            break;
    }
    if (broken && w.bad_seq)
        bad(out, w.bad_seq, 0, "seq %lld: %s", (long long)w.bad_seq, w.reason);
    out->events = w.count;
    out->last_seq = w.last_seq;
    if (!broken) {
        /* Sealed events beyond the end of the table were removed. */
        if (next < ns)
            bad(out, w.last_seq + 1, seals[next]->id, "events from seq %lld on, sealed by a checkpoint, are missing",
                (long long)w.last_seq + 1);
        /* The head is read after the walk: honest appends only move it
         * forward, so a head behind the table means rows were inserted
         * behind the service's back, and a head ahead with nothing more to
         * read means the tail was cut. */
        else if ((rc = oms_audit_head_read(c, false, &head_seq, head_hash, &has_hash, &legacy_upto, err)))
            goto done;
        else if (w.last_seq > head_seq)
            bad(out, head_seq + 1, 0, "event %lld was inserted beyond the chain head", (long long)head_seq + 1);
        else if (w.last_seq == head_seq && has_hash && strcmp(head_hash, w.prev) != 0)
            bad(out, head_seq, 0, "the chain head disagrees with event %lld", (long long)head_seq);
        else if (w.last_seq < head_seq) {
            oms_dbres *r = NULL;
            oms_dbparam p[] = {DBP_INT(w.last_seq)};
            if ((rc = oms_db_exec(c, "SELECT count(*) FROM audit_events WHERE seq > $1", p, 1, &r, err)))
                goto done;
            if (oms_dbres_int(r, 0, 0) == 0)
                bad(out, w.last_seq + 1, 0, "events from seq %lld on are missing (the tail was cut)",
                    (long long)w.last_seq + 1);
            oms_dbres_free(r);
        }
    }
    if (out->last_seq > out->sealed_upto)
        out->unsealed = out->last_seq - (out->sealed_upto > start_after ? out->sealed_upto : start_after);
done:
    free(seals);
    free(valid);
    cp_list_free(&l);
    return rc;
}

json_t *oms_audit_verify_json(const oms_audit_verify_result *v)
{
    json_t *o = json_pack("{s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "ok", v->ok, "events_checked", (json_int_t)v->events,
                          "checkpoints_checked", (json_int_t)v->checkpoints, "first_seq", (json_int_t)v->first_seq,
                          "last_seq", (json_int_t)v->last_seq, "sealed_upto", (json_int_t)v->sealed_upto,
                          "archived_upto", (json_int_t)v->archived_upto, "unsealed", (json_int_t)v->unsealed);
    json_object_set_new(o, "first_bad_seq", v->first_bad_seq ? json_integer(v->first_bad_seq) : json_null());
    json_object_set_new(o, "bad_checkpoint", v->bad_checkpoint ? json_integer(v->bad_checkpoint) : json_null());
    json_object_set_new(o, "reason", v->ok ? json_null() : json_string(v->reason));
    char t[40];
    oms_time_rfc3339_ms(t, sizeof t, oms_now_ms());
    json_object_set_new(o, "verified_at", json_string(t));
    return o;
}
