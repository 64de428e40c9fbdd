/* Group commit per branch (docs/storage.md "Group commit").
 *
 * Writers on one branch are serialized by the branch row (FOR UPDATE) and
 * each pays a whole transaction: the row taken, the WAL flushed, the row
 * released, one after another. Here the writers of one branch that arrive
 * while a transaction of that branch is in flight wait in a queue; when it
 * ends, the first of them becomes the leader and runs every queued change
 * in one transaction, each inside its own savepoint: each change reads the
 * head the previous one moved, makes its own commit and its own audit
 * event, and a change that fails rolls back to its savepoint alone.
 * Writers that queue while it runs join it after its last change
 * (join_queued). One COMMIT (one WAL flush, one row lock) then
 * acknowledges them all; nobody is answered before it. A lone writer on a
 * quiet branch runs as before, without savepoints.
 *
 * The members' threads wait on a condition variable holding nothing (their
 * connections idle, outside any transaction); the leader runs each change
 * with that change's own context (principal, issue keys, lock id, arena),
 * so the checks and the records are the change's, only the connection is
 * the leader's.
 *
 * On PostgreSQL there is one group per branch (writes to other branches
 * commit in parallel transactions); on SQLite, whose file has one writer,
 * one group for all writes. */
#include "txn/group_commit.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "infra/metrics.h"
#include "store/store.h"
#include "util/alloc.h"
#include "util/hash.h"

#define SLOTS 256
#define MAX_GROUPS 4096 /* past this many branches, writers run alone */
#define MAX_BATCH 64

typedef struct member {
    oms_ctx *ctx;
    const oms_change_spec *spec;
    oms_change_out *out;
    oms_error *err;
    oms_dbconn *conn; /* its thread's connection, idle while it waits (PostgreSQL; may be NULL) */
    int rc;
    bool written; /* released its savepoint: committed with the group */
    bool done;    /* answered by a leader */
    bool lead;    /* promoted: leads the next batch */
    /* Its own wake-up, under the group's mutex: a batch's end wakes its
     * members and a hand-off the one promoted, not every waiter (a queued
     * writer woken for nothing costs a switch and a turn for a core). */
    pthread_cond_t wake;
    struct member *next;
} member;

typedef struct group {
    struct group *next;
    const oms_db *db;
    char *branch;
    pthread_mutex_t mu;
    bool busy; /* a leader is running a batch */
    member *head, *tail;
    /* The transaction that began last had company: writers queued behind
     * it, or it ran more than one. A writer that then finds the group free
     * runs as a batch the writers arriving meanwhile can join; on a quiet
     * branch it runs alone, without savepoints. */
    bool company;
} group;

static pthread_mutex_t g_slot_mu = PTHREAD_MUTEX_INITIALIZER;
static group *g_slots[SLOTS];
static int g_ngroups;
static atomic_bool g_enabled = true;

void oms_group_commit_enable(bool on) { atomic_store(&g_enabled, on); }


static unsigned slot_of(const oms_db *db, const char *branch)
{
    return (unsigned)(oms_fnv1a_str_from(OMS_FNV1A_BASIS ^ (uint64_t)(uintptr_t)db, branch) % SLOTS);
}

/* The branch's group, made on first use and kept (a process writes few
 * branches; a deleted branch's group is a few dozen bytes). */
static group *find(const oms_db *db, const char *branch)
{
    unsigned s = slot_of(db, branch);
    pthread_mutex_lock(&g_slot_mu);
    group *g = g_slots[s];
    while (g && !(g->db == db && strcmp(g->branch, branch) == 0))
        g = g->next;
    if (!g && g_ngroups < MAX_GROUPS) {
        g = oms_xcalloc(1, sizeof *g);
        g->db = db;
        g->branch = oms_xstrdup(branch);
        pthread_mutex_init(&g->mu, NULL);
        g->next = g_slots[s];
        g_slots[s] = g;
        g_ngroups++;
    }
    pthread_mutex_unlock(&g_slot_mu);
    return g;
}

static void fail(member *m, int rc, const oms_error *why)
{
    m->rc = rc;
    if (m->err != why)
        oms_err_set(m->err, rc, "%s", why->msg);
    m->written = false;
}

/* One change inside the group's transaction. Returns non-zero (with *lost)
 * only when the transaction itself is gone. `ahead`: its release is sent
 * without waiting for the answer (oms_db_savepoint_release_ahead), so the
 * next member's work overlaps the database's. */
