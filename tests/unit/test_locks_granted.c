/* The locks a process granted, remembered for their release in one
 * statement (src/locks/granted.c): recalled as remembered, forgotten on
 * release, a lock in a full set pushing out the set's oldest, and
 * nothing kept that a lock's validated fields could not hold. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "locks/granted.h"
#include "t.h"
#include "util/hash.h"

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
 * under its id (never another's fields), and the newest are kept. */
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
    /* the last four always (a set holds four) */
    for (int i = 4996; i < 5000; i++)
        CHECK(oms_locks_granted_recall(ids[i], a, &(oms_lock){0}));
    oms_arena_free(a);
}

/* The table's placement (src/locks/granted.c): FNV-1a of the id, mod 256. */
static unsigned set_index(const char *id) { return (unsigned)(oms_fnv1a_str(id) % 256); }

/* Six ids in one set: four are all kept; a fifth pushes out the oldest
 * only; a lock remembered again keeps its one way, and a forgotten one
 * frees its way for the next. */
static void a_full_set_gives_up_its_oldest(void)
{
    oms_arena *a = oms_arena_new(1 << 16);
    char same[6][40];
    int n = 0;
    unsigned want = 0;
    for (unsigned i = 0; n < 6; i++) {
        char id[40];
        snprintf(id, sizeof id, "lck_%032x", 0xc0ffee00u + i);
        if (n == 0)
            want = set_index(id);
        if (set_index(id) == want)
            memcpy(same[n++], id, sizeof id);
    }
    for (int i = 0; i < 6; i++)
        oms_locks_granted_forget(same[i]);
    oms_lock got;
    for (int i = 0; i < 4; i++) {
        oms_lock l = mk(same[i]);
        l.fencing_token = i;
        oms_locks_granted_remember(&l);
    }
    /* whatever earlier cases left in this set is older: all four are kept */
    for (int i = 0; i < 4; i++) {
        CHECK(oms_locks_granted_recall(same[i], a, &got));
        CHECK_EQ_INT(got.fencing_token, i);
    }
    /* the oldest, same[0], remembered again: newest now, still one way */
    oms_lock again = mk(same[0]);
    again.fencing_token = 100;
    oms_locks_granted_remember(&again);
    oms_lock fifth = mk(same[4]);
    oms_locks_granted_remember(&fifth); /* pushes out same[1], now the oldest */
    CHECK(!oms_locks_granted_recall(same[1], a, &got));
    CHECK(oms_locks_granted_recall(same[0], a, &got));
    CHECK_EQ_INT(got.fencing_token, 100);
    CHECK(oms_locks_granted_recall(same[2], a, &got));
    CHECK(oms_locks_granted_recall(same[3], a, &got));
    CHECK(oms_locks_granted_recall(same[4], a, &got));
    /* a forgotten lock's way goes to the next, pushing out no one */
    oms_locks_granted_forget(same[3]);
    oms_lock sixth = mk(same[5]);
    oms_locks_granted_remember(&sixth);
    CHECK(oms_locks_granted_recall(same[0], a, &got));
    CHECK(oms_locks_granted_recall(same[2], a, &got));
    CHECK(oms_locks_granted_recall(same[4], a, &got));
    CHECK(oms_locks_granted_recall(same[5], a, &got));
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
                                   T(a_full_set_gives_up_its_oldest),
                                   T(too_long_is_not_kept)};
    return T_RUN("locks_granted", cases);
}
