/* The request context domain code receives (docs/architecture.md): who is
 * asking, the request's arena and store, and every value the pipeline
 * parsed from the request, once. It knows nothing of HTTP: the transport
 * fills it (src/http/request.c), the API layer hands it to domain calls,
 * the change transaction (src/txn/change.h) reads and completes it.
 *
 * Ownership: every pointer is borrowed from the request and lives as long
 * as its arena; `problem_extra` is owned by the context (the renderer takes
 * it, the arena frees what is left). */
#ifndef OMS_CONTEXT_H
#define OMS_CONTEXT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/arena.h"
#include "util/error.h"

/* Decisions one request may leave to its change transaction. */
#define OMS_CTX_DEFERRED_MAX 4

struct oms_principal;
struct oms_store;
struct oms_config;

/* An emergency override named by X-Override-ID (SPEC §6.4): attached by
 * governance before the handler, relied on and used inside the change's
 * own transaction. */
typedef struct {
    const char *id;        /* X-Override-ID, or NULL */
    char kind[24];
    char branch[104];
    const char *resource;  /* KIND/API_NAME, or NULL for the whole branch */
    bool needed;           /* the change relies on it */
    bool used;             /* consumed in the change's transaction */
} oms_override_state;

/* A route's key spec (docs/architecture.md, "Key specs"): what a change
 * touches, declared in the route table as Redis declares a command's keys.
 * The change transaction (src/txn/change.c) lock-checks the declared key
 * together with what the step reports, so a step that forgets a resource
 * does not escape the check. UNSET is "not declared": the table refuses a
 * change route without one. */
typedef enum {
    OMS_TOUCH_UNSET = 0,
    OMS_TOUCH_NONE,     /* no branch content (ACL, tags, webhooks, locks themselves) */
    OMS_TOUCH_BRANCH,   /* the whole branch (deleting it) */
    OMS_TOUCH_RESOURCE, /* the path's {kind}/{api_name} */
    OMS_TOUCH_BODY,     /* resources named by the body or computed by the step (batch
                         * operations, a merge's diff): the step reports them */
} oms_touch;

typedef struct oms_ctx {
    oms_arena *arena;
    struct oms_store *store;
    const struct oms_config *cfg;

    /* Who is asking (principal is NULL when not authenticated). `sub` and
     * `roles` are what code below auth/ may read of it (audit, alerts). */
    const struct oms_principal *principal;
    const char *sub;
    const char *const *roles;
    size_t nroles;
    const char *request_id;
    const char *client_addr;
    const char *user_agent;
    const char *method;
    const char *route;           /* the matched route's pattern, or NULL */
    const char *route_action;    /* the route's audit action: NULL for a read route */

    /* What the route names, decoded once by the pipeline (NULL when the
     * route has no such parameter). */
    const char *branch;          /* {branch} */
    const char *kind_segment;    /* {kind}, e.g. "object-types" */
    const char *api_name;        /* {api_name} */
    const char *id;              /* {id} */
    oms_touch touches;           /* the route's key spec */
    /* The key the spec declares for the running change (set by the change
     * transaction: "KIND/API_NAME" or the whole-branch key, on
     * `touch_branch`; NULL when none) and whether a lock check of this
     * attempt already included it. */
    const char *touch_key;
    const char *touch_branch;
    bool touch_checked;
    /* The head of `branch` read with the ACL version in the authorization
     * round trip (empty when not read): reads use it instead of asking the
     * database again. */
    char branch_head[65];
    /* The branch's issue_required setting (1, 0, -1: the server's default
     * or no such branch), read in the same round trip, and the branch it
     * is of (NULL when not read): the issue check uses it. */
    const char *issue_setting_branch;
    int issue_setting;

    /* Request values parsed once (NULL when absent). */
    const char *lock_id;         /* X-Lock-ID */
    const char *if_match;        /* If-Match, one entity tag, quotes removed */
    const char *if_none_match;   /* If-None-Match, idem */
    const char *commit_message;  /* body "message" or X-Commit-Message */
    const json_t *body;          /* the parsed JSON body, or NULL */
    json_t *issue_keys;          /* the change's issue references (array), or NULL */
    bool body_is_document;       /* the body is a resource document (SPEC §5): no issue_id fields in it */

    oms_override_state override;

    /* The audit record of this request: the action (set by a handler when
     * it knows better than the route) and whether its event is recorded. */
    const char *audit_action;
    bool audited;

    /* Members a failure adds to its problem document (the missing
     * permission, the holding locks); set with oms_ctx_problem_extra. */
    json_t *problem_extra;

    /* Authorization settled in the change's transaction (auth/acl_store.h
     * oms_acl_settle, docs/security.md "Decided in the change's
     * transaction"): on a route that allows it (`on`), a decision that the
     * thread's ACL set allows is recorded here instead of reading the ACL
     * version first; the change transaction reads the version with its
     * first statement and decides every recorded one again before its
     * outcome counts; `settled` once they all are decided. `denied`: 1 +
     * the index of the one a settle refused, 0 when none was. */
    struct {
        bool on, settled;
        size_t n;
        struct {
            int perm;           /* oms_perm */
            const char *branch; /* NULL: no branch context */
            bool route_style;   /* refused as the route's own check refuses (authz.denied) */
        } pending[OMS_CTX_DEFERRED_MAX];
        int denied;
        const char *denied_by; /* the deny policy of that refusal, or NULL */
        bool unreadable;       /* the last settle could not read the policies */
    } acl_deferred;
} oms_ctx;

/* Sets the members a failure's problem document carries (stolen; replaces
 * earlier ones). */
void oms_ctx_problem_extra(oms_ctx *ctx, json_t *extra);
/* Takes them (the caller owns the result, may be NULL). */
json_t *oms_ctx_take_problem_extra(oms_ctx *ctx);

#endif
