/* util/trie and the snapshot's stored tree (docs/storage.md "Tree
 * storage"): node encoding, a canonical shape (the same set in any order
 * gives the same root), a split at OMS_TRIE_LEAF_MAX + 1 and back to a leaf
 * on removal, and a change emitting only the nodes on its path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t.h"
#include "util/alloc.h"
#include "util/encoding.h"
#include "util/trie.h"
#include "vcs/snapshot.h"

static oms_entry *entry(const char *name, const char *content)
{
    char text[128], hash[65];
    snprintf(text, sizeof text, "{\"api_name\":\"%s\",\"v\":\"%s\"}", name, content);
    oms_sha256_hex(hash, text, strlen(text));
    return oms_entry_new(OMS_KIND_SHARED_PROPERTY, name, hash, text, strlen(text), "", "", 0);
}

static int count_nodes(void *ctx, const unsigned char hash[32], const unsigned char *body, size_t len)
{
    (void)hash;
    (void)body;
    size_t *n = ctx;
    n[0]++;
    n[1] += len;
    return 0;
}

static void node_encoding(void)
{
    oms_trie_item it[2];
    CHECK(oms_trie_item_set(&it[0], "a/x", 3, "00000000000000000000000000000000000000000000000000000000000000ff") == 0);
    CHECK(oms_trie_item_set(&it[1], "a/y", 3, "ff00000000000000000000000000000000000000000000000000000000000000") == 0);
    unsigned char h[32];
    CHECK(oms_trie_subtree(it, 2, OMS_TRIE_TOP_DEPTH, h, NULL, NULL) == 0);
    /* a leaf of 2: format, type, then (len, key, hash) twice */
    size_t n[2] = {0, 0};
    CHECK(oms_trie_subtree(it, 2, OMS_TRIE_TOP_DEPTH, h, count_nodes, n) == 0);
    CHECK_EQ_INT(n[0], 1);
    CHECK_EQ_INT(n[1], 2 + 2 * (1 + 3 + 32));
}

static int keep_body(void *ctx, const unsigned char hash[32], const unsigned char *body, size_t len)
{
    (void)hash;
    unsigned char **out = ctx;
    free(*out);
    *out = oms_xmalloc(len + sizeof(size_t));
    memcpy(*out, &len, sizeof len);
    memcpy(*out + sizeof len, body, len);
    return 0;
}

static void leaf_reads_back(void)
{
    oms_trie_item it[3];
    const char *keys[] = {"k/a", "k/bb", "k/ccc"};
    for (int i = 0; i < 3; i++)
        CHECK(oms_trie_item_set(&it[i], keys[i], strlen(keys[i]),
                                "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef") == 0);
    unsigned char h[32], *last = NULL;
    CHECK(oms_trie_subtree(it, 3, OMS_TRIE_TOP_DEPTH, h, keep_body, &last) == 0);
    size_t len;
    memcpy(&len, last, sizeof len);
    oms_trie_node n;
    CHECK(oms_trie_parse(last + sizeof len, len, &n) == 0);
    CHECK_EQ_INT(n.type, OMS_TRIE_LEAF);
    const char *key;
    size_t klen;
    const unsigned char *value;
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(oms_trie_leaf_next(&n, &key, &klen, &value), 1);
        CHECK(klen == strlen(keys[i]) && memcmp(key, keys[i], klen) == 0);
        CHECK(memcmp(value, it[i].value, 32) == 0);
    }
    CHECK_EQ_INT(oms_trie_leaf_next(&n, &key, &klen, &value), 0);
    /* a truncated body is malformed, never read past */
    CHECK(oms_trie_parse(last + sizeof len, len - 1, &n) == 0);
    int rc = 1;
    for (int i = 0; i < 4 && rc == 1; i++)
        rc = oms_trie_leaf_next(&n, &key, &klen, &value);
    CHECK_EQ_INT(rc, -1);
    free(last);
}

static void same_set_any_order_same_root(void)
{
    oms_snapshot *a = oms_snapshot_new_empty(), *b = oms_snapshot_new_empty();
    char name[32];
    for (int i = 0; i < 3000; i++) {
        snprintf(name, sizeof name, "P%d", i);
        oms_snapshot_put(a, entry(name, "x"));
        snprintf(name, sizeof name, "P%d", 2999 - i);
        oms_snapshot_put(b, entry(name, "x"));
    }
    CHECK(oms_snapshot_seal(a, NULL, NULL) == 0);
    CHECK(oms_snapshot_seal(b, NULL, NULL) == 0);
    CHECK_EQ_STR(a->tree, b->tree);
    CHECK(memcmp(a->top[0], b->top[0], 32) == 0);
    /* built by successive forks, one entry at a time: the same again */
    oms_snapshot *c = oms_snapshot_new_empty();
    oms_snapshot_seal(c, NULL, NULL);
    for (int i = 0; i < 3000; i += 500) {
        oms_snapshot *f = oms_snapshot_fork(c);
        for (int k = i; k < i + 500; k++) {
            snprintf(name, sizeof name, "P%d", k);
            oms_snapshot_put(f, entry(name, "x"));
        }
        oms_snapshot_seal(f, NULL, NULL);
        oms_snapshot_unref(c);
        c = f;
    }
    CHECK_EQ_STR(c->tree, a->tree);
    CHECK(memcmp(c->top[0], a->top[0], 32) == 0);
    oms_snapshot_unref(a);
    oms_snapshot_unref(b);
    oms_snapshot_unref(c);
}

