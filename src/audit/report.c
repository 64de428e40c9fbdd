/* The compliance report for a period (SPEC §9), built from audit events
 * alone (docs/audit.md "Compliance report" lists the conventions it relies
 * on): totals by action and outcome; changes without an issue outside the
 * exempt branches; emergency overrides with requester and approvers; merges
 * into protected branches with their approvals; denials by principal;
 * authentication failures by address; forced lock releases; top actors; and
 * the state of the audit chain. The JSON is the model the CSV and HTML
 * forms render. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/internal.h"
#include "util/alloc.h"
#include "util/encoding.h"
#include "util/glob.h"
#include "util/time.h"

#define TOP_N 10
#define LIST_MAX 1000 /* rows listed per section; counts are always complete */

static json_t *time_json(int64_t ms)
{
    char t[40];
    oms_time_rfc3339_ms(t, sizeof t, ms);
    return json_string(t);
}

static json_t *str_or_null(const char *s)
{
    json_t *v = s ? json_string(s) : NULL;
    return v ? v : json_null();
}

static json_t *ref_or_null(json_t *v) { return v ? json_incref(v) : json_null(); }

static json_t *parse_or_null(const char *s)
{
    json_t *v = s ? json_loads(s, JSON_DECODE_ANY, NULL) : NULL;
    return v ? v : json_null();
}

typedef struct {
    oms_dbconn *c;
    int64_t from_ms, to_ms;
    oms_error *err;
    int rc;
} ctx;

static oms_dbres *run(ctx *x, oms_store_audit_report_read which)
{
    oms_dbres *r = NULL;
    if (x->rc == OMS_OK)
        x->rc = oms_store_audit_report(x->c, which, x->from_ms, x->to_ms, &r, x->err);
    return x->rc == OMS_OK ? r : NULL;
}

/* [{key: value, count}] from a two-column (value, count) result. */
static json_t *counted(oms_dbres *r, const char *key, const char *null_name)
{
    json_t *a = json_array();
    for (size_t i = 0; r && i < r->nrows; i++) {
        const char *v = oms_dbres_get(r, i, 0);
        json_array_append_new(a, json_pack("{s:o,s:I}", key, str_or_null(v ? v : null_name), "count",
                                           (json_int_t)oms_dbres_int(r, i, 1)));
    }
    oms_dbres_free(r);
    return a;
}

static void totals(ctx *x, json_t *rep, json_t *summary)
{
    oms_dbres *r = run(x, OMS_AUDIT_REPORT_TOTALS);
    json_t *a = json_array();
    int64_t all = 0, by[3] = {0};
    static const char *const outcomes[] = {"success", "denied", "failure"};
    for (size_t i = 0; r && i < r->nrows; i++) {
        int64_t n = oms_dbres_int(r, i, 2);
        const char *o = oms_dbres_get(r, i, 1);
        json_array_append_new(a, json_pack("{s:o,s:o,s:I}", "action", str_or_null(oms_dbres_get(r, i, 0)), "outcome",
                                           str_or_null(o), "count", (json_int_t)n));
        all += n;
        for (int k = 0; k < 3; k++)
            if (o && !strcmp(o, outcomes[k]))
                by[k] += n;
    }
    oms_dbres_free(r);
    json_object_set_new(rep, "totals", a);
    json_object_set_new(summary, "events", json_integer(all));
    for (int k = 0; k < 3; k++)
        json_object_set_new(summary, outcomes[k], json_integer(by[k]));
}

/* Branch -> issue_required (NULL: the configured rule) for the exemption
 * test; a branch deleted since is judged by the globs alone. */
static json_t *branch_rules(ctx *x)
{
    json_t *o = json_object();
    oms_dbres *r = NULL;
    if (x->rc == OMS_OK)
        x->rc = oms_store_audit_branch_rules(x->c, &r, x->err);
    for (size_t i = 0; r && i < r->nrows; i++) {
        const char *ir = oms_dbres_get(r, i, 1);
        json_object_set_new(o, oms_dbres_get(r, i, 0),
                            json_pack("{s:o,s:b}", "issue_required",
                                      ir ? json_boolean(strcmp(ir, "0") != 0) : json_null(), "protected",
                                      oms_dbres_int(r, i, 2) != 0));
    }
    oms_dbres_free(r);
    return o;
}

static bool exempt(json_t *rules, const char *globs, const char *branch)
{
    json_t *b = branch ? json_object_get(json_object_get(rules, branch), "issue_required") : NULL;
    if (json_is_boolean(b))
        return !json_is_true(b);
    return globs && branch && oms_glob_list_match(globs, branch);
}

