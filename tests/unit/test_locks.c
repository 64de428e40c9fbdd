/* The lock model (src/locks/locks.c): scope nesting, coverage, liveness,
 * ETA, ids, kinds. The protocol itself is tested through the API
 * (tests/api/test_locks*.py). */
#include "locks/locks.h"
#include "t.h"

static oms_lock mk(const char *branch, const char *scope, const char *type, const char *id)
{
    oms_lock l = {0};
    l.id = "lck_00000000000000000000000000000000";
    l.branch = branch;
    l.scope = scope;
    l.resource_type = type;
    l.resource_id = id;
    l.kind = "manual";
    l.holder = "alice";
    l.reason = "r";
    l.state = "active";
    l.acquired_at = 1000;
    l.expires_at = l.deadline_at = 100000;
    return l;
}

static void conflicts_nest(void)
{
    oms_lock b = mk("x", "branch", NULL, NULL), t = mk("x", "resource_type", "object-types", NULL),
             t2 = mk("x", "resource_type", "link-types", NULL), r = mk("x", "resource", "object-types", "A"),
             r2 = mk("x", "resource", "object-types", "B"), r3 = mk("x", "resource", "link-types", "A"),
             other = mk("y", "branch", NULL, NULL);
    const oms_lock *all[] = {&b, &t, &t2, &r, &r2, &r3};
    /* a branch lock conflicts with every lock on its branch, never elsewhere */
    for (size_t i = 0; i < 6; i++) {
        CHECK(oms_locks_conflict(&b, all[i]) && oms_locks_conflict(all[i], &b));
        CHECK(!oms_locks_conflict(&other, all[i]) && !oms_locks_conflict(all[i], &other));
    }
    CHECK(oms_locks_conflict(&t, &t) && oms_locks_conflict(&t, &r) && oms_locks_conflict(&r2, &t));
    CHECK(!oms_locks_conflict(&t, &t2) && !oms_locks_conflict(&t, &r3) && !oms_locks_conflict(&t2, &r));
    CHECK(oms_locks_conflict(&r, &r) && !oms_locks_conflict(&r, &r2) && !oms_locks_conflict(&r, &r3));
}

static void coverage(void)
{
    oms_lock b = mk("x", "branch", NULL, NULL), t = mk("x", "resource_type", "object-types", NULL),
             r = mk("x", "resource", "object-types", "Person");
    CHECK(oms_lock_covers(&b, "link-types/L"));
    CHECK(oms_lock_covers(&t, "object-types/Anything") && !oms_lock_covers(&t, "object-typesX/A"));
    CHECK(!oms_lock_covers(&t, "link-types/Person"));
    CHECK(oms_lock_covers(&r, "object-types/Person") && !oms_lock_covers(&r, "object-types/Person2"));
    CHECK(!oms_lock_covers(&r, "object-types/Perso") && !oms_lock_covers(&r, "interfaces/Person"));
    oms_arena *a = oms_arena_new(256);
    CHECK_EQ_STR(oms_lock_pattern(&b, a), "*");
    CHECK_EQ_STR(oms_lock_pattern(&t, a), "object-types/*");
    CHECK_EQ_STR(oms_lock_pattern(&r, a), "object-types/Person");
    oms_arena_free(a);
}

static void liveness(void)
{
    oms_lock l = mk("x", "branch", NULL, NULL);
    CHECK(oms_lock_live(&l, 99999) && !oms_lock_live(&l, 100000));
    CHECK_EQ_STR(oms_lock_effective_state(&l, 100000), "expired");
    l.state = "released";
    CHECK(!oms_lock_live(&l, 5000));
    CHECK_EQ_STR(oms_lock_effective_state(&l, 5000), "released");
}

static void eta(void)
{
    oms_lock l = mk("x", "branch", NULL, NULL);
    int64_t s = -1;
    CHECK(!oms_lock_eta_seconds(&l, 5000, &s)); /* no progress yet */
    l.has_percent = true;
    l.percent = 0;
    l.progress_updated_at = 3000;
    CHECK(!oms_lock_eta_seconds(&l, 5000, &s)); /* 0 %: no rate */
    l.percent = 25; /* 25 % in 10 s -> 30 s more from the report */
    l.progress_updated_at = 11000;
    CHECK(oms_lock_eta_seconds(&l, 11000, &s) && s == 30);
    CHECK(oms_lock_eta_seconds(&l, 21000, &s) && s == 20);
    CHECK(oms_lock_eta_seconds(&l, 99000, &s) && s == 0); /* overdue: never negative */
    l.percent = 100;
    CHECK(oms_lock_eta_seconds(&l, 11000, &s) && s == 0);
    l.percent = 50;
    l.progress_updated_at = l.acquired_at; /* no elapsed time */
    CHECK(!oms_lock_eta_seconds(&l, 2000, &s));
}

static void ids_kinds_keys(void)
{
    char a[OMS_LOCK_ID_LEN + 1], b[OMS_LOCK_ID_LEN + 1];
    oms_lock_new_id(a);
    oms_lock_new_id(b);
    CHECK(oms_lock_id_valid(a) && oms_lock_id_valid(b) && strcmp(a, b) != 0);
    CHECK(!oms_lock_id_valid("lck_0") && !oms_lock_id_valid("lck_0000000000000000000000000000000G"));
    CHECK(!oms_lock_id_valid("xyz_00000000000000000000000000000000") && !oms_lock_id_valid(NULL));
    CHECK_EQ_INT(oms_lock_default_ttl("indexing"), 4 * 3600);
    CHECK_EQ_INT(oms_lock_default_ttl("migration"), 6 * 3600);
    CHECK_EQ_INT(oms_lock_default_ttl("backup"), 2 * 3600);
    CHECK_EQ_INT(oms_lock_default_ttl("maintenance"), 3600);
    CHECK_EQ_INT(oms_lock_default_ttl("manual"), 86400);
    CHECK_EQ_INT(oms_lock_default_ttl("coffee"), -1);
    CHECK(oms_lock_scope_valid("branch") && !oms_lock_scope_valid("tree") && !oms_lock_scope_valid(NULL));
    CHECK(oms_lock_branch_key("main") == oms_lock_branch_key("main"));
    CHECK(oms_lock_branch_key("main") != oms_lock_branch_key("feature/x"));
}

static void json_shape(void)
{
    oms_lock l = mk("x", "resource", "object-types", "A");
    l.has_percent = true;
    l.percent = 50;
    l.progress_updated_at = 11000;
    l.phase = "build";
    json_t *j = oms_lock_json(&l, 12000);
    CHECK_EQ_STR(json_string_value(json_object_get(j, "state")), "active");
    CHECK_EQ_INT(json_integer_value(json_object_get(j, "eta_seconds")), 9);
    CHECK(json_is_null(json_object_get(json_object_get(j, "progress"), "message")));
    CHECK(json_is_null(json_object_get(j, "ended_at")));
    json_decref(j);
    j = oms_lock_json(&l, 200000); /* past its deadline: expired, ended at the deadline, no ETA */
    CHECK_EQ_STR(json_string_value(json_object_get(j, "state")), "expired");
    CHECK(json_is_string(json_object_get(j, "ended_at")) && json_is_null(json_object_get(j, "eta_seconds")));
    json_decref(j);
}

int main(void)
{
    static const t_case cases[] = {T(conflicts_nest), T(coverage), T(liveness), T(eta), T(ids_kinds_keys),
                                   T(json_shape)};
    return T_RUN("locks", cases);
}
