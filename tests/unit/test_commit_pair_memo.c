/* vcs/commit_pair_memo: a value is found only under its own kind and its
 * own ordered pair; a hit is a private copy; putting again replaces; ids
 * past 64 bytes are never kept; concurrent puts and gets of many pairs
 * never return another pair's value. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t.h"
#include "util/alloc.h"
#include "vcs/commit_pair_memo.h"

static void id_of(char out[65], int n)
{
    snprintf(out, 65, "%064d", n);
}

static void found_under_its_kind_and_pair_only(void)
{
    char a[65], b[65];
    id_of(a, 1);
    id_of(b, 2);
    oms_commit_pair_memo_put(OMS_MEMO_MERGE_BASE, a, b, "base-1-2");
    char *got = oms_commit_pair_memo_get(OMS_MEMO_MERGE_BASE, a, b);
    CHECK_EQ_STR(got, "base-1-2");
    free(got);
    CHECK(oms_commit_pair_memo_get(OMS_MEMO_MERGE_BASE, b, a) == NULL);  /* ordered: (b, a) is another pair */
    CHECK(oms_commit_pair_memo_get(OMS_MEMO_ISSUES_AHEAD, a, b) == NULL); /* another kind */
}

static void a_hit_is_a_private_copy(void)
{
    char a[65], b[65];
    id_of(a, 3);
    id_of(b, 4);
    oms_commit_pair_memo_put(OMS_MEMO_ISSUES_AHEAD, a, b, "[\"OMS-1\"]");
    char *got = oms_commit_pair_memo_get(OMS_MEMO_ISSUES_AHEAD, a, b);
    CHECK_EQ_STR(got, "[\"OMS-1\"]");
    if (got)
        got[0] = 'x';
    free(got);
    got = oms_commit_pair_memo_get(OMS_MEMO_ISSUES_AHEAD, a, b);
    CHECK_EQ_STR(got, "[\"OMS-1\"]");
    free(got);
}

static void putting_again_replaces(void)
{
    char a[65], b[65];
    id_of(a, 5);
    id_of(b, 6);
    oms_commit_pair_memo_put(OMS_MEMO_MERGE_BASE, a, b, "first");
    oms_commit_pair_memo_put(OMS_MEMO_MERGE_BASE, a, b, "second");
    char *got = oms_commit_pair_memo_get(OMS_MEMO_MERGE_BASE, a, b);
    CHECK_EQ_STR(got, "second");
    free(got);
}

static void long_ids_are_not_kept(void)
{
    char a[70], b[65];
    memset(a, 'a', 65);
    a[65] = '\0';
    id_of(b, 7);
    oms_commit_pair_memo_put(OMS_MEMO_MERGE_BASE, a, b, "never");
    CHECK(oms_commit_pair_memo_get(OMS_MEMO_MERGE_BASE, a, b) == NULL);
    CHECK(oms_commit_pair_memo_get(OMS_MEMO_MERGE_BASE, NULL, b) == NULL);
}

/* Each thread puts and reads its own pairs, far more than the slots: a
 * value read back is always its own pair's (or nothing, when evicted). */
static int g_wrong;

static void *churn(void *arg)
{
    int t = (int)(long)arg;
    for (int i = 0; i < 20000; i++) {
        char a[65], b[65], v[40];
        id_of(a, t * 100000 + i);
        id_of(b, i);
        snprintf(v, sizeof v, "v-%d-%d", t, i);
        oms_commit_pair_memo_put(OMS_MEMO_MERGE_BASE, a, b, v);
        char *got = oms_commit_pair_memo_get(OMS_MEMO_MERGE_BASE, a, b);
        if (got && strcmp(got, v) != 0)
            __atomic_add_fetch(&g_wrong, 1, __ATOMIC_RELAXED);
        free(got);
    }
    return NULL;
}

static void concurrent_pairs_never_mix(void)
{
    pthread_t th[4];
    for (long t = 0; t < 4; t++)
        pthread_create(&th[t], NULL, churn, (void *)(t + 1));
    for (int t = 0; t < 4; t++)
        pthread_join(th[t], NULL);
    CHECK_EQ_INT(g_wrong, 0);
    unsigned long hits = 0, misses = 0;
    oms_commit_pair_memo_counts(&hits, &misses);
    CHECK(hits > 0);
}

int main(void)
{
    oms_alloc_init();
    static const t_case cases[] = {T(found_under_its_kind_and_pair_only), T(a_hit_is_a_private_copy),
                                   T(putting_again_replaces), T(long_ids_are_not_kept),
                                   T(concurrent_pairs_never_mix)};
    return T_RUN("commit_pair_memo", cases);
}