static void changes(ctx *x, json_t *rep, json_t *summary, json_t *rules, const char *globs)
{
    oms_dbres *r = run(x, OMS_AUDIT_REPORT_CHANGE_COUNT);
    json_object_set_new(summary, "changes", json_integer(r ? oms_dbres_int(r, 0, 0) : 0));
    oms_dbres_free(r);
    r = run(x, OMS_AUDIT_REPORT_NO_ISSUE);
    json_t *a = json_array();
    int64_t n = 0;
    for (size_t i = 0; r && i < r->nrows; i++) {
        const char *branch = oms_dbres_get(r, i, 5);
        if (exempt(rules, globs, branch))
            continue;
        n++;
        if (json_array_size(a) >= LIST_MAX)
            continue;
        const char *kind = oms_dbres_get(r, i, 6), *id = oms_dbres_get(r, i, 7);
        json_t *res = kind && id ? json_sprintf("%s/%s", kind, id) : str_or_null(kind ? kind : id);
        json_array_append_new(a, json_pack("{s:o,s:I,s:o,s:o,s:o,s:o,s:o,s:o}", "id", str_or_null(oms_dbres_get(r, i, 0)),
                                           "seq", (json_int_t)oms_dbres_int(r, i, 1), "time",
                                           time_json(oms_dbres_int(r, i, 2)), "actor", str_or_null(oms_dbres_get(r, i, 3)),
                                           "action", str_or_null(oms_dbres_get(r, i, 4)), "branch", str_or_null(branch),
                                           "resource", res ? res : json_null(), "commit_id",
                                           str_or_null(oms_dbres_get(r, i, 8))));
    }
    oms_dbres_free(r);
    json_object_set_new(rep, "changes_without_issue", a);
    json_object_set_new(summary, "changes_without_issue", json_integer(n));
}

/* Overrides from their transition events (override.request, .approve,
 * .reject, .cancel, .use, .expire) and from changes made under one. */
static void overrides(ctx *x, json_t *rep, json_t *summary)
{
    oms_dbres *r = run(x, OMS_AUDIT_REPORT_OVERRIDES);
    json_t *by_id = json_object(), *order = json_array();
    int64_t uses = 0;
    for (size_t i = 0; r && i < r->nrows; i++) {
        const char *id = oms_dbres_get(r, i, 0), *action = oms_dbres_get(r, i, 1), *actor = oms_dbres_get(r, i, 2);
        if (!id || !action)
            continue;
        json_t *o = json_object_get(by_id, id);
        if (!o) {
            o = json_pack("{s:s,s:n,s:n,s:n,s:n,s:n,s:n,s:[],s:[],s:n,s:n,s:n,s:s}", "override_id", id, "kind", "branch",
                          "resource", "justification", "requested_by", "requested_at", "approved_by", "rejected_by",
                          "used_by", "used_at", "commit_id", "state", "unknown");
            json_object_set_new(by_id, id, o);
            json_array_append_new(order, json_string(id));
        }
        json_t *d = parse_or_null(oms_dbres_get(r, i, 5));
        const char *branch = oms_dbres_get(r, i, 4);
        if (branch && json_is_null(json_object_get(o, "branch")))
            json_object_set_new(o, "branch", json_string(branch));
        const char *verb = strncmp(action, "override.", 9) == 0 ? action + 9 : NULL;
        if (verb && (!strcmp(verb, "request") || !strcmp(verb, "create"))) {
            json_object_set_new(o, "requested_by", str_or_null(actor));
            json_object_set_new(o, "requested_at", time_json(oms_dbres_int(r, i, 3)));
            json_object_set_new(o, "state", json_string("pending"));
            static const char *const keys[] = {"kind", "resource", "justification", "incident"};
            for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
                if (json_is_string(json_object_get(d, keys[k])))
                    json_object_set(o, keys[k], json_object_get(d, keys[k]));
        } else if (verb && !strcmp(verb, "approve")) {
            json_array_append_new(json_object_get(o, "approved_by"), str_or_null(actor));
            json_object_set_new(o, "state", json_string("approved"));
        } else if (verb && !strcmp(verb, "reject")) {
            json_array_append_new(json_object_get(o, "rejected_by"), str_or_null(actor));
            json_object_set_new(o, "state", json_string("rejected"));
        } else if (verb && (!strcmp(verb, "cancel") || !strcmp(verb, "expire") || !strcmp(verb, "expired"))) {
            json_object_set_new(o, "state", json_string(verb[0] == 'c' ? "cancelled" : "expired"));
        } else if ((verb && (!strcmp(verb, "use") || !strcmp(verb, "used"))) || !verb) {
            /* the use itself, or the change it permitted (same transaction) */
            if (json_is_null(json_object_get(o, "used_at"))) {
                uses++;
                json_object_set_new(o, "used_by", str_or_null(actor));
                json_object_set_new(o, "used_at", time_json(oms_dbres_int(r, i, 3)));
            }
            if (oms_dbres_get(r, i, 6))
                json_object_set_new(o, "commit_id", json_string(oms_dbres_get(r, i, 6)));
            json_object_set_new(o, "state", json_string("used"));
        }
        json_decref(d);
    }
    oms_dbres_free(r);
    json_t *a = json_array();
    size_t i;
    json_t *id;
    json_array_foreach(order, i, id) {
        json_array_append(a, json_object_get(by_id, json_string_value(id)));
    }
    json_decref(order);
    json_decref(by_id);
    json_object_set_new(summary, "overrides", json_integer((json_int_t)json_array_size(a)));
    json_object_set_new(summary, "override_uses", json_integer(uses));
    json_object_set_new(rep, "overrides", a);
}

