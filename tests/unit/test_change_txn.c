/* A new change gets the change transaction's handling by being a step and
 * nothing else (ENGINEERING.md habit 17, src/txn/change.h): this test
 * registers a step of its own, which only writes a row of a table the test
 * made, and drives oms_change_run against a real SQLite database in a
 * temporary folder. With no other code, the change:
 *   - is refused by another holder's lock (OMS_ELOCKED, nothing written),
 *   - consumes an attached approved override that lets it through that lock,
 *   - is recorded by one audit event carrying the context's issue keys,
 *   - rolls back whole when the step fails after writing,
 *   - is retried after a serialization failure, and committed once. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/principal.h"
#include "core/context.h"
#include "store/db.h"
#include "store/store.h"
#include "t.h"
#include "txn/change.h"
#include "util/arena.h"
#include "util/time.h"

#define BRANCH "feature/txn"
#define LOCK_ID "lck_0123456789abcdef0123456789abcdef"
#define OVERRIDE_ID "ovr_0123456789abcdef0123456789abcdef"

/* ---- the new change: one row in a table of its own ---------------------- */

typedef struct {
    const char *name;  /* the row it writes */
    int fail_after;    /* write, then fail with this code (0: succeed) */
    int serialization; /* attempts that end in a serialization failure */
    int calls;
} touch_arg;

static int touch_step(oms_dbconn *c, oms_ctx *ctx, void *arg, oms_change_out *out, oms_error *err)
{
    touch_arg *a = arg;
    a->calls++;
    oms_dbparam p[] = {DBP_TEXT(a->name)};
    int rc = oms_db_exec(c, "INSERT INTO txn_touch (name) VALUES ($1)", p, 1, NULL, err);
    if (rc)
        return rc;
    if (a->serialization > 0) {
        a->serialization--;
        return oms_err_set(err, OMS_EUNAVAIL, "serialization failure (staged by the test)");
    }
    if (a->fail_after)
        return oms_err_set(err, a->fail_after, "the step failed after writing (staged by the test)");
    out->resource_kind = "touches";
    out->resource_id = a->name;
    out->status = 201;
    out->touched[out->ntouched++] = oms_arena_printf(ctx->arena, "touches/%s", a->name);
    out->detail = json_pack("{s:s}", "touched", a->name);
    return OMS_OK;
}

/* ---- the fixture: a migrated SQLite store and a request context ---------- */

typedef struct {
    char dir[64];
    oms_store *store;
    oms_dbconn *c;
    oms_arena *arena;
    oms_principal who;
    const char *roles[1];
    oms_ctx ctx;
} fixture;

static int sql(fixture *f, const char *text)
{
    oms_error err;
    int rc = oms_db_exec(f->c, text, NULL, 0, NULL, &err);
    if (rc)
        fprintf(stderr, "  %s: %s\n", text, err.msg);
    return rc;
}

/* The first cell of a one-row query, as an integer (-1 on error). */
static long long scalar(fixture *f, const char *text)
{
    oms_error err;
    oms_dbres *r = NULL;
    long long v = -1;
    if (oms_db_exec(f->c, text, NULL, 0, &r, &err) == OMS_OK && r->nrows == 1)
        v = oms_dbres_int(r, 0, 0);
    else
        fprintf(stderr, "  %s: %s\n", text, r ? "not one row" : err.msg);
    oms_dbres_free(r);
    return v;
}

