#include "auth/token_memo.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "auth/swap.h"
#include "util/alloc.h"
#include "util/hash.h"

/* Direct-mapped: a token's slot is its hash's; a collision replaces the
 * older entry (the cost is one full verification). A handler thread serves
 * every client, so the table is sized for a few dozen active principals. */
#define MEMO_SLOTS 64

typedef struct {
    uint64_t hash, verifier_id, generation;
    char *token; /* NULL: empty slot */
    size_t len;
    char *sub;
    char **groups;
    size_t ngroups;
    char **roles; /* == groups when the roles are the claim's values */
    size_t nroles;
    const oms_role_grant **grants; /* into the verifier's role map: read only while its id matches */
    size_t ngrants;
    bool mapped;
    int64_t exp, iat, nbf;
} entry;

typedef struct {
    entry slot[MEMO_SLOTS];
    uint64_t hits;
} memo;

static _Thread_local memo *tl_memo;
static pthread_key_t g_key;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

static void entry_clear(entry *e)
{
    if (e->roles != e->groups)
        free_strings(e->roles, e->nroles);
    free_strings(e->groups, e->ngroups);
    free((void *)e->grants);
    free(e->sub);
    free(e->token);
    memset(e, 0, sizeof *e);
}

static void memo_free(void *p)
{
    memo *m = p;
    for (size_t i = 0; i < MEMO_SLOTS; i++)
        entry_clear(&m->slot[i]);
    free(m);
}

static void make_key(void) { pthread_key_create(&g_key, memo_free); }

static memo *this_thread(void)
{
    if (!tl_memo) {
        pthread_once(&g_once, make_key);
        tl_memo = oms_xcalloc(1, sizeof *tl_memo);
        pthread_setspecific(g_key, tl_memo); /* freed when the thread ends */
    }
    return tl_memo;
}

static uint64_t hash_of(const char *s, size_t n) { return oms_fnv1a_bytes_from(OMS_FNV1A_BASIS, s, n); }

static char **copy_strings(const char *const *v, size_t n)
{
    if (!n)
        return NULL;
    char **out = oms_xcalloc(n, sizeof *out);
    for (size_t i = 0; i < n; i++)
        out[i] = oms_xstrdup(v[i]);
    return out;
}

static const char **arena_strings(oms_arena *a, char *const *v, size_t n)
{
    if (!n)
        return NULL;
    const char **out = oms_arena_alloc(a, n * sizeof *out);
    for (size_t i = 0; i < n; i++)
        out[i] = oms_arena_strdup(a, v[i]);
    return out;
}

/* The verifier's own time checks (jwt.c check_times), on what it read. */
static bool still_valid(const entry *e, int64_t now, int64_t leeway)
{
    if (now > e->exp + leeway)
        return false; /* expired: the full path says so */
    if (e->nbf && now + leeway < e->nbf)
        return false;
    return !(e->iat && e->iat > now + leeway);
}

bool oms_token_memo_get(uint64_t verifier_id, const char *token, size_t len, int64_t now, int64_t leeway,
                        oms_jwt_claims *out, oms_arena *a)
{
    if (!tl_memo)
        return false;
    uint64_t h = hash_of(token, len);
    entry *e = &tl_memo->slot[h % MEMO_SLOTS];
    if (!e->token || e->hash != h || e->len != len || e->verifier_id != verifier_id ||
        e->generation != oms_swap_generation() || CRYPTO_memcmp(e->token, token, len) != 0 ||
        !still_valid(e, now, leeway))
        return false;
    memset(out, 0, sizeof *out);
    out->sub = oms_arena_strdup(a, e->sub);
    out->groups = arena_strings(a, e->groups, e->ngroups);
    out->ngroups = e->ngroups;
    out->roles = e->roles == e->groups ? out->groups : arena_strings(a, e->roles, e->nroles);
    out->nroles = e->nroles;
    if (e->ngrants) {
        out->grants = oms_arena_alloc(a, e->ngrants * sizeof *out->grants);
        memcpy((void *)out->grants, e->grants, e->ngrants * sizeof *out->grants);
    }
    out->ngrants = e->ngrants;
    out->mapped = e->mapped;
    out->exp = e->exp;
    out->iat = e->iat;
    out->nbf = e->nbf;
    tl_memo->hits++;
    return true;
}

void oms_token_memo_put(uint64_t verifier_id, uint64_t generation, const char *token, size_t len,
                        const oms_jwt_claims *c)
{
    memo *m = this_thread();
    uint64_t h = hash_of(token, len);
    entry *e = &m->slot[h % MEMO_SLOTS];
    entry_clear(e);
    e->hash = h;
    e->verifier_id = verifier_id;
    e->generation = generation;
    e->token = oms_xmalloc(len);
    memcpy(e->token, token, len);
    e->len = len;
    e->sub = oms_xstrdup(c->sub);
    e->groups = copy_strings(c->groups, c->ngroups);
    e->ngroups = c->ngroups;
    e->roles = c->roles == c->groups ? e->groups : copy_strings(c->roles, c->nroles);
    e->nroles = c->nroles;
    if (c->ngrants) {
        e->grants = oms_xcalloc(c->ngrants, sizeof *e->grants);
        memcpy((void *)e->grants, c->grants, c->ngrants * sizeof *e->grants);
    }
    e->ngrants = c->ngrants;
    e->mapped = c->mapped;
    e->exp = c->exp;
    e->iat = c->iat;
    e->nbf = c->nbf;
}

uint64_t oms_token_memo_hits(void) { return tl_memo ? tl_memo->hits : 0; }
