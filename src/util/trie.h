/* The stored form of a commit's tree (docs/storage.md "Tree storage"): a
 * hash-array-mapped trie of small binary nodes, keyed by the bits of
 * SHA-256("KIND/API_NAME"), 2 bits per level (fan-out 4). Its shape is a
 * pure function of the set of (key, resource hash) pairs, so identical
 * content has identical nodes everywhere and a commit stores only the nodes
 * on the paths it changed.
 *
 * Levels 0-3 consume the key hash's first byte: they are always interior
 * nodes (85 of them at most, the "top"), and the node at depth 4 below them
 * is the subtree of one in-memory bucket (src/vcs/snapshot.h: bucket =
 * first byte). From depth 4 on, a set of more than OMS_TRIE_LEAF_MAX
 * entries is an interior node splitting on the next 2 bits; a smaller one
 * is a leaf. An empty set is no node (its parent's bitmap says so), except
 * the root of an empty tree: an interior node with no child.
 *
 * Node bodies (the node's hash is the SHA-256 of its body):
 *   leaf:     0x01 0x00 { varint key length, key bytes, 32-byte resource hash }*
 *             entries sorted by key (strcmp order)
 *   interior: 0x01 0x01 bitmap(low 4 bits) { 32-byte child hash }* in digit order
 * The first byte is the format version. */
#ifndef OMS_TRIE_H
#define OMS_TRIE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OMS_TRIE_FORMAT 1
#define OMS_TRIE_LEAF 0
#define OMS_TRIE_INTERIOR 1
#define OMS_TRIE_LEAF_MAX 8
#define OMS_TRIE_TOP_DEPTH 4  /* depth of a bucket's subtree */
#define OMS_TRIE_TOP_NODES 85 /* 1 + 4 + 16 + 64 */
#define OMS_TRIE_MAX_DEPTH 128

/* One entry: key (not NUL-terminated), SHA-256 of the key, raw resource hash. */
typedef struct {
    const char *key;
    size_t klen;
    unsigned char khash[32];
    unsigned char value[32];
} oms_trie_item;

/* Called for every node built: its hash and body (borrowed). Non-zero stops. */
typedef int (*oms_trie_emit_fn)(void *ctx, const unsigned char hash[32], const unsigned char *body, size_t len);

/* The 2-bit digit of a key hash at `depth`. */
static inline unsigned oms_trie_digit(const unsigned char khash[32], int depth)
{
    return (khash[depth / 4] >> (6 - 2 * (depth % 4))) & 3u;
}

/* Fills an item (computes the key's hash; `hex` is the resource hash). -1
 * on a malformed hash. */
int oms_trie_item_set(oms_trie_item *it, const char *key, size_t klen, const char *hex);

/* The subtree at `depth` (>= OMS_TRIE_TOP_DEPTH) of `items`, sorted by key,
 * all sharing the key-hash prefix above `depth`; n > 0. Emits each node
 * (children before parents). 0, or the emit callback's non-zero, or -1
 * when out of memory. */
int oms_trie_subtree(const oms_trie_item *items, size_t n, int depth, unsigned char out[32], oms_trie_emit_fn emit,
                     void *ctx);

/* The top levels from the 256 bucket subtree hashes (all-zero: empty
 * bucket): top[0] is the root, level L (0-3) node p is top[(4^L-1)/3 + p],
 * an all-zero hash for an absent node. A node is emitted when `prev` is
 * NULL or its hash differs from prev's at the same place (a commit stores
 * only the top nodes it changed). With `dirty` (a bitmap of the buckets
 * whose subtree may have changed) and `prev`, `top` must hold prev's
 * values, and only the nodes above a dirty bucket are recomputed. */
int oms_trie_top(const unsigned char sub[256][32], unsigned char top[OMS_TRIE_TOP_NODES][32],
                 const unsigned char (*prev)[32], const unsigned char dirty[32], oms_trie_emit_fn emit, void *ctx);

bool oms_trie_zero(const unsigned char h[32]);

/* ---- reading nodes ---- */

typedef struct {
    int type;                      /* OMS_TRIE_LEAF or OMS_TRIE_INTERIOR */
    unsigned bitmap;               /* interior */
    const unsigned char *child[4]; /* interior: NULL when absent */
    const unsigned char *p, *end;  /* leaf: the entries */
} oms_trie_node;

/* Parses a body; -1 when it is not a well-formed node. */
int oms_trie_parse(const unsigned char *body, size_t len, oms_trie_node *out);
/* The next entry of a leaf: 1 and the entry, 0 at the end, -1 when malformed. */
int oms_trie_leaf_next(oms_trie_node *n, const char **key, size_t *klen, const unsigned char **value);

/* Hex helpers (lower case out; either case in). */
int oms_trie_unhex(unsigned char *out, const char *hex, size_t nbytes);
/* Decodes a hex text of any even length into a malloc'd buffer; NULL when malformed. */
unsigned char *oms_trie_unhex_alloc(const char *hex, size_t *len);

#endif
