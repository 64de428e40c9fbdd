/* The compliance report as one self-contained HTML page: inline CSS, inline
 * SVG bar charts, no script, no external asset (the route also sends a CSP
 * that forbids loading anything). Every value from the database is
 * HTML-escaped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/internal.h"
#include "util/alloc.h"

static const char *jstr(const json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }
static long long jint(const json_t *o, const char *k) { return (long long)json_integer_value(json_object_get(o, k)); }

static const char k_css[] =
    ":root{--ink:#1d2430;--muted:#5b6576;--line:#dfe3ea;--bg:#f6f7f9;--ok:#2e7d4f;--warn:#b7791f;--bad:#c0392b;"
    "--accent:#2b5797}"
    "*{box-sizing:border-box}"
    "body{margin:0;background:var(--bg);color:var(--ink);font:15px/1.5 'DejaVu Sans',Helvetica,Arial,sans-serif}"
    "main{max-width:1120px;margin:0 auto;padding:32px 40px 48px}"
    "header{border-bottom:3px solid var(--accent);margin-bottom:24px;padding-bottom:12px}"
    "h1{font-size:34px;margin:0 0 4px;letter-spacing:-.5px}"
    "h2{font-size:24px;margin:0 0 12px}"
    ".period{color:var(--muted);margin:0}"
    "section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:20px 24px;margin:0 0 20px}"
    ".cards{display:grid;grid-template-columns:repeat(4,1fr);gap:12px;background:none;border:0;padding:0}"
    ".card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:14px 16px;border-top:4px solid var(--accent)}"
    ".card .v{font-size:30px;font-weight:700;line-height:1.2}"
    ".card .k{color:var(--muted);font-size:13px}"
    ".card.good{border-top-color:var(--ok)}.card.bad{border-top-color:var(--bad)}.card.bad .v{color:var(--bad)}"
    ".card.warn{border-top-color:var(--warn)}"
    "table{width:100%;border-collapse:collapse;font-size:14px}"
    "th,td{text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:top}"
    "th{color:var(--muted);font-weight:600;font-size:12px;text-transform:uppercase;letter-spacing:.4px}"
    "td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}"
    "code{font:12px 'DejaVu Sans Mono',monospace;background:var(--bg);padding:1px 4px;border-radius:3px}"
    ".none{color:var(--ok);margin:0}"
    ".grid2{display:grid;grid-template-columns:1fr 1fr;gap:20px}"
    ".grid2 section{margin:0 0 20px}"
    ".legend span{display:inline-block;margin-right:16px;font-size:13px;color:var(--muted)}"
    ".legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px}"
    ".status-ok{color:var(--ok);font-weight:700}.status-bad{color:var(--bad);font-weight:700}"
    "footer{color:var(--muted);font-size:12px;text-align:center}"
    "svg text{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif}";

static const char *const k_colors[3] = {"#2e7d4f", "#d69e2e", "#c0392b"}; /* success, denied, failure */

typedef struct {
    const char *label;
    long long v[3];
} bar;

/* Horizontal bars, stacked by outcome when nseries is 3; `W` is the width
 * of the drawing in its own units (about its width on the page, so the
 * text keeps its size). */
