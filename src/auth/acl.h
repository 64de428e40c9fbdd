/* ACL policies (SPEC §6.2): per-branch refinements of RBAC.
 *
 * A policy is {subject: "user:NAME" | "role:NAME", effect: allow | deny,
 * permissions: [...], branches: [glob, ...], description}. Globs use branch
 * name characters plus `*` (any run without '/') and `**` (any run, '/'
 * included, possibly empty); an empty `branches` list means everywhere,
 * including requests without a branch.
 *
 * Decision for principal P, permission p, branch B (NULL: the route has no
 * branch): a matching deny policy listing p wins over everything; else RBAC;
 * else a matching allow policy listing p; else deny. A policy with a
 * non-empty branch list never matches a request without a branch.
 *
 * This file is pure (no database, no HTTP): validation, compilation into an
 * immutable set, and the decision. The shared, refreshed copy a server uses
 * lives in acl_store.h. */
#ifndef OMS_ACL_H
#define OMS_ACL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/principal.h"
#include "auth/rbac.h"
#include "util/error.h"

#define OMS_ACL_ID_LEN 36        /* "acl_" + 32 hex */
#define OMS_ACL_MAX_ITEMS 64     /* permissions and globs per policy */
#define OMS_ACL_MAX_GLOB 128
#define OMS_ACL_MAX_DESCRIPTION 1024

/* ---- ids ---- */
void oms_acl_new_id(char out[OMS_ACL_ID_LEN + 1]);
bool oms_acl_id_valid(const char *s);

/* ---- globs ---- */
/* Branch-name characters [a-z0-9._/-] and '*'; at most two stars in a row;
 * no empty segment (leading, trailing or doubled '/'), no "..", starts with
 * [a-z0-9*], 1..128 bytes. */
bool oms_acl_glob_valid(const char *glob);
/* Uncompiled match (tests, tools); the decision path uses compiled globs. */
bool oms_acl_glob_match(const char *glob, const char *branch);

/* ---- documents ---- */
/* Checks a policy document strictly: the fields above only (plus issue_id /
 * issue_ids, the issue references of SPEC §6.3, which are not stored);
 * subject, effect, permissions (1..64 known, distinct) and branches (0..64
 * valid, distinct globs) required; description optional (<= 1024 bytes).
 * On failure err names the first problem. */
int oms_acl_policy_check(const json_t *doc, oms_error *err);

/* ---- compiled sets ---- */
typedef struct oms_acl oms_acl;

/* An empty set to add policies to; `version` is the database's ACL version
 * the set reflects, `owner` an opaque tag of where it came from (the store's
 * db handle), both only read back by acl_store.c. */
oms_acl *oms_acl_new(int64_t version, const void *owner);
/* Adds one policy from its stored parts: the permissions and branches are
 * JSON array texts. Refuses (OMS_EINVAL) anything oms_acl_policy_check
 * would refuse. */
int oms_acl_add(oms_acl *a, const char *id, const char *subject, const char *effect,
                const char *permissions_json, const char *branches_json, oms_error *err);
/* Builds the per-permission indexes (OMS_ENOMEM on failure: the set must
 * then not be used); the set is immutable afterwards. */
int oms_acl_seal(oms_acl *a);

/* Reference counting: a set is shared by worker threads; the last unref
 * frees it. Thread-safe. */
oms_acl *oms_acl_ref(oms_acl *a);
void oms_acl_unref(oms_acl *a);
int64_t oms_acl_version(const oms_acl *a);
const void *oms_acl_owner(const oms_acl *a);
size_t oms_acl_count(const oms_acl *a);

typedef struct {
    bool allowed;
    /* The id of the deny policy that decided, when one did; borrowed from
     * the set (copy it before the set is released). NULL otherwise. */
    const char *denied_by;
} oms_acl_verdict;

/* The decision described above. `a` may be NULL (RBAC alone). */
oms_acl_verdict oms_acl_decide(const oms_acl *a, const oms_principal *p, oms_perm perm, const char *branch);

/* Whether some deny policy of `p` for `perm` is limited to branches: then
 * content reached without a branch name (a commit id) must be traced to a
 * branch the principal may read. `a` may be NULL. */
bool oms_acl_denies_on_some_branch(const oms_acl *a, const oms_principal *p, oms_perm perm);

#endif
