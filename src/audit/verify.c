/* Verification (docs/audit.md "Verification"): every checkpoint's HMAC and
 * its link to the previous one; then the chain walked by position from the
 * last archive record (or the genesis), each position's hash recomputed
 * from its event row and checked against its link, and the chain hash
 * compared with every checkpoint it passes; then the events the chain does
 * not hold: queued ones are pending (the chainer has not reached them yet),
 * any other one was written behind the service's back. Findings name the
 * event's seq. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/internal.h"
#include "util/alloc.h"
#include "util/encoding.h"
#include "util/time.h"

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
    int rc = oms_store_audit_checkpoints_all(c, &r, err);
    if (rc)
        return rc;
    l->n = r->nrows;
    l->v = oms_xcalloc(l->n ? l->n : 1, sizeof *l->v);
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

/* The walk's meeting with the checkpoints, in position order. */
typedef struct {
    oms_audit_verify_result *out;
    oms_audit_checkpoint **seals;
    size_t ns, next;
    int64_t range_min_seq; /* lowest event seq since the last checkpoint met */
    bool failed;
} walk_ctx;

static bool visit(void *p, const oms_audit_walk *w, const char *const f[AC__COUNT])
{
    walk_ctx *x = p;
    int64_t seq = strtoll(f[AC_SEQ], NULL, 10);
    if (!x->out->first_seq || seq < x->out->first_seq)
        x->out->first_seq = seq;
    if (seq > x->out->last_seq)
        x->out->last_seq = seq;
    if (!x->range_min_seq || seq < x->range_min_seq)
        x->range_min_seq = seq;
    /* A checkpoint the walk stepped over (only legacy positions may
     * skip): the event it ended at is gone. */
    if (x->next < x->ns && x->seals[x->next]->upto_seq < w->last_pos) {
        bad(x->out, x->seals[x->next]->upto_seq, x->seals[x->next]->id,
            "event %lld, sealed by checkpoint %lld, is missing", (long long)x->seals[x->next]->upto_seq,
            (long long)x->seals[x->next]->id);
        x->failed = true;
        return false;
    }
    while (x->next < x->ns && x->seals[x->next]->upto_seq == w->last_pos) {
        const oms_audit_checkpoint *cp = x->seals[x->next];
        if (strcmp(cp->chain_hash, w->prev) != 0) {
            /* Every row checked out, so the range was rewritten
             * consistently: only the signed checkpoint shows it. */
            bad(x->out, x->range_min_seq, cp->id,
                "chain positions %lld to %lld (events from seq %lld) do not match the signed checkpoint %lld"
                " (rewritten)",
                (long long)cp->from_seq, (long long)w->last_pos, (long long)x->range_min_seq, (long long)cp->id);
            x->failed = true;
            return false;
        }
        x->next++;
        x->range_min_seq = 0;
    }
    return true;
}

/* Events the chain does not hold (beyond the legacy positions). A queued
 * one waits for the chainer: pending, overdue when older than the grace
 * period (no chainer is running, or it fails). One with no queue row was
 * inserted behind the service's back (or its queue row, or its chain row,
 * was removed): the service writes the queue row in the event's own
 * transaction and replaces it by the chain row in the chainer's, so one
 * statement's snapshot never sees a genuine event in neither. A queue row
 * whose event is gone is an event deleted before it was chained. */
static int check_unchained(oms_dbconn *c, int64_t legacy_upto, oms_audit_verify_result *out, oms_error *err)
{
    int64_t forged, gone;
    int rc = oms_store_audit_unchained_check(c, legacy_upto, oms_now_ms() - AUDIT_CHAIN_GRACE_MS, &forged,
                                             &out->pending, &out->overdue, err);
    if (rc)
        return rc;
    if (forged)
        bad(out, forged, 0,
            "event %lld is not in the chain and was never queued for it (inserted behind the service's back, or its"
            " chain row removed)",
            (long long)forged);
    if ((rc = oms_store_audit_unchained_gone(c, &gone, err)))
        return rc;
    if (gone)
        bad(out, gone, 0, "event %lld was deleted before it was chained", (long long)gone);
    return OMS_OK;
}

/* The facets filtered reads find events by (docs/audit.md "Queries") are
 * derived from the chained events: a row removed or edited would hide an
 * event from, or misplace it in, every filtered read while the chain
 * still verified. The chainer writes an event's facets in the transaction
 * that links it, so one snapshot never sees a genuine difference. */