static void chart(oms_sbuf *b, const bar *bars, size_t n, int nseries, const char *title, int W)
{
    if (n == 0)
        return;
    long long max = 1;
    for (size_t i = 0; i < n; i++) {
        long long t = 0;
        for (int s = 0; s < nseries; s++)
            t += bars[i].v[s];
        if (t > max)
            max = t;
    }
    const int label_w = W > 600 ? 260 : 170, row_h = 28, bar_w = W - label_w - 70;
    int h = (int)n * row_h + 8;
    oms_sbuf_printf(b, "<svg viewBox=\"0 0 %d %d\" width=\"100%%\" role=\"img\" aria-label=\"", W, h);
    oms_sbuf_html(b, title);
    oms_sbuf_puts(b, "\">");
    for (size_t i = 0; i < n; i++) {
        int y = (int)i * row_h + 4;
        oms_sbuf_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" font-size=\"14\" fill=\"#1d2430\">",
                        label_w - 10, y + 17);
        char lab[48];
        snprintf(lab, sizeof lab, "%.40s%s", bars[i].label ? bars[i].label : "(none)",
                 bars[i].label && strlen(bars[i].label) > 40 ? "…" : "");
        oms_sbuf_html(b, lab);
        oms_sbuf_puts(b, "</text>");
        double x = label_w;
        long long total = 0;
        for (int s = 0; s < nseries; s++) {
            double w = (double)bars[i].v[s] * bar_w / (double)max;
            total += bars[i].v[s];
            if (w <= 0)
                continue;
            oms_sbuf_printf(b, "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" rx=\"2\" fill=\"%s\"/>", x, y + 3,
                            w < 1 ? 1 : w, row_h - 10, nseries == 1 ? "#2b5797" : k_colors[s]);
            x += w;
        }
        oms_sbuf_printf(b, "<text x=\"%.1f\" y=\"%d\" font-size=\"13\" fill=\"#5b6576\">%lld</text>", x + 6, y + 17,
                        total);
    }
    oms_sbuf_puts(b, "</svg>");
    if (nseries == 3)
        oms_sbuf_printf(b,
                        "<p class=\"legend\"><span><i style=\"background:%s\"></i>success</span><span><i style=\"background:%s\">"
                        "</i>denied</span><span><i style=\"background:%s\"></i>failure</span></p>",
                        k_colors[0], k_colors[1], k_colors[2]);
}

static void card(oms_sbuf *b, const char *cls, long long v, const char *label)
{
    oms_sbuf_printf(b, "<div class=\"card %s\"><div class=\"v\">%lld</div><div class=\"k\">", cls, v);
    oms_sbuf_html(b, label);
    oms_sbuf_puts(b, "</div></div>");
}

static void cell(oms_sbuf *b, const char *s, bool code)
{
    oms_sbuf_puts(b, code ? "<td><code>" : "<td>");
    oms_sbuf_html(b, s ? s : "—");
    oms_sbuf_puts(b, code ? "</code></td>" : "</td>");
}

static void cell_list(oms_sbuf *b, const json_t *arr)
{
    oms_sbuf_puts(b, "<td>");
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        if (i)
            oms_sbuf_puts(b, ", ");
        oms_sbuf_html(b, json_string_value(v));
    }
    if (json_array_size(arr) == 0)
        oms_sbuf_puts(b, "—");
    oms_sbuf_puts(b, "</td>");
}

static void heads(oms_sbuf *b, const char *const *h)
{
    oms_sbuf_puts(b, "<table><thead><tr>");
    for (; *h; h++)
        oms_sbuf_printf(b, "<th%s>%s</th>", (*h)[0] == '#' ? " class=\"n\"" : "", (*h)[0] == '#' ? *h + 1 : *h);
    oms_sbuf_puts(b, "</tr></thead><tbody>");
}

