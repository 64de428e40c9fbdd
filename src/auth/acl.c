/* Compiled ACL policy sets and the decision (SPEC §6.2). A set is built once
 * per ACL version and then only read, by every worker thread at once, so it
 * needs no lock: immutability plus a reference count.
 *
 * For speed each permission keeps the list of deny and allow policies that
 * name it, and the set keeps the union of all denied and allowed
 * permissions: a request whose permission no policy names costs two AND
 * operations on top of RBAC. */
#include "auth/acl.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/acl_internal.h"
#include "util/alloc.h"
#include "util/hash.h"

typedef struct {
    char id[OMS_ACL_ID_LEN + 1];
    bool is_role;
    bool deny;
    char *name;    /* the user's sub or the role */
    uint64_t hash; /* of name: most mismatches cost one compare */
    uint32_t subj; /* index of the first policy with the same subject */
    oms_permset perms;
    size_t nglobs;
    oms_acl_glob *globs;
} policy;

typedef struct {
    uint32_t off, n;
} span;

struct oms_acl {
    atomic_long refs;
    int64_t version;
    const void *owner;
    policy *pol;
    size_t n, cap;
    oms_permset deny_any, allow_any;
    uint32_t *idx; /* policy indexes, grouped by permission and effect */
    span deny[OMS_PERM__COUNT], allow[OMS_PERM__COUNT];
};

oms_acl *oms_acl_new(int64_t version, const void *owner)
{
    oms_acl *a = oms_xcalloc(1, sizeof *a);
    atomic_init(&a->refs, 1);
    a->version = version;
    a->owner = owner;
    return a;
}

static uint64_t name_hash(const char *s) { return oms_fnv1a_str(s); }

static void policy_free(policy *p)
{
    for (size_t i = 0; i < p->nglobs; i++)
        oms_acl_glob_free(&p->globs[i]);
    free(p->globs);
    free(p->name);
}

static int compile_globs(policy *p, const json_t *arr)
{
    size_t n = json_array_size(arr);
    if (n == 0)
        return OMS_OK;
    p->globs = oms_xcalloc(n, sizeof *p->globs);
    for (size_t i = 0; i < n; i++) {
        if (oms_acl_glob_compile(&p->globs[i], json_string_value(json_array_get(arr, i))) != OMS_OK)
            return OMS_ENOMEM;
        p->nglobs++;
    }
    return OMS_OK;
}

int oms_acl_add(oms_acl *a, const char *id, const char *subject, const char *effect,
                const char *permissions_json, const char *branches_json, oms_error *err)
{
    json_t *perms = NULL, *branches = NULL;
    policy p;
    memset(&p, 0, sizeof p);
    int rc = OMS_OK;
    const char *name;
    if (!id || strlen(id) > OMS_ACL_ID_LEN) {
        rc = oms_err_set(err, OMS_EINVAL, "policy id is not valid");
        goto cleanup;
    }
    snprintf(p.id, sizeof p.id, "%s", id);
    if ((rc = oms_acl_subject_parse(subject, &p.is_role, &name, err)))
        goto cleanup;
    if (!effect || (strcmp(effect, "allow") != 0 && strcmp(effect, "deny") != 0)) {
        rc = oms_err_set(err, OMS_EINVAL, "policy %s: effect is not allow or deny", id);
        goto cleanup;
    }
    p.deny = strcmp(effect, "deny") == 0;
    perms = permissions_json ? json_loads(permissions_json, JSON_REJECT_DUPLICATES, NULL) : NULL;
    branches = branches_json ? json_loads(branches_json, JSON_REJECT_DUPLICATES, NULL) : NULL;
    if ((rc = oms_acl_perms_parse(perms, &p.perms, err)) || (rc = oms_acl_branches_check(branches, err)))
        goto cleanup;
    p.hash = name_hash(name);
    p.name = oms_xstrdup(name);
    if (compile_globs(&p, branches) != OMS_OK) {
        rc = oms_err_set(err, OMS_ENOMEM, "out of memory");
        goto cleanup;
    }
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        policy *np = oms_xrealloc(a->pol, cap * sizeof *np);
        a->pol = np;
        a->cap = cap;
    }
    a->pol[a->n++] = p;
    memset(&p, 0, sizeof p); /* handed to the set */
cleanup:
    policy_free(&p);
    json_decref(perms);
    json_decref(branches);
    return rc;
}

/* Lays the per-permission lists out in one array: for each permission, its
 * deny policies then its allow policies, in insertion order. */
int oms_acl_seal(oms_acl *a)
{
    /* Policies with equal subjects share an index, so a decision that
     * meets one subject in many policies compares names once. */
    for (size_t i = 0; i < a->n; i++) {
        policy *p = &a->pol[i];
        p->subj = (uint32_t)i;
        for (size_t j = 0; j < i; j++) {
            const policy *q = &a->pol[j];
            if (q->hash == p->hash && q->is_role == p->is_role && strcmp(q->name, p->name) == 0) {
                p->subj = q->subj;
                break;
            }
        }
    }
    size_t total = 0;
    for (size_t i = 0; i < a->n; i++)
        total += (size_t)__builtin_popcountll(a->pol[i].perms);
    a->idx = oms_xcalloc(total ? total : 1, sizeof *a->idx);
    uint32_t off = 0;
    for (int perm = 0; perm < OMS_PERM__COUNT; perm++) {
        oms_permset bit = OMS_PERMSET(perm);
        for (int deny = 1; deny >= 0; deny--) {
            span *s = deny ? &a->deny[perm] : &a->allow[perm];
            s->off = off;
            for (size_t i = 0; i < a->n; i++)
                if ((a->pol[i].perms & bit) && a->pol[i].deny == (bool)deny)
                    a->idx[off++] = (uint32_t)i;
            s->n = off - s->off;
            if (s->n)
                *(deny ? &a->deny_any : &a->allow_any) |= bit;
        }
    }
    return OMS_OK;
}

