#include "vcs/diff_cache.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#define SLOTS 64
/* A diff larger than this many changes is not kept (it would hold many
 * documents' field diffs for one pair). */
#define MAX_CHANGES 5000

static struct {
    pthread_mutex_t mu;
    struct {
        char from[65], to[65];
        json_t *changes;
        bool breaking;
        uint64_t used;
    } slot[SLOTS];
    uint64_t clock;
} g = {.mu = PTHREAD_MUTEX_INITIALIZER};

json_t *oms_diff_cache_get(const char *from, const char *to, bool *breaking)
{
    json_t *out = NULL;
    pthread_mutex_lock(&g.mu);
    for (int i = 0; i < SLOTS; i++)
        if (g.slot[i].changes && strcmp(g.slot[i].from, from) == 0 && strcmp(g.slot[i].to, to) == 0) {
            /* a copy: jansson's values are not shared across threads */
            out = json_deep_copy(g.slot[i].changes);
            *breaking = g.slot[i].breaking;
            g.slot[i].used = ++g.clock;
            break;
        }
    pthread_mutex_unlock(&g.mu);
    return out;
}

void oms_diff_cache_put(const char *from, const char *to, const json_t *changes, bool breaking)
{
    if (strlen(from) > 64 || strlen(to) > 64 || json_array_size(changes) > MAX_CHANGES)
        return;
    json_t *copy = json_deep_copy(changes), *old = NULL;
    pthread_mutex_lock(&g.mu);
    int victim = 0;
    for (int i = 0; i < SLOTS; i++) {
        if (!g.slot[i].changes || (strcmp(g.slot[i].from, from) == 0 && strcmp(g.slot[i].to, to) == 0)) {
            victim = i;
            break;
        }
        if (g.slot[i].used < g.slot[victim].used)
            victim = i;
    }
    old = g.slot[victim].changes;
    memcpy(g.slot[victim].from, from, strlen(from) + 1);
    memcpy(g.slot[victim].to, to, strlen(to) + 1);
    g.slot[victim].changes = copy;
    g.slot[victim].breaking = breaking;
    g.slot[victim].used = ++g.clock;
    pthread_mutex_unlock(&g.mu);
    json_decref(old);
}