static bool setup(fixture *f, const char *request_id)
{
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/oms-change-txn-XXXXXX");
    if (!mkdtemp(f->dir))
        return false;
    char url[128];
    snprintf(url, sizeof url, "sqlite:%s/oms.db", f->dir);
    oms_error err;
    int applied = 0;
    if (oms_store_open(&f->store, url, 5000, &err) || oms_store_migrate(f->store, &applied, &err) ||
        oms_db_conn(f->store->db, &f->c, &err)) {
        fprintf(stderr, "  store: %s\n", err.msg);
        return false;
    }
    if (sql(f, "CREATE TABLE txn_touch (name TEXT PRIMARY KEY)"))
        return false;
    f->arena = oms_arena_new(4096);
    f->roles[0] = "developer";
    f->who.sub = "dev";
    f->who.roles = f->roles;
    f->who.nroles = 1;
    f->ctx = (oms_ctx){.arena = f->arena,
                       .store = f->store,
                       .principal = &f->who,
                       .sub = "dev",
                       .roles = f->roles,
                       .nroles = 1,
                       .request_id = request_id,
                       .client_addr = "127.0.0.1",
                       .method = "POST",
                       .route = "/api/v1/test-only/{branch}/touch",
                       .route_action = "test.touch",
                       .branch = BRANCH};
    f->ctx.issue_keys = json_pack("[s,s]", "OMS-12", "GH-7");
    return true;
}

static void teardown(fixture *f)
{
    json_decref(f->ctx.issue_keys);
    json_decref(oms_ctx_take_problem_extra(&f->ctx));
    if (f->arena)
        oms_arena_free(f->arena);
    if (f->store)
        oms_store_close(f->store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    CHECK(system(cmd) == 0);
}

/* Another principal's live lock on the whole branch. */
static void lock_branch_as_other(fixture *f)
{
    char text[1024];
    long long now = (long long)oms_now_ms();
    snprintf(text, sizeof text,
             "INSERT INTO locks (id, branch, scope, kind, holder, reason, acquired_at, expires_at, heartbeat_seconds,"
             " last_heartbeat_at, deadline_at, fencing_token, state) VALUES ('" LOCK_ID "', '" BRANCH
             "', 'branch', 'maintenance', 'other', 'staged by the test', %lld, %lld, 0, %lld, %lld, 1, 'active')",
             now, now + 3600 * 1000LL, now, now + 3600 * 1000LL);
    CHECK_EQ_INT(sql(f, text), OMS_OK);
}

static oms_change_spec spec_for(touch_arg *a)
{
    return (oms_change_spec){.branch = BRANCH, .check_locks = true, .step = touch_step, .arg = a};
}

static long long events(fixture *f, const char *action)
{
    char text[256];
    snprintf(text, sizeof text, "SELECT count(*) FROM audit_events WHERE action = '%s'", action);
    return scalar(f, text);
}

/* ---- the cases ------------------------------------------------------------ */

static void committed_with_one_audit_event_and_the_issue_keys(void)
{
    fixture f;
    if (!setup(&f, "txn-ok")) {
        CHECK(!"the fixture");
        teardown(&f);
        return;
    }
    touch_arg a = {.name = "First"};
    oms_change_spec spec = spec_for(&a);
    oms_change_out out;
    oms_error err;
    CHECK_EQ_INT(oms_change_run(&f.ctx, &spec, &out, &err), OMS_OK);
    CHECK(f.ctx.audited);
    CHECK_EQ_INT(a.calls, 1);
    CHECK_EQ_INT(scalar(&f, "SELECT count(*) FROM txn_touch WHERE name = 'First'"), 1);
    CHECK_EQ_INT(events(&f, "test.touch"), 1);
    oms_dbres *r = NULL;
    CHECK_EQ_INT(oms_db_exec(f.c,
                             "SELECT issue_keys, outcome, http_status, resource_kind, resource_id, resource_branch,"
                             " actor_sub, request_id, detail, override_id FROM audit_events WHERE action = 'test.touch'",
                             NULL, 0, &r, &err),
                 OMS_OK);
    if (r && r->nrows == 1) {
        json_t *keys = json_loads(oms_dbres_get(r, 0, 0), 0, NULL);
        CHECK(json_equal(keys, f.ctx.issue_keys));
        json_decref(keys);
        CHECK_EQ_STR(oms_dbres_get(r, 0, 1), "success");
        CHECK_EQ_INT(oms_dbres_int(r, 0, 2), 201);
        CHECK_EQ_STR(oms_dbres_get(r, 0, 3), "touches");
        CHECK_EQ_STR(oms_dbres_get(r, 0, 4), "First");
        CHECK_EQ_STR(oms_dbres_get(r, 0, 5), BRANCH);
        CHECK_EQ_STR(oms_dbres_get(r, 0, 6), "dev");
        CHECK_EQ_STR(oms_dbres_get(r, 0, 7), "txn-ok");
        CHECK_EQ_STR(oms_dbres_get(r, 0, 8), "{\"touched\":\"First\"}");
        CHECK(oms_dbres_get(r, 0, 9) == NULL);
    } else {
        CHECK(!"one test.touch event");
    }
    oms_dbres_free(r);
    teardown(&f);
}

static void another_holders_lock_refuses_it_and_nothing_is_written(void)
{
    fixture f;
    if (!setup(&f, "txn-locked")) {
        CHECK(!"the fixture");
        teardown(&f);
        return;
    }
    lock_branch_as_other(&f);
    touch_arg a = {.name = "Blocked"};
    oms_change_spec spec = spec_for(&a);
    oms_change_out out;
    oms_error err;
    CHECK_EQ_INT(oms_change_run(&f.ctx, &spec, &out, &err), OMS_ELOCKED);
    CHECK(!f.ctx.audited);
    CHECK_EQ_INT(a.calls, 1); /* the step ran; the check of what it touched refused it */
    CHECK_EQ_INT(scalar(&f, "SELECT count(*) FROM txn_touch"), 0);
    CHECK_EQ_INT(scalar(&f, "SELECT count(*) FROM audit_events WHERE request_id = 'txn-locked'"), 0);
    /* the problem document names the lock */
    json_t *extra = oms_ctx_take_problem_extra(&f.ctx);
    CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(json_object_get(extra, "locks"), 0), "id")),
                 LOCK_ID);
    CHECK(json_object_get(extra, "lock") == NULL); /* once, under locks */
    json_decref(extra);
    /* the holder's own lock, named in X-Lock-ID, lets the holder through */
    f.who.sub = f.ctx.sub = "other";
    f.ctx.lock_id = LOCK_ID;
    CHECK_EQ_INT(oms_change_run(&f.ctx, &spec, &out, &err), OMS_OK);
    CHECK_EQ_INT(scalar(&f, "SELECT count(*) FROM txn_touch WHERE name = 'Blocked'"), 1);
    teardown(&f);
}