static int run_member(oms_dbconn *c, member *m, oms_group_body_fn body, bool ahead, oms_error *lost)
{
    int rc = oms_db_savepoint(c, m->err);
    if (rc == OMS_OK)
        rc = body(c, m->ctx, m->spec, m->out, m->err);
    bool no_op = rc == OMS_OK && m->out->no_op;
    if (rc == OMS_OK && !no_op)
        rc = ahead ? oms_db_savepoint_release_ahead(c, m->err) : oms_db_savepoint_release(c, m->err);
    m->rc = rc;
    if (rc == OMS_OK && !no_op) {
        m->written = true;
        return OMS_OK;
    }
    /* failed, or nothing to write: as if it never ran */
    return oms_db_savepoint_rollback(c, lost);
}

/* Out of time waiting for the database (a held branch row, a stalled
 * server): whoever waits behind would wait for the same thing. */
static bool timed_out(int rc) { return rc == OMS_ETIMEOUT; }

/* A member as before its first attempt (as run_alone resets a change it
 * runs again). */
static void reset_member(member *m)
{
    json_decref(m->out->detail);
    memset(m->out, 0, sizeof *m->out);
    m->ctx->override.used = false;
    oms_ctx_problem_extra(m->ctx, NULL);
    m->rc = OMS_OK;
    m->written = false;
}

/* The queue passes to its first waiter, who leads the next batch; the
 * group stays busy. Without a waiter the group is free. */
static void promote_next(group *g)
{
    if (!g->head) {
        g->tail = NULL;
        g->busy = false;
        return;
    }
    member *next = g->head;
    g->head = next->next;
    if (!g->head)
        g->tail = NULL;
    next->next = NULL;
    next->lead = true;
    pthread_cond_signal(&next->wake);
    oms_metrics_group_commit_queued(-1);
}

/* Before its COMMIT, a batch hands the queue on (PostgreSQL): the next
 * leader's first statement takes the branch row's lock, which it gets the
 * moment this COMMIT ends, inside the database, instead of after this
 * thread has heard of the COMMIT, woken the next leader and that one has
 * sent its first round trip. It finds this batch's last state in the
 * snapshot cache, published before COMMIT for the next writer. Whether the
 * batch committed changes nothing for the next one: it reads the head
 * under the row lock as always. */
typedef struct {
    group *g;    /* NULL: no hand-off (SQLite: one writer at a time) */
    bool done;
} handoff;

/* Writers queued while a batch runs join it at its end, until none is
 * waiting (or MAX_BATCH): a batch that held only those queued when its
 * leader started left the writers answered by the batch before, whose
 * next writes arrive a moment later, to a batch of their own behind it,
 * and every other batch on the branch's row was a batch of one or two
 * (docs/storage.md "Writers join the batch that runs"). */
typedef struct {
    group *g;        /* NULL: the batch is closed */
    member **batch;  /* room for MAX_BATCH */
    int *n;
} joiner;

static int join_queued(joiner *j)
{
    if (!j->g || *j->n >= MAX_BATCH)
        return 0;
    int before = *j->n;
    pthread_mutex_lock(&j->g->mu);
    while (j->g->head && *j->n < MAX_BATCH) {
        member *m = j->g->head;
        j->g->head = m->next;
        m->next = NULL;
        j->batch[(*j->n)++] = m;
    }
    if (!j->g->head)
        j->g->tail = NULL;
    /* said now, not after COMMIT: on PostgreSQL a writer can find the
     * group free (hand_off) while this batch commits */
    if (*j->n > 1)
        j->g->company = true;
    pthread_mutex_unlock(&j->g->mu);
    if (*j->n > before)
        oms_metrics_group_commit_queued(before - *j->n);
    return *j->n - before;
}

static void hand_off(handoff *h, int n)
{
    pthread_mutex_lock(&h->g->mu);
    promote_next(h->g);
    h->done = true;
    if (n > 1) /* as oms_group_commits_total counts */
        oms_metrics_group_commit_handoff();
    pthread_mutex_unlock(&h->g->mu);
}

/* One attempt at the batch in one transaction; *tx is its outcome, the
 * member whose timeout ended it goes to *late. */