oms_acl *oms_acl_ref(oms_acl *a)
{
    if (a)
        atomic_fetch_add_explicit(&a->refs, 1, memory_order_relaxed);
    return a;
}

void oms_acl_unref(oms_acl *a)
{
    if (!a || atomic_fetch_sub_explicit(&a->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < a->n; i++)
        policy_free(&a->pol[i]);
    free(a->pol);
    free(a->idx);
    free(a);
}

int64_t oms_acl_version(const oms_acl *a) { return a->version; }
const void *oms_acl_owner(const oms_acl *a) { return a->owner; }
size_t oms_acl_count(const oms_acl *a) { return a->n; }

/* The principal as the policies see it: name hashes computed on first
 * use, once per decision. Roles past the 16th are compared by name. */
#define HASHED_ROLES 16
typedef struct {
    const oms_principal *p;
    bool ready;
    uint64_t sub;
    uint64_t role[HASHED_ROLES];
    uint32_t last_subj; /* the subject answered last, and its answer */
    bool last;
} who;

static bool subject_matches_uncached(const policy *p, who *w)
{
    const oms_principal *pr = w->p;
    if (!w->ready) {
        w->sub = pr->sub ? name_hash(pr->sub) : 0;
        for (size_t i = 0; i < pr->nroles && i < HASHED_ROLES; i++)
            w->role[i] = name_hash(pr->roles[i]);
        w->ready = true;
    }
    if (!p->is_role)
        return pr->sub && w->sub == p->hash && strcmp(p->name, pr->sub) == 0;
    for (size_t i = 0; i < pr->nroles; i++)
        if ((i >= HASHED_ROLES || w->role[i] == p->hash) && strcmp(p->name, pr->roles[i]) == 0)
            return true;
    return false;
}

static bool subject_matches(const policy *p, who *w)
{
    if (p->subj != w->last_subj) {
        w->last = subject_matches_uncached(p, w);
        w->last_subj = p->subj;
    }
    return w->last;
}

/* An empty glob list applies everywhere; a non-empty one needs a branch. */
static bool branch_matches(const policy *p, const char *branch, size_t len)
{
    if (p->nglobs == 0)
        return true;
    if (!branch)
        return false;
    for (size_t i = 0; i < p->nglobs; i++)
        if (oms_acl_glob_may_match(&p->globs[i], branch, len) && oms_acl_glob_matches(&p->globs[i], branch, len))
            return true;
    return false;
}

static const policy *first_match(const oms_acl *a, span s, who *w, const char *branch, size_t len)
{
    for (uint32_t k = 0; k < s.n; k++) {
        const policy *p = &a->pol[a->idx[s.off + k]];
        if (subject_matches(p, w) && branch_matches(p, branch, len))
            return p;
    }
    return NULL;
}

oms_acl_verdict oms_acl_decide(const oms_acl *a, const oms_principal *pr, oms_perm perm, const char *branch)
{
    oms_acl_verdict v = {false, NULL};
    if (!oms_perm_is_real(perm)) /* route markers are never granted */
        return v;
    oms_permset bit = OMS_PERMSET(perm);
    /* No policy names this permission: RBAC decides, at RBAC's cost. */
    if (!a || !((a->deny_any | a->allow_any) & bit)) {
        v.allowed = oms_rbac_allows(pr->perms, perm);
        return v;
    }
    size_t len = branch ? strlen(branch) : 0;
    who w;
    w.p = pr;
    w.ready = false;
    w.last_subj = UINT32_MAX;
    w.last = false;
    if (a->deny_any & bit) {
        const policy *p = first_match(a, a->deny[perm], &w, branch, len);
        if (p) {
            v.denied_by = p->id;
            return v;
        }
    }
    if (oms_rbac_allows(pr->perms, perm)) {
        v.allowed = true;
        return v;
    }
    if (a->allow_any & bit)
        v.allowed = first_match(a, a->allow[perm], &w, branch, len) != NULL;
    return v;
}

bool oms_acl_denies_on_some_branch(const oms_acl *a, const oms_principal *pr, oms_perm perm)
{
    if (!a || !oms_perm_is_real(perm) || !(a->deny_any & OMS_PERMSET(perm)))
        return false;
    who w = {.p = pr, .ready = false, .last_subj = UINT32_MAX, .last = false};
    span s = a->deny[perm];
    for (uint32_t k = 0; k < s.n; k++) {
        const policy *p = &a->pol[a->idx[s.off + k]];
        if (p->nglobs > 0 && subject_matches(p, &w))
            return true;
    }
    return false;
}