static void an_approved_override_is_consumed(void)
{
    fixture f;
    if (!setup(&f, "txn-override")) {
        CHECK(!"the fixture");
        teardown(&f);
        return;
    }
    lock_branch_as_other(&f);
    char text[1024];
    long long now = (long long)oms_now_ms();
    snprintf(text, sizeof text,
             "INSERT INTO overrides (id, kind, branch, resource, justification, incident, requester, state,"
             " ttl_seconds, approvals_required, created_at, expires_at, decided_at, decided_by) VALUES ('" OVERRIDE_ID
             "', 'lock', '" BRANCH "', NULL, 'Production incident: the maintenance lock blocks an urgent fix.',"
             " 'INC-1', 'dev', 'approved', 600, 1, %lld, %lld, %lld, 'sec')",
             now, now + 600 * 1000LL, now);
    CHECK_EQ_INT(sql(&f, text), OMS_OK);
    f.ctx.override.id = OVERRIDE_ID;
    snprintf(f.ctx.override.kind, sizeof f.ctx.override.kind, "lock");
    snprintf(f.ctx.override.branch, sizeof f.ctx.override.branch, BRANCH);

    touch_arg a = {.name = "Through"};
    oms_change_spec spec = spec_for(&a);
    oms_change_out out;
    oms_error err;
    CHECK_EQ_INT(oms_change_run(&f.ctx, &spec, &out, &err), OMS_OK);
    CHECK(f.ctx.override.used);
    CHECK_EQ_INT(scalar(&f, "SELECT count(*) FROM txn_touch WHERE name = 'Through'"), 1);
    CHECK_EQ_INT(scalar(&f, "SELECT count(*) FROM overrides WHERE id = '" OVERRIDE_ID "' AND state = 'used'"
                            " AND used_request_id = 'txn-override'"),
                 1);
    CHECK_EQ_INT(events(&f, "override.used"), 1);
    /* the change's own event names the override it relied on */
    CHECK_EQ_INT(scalar(&f, "SELECT count(*) FROM audit_events WHERE action = 'test.touch'"
                            " AND override_id = '" OVERRIDE_ID "'"),
                 1);
    /* used once: the next change through the lock is refused again */
    f.ctx.override.used = f.ctx.override.needed = false;
    touch_arg b = {.name = "Again"};
    spec = spec_for(&b);
    CHECK_EQ_INT(oms_change_run(&f.ctx, &spec, &out, &err), OMS_EFORBIDDEN);
    CHECK_EQ_INT(scalar(&f, "SELECT count(*) FROM txn_touch WHERE name = 'Again'"), 0);
    teardown(&f);
}