static void totals_section(oms_sbuf *b, const json_t *rep)
{
    /* Fold (action, outcome) rows into one bar per action. */
    const json_t *t = json_object_get(rep, "totals");
    size_t n = json_array_size(t), nb = 0;
    bar *bars = oms_xcalloc(n ? n : 1, sizeof *bars);
    size_t i;
    json_t *v;
    json_array_foreach(t, i, v) {
        const char *a = jstr(v, "action"), *o = jstr(v, "outcome");
        size_t k = 0;
        while (k < nb && strcmp(bars[k].label, a ? a : "") != 0)
            k++;
        if (k == nb)
            bars[nb++].label = a ? a : "";
        int s = o && !strcmp(o, "denied") ? 1 : o && !strcmp(o, "failure") ? 2 : 0;
        bars[k].v[s] += jint(v, "count");
    }
    /* busiest first */
    for (size_t x = 1; x < nb; x++)
        for (size_t y = x; y > 0; y--) {
            long long a = bars[y].v[0] + bars[y].v[1] + bars[y].v[2], c = bars[y - 1].v[0] + bars[y - 1].v[1] + bars[y - 1].v[2];
            if (a <= c)
                break;
            bar tmp = bars[y];
            bars[y] = bars[y - 1];
            bars[y - 1] = tmp;
        }
    oms_sbuf_puts(b, "<section><h2>Activity by action</h2>");
    if (nb == 0)
        oms_sbuf_puts(b, "<p class=\"none\">No events in this period.</p>");
    chart(b, bars, nb < 15 ? nb : 15, 3, "events by action and outcome", 1000);
    if (nb) {
        static const char *const h[] = {"Action", "#Success", "#Denied", "#Failure", "#Total", NULL};
        heads(b, h);
        for (size_t k = 0; k < nb; k++) {
            oms_sbuf_puts(b, "<tr>");
            cell(b, bars[k].label, true);
            oms_sbuf_printf(b, "<td class=\"n\">%lld</td><td class=\"n\">%lld</td><td class=\"n\">%lld</td><td class=\"n\">%lld</td></tr>",
                            bars[k].v[0], bars[k].v[1], bars[k].v[2], bars[k].v[0] + bars[k].v[1] + bars[k].v[2]);
        }
        oms_sbuf_puts(b, "</tbody></table>");
    }
    oms_sbuf_puts(b, "</section>");
    free(bars);
}

static void counted_section(oms_sbuf *b, const json_t *list, const char *title, const char *key, const char *none)
{
    oms_sbuf_puts(b, "<section><h2>");
    oms_sbuf_html(b, title);
    oms_sbuf_puts(b, "</h2>");
    size_t n = json_array_size(list);
    if (n == 0) {
        oms_sbuf_printf(b, "<p class=\"none\">%s</p></section>", none);
        return;
    }
    size_t shown = n < 12 ? n : 12;
    bar *bars = oms_xcalloc(shown, sizeof *bars);
    for (size_t i = 0; i < shown; i++) {
        const json_t *v = json_array_get(list, i);
        bars[i].label = jstr(v, key);
        bars[i].v[0] = jint(v, "count");
    }
    chart(b, bars, shown, 1, title, 480);
    free(bars);
    oms_sbuf_puts(b, "</section>");
}