static void run_attempt(oms_dbconn *c, member **batch, int *n, joiner *j, oms_group_body_fn body, bool ahead,
                        member **late, int *tx, oms_error *tx_err, handoff *h)
{
    /* What the last written member left for the next one of the same step
     * (oms_change_out.carry): only ever from the member right before, so a
     * rolled-back member or another kind of change in between clears it. */
    unsigned char carry[OMS_CHANGE_CARRY_MAX];
    size_t ncarry = 0;
    oms_change_fn carry_step = NULL;
    *tx = oms_db_begin(c, true, tx_err);
    for (int i = 0; *tx == OMS_OK; i++) {
        if (i == *n) {
            /* none joins a batch already lost (it would only run again) */
            bool lost = *late || oms_db_content_failed(c) || oms_db_ahead_failure(c) != OMS_OK;
            int joined = lost ? 0 : join_queued(j);
            if (!joined)
                break;
            oms_metrics_group_commit_joined((unsigned)joined);
        }
        /* The second member's idle connection takes the batch's content
         * rows (store/db.h): the first's, the leader's, holds the branch.
         * Only from the first member on: a batch begun alone keeps its
         * content on its own connection after others join, since theirs
         * would name nodes its first write holds uncommitted (committed
         * beside at the settle even if the batch is then lost, naming
         * nodes never stored) or wait on them. Not in a rerun. */
        if (i == 0 && j->g && *n > 1)
            oms_db_content_attach(c, batch[1]->conn);
        member *m = batch[i];
        if (*late) { /* not run: it would wait the same time again */
            fail(m, (*late)->rc, (*late)->err);
            continue;
        }
        m->ctx->override.used = false;
        m->out->carry_in = ncarry && carry_step == m->spec->step ? carry : NULL;
        m->out->carry_used = false;
        m->out->ncarry = 0;
        if ((*tx = run_member(c, m, body, ahead, tx_err)) != OMS_OK && m->rc == OMS_OK)
            fail(m, *tx, tx_err);
        m->out->carry_in = NULL;
        ncarry = m->written && m->out->ncarry <= sizeof carry ? m->out->ncarry : 0;
        memcpy(carry, m->out->carry, ncarry);
        carry_step = m->spec->step;
        /* a content connection out of time is not the database keeping
         * this batch waiting: the batch runs again without it (run_batch) */
        if (timed_out(m->rc) && !oms_db_content_failed(c))
            *late = m;
    }
    if (*tx == OMS_OK && h && h->g && !h->done && !*late)
        hand_off(h, *n);
    if (*tx == OMS_OK)
        *tx = oms_db_commit(c, tx_err);
    else
        oms_db_rollback(c);
}

/* Runs the batch; returns the member whose timeout ended it, or NULL.
 * Members' releases go ahead on PostgreSQL; when a statement sent ahead
 * failed, the transaction was lost with everything after it, and the batch
 * runs once more the ordinary way, each release awaited, where that failure
 * is its member's alone. A lost connection or a timeout is the whole
 * batch's answer, as before. */
static member *run_batch(group *g, member **batch, int *np, oms_group_body_fn body, handoff *h)
{
    oms_dbconn *c = NULL;
    oms_error tx_err = {0};
    member *late = NULL;
    joiner open = {.g = g, .batch = batch, .n = np}, closed = {0};
    int tx = oms_db_conn(batch[0]->ctx->store->db, &c, &tx_err);
    int n = *np;
    if (tx == OMS_OK) {
        run_attempt(c, batch, np, &open, body, true, &late, &tx, &tx_err, h);
        n = *np; /* the batch as it closed: a rerun runs the same members */
        int doomed = oms_db_ahead_failure(c);
        /* the content connection failed: nothing was committed, and the
         * batch runs again without it, where a failure is the batch's own
         * (unless the batch's own connection was lost or out of time too:
         * that is the batch's answer, as below) */
        bool content_lost = oms_db_content_failed(c);
        if (oms_db_content_used(c))
            oms_metrics_group_commit_content(content_lost);
        oms_db_content_detach(c);
        if (content_lost && !late && tx != OMS_OK && doomed != OMS_EDB && doomed != OMS_ETIMEOUT) {
            oms_metrics_group_commit_rerun();
            for (int i = 0; i < n; i++)
                reset_member(batch[i]);
            run_attempt(c, batch, np, &closed, body, false, &late, &tx, &tx_err, h);
        } else if (doomed != OMS_OK && doomed != OMS_EDB && doomed != OMS_ETIMEOUT && !late) {
            oms_metrics_group_commit_rerun();
            for (int i = 0; i < n; i++)
                reset_member(batch[i]);
            run_attempt(c, batch, np, &closed, body, false, &late, &tx, &tx_err, h);
        }
    }
    unsigned carried = 0, locks = 0;
    for (int i = 0; i < n; i++) {
        member *m = batch[i];
        if (tx != OMS_OK && (m->written || m->rc == OMS_OK))
            fail(m, tx, &tx_err); /* nothing of the group was committed */
        else if (m->written) {
            m->ctx->audited = true;
            carried += m->out->carry_used;
            /* a lock change reports its resource as "locks" (api/locks.c) */
            locks += m->out->resource_kind && strcmp(m->out->resource_kind, "locks") == 0;
        }
    }
    if (tx == OMS_EDB)
        oms_db_conn_reset(batch[0]->ctx->store->db);
    /* The transaction out of time, not a member (SQLite waits for the
     * file at BEGIN): the writers queued behind would wait the same, as
     * behind a write alone (oms_group_commit_run). The answer is that of a
     * member failed with it above, not of one refused on its own. */
    for (int i = 0; i < n && !late && timed_out(tx); i++)
        if (batch[i]->rc == tx)
            late = batch[i];
    if (n > 1) /* a batch nobody joined is counted as the write alone it was */
        oms_metrics_group_commit((unsigned)n, carried, locks);
    return late;
}

