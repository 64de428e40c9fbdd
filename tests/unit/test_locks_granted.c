/* The locks a process granted, remembered for their release in one
 * statement (src/locks/granted.c): recalled as remembered, forgotten on
 * release, a newer lock in the same slot pushing the older out, and
 * nothing kept that a lock's validated fields could not hold. */
#include <stdio.h>
#include <string.h>

#include "locks/granted.h"
#include "t.h"

static oms_lock mk(const char *id)
{
    oms_lock l = {0};
    l.id = id;
    l.branch = "feature/x";
    l.scope = "resource";
    l.resource_type = "object-types";
    l.resource_id = "Person";
    l.kind = "manual";
    l.holder = "alice";
    l.fencing_token = 42;
    return l;
}

static void recalled_as_remembered(void)
{
    oms_arena *a = oms_arena_new(1024);
    oms_lock l = mk("lck_0123456789abcdef0123456789abcdef"), got;
    oms_locks_granted_remember(&l);
    CHECK(oms_locks_granted_recall(l.id, a, &got));
    CHECK_EQ_STR(got.id, l.id);
    CHECK_EQ_STR(got.branch, "feature/x");
    CHECK_EQ_STR(got.scope, "resource");
    CHECK_EQ_STR(got.resource_type, "object-types");
    CHECK_EQ_STR(got.resource_id, "Person");
    CHECK_EQ_STR(got.kind, "manual");
    CHECK_EQ_STR(got.holder, "alice");
    CHECK_EQ_INT(got.fencing_token, 42);
    oms_locks_granted_forget(l.id);
    CHECK(!oms_locks_granted_recall(l.id, a, &got));
    /* a branch lock: no resource type or id, recalled as NULL */
    oms_lock b = mk("lck_11111111111111111111111111111111");
    b.scope = "branch";
    b.resource_type = b.resource_id = NULL;
    oms_locks_granted_remember(&b);
    CHECK(oms_locks_granted_recall(b.id, a, &got));
    CHECK(got.resource_type == NULL && got.resource_id == NULL);
    CHECK(!oms_locks_granted_recall("lck_22222222222222222222222222222222", a, &got));
    CHECK(!oms_locks_granted_recall("not-an-id", a, &got));
    oms_arena_free(a);
}

/* 5,000 locks in 1,024 slots: each recalled is exactly the one remembered
 * under its id (never another's fields), and the newest ones are all kept
 * unless they share a slot. */
static void a_newer_lock_pushes_out_an_older(void)
{
    oms_arena *a = oms_arena_new(1 << 16);
    char ids[5000][40];
    int recalled = 0;
    for (int i = 0; i < 5000; i++) {
        snprintf(ids[i], sizeof ids[i], "lck_%032x", (unsigned)i * 2654435761u);
        oms_lock l = mk(ids[i]);
        l.fencing_token = i;
        oms_locks_granted_remember(&l);
    }
    for (int i = 0; i < 5000; i++) {
        oms_lock got;
        if (!oms_locks_granted_recall(ids[i], a, &got))
            continue;
        recalled++;
        CHECK_EQ_STR(got.id, ids[i]);
        CHECK_EQ_INT(got.fencing_token, i);
    }
    CHECK(recalled > 0 && recalled <= 1024);
    CHECK(oms_locks_granted_recall(ids[4999], a, &(oms_lock){0})); /* the last one always */
    oms_arena_free(a);
}

static void too_long_is_not_kept(void)
{
    oms_arena *a = oms_arena_new(1024);
    char holder[400];
    memset(holder, 'h', sizeof holder - 1);
    holder[sizeof holder - 1] = '\0';
    oms_lock l = mk("lck_33333333333333333333333333333333"), got;
    l.holder = holder;
    oms_locks_granted_remember(&l);
    CHECK(!oms_locks_granted_recall(l.id, a, &got));
    oms_arena_free(a);
}

int main(void)
{
    static const t_case cases[] = {T(recalled_as_remembered), T(a_newer_lock_pushes_out_an_older),
                                   T(too_long_is_not_kept)};
    return T_RUN("locks_granted", cases);
}
