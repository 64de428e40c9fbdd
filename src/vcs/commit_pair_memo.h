/* A small process-wide memo of what two commits determine by themselves:
 * their merge base, the issue keys of the commits one has and the other
 * has not. Commits are immutable and named by the hash of their content
 * (parents included), so such a value never changes for a pair of ids; a
 * proposal's views (created, read, approved, merged) ask for the same pair
 * again and again, and each answer is a walk down both histories that
 * grows with the target's (docs/BENCHMARKS.md, round 8). Direct-mapped:
 * a pair that collides with another replaces it. */
#ifndef OMS_VCS_COMMIT_PAIR_MEMO_H
#define OMS_VCS_COMMIT_PAIR_MEMO_H

#include <stdbool.h>

typedef enum {
    OMS_MEMO_MERGE_BASE,  /* the merge base's id */
    OMS_MEMO_ISSUES_AHEAD /* a JSON array of the issue keys of a's commits not on b, sorted */
} oms_memo_kind;

/* A copy of the value remembered for (kind, a, b) (free() it), or NULL. */
char *oms_commit_pair_memo_get(oms_memo_kind kind, const char *a, const char *b);

/* Remembers `value` for (kind, a, b); ids longer than 64 bytes are not kept. */
void oms_commit_pair_memo_put(oms_memo_kind kind, const char *a, const char *b, const char *value);

/* Lookups answered and missed since the start, for tests. */
void oms_commit_pair_memo_counts(unsigned long *hits, unsigned long *misses);

#endif
