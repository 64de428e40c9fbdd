#include "locks/granted.h"

#include <pthread.h>
#include <string.h>

/* Direct-mapped: a lock's slot is a hash of its (random) id; a newer lock
 * in the same slot replaces the older one, which then releases the usual
 * way. 1,024 slots of under 600 bytes. */
#define SLOTS 1024

typedef struct {
    char id[OMS_LOCK_ID_LEN + 1];
    char branch[101], scope[16], resource_type[65], resource_id[101], kind[33], holder[257];
    int64_t fencing_token;
} slot;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static slot g_slots[SLOTS];

static slot *slot_of(const char *id)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = id; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return &g_slots[h % SLOTS];
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
    *slot_of(l->id) = s;
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
    s = *slot_of(id);
    pthread_mutex_unlock(&g_mu);
    if (strcmp(s.id, id) != 0)
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
    slot *s = slot_of(id);
    if (strcmp(s->id, id) == 0)
        s->id[0] = '\0';
    pthread_mutex_unlock(&g_mu);
}
