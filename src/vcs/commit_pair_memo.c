#include "vcs/commit_pair_memo.h"

#include <string.h>

#include "util/pair_memo.h"

/* About a hundred open proposals, each asking for a few pairs; values are
 * commit ids and short arrays of issue keys. */
static oms_pair_memo_slot g_slots[512];
static oms_pair_memo g_memo = OMS_PAIR_MEMO_INIT(g_slots, 1 << 20);

char *oms_commit_pair_memo_get(oms_memo_kind kind, const char *a, const char *b)
{
    return oms_pair_memo_get(&g_memo, (uint64_t)kind, a, b, NULL);
}

void oms_commit_pair_memo_put(oms_memo_kind kind, const char *a, const char *b, const char *value)
{
    if (value)
        oms_pair_memo_put(&g_memo, (uint64_t)kind, a, b, value, strlen(value));
}

void oms_commit_pair_memo_counts(unsigned long *hits, unsigned long *misses)
{
    oms_pair_memo_counts(&g_memo, hits, misses);
}