/* Names whose keys share a first key-hash byte (one bucket). */
static int same_bucket(char names[][32], int want)
{
    int n = 0, target = -1;
    for (int i = 0; n < want && i < 200000; i++) {
        char key[64];
        snprintf(names[n], 32, "S%d", i);
        snprintf(key, sizeof key, "shared-properties/%s", names[n]);
        int b = oms_bucket_of(key);
        if (target < 0)
            target = b;
        if (b == target)
            n++;
    }
    return target;
}

static void split_and_back(void)
{
    char names[OMS_TRIE_LEAF_MAX + 1][32];
    int idx = same_bucket(names, OMS_TRIE_LEAF_MAX + 1);
    oms_snapshot *s = oms_snapshot_new_empty();
    for (int i = 0; i < OMS_TRIE_LEAF_MAX; i++)
        oms_snapshot_put(s, entry(names[i], "x"));
    size_t n[2] = {0, 0};
    oms_snapshot_seal(s, count_nodes, n);
    /* a leaf under 4 top nodes */
    CHECK_EQ_INT(n[0], 5);
    unsigned char leaf[32];
    memcpy(leaf, s->b[idx]->node, 32);
    oms_snapshot *f = oms_snapshot_fork(s);
    oms_snapshot_put(f, entry(names[OMS_TRIE_LEAF_MAX], "x"));
    size_t m[2] = {0, 0};
    oms_snapshot_seal(f, count_nodes, m);
    /* split: an interior node, its children (at least 2 leaves), 4 top nodes */
    CHECK(m[0] >= 4 + 1 + 2);
    CHECK(memcmp(f->b[idx]->node, leaf, 32) != 0);
    oms_snapshot *g = oms_snapshot_fork(f);
    char key[64];
    snprintf(key, sizeof key, "shared-properties/%s", names[OMS_TRIE_LEAF_MAX]);
    CHECK(oms_snapshot_remove(g, key));
    oms_snapshot_seal(g, NULL, NULL);
    CHECK(memcmp(g->b[idx]->node, leaf, 32) == 0);
    CHECK(memcmp(g->top[0], s->top[0], 32) == 0);
    CHECK_EQ_STR(g->tree, s->tree);
    oms_snapshot_unref(s);
    oms_snapshot_unref(f);
    oms_snapshot_unref(g);
}

static void a_change_emits_its_path_only(void)
{
    oms_snapshot *s = oms_snapshot_new_empty();
    char name[32];
    for (int i = 0; i < 10000; i++) {
        snprintf(name, sizeof name, "T%05d", i);
        oms_snapshot_put(s, entry(name, "x"));
    }
    size_t all[2] = {0, 0};
    oms_snapshot_seal(s, count_nodes, all);
    oms_snapshot *f = oms_snapshot_fork(s);
    oms_snapshot_put(f, entry("T04242", "changed"));
    size_t one[2] = {0, 0};
    oms_snapshot_seal(f, count_nodes, one);
    printf("  10,000 entries: %zu nodes, %zu bytes; one change: %zu nodes, %zu bytes\n", all[0], all[1], one[0],
           one[1]);
    CHECK(one[0] >= 5 && one[0] <= 9);
    CHECK(one[1] + 32 * one[0] <= 2048);
    /* the empty tree: one root without children */
    oms_snapshot *e = oms_snapshot_new_empty();
    size_t z[2] = {0, 0};
    oms_snapshot_seal(e, count_nodes, z);
    CHECK_EQ_INT(z[0], 1);
    CHECK_EQ_INT(z[1], 3);
    CHECK_EQ_STR(e->tree, "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
    oms_snapshot_unref(e);
    oms_snapshot_unref(s);
    oms_snapshot_unref(f);
}

int main(void)
{
    static const t_case cases[] = {
        {"node_encoding", node_encoding},
        {"leaf_reads_back", leaf_reads_back},
        {"same_set_any_order_same_root", same_set_any_order_same_root},
        {"split_and_back", split_and_back},
        {"a_change_emits_its_path_only", a_change_emits_its_path_only},
    };
    return T_RUN("trie", cases);
}