static int check_facets(oms_dbconn *c, int64_t legacy_upto, oms_audit_verify_result *out, oms_error *err)
{
    int64_t differs, orphan;
    int rc = oms_store_audit_facets_check(c, legacy_upto, &differs, &orphan, err);
    if (rc)
        return rc;
    if (differs)
        bad(out, differs, 0,
            "event %lld's row in audit_facets (what filtered reads find it by) is missing or does not match the"
            " event",
            (long long)differs);
    if (orphan)
        bad(out, orphan, 0, "audit_facets has a row for event %lld, which is gone or not chained", (long long)orphan);
    return OMS_OK;
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
    valid = oms_xcalloc(l.n ? l.n : 1, sizeof *valid);
    check_checkpoints(&l, valid, out);

    /* Where the chain starts: after the newest archive record. */
    int64_t start_after = 0;
    const char *start_hash = AUDIT_GENESIS;
    for (size_t i = 0; i < l.n; i++)
        if (valid[i] && strcmp(l.v[i].kind, "archive") == 0 && l.v[i].upto_seq >= start_after) {
            start_after = l.v[i].upto_seq;
            start_hash = l.v[i].chain_hash;
        }
    /* The checkpoints the walk must meet, in position order. */
    seals = oms_xcalloc(l.n ? l.n : 1, sizeof *seals);
    size_t ns = 0;
    for (size_t i = 0; i < l.n; i++)
        if (valid[i] && l.v[i].upto_seq > start_after)
            seals[ns++] = &l.v[i];
    qsort(seals, ns, sizeof *seals, cmp_upto);

    int64_t legacy_upto;
    if ((rc = oms_audit_legacy_upto(c, &legacy_upto, err)))
        goto done;
    oms_audit_walk w;
    oms_audit_walk_init(&w, legacy_upto, start_after, start_hash);
    walk_ctx x = {.out = out, .seals = seals, .ns = ns};
    bool broken = false;
    if ((rc = oms_audit_walk_db(c, &w, 0, 0, visit, &x, &broken, err)))
        goto done;
    if (broken && w.bad_seq)
        bad(out, w.bad_seq, 0, "seq %lld (chain position %lld): %s", (long long)w.bad_seq, (long long)w.bad_pos,
            w.reason);
    else if (broken)
        bad(out, 0, 0, "%s", w.reason);
    else if (!x.failed && x.next < ns)
        /* Sealed positions beyond the end of the chain were removed. */
        bad(out, 0, seals[x.next]->id, "chain positions from %lld on, sealed by checkpoint %lld, are missing",
            (long long)w.last_pos + 1, (long long)seals[x.next]->id);
    out->events = w.count;
    out->last_pos = w.last_pos;
    int64_t sealed_from = out->sealed_upto > start_after ? out->sealed_upto : start_after;
    if (w.last_pos > sealed_from && !broken)
        out->unsealed = w.last_pos - sealed_from;
    if ((rc = check_unchained(c, legacy_upto, out, err)))
        goto done;
    if ((rc = check_facets(c, legacy_upto, out, err)))
        goto done;
    /* Chain rows cut out with their events: name the event after the gap
     * when no event was found orphaned by it. */
    if (!out->ok && !out->first_bad_seq && w.next_seq)
        out->first_bad_seq = w.next_seq;
done:
    free(seals);
    free(valid);
    cp_list_free(&l);
    return rc;
}

json_t *oms_audit_verify_json(const oms_audit_verify_result *v)
{
    json_t *o = json_pack("{s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "ok", v->ok, "events_checked",
                          (json_int_t)v->events, "checkpoints_checked", (json_int_t)v->checkpoints, "first_seq",
                          (json_int_t)v->first_seq, "last_seq", (json_int_t)v->last_seq, "last_pos",
                          (json_int_t)v->last_pos, "sealed_upto", (json_int_t)v->sealed_upto, "archived_upto",
                          (json_int_t)v->archived_upto, "unsealed", (json_int_t)v->unsealed, "pending",
                          (json_int_t)v->pending, "pending_overdue", (json_int_t)v->overdue);
    json_object_set_new(o, "first_bad_seq", v->first_bad_seq ? json_integer(v->first_bad_seq) : json_null());
    json_object_set_new(o, "bad_checkpoint", v->bad_checkpoint ? json_integer(v->bad_checkpoint) : json_null());
    json_object_set_new(o, "reason", v->ok ? json_null() : json_string(v->reason));
    char t[40];
    oms_time_rfc3339_ms(t, sizeof t, oms_now_ms());
    json_object_set_new(o, "verified_at", json_string(t));
    return o;
}
