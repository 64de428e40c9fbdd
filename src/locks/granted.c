#include "locks/granted.h"

#include <pthread.h>
#include <string.h>

#include "util/hash.h"

/* Set-associative, like a CPU cache: a lock's set is a hash of its
 * (random) id, and a set holds WAYS locks. A lock remembered into a full
 * set pushes out the set's oldest, which then releases the usual way. So
 * a lock is lost only when WAYS newer ones land in its set before its
 * release: with direct mapping one newer lock in the same slot was enough,
 * which a burst of a few locks hit about once in a hundred. 256 sets of 4
 * slots of under 600 bytes. */
#define SETS 256
#define WAYS 4

typedef struct {
    char id[OMS_LOCK_ID_LEN + 1];
    char branch[101], scope[16], resource_type[65], resource_id[101], kind[33], holder[257];
    int64_t fencing_token;
    uint64_t age; /* when remembered, from g_clock: the smallest is the oldest */
} slot;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static slot g_slots[SETS][WAYS];
static uint64_t g_clock;

static slot *set_of(const char *id)
{
    return g_slots[oms_fnv1a_str(id) % SETS];
}

/* The way holding `id` in `set`, or NULL. */
static slot *find(slot *set, const char *id)
{
    for (int w = 0; w < WAYS; w++)
        if (strcmp(set[w].id, id) == 0)
            return &set[w];
    return NULL;
}

/* Where `id` goes in `set`: its own way, else an empty one, else the oldest. */
static slot *victim(slot *set, const char *id)
{
    slot *s = find(set, id);
    if (s)
        return s;
    slot *oldest = &set[0];
    for (int w = 0; w < WAYS; w++) {
        if (!set[w].id[0])
            return &set[w];
        if (set[w].age < oldest->age)
            oldest = &set[w];
    }
    return oldest;
}

/* Copies `s` (NULL: "") when it fits. */
static bool put(char *dst, size_t cap, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n >= cap)
        return false;
    memcpy(dst, s ? s : "", n + 1);
    return true;
}

void oms_locks_granted_remember(const oms_lock *l)
{
    if (!l->id || strlen(l->id) != OMS_LOCK_ID_LEN)
        return;
    slot s = {.fencing_token = l->fencing_token};
    if (!put(s.id, sizeof s.id, l->id) || !put(s.branch, sizeof s.branch, l->branch) ||
        !put(s.scope, sizeof s.scope, l->scope) || !put(s.resource_type, sizeof s.resource_type, l->resource_type) ||
        !put(s.resource_id, sizeof s.resource_id, l->resource_id) || !put(s.kind, sizeof s.kind, l->kind) ||
        !put(s.holder, sizeof s.holder, l->holder))
        return;
    pthread_mutex_lock(&g_mu);
    s.age = ++g_clock;
    *victim(set_of(l->id), l->id) = s;
    pthread_mutex_unlock(&g_mu);
}

/* "" was NULL (a branch lock has no resource type or id) */
static const char *get(oms_arena *a, const char *s) { return *s ? oms_arena_strdup(a, s) : NULL; }

bool oms_locks_granted_recall(const char *id, oms_arena *a, oms_lock *l)
{
    if (!id || strlen(id) != OMS_LOCK_ID_LEN)
        return false;
    slot s;
    pthread_mutex_lock(&g_mu);
    const slot *found = find(set_of(id), id);
    if (found)
        s = *found;
    pthread_mutex_unlock(&g_mu);
    if (!found)
        return false;
    memset(l, 0, sizeof *l);
    l->id = oms_arena_strdup(a, s.id);
    l->branch = oms_arena_strdup(a, s.branch);
    l->scope = oms_arena_strdup(a, s.scope);
    l->resource_type = get(a, s.resource_type);
    l->resource_id = get(a, s.resource_id);
    l->kind = oms_arena_strdup(a, s.kind);
    l->holder = oms_arena_strdup(a, s.holder);
    l->fencing_token = s.fencing_token;
    l->state = "active";
    return true;
}

void oms_locks_granted_forget(const char *id)
{
    if (!id || strlen(id) != OMS_LOCK_ID_LEN)
        return;
    pthread_mutex_lock(&g_mu);
    slot *s = find(set_of(id), id);
    if (s)
        s->id[0] = '\0';
    pthread_mutex_unlock(&g_mu);
}
