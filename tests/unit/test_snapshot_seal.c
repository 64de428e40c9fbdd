/* vcs/snapshot sealing: a fork's seal rehashes only the trie's top nodes
 * above the buckets it changed and reuses the rest; after any sequence of
 * puts and removes over a chain of forks, the tree id, the top nodes and
 * the nodes emitted equal those of the same content built from nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t.h"
#include "util/alloc.h"
#include "util/encoding.h"
#include "vcs/snapshot.h"

static oms_entry *entry(int name, int version)
{
    char api[32], text[96], hash[65];
    snprintf(api, sizeof api, "Type%05d", name);
    snprintf(text, sizeof text, "{\"api_name\":\"%s\",\"v\":%d}", api, version);
    oms_sha256_hex(hash, text, strlen(text));
    return oms_entry_new(OMS_KIND_OBJECT_TYPE, api, hash, text, strlen(text), "", "", 0);
}

typedef struct {
    int n;
} counter;

static int count_node(void *ctx, const unsigned char hash[32], const unsigned char *body, size_t len)
{
    (void)hash, (void)body, (void)len;
    ((counter *)ctx)->n++;
    return 0;
}

static void forks_seal_as_a_fresh_build_does(void)
{
    enum { NAMES = 3000 };
    int version[NAMES] = {0}; /* 0: absent */
    unsigned seed = 7;
    oms_snapshot *s = oms_snapshot_new_empty();
    oms_snapshot_seal(s, NULL, NULL);
    for (int round = 0; round < 60; round++) {
        oms_snapshot *f = oms_snapshot_fork(s);
        int changes = round < 3 ? 800 : 1 + rand_r(&seed) % 12;
        for (int k = 0; k < changes; k++) {
            int name = rand_r(&seed) % NAMES;
            if (version[name] && rand_r(&seed) % 4 == 0) {
                char key[48];
                snprintf(key, sizeof key, "object-types/Type%05d", name);
                CHECK(oms_snapshot_remove(f, key));
                version[name] = 0;
            } else {
                oms_snapshot_put(f, entry(name, ++version[name]));
            }
        }
        if (round % 5 == 4) { /* a fork of an unsealed fork keeps its parent's changes */
            oms_snapshot *g = oms_snapshot_fork(f);
            oms_snapshot_unref(f);
            f = g;
        }
        counter emitted = {0};
        CHECK_EQ_INT(oms_snapshot_seal(f, count_node, &emitted), 0);

        oms_snapshot *fresh = oms_snapshot_new_empty();
        for (int name = 0; name < NAMES; name++)
            if (version[name])
                oms_snapshot_put(fresh, entry(name, version[name]));
        CHECK_EQ_INT(oms_snapshot_seal(fresh, NULL, NULL), 0);
        CHECK_EQ_STR(f->tree, fresh->tree);
        CHECK(memcmp(f->top, fresh->top, sizeof f->top) == 0);
        CHECK(emitted.n > 0);
        oms_snapshot_unref(fresh);
        oms_snapshot_unref(s);
        s = f;
    }
    oms_snapshot_unref(s);
}

int main(void)
{
    oms_alloc_init();
    static const t_case cases[] = {T(forks_seal_as_a_fresh_build_does)};
    return T_RUN("snapshot_seal", cases);
}
