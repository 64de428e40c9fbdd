#include "util/trie.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/encoding.h"

bool oms_trie_zero(const unsigned char h[32])
{
    for (int i = 0; i < 32; i++)
        if (h[i])
            return false;
    return true;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* A table: whole trees arrive as hex (a cold load decodes ~1.4 MB at
 * 10,000 types). 0xff marks a byte that is no hex digit. */
static unsigned char g_hex[256];
static pthread_once_t g_hex_once = PTHREAD_ONCE_INIT;

static void hex_init(void)
{
    memset(g_hex, 0xff, sizeof g_hex);
    for (int c = 0; c < 256; c++)
        if (hexval((char)c) >= 0)
            g_hex[c] = (unsigned char)hexval((char)c);
}

int oms_trie_unhex(unsigned char *out, const char *hex, size_t nbytes)
{
    pthread_once(&g_hex_once, hex_init);
    const unsigned char *h = (const unsigned char *)hex;
    for (size_t i = 0; i < nbytes; i++) {
        unsigned char hi = g_hex[h[2 * i]];
        if (hi > 15) /* also the terminating NUL: never read past it */
            return -1;
        unsigned char lo = g_hex[h[2 * i + 1]];
        if (lo > 15)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

unsigned char *oms_trie_unhex_alloc(const char *hex, size_t *len)
{
    size_t n = strlen(hex);
    if (n % 2)
        return NULL;
    unsigned char *out = oms_xmalloc(n / 2 + 1);
    if (oms_trie_unhex(out, hex, n / 2)) {
        free(out);
        return NULL;
    }
    *len = n / 2;
    return out;
}

int oms_trie_item_set(oms_trie_item *it, const char *key, size_t klen, const char *hex)
{
    it->key = key;
    it->klen = klen;
    oms_sha256(it->khash, key, klen);
    if (!hex || strlen(hex) != 64)
        return -1;
    return oms_trie_unhex(it->value, hex, 32);
}

static size_t varint_put(unsigned char *p, size_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (unsigned char)v;
    return n;
}

static int emit_node(const unsigned char *body, size_t len, unsigned char out[32], oms_trie_emit_fn emit, void *ctx)
{
    oms_sha256(out, body, len);
    return emit ? emit(ctx, out, body, len) : 0;
}

static int build(const oms_trie_item **v, size_t n, int depth, unsigned char out[32], oms_trie_emit_fn emit,
                 void *ctx)
{
    if (n <= OMS_TRIE_LEAF_MAX || depth >= OMS_TRIE_MAX_DEPTH) {
        size_t cap = 2;
        for (size_t i = 0; i < n; i++)
            cap += 10 + v[i]->klen + 32;
        unsigned char *body = oms_xmalloc(cap), *p = body;
        *p++ = OMS_TRIE_FORMAT;
        *p++ = OMS_TRIE_LEAF;
        for (size_t i = 0; i < n; i++) {
            p += varint_put(p, v[i]->klen);
            memcpy(p, v[i]->key, v[i]->klen);
            p += v[i]->klen;
            memcpy(p, v[i]->value, 32);
            p += 32;
        }
        int rc = emit_node(body, (size_t)(p - body), out, emit, ctx);
        free(body);
        return rc;
    }
    /* Stable partition by the next digit: each group stays in key order. */
    size_t count[4] = {0}, at[4];
    for (size_t i = 0; i < n; i++)
        count[oms_trie_digit(v[i]->khash, depth)]++;
    at[0] = 0;
    for (int d = 1; d < 4; d++)
        at[d] = at[d - 1] + count[d - 1];
    const oms_trie_item **tmp = oms_xmalloc(n * sizeof *tmp);
    size_t pos[4] = {at[0], at[1], at[2], at[3]};
    for (size_t i = 0; i < n; i++)
        tmp[pos[oms_trie_digit(v[i]->khash, depth)]++] = v[i];
    unsigned char body[3 + 4 * 32];
    size_t len = 3;
    body[0] = OMS_TRIE_FORMAT;
    body[1] = OMS_TRIE_INTERIOR;
    body[2] = 0;
    int rc = 0;
    for (int d = 0; d < 4 && rc == 0; d++) {
        if (!count[d])
            continue;
        body[2] |= (unsigned char)(1u << d);
        rc = build(tmp + at[d], count[d], depth + 1, body + len, emit, ctx);
        len += 32;
    }
    free(tmp);
    return rc ? rc : emit_node(body, len, out, emit, ctx);
}

int oms_trie_subtree(const oms_trie_item *items, size_t n, int depth, unsigned char out[32], oms_trie_emit_fn emit,
                     void *ctx)
{
    const oms_trie_item **v = oms_xmalloc((n ? n : 1) * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = &items[i];
    int rc = build(v, n, depth, out, emit, ctx);
    free(v);
    return rc;
}

static size_t level_off(int level) { return level == 0 ? 0 : level == 1 ? 1 : level == 2 ? 5 : 21; }

/* Is any bucket under top node p of `level` marked in `dirty`? A level-L
 * node covers 4^(4-L) consecutive buckets. */
static bool covers_dirty(const unsigned char dirty[32], int level, size_t p)
{
    size_t span = (size_t)1 << (2 * (4 - level)), first = p * span;
    for (size_t i = first; i < first + span; i++)
        if (dirty[i / 8] & (1u << (i % 8)))
            return true;
    return false;
}

int oms_trie_top(const unsigned char sub[256][32], unsigned char top[OMS_TRIE_TOP_NODES][32],
                 const unsigned char (*prev)[32], const unsigned char dirty[32], oms_trie_emit_fn emit, void *ctx)
{
    for (int level = 3; level >= 0; level--) {
        size_t nodes = (size_t)1 << (2 * level);
        for (size_t p = 0; p < nodes; p++) {
            if (dirty && prev && !covers_dirty(dirty, level, p))
                continue; /* unchanged: top holds prev's hash */
            unsigned char body[3 + 4 * 32];
            size_t len = 3;
            body[0] = OMS_TRIE_FORMAT;
            body[1] = OMS_TRIE_INTERIOR;
            body[2] = 0;
            for (unsigned d = 0; d < 4; d++) {
                const unsigned char *h = level == 3 ? sub[4 * p + d] : top[level_off(level + 1) + 4 * p + d];
                if (oms_trie_zero(h))
                    continue;
                body[2] |= (unsigned char)(1u << d);
                memcpy(body + len, h, 32);
                len += 32;
            }
            unsigned char *self = top[level_off(level) + p];
            if (!body[2] && level > 0) {
                memset(self, 0, 32);
                continue;
            }
            oms_sha256(self, body, len);
            if (emit && (!prev || memcmp(prev[level_off(level) + p], self, 32) != 0)) {
                int rc = emit(ctx, self, body, len);
                if (rc)
                    return rc;
            }
        }
    }
    return 0;
}

int oms_trie_parse(const unsigned char *body, size_t len, oms_trie_node *out)
{
    memset(out, 0, sizeof *out);
    if (len < 2 || body[0] != OMS_TRIE_FORMAT)
        return -1;
    out->type = body[1];
    if (body[1] == OMS_TRIE_LEAF) {
        out->p = body + 2;
        out->end = body + len;
        return 0;
    }
    if (body[1] != OMS_TRIE_INTERIOR || len < 3 || (body[2] & 0xf0))
        return -1;
    out->bitmap = body[2];
    size_t k = 0;
    for (int d = 0; d < 4; d++)
        if (out->bitmap & (1u << d))
            out->child[d] = body + 3 + 32 * k++;
    return len == 3 + 32 * k ? 0 : -1;
}

int oms_trie_leaf_next(oms_trie_node *n, const char **key, size_t *klen, const unsigned char **value)
{
    if (n->p == n->end)
        return 0;
    size_t v = 0;
    int shift = 0;
    for (;;) {
        if (n->p == n->end || shift > 28)
            return -1;
        unsigned char b = *n->p++;
        v |= (size_t)(b & 0x7f) << shift;
        shift += 7;
        if (!(b & 0x80))
            break;
    }
    if ((size_t)(n->end - n->p) < v + 32)
        return -1;
    *key = (const char *)n->p;
    *klen = v;
    *value = n->p + v;
    n->p += v + 32;
    return 1;
}