bool oms_group_commit_run(oms_ctx *ctx, const oms_change_spec *spec, oms_change_out *out, oms_group_body_fn body,
                          oms_group_solo_fn solo, int *rc, bool *alone, oms_error *err)
{
    *alone = false;
    bool single = oms_db_single_writer(ctx->store->db);
    if (!atomic_load(&g_enabled) || (!spec->branch && !single))
        return false;
    /* SQLite has one writer for the whole file: there every write queues
     * in one group, whatever its branch, instead of polling for the file's
     * lock in SQLite's busy handler (each member still reads and moves
     * its own branch's head). */
    group *g = find(ctx->store->db, single ? "" : spec->branch);
    if (!g)
        return false;
    member me = {.ctx = ctx, .spec = spec, .out = out, .err = err};
    pthread_cond_init(&me.wake, NULL);
    oms_error ignored;
    if (!single && oms_db_conn(ctx->store->db, &me.conn, &ignored) != OMS_OK)
        me.conn = NULL;
    pthread_mutex_lock(&g->mu);
    bool company = true; /* a writer promoted from the queue had */
    if (g->busy) {
        g->company = true;
        if (g->tail)
            g->tail->next = &me;
        else
            g->head = &me;
        g->tail = &me;
        oms_metrics_group_commit_queued(1);
        while (!me.done && !me.lead)
            pthread_cond_wait(&me.wake, &g->mu);
        if (me.done) {
            pthread_mutex_unlock(&g->mu);
            pthread_cond_destroy(&me.wake);
            *rc = me.rc;
            return true;
        }
    } else {
        g->busy = true;
        company = g->company;
    }
    g->company = false; /* until a writer queues behind this transaction */
    pthread_mutex_unlock(&g->mu);
    /* the leader: itself and whoever waits, in arrival order */
    member *batch[MAX_BATCH];
    int n = 0;
    batch[n++] = &me;
    joiner start = {.g = g, .batch = batch, .n = &n};
    join_queued(&start);

    member *late = NULL;
    handoff h = {.g = single ? NULL : g};
    if (n == 1 && !company) {
        /* alone on a quiet branch: the usual transaction, no savepoint */
        me.rc = solo(ctx, spec, out, err);
        *alone = true;
        late = timed_out(me.rc) ? &me : NULL;
    } else {
        late = run_batch(g, batch, &n, body, &h);
    }

    /* answer the batch; hand the queue to its first waiter unless the
     * batch did before its COMMIT */
    pthread_mutex_lock(&g->mu);
    for (int i = 1; i < n; i++) {
        batch[i]->done = true;
        pthread_cond_signal(&batch[i]->wake);
    }
    /* The database kept this batch waiting past its deadline: the writes
     * queued behind it would wait for the same row or server, one
     * deadline after another. They get the same answer now (503
     * database_timeout, nothing written), each within its own deadline.
     * (A COMMIT that times out after the hand-off leaves them to the next
     * leader, who waits for the row within its own deadline.) */
    while (late && !h.done && g->head) {
        member *m = g->head;
        g->head = m->next;
        m->next = NULL;
        fail(m, late->rc, late->err);
        m->done = true;
        pthread_cond_signal(&m->wake);
        oms_metrics_group_commit_queued(-1);
    }
    if (!h.done)
        promote_next(g);
    pthread_mutex_unlock(&g->mu);
    pthread_cond_destroy(&me.wake);
    *rc = me.rc;
    return true;
}
