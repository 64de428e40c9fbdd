/* The compliance report as one CSV table (RFC 4180, CRLF): every section's
 * rows share the columns
 *   section, item, status, count, time, actor, branch, reference
 * so a spreadsheet can filter by section. docs/audit.md lists what each
 * section puts in each column. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/internal.h"

static const char *jstr(const json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

static void num(char *buf, size_t cap, const json_t *v)
{
    if (json_is_integer(v))
        snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
    else
        buf[0] = '\0';
}

static void row(oms_sbuf *b, const char *section, const char *item, const char *status, const char *count,
                const char *time, const char *actor, const char *branch, const char *ref)
{
    const char *cells[] = {section, item, status, count, time, actor, branch, ref};
    for (size_t i = 0; i < sizeof cells / sizeof cells[0]; i++) {
        if (i)
            oms_sbuf_add(b, ",", 1);
        oms_sbuf_csv(b, cells[i]);
    }
    oms_sbuf_add(b, "\r\n", 2);
}

static char *join(oms_sbuf *tmp, const json_t *arr)
{
    tmp->len = 0;
    oms_sbuf_add(tmp, "", 0);
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        if (i)
            oms_sbuf_add(tmp, ";", 1);
        if (json_is_string(v))
            oms_sbuf_puts(tmp, json_string_value(v));
    }
    return tmp->s;
}

char *oms_compliance_report_csv(const json_t *rep)
{
    oms_sbuf b = {0}, t = {0}, t2 = {0};
    char n[32], m[256];
    row(&b, "section", "item", "status", "count", "time", "actor", "branch", "reference");
    const json_t *period = json_object_get(rep, "period");
    row(&b, "period", jstr(period, "from"), jstr(period, "to"), NULL, jstr(rep, "generated_at"), NULL,
        jstr(rep, "exempt_branches"), NULL);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)json_object_get(rep, "summary"), key, v) {
        num(n, sizeof n, v);
        row(&b, "summary", key, NULL, n, NULL, NULL, NULL, NULL);
    }
    size_t i;
    json_array_foreach(json_object_get(rep, "totals"), i, v) {
        num(n, sizeof n, json_object_get(v, "count"));
        row(&b, "totals", jstr(v, "action"), jstr(v, "outcome"), n, NULL, NULL, NULL, NULL);
    }
    json_array_foreach(json_object_get(rep, "changes_without_issue"), i, v) {
        row(&b, "change_without_issue", jstr(v, "action"), jstr(v, "id"), "1", jstr(v, "time"), jstr(v, "actor"),
            jstr(v, "branch"), jstr(v, "resource") ? jstr(v, "resource") : jstr(v, "commit_id"));
    }
    json_array_foreach(json_object_get(rep, "overrides"), i, v) {
        snprintf(m, sizeof m, "approved_by=%s rejected_by=%s used_by=%s", join(&t, json_object_get(v, "approved_by")),
                 join(&t2, json_object_get(v, "rejected_by")), jstr(v, "used_by") ? jstr(v, "used_by") : "");
        row(&b, "override", jstr(v, "override_id"), jstr(v, "state"), NULL, jstr(v, "requested_at"),
            jstr(v, "requested_by"), jstr(v, "branch"), m);
    }
    json_array_foreach(json_object_get(rep, "protected_merges"), i, v) {
        num(n, sizeof n, json_object_get(v, "approvals"));
        snprintf(m, sizeof m, "commit=%s approved_by=%s", jstr(v, "commit_id") ? jstr(v, "commit_id") : "",
                 join(&t, json_object_get(v, "approved_by")));
        row(&b, "protected_merge", jstr(v, "action"), jstr(v, "proposal"), n, jstr(v, "time"), jstr(v, "actor"),
            jstr(v, "branch"), m);
    }
    json_array_foreach(json_object_get(rep, "denials_by_principal"), i, v) {
        num(n, sizeof n, json_object_get(v, "count"));
        row(&b, "denials_by_principal", jstr(v, "principal"), NULL, n, NULL, NULL, NULL, NULL);
    }
    json_array_foreach(json_object_get(rep, "auth_failures_by_address"), i, v) {
        num(n, sizeof n, json_object_get(v, "count"));
        row(&b, "auth_failures_by_address", jstr(v, "address"), NULL, n, NULL, NULL, NULL, NULL);
    }
    json_array_foreach(json_object_get(rep, "forced_lock_releases"), i, v) {
        snprintf(m, sizeof m, "holder=%s issues=%s", jstr(v, "holder") ? jstr(v, "holder") : "",
                 join(&t, json_object_get(v, "issue_keys")));
        row(&b, "forced_lock_release", jstr(v, "lock_id"), NULL, "1", jstr(v, "time"), jstr(v, "actor"),
            jstr(v, "branch"), m);
    }
    json_array_foreach(json_object_get(rep, "top_actors"), i, v) {
        num(n, sizeof n, json_object_get(v, "events"));
        snprintf(m, sizeof m, "success=%lld denied=%lld failure=%lld",
                 (long long)json_integer_value(json_object_get(v, "success")),
                 (long long)json_integer_value(json_object_get(v, "denied")),
                 (long long)json_integer_value(json_object_get(v, "failure")));
        row(&b, "top_actor", jstr(v, "actor"), m, n, NULL, NULL, NULL, NULL);
    }
    const json_t *in = json_object_get(rep, "integrity");
    if (in) {
        num(n, sizeof n, json_object_get(in, "events_checked"));
        num(m, sizeof m, json_object_get(in, "first_bad_seq"));
        row(&b, "integrity", json_is_true(json_object_get(in, "ok")) ? "ok" : "failed", jstr(in, "reason"), n,
            jstr(in, "verified_at"), NULL, NULL, m);
    }
    free(t.s);
    free(t2.s);
    return b.s;
}