/* Approvers of a proposal: its proposal.approve events up to the merge. */
static json_t *approvers(ctx *x, const char *proposal, int64_t until_ms)
{
    json_t *a = json_array();
    oms_dbres *r = NULL;
    if (x->rc == OMS_OK)
        x->rc = oms_store_audit_approvers(x->c, proposal, until_ms, &r, x->err);
    for (size_t i = 0; r && i < r->nrows; i++)
        json_array_append_new(a, str_or_null(oms_dbres_get(r, i, 0)));
    oms_dbres_free(r);
    return a;
}

/* Merges into protected branches: the event's detail says "protected" when
 * the merging code knew; otherwise the branch's current setting decides. */
static void protected_merges(ctx *x, json_t *rep, json_t *summary, json_t *rules)
{
    oms_dbres *r = run(x, OMS_AUDIT_REPORT_MERGES);
    json_t *a = json_array();
    for (size_t i = 0; r && i < r->nrows; i++) {
        const char *branch = oms_dbres_get(r, i, 5);
        json_t *d = parse_or_null(oms_dbres_get(r, i, 7));
        json_t *prot = json_object_get(d, "protected");
        bool is_protected = json_is_boolean(prot)
                                ? json_is_true(prot)
                                : json_is_true(json_object_get(json_object_get(rules, branch ? branch : ""), "protected"));
        if (!is_protected) {
            json_decref(d);
            continue;
        }
        const char *proposal = json_string_value(json_object_get(d, "proposal"));
        json_t *approved_by = proposal ? approvers(x, proposal, oms_dbres_int(r, i, 2)) : json_array();
        json_t *count = json_object_get(d, "approvals");
        json_t *m = json_pack("{s:o,s:I,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:I,s:o,s:o,s:o}", "id",
                              str_or_null(oms_dbres_get(r, i, 0)), "seq", (json_int_t)oms_dbres_int(r, i, 1), "time",
                              time_json(oms_dbres_int(r, i, 2)), "actor", str_or_null(oms_dbres_get(r, i, 3)), "action",
                              str_or_null(oms_dbres_get(r, i, 4)), "branch", str_or_null(branch), "commit_id",
                              str_or_null(oms_dbres_get(r, i, 6)), "proposal", str_or_null(proposal), "approved_by",
                              approved_by, "approvals",
                              json_is_integer(count) ? json_integer_value(count) : (json_int_t)json_array_size(approved_by),
                              "required", ref_or_null(json_object_get(d, "required")),
                              "issue_keys", parse_or_null(oms_dbres_get(r, i, 8)), "override_id",
                              str_or_null(oms_dbres_get(r, i, 9)));
        json_array_append_new(a, m);
        json_decref(d);
    }
    oms_dbres_free(r);
    json_object_set_new(summary, "protected_merges", json_integer((json_int_t)json_array_size(a)));
    json_object_set_new(rep, "protected_merges", a);
}

static void forced_releases(ctx *x, json_t *rep, json_t *summary)
{
    oms_dbres *r = run(x, OMS_AUDIT_REPORT_FORCED_RELEASES);
    json_t *a = json_array();
    for (size_t i = 0; r && i < r->nrows; i++) {
        json_t *d = parse_or_null(oms_dbres_get(r, i, 6));
        json_array_append_new(a, json_pack("{s:o,s:I,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "id", str_or_null(oms_dbres_get(r, i, 0)),
                                           "seq", (json_int_t)oms_dbres_int(r, i, 1), "time",
                                           time_json(oms_dbres_int(r, i, 2)), "actor", str_or_null(oms_dbres_get(r, i, 3)),
                                           "branch", str_or_null(oms_dbres_get(r, i, 4)), "lock_id",
                                           str_or_null(oms_dbres_get(r, i, 5)), "holder",
                                           ref_or_null(json_object_get(d, "holder")), "reason",
                                           ref_or_null(json_object_get(d, "reason")),
                                           "issue_keys", parse_or_null(oms_dbres_get(r, i, 7))));
        json_decref(d);
    }
    oms_dbres_free(r);
    json_object_set_new(summary, "forced_lock_releases", json_integer((json_int_t)json_array_size(a)));
    json_object_set_new(rep, "forced_lock_releases", a);
}