static void a_failing_step_rolls_everything_back(void)
{
    fixture f;
    if (!setup(&f, "txn-fail")) {
        CHECK(!"the fixture");
        teardown(&f);
        return;
    }
    touch_arg a = {.name = "Lost", .fail_after = OMS_ECONFLICT};
    oms_change_spec spec = spec_for(&a);
    oms_change_out out;
    oms_error err;
    long long before = scalar(&f, "SELECT count(*) FROM audit_events");
    CHECK_EQ_INT(oms_change_run(&f.ctx, &spec, &out, &err), OMS_ECONFLICT);
    CHECK(!f.ctx.audited);
    CHECK_EQ_INT(a.calls, 1); /* an ordinary failure is not retried */
    CHECK_EQ_INT(scalar(&f, "SELECT count(*) FROM txn_touch"), 0);
    CHECK_EQ_INT(scalar(&f, "SELECT count(*) FROM audit_events"), before);
    /* the connection is usable afterwards: no transaction left open */
    touch_arg b = {.name = "Kept"};
    spec = spec_for(&b);
    CHECK_EQ_INT(oms_change_run(&f.ctx, &spec, &out, &err), OMS_OK);
    CHECK_EQ_INT(scalar(&f, "SELECT count(*) FROM txn_touch"), 1);
    teardown(&f);
}

static void a_serialization_failure_is_retried(void)
{
    fixture f;
    if (!setup(&f, "txn-retry")) {
        CHECK(!"the fixture");
        teardown(&f);
        return;
    }
    touch_arg a = {.name = "Retried", .serialization = 1};
    oms_change_spec spec = spec_for(&a);
    oms_change_out out;
    oms_error err;
    CHECK_EQ_INT(oms_change_run(&f.ctx, &spec, &out, &err), OMS_OK);
    CHECK_EQ_INT(a.calls, 2);
    CHECK_EQ_INT(scalar(&f, "SELECT count(*) FROM txn_touch WHERE name = 'Retried'"), 1); /* the first try rolled back */
    CHECK_EQ_INT(events(&f, "test.touch"), 1);
    /* retries are bounded: a failure that persists is answered */
    touch_arg b = {.name = "Never", .serialization = 100};
    spec = spec_for(&b);
    CHECK_EQ_INT(oms_change_run(&f.ctx, &spec, &out, &err), OMS_EUNAVAIL);
    CHECK_EQ_INT(b.calls, 3);
    CHECK_EQ_INT(scalar(&f, "SELECT count(*) FROM txn_touch WHERE name = 'Never'"), 0);
    CHECK_EQ_INT(events(&f, "test.touch"), 1);
    teardown(&f);
}

int main(void)
{
    static const t_case cases[] = {
        T(committed_with_one_audit_event_and_the_issue_keys),
        T(another_holders_lock_refuses_it_and_nothing_is_written),
        T(an_approved_override_is_consumed),
        T(a_failing_step_rolls_everything_back),
        T(a_serialization_failure_is_retried),
    };
    return T_RUN("change_txn", cases);
}