char *oms_compliance_report_html(const json_t *rep)
{
    oms_sbuf b = {0};
    const json_t *period = json_object_get(rep, "period"), *sum = json_object_get(rep, "summary");
    const json_t *in = json_object_get(rep, "integrity");
    bool intact = json_is_true(json_object_get(in, "ok"));
    oms_sbuf_puts(&b, "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                      "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>Compliance report ");
    oms_sbuf_html(&b, jstr(period, "from"));
    oms_sbuf_puts(&b, " to ");
    oms_sbuf_html(&b, jstr(period, "to"));
    oms_sbuf_printf(&b, "</title><style>%s</style></head><body><main><header><h1>Compliance report</h1><p class=\"period\">",
                    k_css);
    oms_sbuf_puts(&b, "Period <strong>");
    oms_sbuf_html(&b, jstr(period, "from"));
    oms_sbuf_puts(&b, "</strong> to <strong>");
    oms_sbuf_html(&b, jstr(period, "to"));
    oms_sbuf_puts(&b, "</strong> · generated ");
    oms_sbuf_html(&b, jstr(rep, "generated_at"));
    oms_sbuf_puts(&b, " · issue-exempt branches <code>");
    oms_sbuf_html(&b, jstr(rep, "exempt_branches"));
    oms_sbuf_puts(&b, "</code></p></header>");

    /* Summary cards */
    oms_sbuf_puts(&b, "<h2>Summary</h2><section class=\"cards\">");
    card(&b, "", jint(sum, "events"), "audit events");
    card(&b, "", jint(sum, "changes"), "changes");
    card(&b, jint(sum, "changes_without_issue") ? "bad" : "good", jint(sum, "changes_without_issue"),
         "changes without an issue");
    card(&b, jint(sum, "denials") ? "warn" : "good", jint(sum, "denials"), "denials");
    card(&b, jint(sum, "auth_failures") ? "warn" : "good", jint(sum, "auth_failures"), "authentication failures");
    card(&b, jint(sum, "overrides") ? "warn" : "good", jint(sum, "overrides"), "emergency overrides");
    card(&b, "", jint(sum, "protected_merges"), "merges into protected branches");
    card(&b, jint(sum, "forced_lock_releases") ? "warn" : "good", jint(sum, "forced_lock_releases"),
         "forced lock releases");
    oms_sbuf_puts(&b, "</section>");

    totals_section(&b, rep);

    size_t i;
    json_t *v;
    const json_t *list = json_object_get(rep, "changes_without_issue");
    oms_sbuf_puts(&b, "<section><h2>Changes without an issue</h2>");
    if (json_array_size(list) == 0) {
        oms_sbuf_puts(&b, "<p class=\"none\">None: every change outside the exempt branches names an issue.</p>");
    } else {
        static const char *const h[] = {"Time", "Actor", "Action", "Branch", "Resource", "Commit", NULL};
        heads(&b, h);
        json_array_foreach(list, i, v) {
            oms_sbuf_puts(&b, "<tr>");
            cell(&b, jstr(v, "time"), false);
            cell(&b, jstr(v, "actor"), false);
            cell(&b, jstr(v, "action"), true);
            cell(&b, jstr(v, "branch"), true);
            cell(&b, jstr(v, "resource"), true);
            char c[16];
            snprintf(c, sizeof c, "%.12s", jstr(v, "commit_id") ? jstr(v, "commit_id") : "");
            cell(&b, c[0] ? c : NULL, true);
            oms_sbuf_puts(&b, "</tr>");
        }
        oms_sbuf_puts(&b, "</tbody></table>");
    }
    oms_sbuf_puts(&b, "</section>");

    list = json_object_get(rep, "overrides");
    oms_sbuf_puts(&b, "<section><h2>Emergency overrides</h2>");
    if (json_array_size(list) == 0) {
        oms_sbuf_puts(&b, "<p class=\"none\">No emergency override in this period.</p>");
    } else {
        static const char *const h[] = {"Override", "Kind", "Branch", "Requested by", "Approved by", "Used", "State", NULL};
        heads(&b, h);
        json_array_foreach(list, i, v) {
            oms_sbuf_puts(&b, "<tr>");
            cell(&b, jstr(v, "override_id"), true);
            cell(&b, jstr(v, "kind"), false);
            cell(&b, jstr(v, "branch"), true);
            cell(&b, jstr(v, "requested_by"), false);
            cell_list(&b, json_object_get(v, "approved_by"));
            cell(&b, jstr(v, "used_at"), false);
            cell(&b, jstr(v, "state"), false);
            oms_sbuf_puts(&b, "</tr>");
        }
        oms_sbuf_puts(&b, "</tbody></table>");
    }
    oms_sbuf_puts(&b, "</section>");

    list = json_object_get(rep, "protected_merges");
    oms_sbuf_puts(&b, "<section><h2>Merges into protected branches</h2>");
    if (json_array_size(list) == 0) {
        oms_sbuf_puts(&b, "<p class=\"none\">No merge into a protected branch in this period.</p>");
    } else {
        static const char *const h[] = {"Time", "Branch", "Merged by", "Proposal", "Approved by", "#Approvals", NULL};
        heads(&b, h);
        json_array_foreach(list, i, v) {
            oms_sbuf_puts(&b, "<tr>");
            cell(&b, jstr(v, "time"), false);
            cell(&b, jstr(v, "branch"), true);
            cell(&b, jstr(v, "actor"), false);
            cell(&b, jstr(v, "proposal"), true);
            cell_list(&b, json_object_get(v, "approved_by"));
            oms_sbuf_printf(&b, "<td class=\"n\">%lld</td></tr>", jint(v, "approvals"));
        }
        oms_sbuf_puts(&b, "</tbody></table>");
    }
    oms_sbuf_puts(&b, "</section>");

    oms_sbuf_puts(&b, "<div class=\"grid2\">");
    counted_section(&b, json_object_get(rep, "denials_by_principal"), "Denials by principal", "principal",
                    "No denial in this period.");
    counted_section(&b, json_object_get(rep, "auth_failures_by_address"), "Authentication failures by address",
                    "address", "No authentication failure in this period.");
    oms_sbuf_puts(&b, "</div>");

    list = json_object_get(rep, "forced_lock_releases");
    oms_sbuf_puts(&b, "<section><h2>Forced lock releases</h2>");
    if (json_array_size(list) == 0) {
        oms_sbuf_puts(&b, "<p class=\"none\">No lock was released by force in this period.</p>");
    } else {
        static const char *const h[] = {"Time", "Lock", "Branch", "Holder", "Released by", "Issues", NULL};
        heads(&b, h);
        json_array_foreach(list, i, v) {
            oms_sbuf_puts(&b, "<tr>");
            cell(&b, jstr(v, "time"), false);
            cell(&b, jstr(v, "lock_id"), true);
            cell(&b, jstr(v, "branch"), true);
            cell(&b, jstr(v, "holder"), false);
            cell(&b, jstr(v, "actor"), false);
            cell_list(&b, json_object_get(v, "issue_keys"));
            oms_sbuf_puts(&b, "</tr>");
        }
        oms_sbuf_puts(&b, "</tbody></table>");
    }
    oms_sbuf_puts(&b, "</section>");

    list = json_object_get(rep, "top_actors");
    oms_sbuf_puts(&b, "<section><h2>Top actors</h2>");
    if (json_array_size(list) == 0) {
        oms_sbuf_puts(&b, "<p class=\"none\">No authenticated activity in this period.</p>");
    } else {
        size_t n = json_array_size(list);
        bar *bars = oms_xcalloc(n, sizeof *bars);
        json_array_foreach(list, i, v) {
            bars[i].label = jstr(v, "actor");
            bars[i].v[0] = jint(v, "success");
            bars[i].v[1] = jint(v, "denied");
            bars[i].v[2] = jint(v, "failure");
        }
        chart(&b, bars, n, 3, "events by actor", 1000);
        free(bars);
    }
    oms_sbuf_puts(&b, "</section>");

    oms_sbuf_puts(&b, "<section><h2>Audit chain integrity</h2><p>");
    if (!in) {
        oms_sbuf_puts(&b, "Not checked.");
    } else if (json_is_null(json_object_get(in, "ok"))) {
        oms_sbuf_puts(&b, "<span class=\"status-bad\">Could not be checked:</span> ");
        oms_sbuf_html(&b, jstr(in, "error"));
    } else if (intact) {
        oms_sbuf_printf(&b,
                        "<span class=\"status-ok\">Intact.</span> %lld events re-hashed and %lld signed checkpoints "
                        "verified; sealed up to chain position %lld; %lld events not chained yet.",
                        jint(in, "events_checked"), jint(in, "checkpoints_checked"), jint(in, "sealed_upto"),
                        jint(in, "pending"));
    } else {
        oms_sbuf_printf(&b, "<span class=\"status-bad\">TAMPERING DETECTED</span> at event %lld: ",
                        jint(in, "first_bad_seq"));
        oms_sbuf_html(&b, jstr(in, "reason"));
    }
    oms_sbuf_puts(&b, "</p></section><footer>OMS · the figures above are computed from the hash-chained audit log "
                      "(docs/audit.md)</footer></main></body></html>\n");
    return b.s;
}