static int cmp_actor(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "events"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "events"));
    if (x != y)
        return x > y ? -1 : 1;
    return strcmp(json_string_value(json_object_get(*(json_t *const *)a, "actor")),
                  json_string_value(json_object_get(*(json_t *const *)b, "actor")));
}

static void top_actors(ctx *x, json_t *rep)
{
    oms_dbres *r = run(x, OMS_AUDIT_REPORT_ACTORS);
    json_t *by = json_object();
    for (size_t i = 0; r && i < r->nrows; i++) {
        const char *sub = oms_dbres_get(r, i, 0), *o = oms_dbres_get(r, i, 1);
        if (!sub || !o || !oms_utf8_valid(sub, strlen(sub)))
            continue;
        json_t *e = json_object_get(by, sub);
        if (!e) {
            e = json_pack("{s:s,s:I,s:I,s:I,s:I}", "actor", sub, "events", (json_int_t)0, "success", (json_int_t)0, "denied",
                          (json_int_t)0, "failure", (json_int_t)0);
            json_object_set_new(by, sub, e);
        }
        int64_t n = oms_dbres_int(r, i, 2);
        json_object_set_new(e, "events", json_integer(json_integer_value(json_object_get(e, "events")) + n));
        if (json_object_get(e, o))
            json_object_set_new(e, o, json_integer(json_integer_value(json_object_get(e, o)) + n));
    }
    oms_dbres_free(r);
    size_t n = json_object_size(by), k = 0;
    json_t **v = oms_xcalloc(n ? n : 1, sizeof *v);
    const char *key;
    json_t *e;
    json_object_foreach(by, key, e) v[k++] = e;
    qsort(v, n, sizeof *v, cmp_actor);
    json_t *a = json_array();
    for (size_t i = 0; i < n && i < TOP_N; i++)
        json_array_append(a, v[i]);
    free(v);
    json_decref(by);
    json_object_set_new(rep, "top_actors", a);
}

json_t *oms_compliance_report(oms_store *s, const char *exempt_globs, int64_t from_ms, int64_t to_ms, oms_error *err)
{
    ctx x = {.from_ms = from_ms, .to_ms = to_ms, .err = err};
    if ((x.rc = oms_db_conn(s->db, &x.c, err)))
        return NULL;
    json_t *rep = json_object(), *summary = json_object();
    json_object_set_new(rep, "title", json_string("OMS compliance report"));
    json_object_set_new(rep, "period", json_pack("{s:o,s:o}", "from", time_json(from_ms), "to", time_json(to_ms)));
    json_object_set_new(rep, "generated_at", time_json(oms_now_ms()));
    json_object_set_new(rep, "exempt_branches", json_string(exempt_globs ? exempt_globs : ""));
    json_t *rules = branch_rules(&x);
    totals(&x, rep, summary);
    changes(&x, rep, summary, rules, exempt_globs);
    overrides(&x, rep, summary);
    protected_merges(&x, rep, summary, rules);
    json_object_set_new(rep, "denials_by_principal",
                        counted(run(&x, OMS_AUDIT_REPORT_DENIALS), "principal", NULL));
    json_object_set_new(rep, "auth_failures_by_address",
                        counted(run(&x, OMS_AUDIT_REPORT_AUTH_FAILURES), "address", "unknown"));
    forced_releases(&x, rep, summary);
    top_actors(&x, rep);
    json_decref(rules);
    int64_t denials = 0, failures = 0;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(rep, "denials_by_principal"), i, e) denials += json_integer_value(json_object_get(e, "count"));
    json_array_foreach(json_object_get(rep, "auth_failures_by_address"), i, e) failures += json_integer_value(json_object_get(e, "count"));
    json_object_set_new(summary, "denials", json_integer(denials));
    json_object_set_new(summary, "auth_failures", json_integer(failures));
    json_object_set_new(rep, "summary", summary);
    /* The state of the whole chain now, so a reader knows the numbers
     * come from an untampered log. */
    oms_audit_verify_result v;
    oms_error verr;
    if (x.rc == OMS_OK) {
        if (oms_audit_verify(s, &v, &verr) == OMS_OK)
            json_object_set_new(rep, "integrity", oms_audit_verify_json(&v));
        else
            json_object_set_new(rep, "integrity", json_pack("{s:n,s:s}", "ok", "error", verr.msg));
    }
    if (x.rc) {
        json_decref(rep);
        return NULL;
    }
    return rep;
}
