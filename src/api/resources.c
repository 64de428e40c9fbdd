/* The schema routes: resources per kind, batch changes, validate, export.
 * Request -> vcs write (oms_vcs_write with the request's context) ->
 * response. */
#include "api/resources.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/common.h"
#include "api/read_access.h"
#include "http/app.h"
#include "http/params.h"
#include "infra/metrics.h"
#include "store/vcs_sql.h"
#include "util/alloc.h"
#include "util/canonical.h"
#include "util/encoding.h"
#include "util/time.h"
#include "vcs/history.h"
#include "vcs/write.h"

/* ---- rendering ---- */

/* Copies s to p (without its NUL): the end. Kind, hashes and the time are
 * written as they are (never escaped: ASCII hex, names, digits). */
static char *put(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

/* Appends s as a JSON string (quotes included) at *p; returns the new end.
 * The buffer was sized for the worst case (6 bytes per input byte + 2). */
static char *json_string_at(char *p, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    *p++ = '"';
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') {
            *p++ = '\\';
            *p++ = (char)*c;
        } else if (*c < 0x20) {
            memcpy(p, "\\u00", 4);
            p[4] = hex[*c >> 4];
            p[5] = hex[*c & 15];
            p += 6;
        } else {
            *p++ = (char)*c;
        }
    }
    *p++ = '"';
    return p;
}

/* The stored document plus server data under `meta`, spliced as text so a
 * read never parses or re-serialises the document (the hot path of GET). */
static char *render_entry(oms_request *req, const oms_entry *e, const char *branch, size_t *len)
{
    char t[40];
    oms_time_rfc3339_ms(t, sizeof t, e->time_ms);
    const char *kind = oms_kind_segment(e->kind);
    size_t cap = e->len + 160 + strlen(kind) + 6 * (strlen(branch) + strlen(e->author)) + 2 * 65 + sizeof t;
    char *out = oms_arena_alloc(req->arena, cap), *p = out;
    if (!out) {
        *len = 0;
        return NULL;
    }
    /* e->text is a JSON object with at least api_name: "{...}" */
    memcpy(p, e->text, e->len - 1);
    p += e->len - 1;
    p = put(p, ",\"meta\":{\"kind\":\"");
    p = put(p, kind);
    p = put(p, "\",\"branch\":");
    p = json_string_at(p, branch);
    p = put(p, ",\"etag\":\"");
    p = put(p, e->hash);
    p = put(p, "\",\"last_commit\":\"");
    p = put(p, e->commit);
    p = put(p, "\",\"author\":");
    p = json_string_at(p, e->author);
    p = put(p, ",\"updated_at\":\"");
    p = put(p, t);
    p = put(p, "\"}}");
    *p = '\0';
    *len = (size_t)(p - out);
    return out;
}

static int respond_entry(oms_request *req, int status, const oms_entry *e, const char *branch)
{
    size_t len;
    char *body = render_entry(req, e, branch, &len);
    if (!body)
        return oms_resp_problem(req, OMS_ENOMEM, "out of memory", NULL);
    oms_resp_etag(req, e->hash);
    return oms_resp_text(req, status, "application/json", body, len);
}

/* ---- reads ---- */

static void snapshot_unref_cb(void *p) { oms_snapshot_unref(p); }

/* The branch's state, owned by the request's arena; on failure the problem
 * is answered. */
static int branch_snapshot(oms_request *req, const char *branch, oms_snapshot **out)
{
    oms_error err = {0};
    int rc = oms_vcs_branch_snapshot(oms_req_ctx(req), branch, out, &err);
    if (rc == OMS_OK && oms_arena_on_cleanup(req->arena, snapshot_unref_cb, *out)) {
        oms_snapshot_unref(*out);
        rc = oms_err_set(&err, OMS_ENOMEM, "out of memory");
    }
    if (rc)
        oms_resp_error(req, rc, &err);
    return rc;
}

/* The state a read answers from: the branch's head, or with `?at=` (a
 * commit id or a tag, SPEC §4) exactly that commit's, which the caller must
 * be able to read. On failure the problem is answered. */
static int read_snapshot(oms_request *req, const char *branch, oms_snapshot **out)
{
    const char *at = oms_req_query(req, "at");
    if (!at)
        return branch_snapshot(req, branch, out);
    oms_error err = {0};
    oms_dbconn *c;
    char commit[65];
    bool found = false;
    int rc = oms_db_conn(req->app->store->db, &c, &err);
    if (rc == OMS_OK) /* the branch named in the path must exist, as without at= */
        rc = oms_store_branch_head_of(c, branch, commit, &found, &err);
    if (rc == OMS_OK && !found)
        rc = oms_err_set(&err, OMS_ENOTFOUND, "no branch named %s", branch);
    if (rc == OMS_OK)
        rc = oms_read_at(req, c, at, commit, &err);
    if (rc == OMS_OK)
        rc = oms_snapshot_for_commit(c, commit, out, &err);
    if (rc == OMS_OK && oms_arena_on_cleanup(req->arena, snapshot_unref_cb, *out)) {
        oms_snapshot_unref(*out);
        rc = oms_err_set(&err, OMS_ENOMEM, "out of memory");
    }
    if (rc && !req->responded)
        oms_resp_error(req, rc, &err);
    return rc ? rc : OMS_OK;
}

static oms_kind param_kind(oms_request *req)
{
    oms_kind k = OMS_KIND_OBJECT_TYPE;
    oms_kind_parse(&k, req->params[1]); /* the router matched a kind segment */
    return k;
}

int oms_h_resource_get(oms_request *req)
{
    const char *branch = req->params[0];
    oms_snapshot *s;
    if (read_snapshot(req, branch, &s))
        return OMS_OK;
    const oms_entry *e = oms_snapshot_get(s, param_kind(req), req->params[2]);
    if (!e)
        return oms_resp_problem(req, OMS_ENOTFOUND, "no such resource on this branch", NULL);
    if (oms_not_modified(req, e->hash))
        return OMS_OK;
    oms_resp_header(req, "X-Commit", s->commit);
    return respond_entry(req, 200, e, branch);
}

/* Only a plain read of the head (no ?at=): its state is the snapshot of
 * the head the authorization's freshness read found, if the cache has it.
 * A resource that is not there, or anything else unusual, goes to the
 * handler, which answers it as oms_h_resource_get would. */
bool oms_h_resource_get_inline(oms_request *req, bool (*admit)(oms_request *req))
{
    const char *head = oms_req_ctx(req)->branch_head;
    if (req->raw_query || !head[0])
        return false;
    oms_snapshot *s = oms_snapshot_cache_get(head);
    if (!s)
        return false; /* the handler loads it (and counts the miss) */
    oms_metrics_snapshot_lookup(OMS_SNAP_READ, 1);
    const oms_entry *e = oms_snapshot_get(s, param_kind(req), req->params[2]);
    if (!e || oms_arena_on_cleanup(req->arena, snapshot_unref_cb, s)) {
        oms_snapshot_unref(s);
        return false;
    }
    if (!admit(req))
        return false;
    if (oms_not_modified(req, e->hash))
        return true;
    oms_resp_header(req, "X-Commit", s->commit);
    respond_entry(req, 200, e, req->params[0]);
    return true;
}

typedef struct {
    oms_kind kind;
    const char *q, *after;
    int status; /* oms_status_index of the filter, -1: none */
    /* keep > 0: only the `keep` first by api name are kept, in a max-heap
     * (a page needs its `limit` items and whether one more exists, not a
     * sort of every match); 0: every match. */
    size_t keep;
    const oms_entry **items;
    size_t n, cap;
    bool oom;
} list_ctx;

static bool contains_ci(const char *hay, const char *needle)
{
    return hay && strcasestr(hay, needle) != NULL;
}

/* `q` of a list: a case-insensitive substring of the resource's api name,
 * display name or description, or of the api or display name of one of its
 * properties, parameters or inputs (q=placed lists the types with a
 * placed_at property). Ranked search by terms is GET /api/v1/search. */
static bool items_contain(const json_t *list, const char *q)
{
    size_t i;
    const json_t *it;
    json_array_foreach(list, i, it) {
        if (contains_ci(json_string_value(json_object_get(it, "api_name")), q) ||
            contains_ci(json_string_value(json_object_get(it, "display_name")), q))
            return true;
    }
    return false;
}

/* Can `q` only appear in a canonical text as it is? Canonical JSON writes
 * every character raw except '"', '\\' and control characters. */
static bool unescaped_in_text(const char *q)
{
    for (const unsigned char *p = (const unsigned char *)q; *p; p++)
        if (*p < 0x20 || *p == '"' || *p == '\\')
            return false;
    return true;
}

/* A list looks at every resource of its kind: the filters avoid parsing
 * the documents they can decide without (the status was read once, when
 * the entry was made; a `q` in the api name, or nowhere in the text, needs
 * no parse), which was 39 % of the server's CPU in the soak. */
static bool matches_filters(const oms_entry *e, const list_ctx *lc)
{
    if (lc->status >= 0 && e->status != lc->status)
        return false;
    if (!lc->q || contains_ci(e->api_name, lc->q))
        return true;
    if (unescaped_in_text(lc->q) && !strcasestr(e->text, lc->q))
        return false;
    json_t *doc = json_loadb(e->text, e->len, 0, NULL);
    bool ok = contains_ci(json_string_value(json_object_get(doc, "display_name")), lc->q) ||
              contains_ci(json_string_value(json_object_get(doc, "description")), lc->q) ||
              items_contain(json_object_get(doc, "properties"), lc->q) ||
              items_contain(json_object_get(doc, "parameters"), lc->q) ||
              items_contain(json_object_get(doc, "inputs"), lc->q);
    json_decref(doc);
    return ok;
}

static int by_api_name(const void *a, const void *b)
{
    return strcmp((*(const oms_entry *const *)a)->api_name, (*(const oms_entry *const *)b)->api_name);
}

/* The max-heap of the `keep` first names: the root is the last of them. */
static void heap_sift_down(const oms_entry **h, size_t n, size_t i)
{
    for (;;) {
        size_t big = i, l = 2 * i + 1, r = l + 1;
        if (l < n && strcmp(h[l]->api_name, h[big]->api_name) > 0)
            big = l;
        if (r < n && strcmp(h[r]->api_name, h[big]->api_name) > 0)
            big = r;
        if (big == i)
            return;
        const oms_entry *t = h[i];
        h[i] = h[big];
        h[big] = t;
        i = big;
    }
}

static void heap_push(const oms_entry **h, size_t n, const oms_entry *e)
{
    size_t i = n;
    h[i] = e;
    while (i > 0 && strcmp(h[(i - 1) / 2]->api_name, h[i]->api_name) < 0) {
        const oms_entry *t = h[i];
        h[i] = h[(i - 1) / 2];
        h[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static void collect_kind(void *p, const oms_entry *e)
{
    list_ctx *lc = p;
    if (e->kind != lc->kind || (lc->after && strcmp(e->api_name, lc->after) <= 0))
        return;
    /* a full page's heap: a name after its last cannot be on the page */
    if (lc->keep && lc->n == lc->keep && strcmp(e->api_name, lc->items[0]->api_name) >= 0)
        return;
    if (!matches_filters(e, lc))
        return;
    if (lc->keep && lc->n == lc->keep) {
        lc->items[0] = e;
        heap_sift_down(lc->items, lc->n, 0);
        return;
    }
    if (lc->n == lc->cap) {
        size_t cap = lc->cap ? lc->cap * 2 : 64;
        if (lc->keep && cap > lc->keep)
            cap = lc->keep;
        const oms_entry **items = oms_xrealloc(lc->items, cap * sizeof *items);
        lc->items = items;
        lc->cap = cap;
    }
    if (lc->keep)
        heap_push(lc->items, lc->n, e);
    else
        lc->items[lc->n] = e;
    lc->n++;
}

/* Appends entries as a JSON array body into a growing buffer. */
typedef struct {
    char *buf;
    size_t len, cap;
    bool oom;
} textbuf;

static void tb_add(textbuf *tb, const char *s, size_t n)
{
    if (tb->oom || !s)
        return;
    if (tb->len + n + 1 > tb->cap) {
        size_t cap = (tb->len + n + 1) * 2;
        char *buf = oms_xrealloc(tb->buf, cap);
        tb->buf = buf;
        tb->cap = cap;
    }
    memcpy(tb->buf + tb->len, s, n);
    tb->len += n;
    tb->buf[tb->len] = '\0';
}

int oms_h_resource_list(oms_request *req)
{
    const char *branch = req->params[0];
    size_t limit;
    const char *cursor;
    if (!oms_paging(req, &limit, &cursor))
        return OMS_OK;
    const char *status = oms_req_query(req, "status");
    if (status && strcmp(status, "experimental") && strcmp(status, "active") && strcmp(status, "deprecated"))
        return oms_resp_problem(req, OMS_EINVAL, "status must be experimental, active or deprecated", NULL);
    oms_snapshot *s;
    if (read_snapshot(req, branch, &s))
        return OMS_OK;
    const char *q = oms_req_query(req, "q");
    /* the page and one more: whether there is a next page */
    list_ctx lc = {.kind = param_kind(req),
                   .q = q && *q ? q : NULL,
                   .status = status ? oms_status_index(status, strlen(status)) : -1,
                   .after = cursor,
                   .keep = limit + 1};
    oms_snapshot_each(s, collect_kind, &lc);
    if (lc.n > 1)
        qsort(lc.items, lc.n, sizeof *lc.items, by_api_name);
    textbuf tb = {0};
    tb_add(&tb, "{\"items\":[", 10);
    size_t shown = lc.n < limit ? lc.n : limit;
    for (size_t i = 0; i < shown; i++) {
        size_t len;
        char *one = render_entry(req, lc.items[i], branch, &len);
        tb.oom = tb.oom || !one;
        if (i)
            tb_add(&tb, ",", 1);
        tb_add(&tb, one, len);
    }
    tb_add(&tb, "],\"next_cursor\":", 16);
    if (lc.n > limit) {
        char *next = oms_arena_printf(req->arena, "\"%s\"", oms_cursor_encode(req, lc.items[limit - 1]->api_name));
        tb_add(&tb, next, strlen(next));
    } else {
        tb_add(&tb, "null", 4);
    }
    tb_add(&tb, "}", 1);
    free(lc.items);
    if (lc.oom || tb.oom) {
        free(tb.buf);
        return oms_resp_problem(req, OMS_ENOMEM, "out of memory", NULL);
    }
    oms_resp_header(req, "X-Commit", s->commit);
    oms_resp_take(req, 200, "application/json", tb.buf, tb.len);
    return OMS_OK;
}

int oms_h_schema_export(oms_request *req)
{
    const char *branch = req->params[0];
    oms_snapshot *s;
    if (read_snapshot(req, branch, &s))
        return OMS_OK;
    if (oms_not_modified(req, s->commit))
        return OMS_OK;
    textbuf tb = {0};
    char *head = oms_arena_printf(req->arena, "{\"branch\":\"%s\",\"commit\":\"%s\",\"tree\":\"%s\"", branch,
                                  s->commit, s->tree);
    tb_add(&tb, head, strlen(head));
    for (int k = 0; k < OMS_KIND__COUNT; k++) {
        list_ctx lc = {.kind = (oms_kind)k, .status = -1};
        oms_snapshot_each(s, collect_kind, &lc);
        if (lc.n > 1)
            qsort(lc.items, lc.n, sizeof *lc.items, by_api_name);
        char *name = oms_arena_printf(req->arena, ",\"%s\":[", oms_kind_segment((oms_kind)k));
        tb_add(&tb, name, strlen(name));
        for (size_t i = 0; i < lc.n; i++) {
            if (i)
                tb_add(&tb, ",", 1);
            tb_add(&tb, lc.items[i]->text, lc.items[i]->len);
        }
        tb_add(&tb, "]", 1);
        free(lc.items);
        tb.oom = tb.oom || lc.oom;
    }
    tb_add(&tb, "}", 1);
    if (tb.oom) {
        free(tb.buf);
        return oms_resp_problem(req, OMS_ENOMEM, "out of memory", NULL);
    }
    oms_resp_etag(req, s->commit);
    oms_resp_take(req, 200, "application/json", tb.buf, tb.len);
    return OMS_OK;
}

/* ---- writes ---- */

/* The commit message from X-Commit-Message (percent-encoded for non-ASCII). */
static const char *commit_message(oms_request *req, bool *bad)
{
    *bad = false;
    const char *h = oms_req_header(req, "X-Commit-Message");
    if (!h)
        return NULL;
    oms_error err;
    size_t n;
    char *m = oms_pct_decode(h, strlen(h), req->arena, &n, &err);
    if (!m || !oms_utf8_valid(m, n) || n > 4096) {
        *bad = true;
        return NULL;
    }
    return m;
}

static void write_headers(oms_request *req, const oms_write_result *res)
{
    oms_resp_header(req, "X-Commit", res->commit);
}

static char *action_name(oms_request *req, oms_kind k, const char *verb)
{
    return oms_arena_printf(req->arena, "%s.%s", oms_kind_noun(k), verb);
}

/* Validates the request body as a document of the route's kind; on failure
 * a 400 with every error is queued. */
static bool valid_body(oms_request *req, oms_kind kind, const char *url_name)
{
    if (!json_is_object(req->json)) {
        oms_resp_problem(req, OMS_EINVAL, "the body must be a JSON object", NULL);
        return false;
    }
    json_t *errors = json_array();
    if (oms_validate_document(kind, req->json, url_name, errors) > 0) {
        oms_resp_problem_as(req, OMS_EINVAL, "invalid_document", "the document is not valid",
                            json_pack("{s:o}", "errors", errors));
        return false;
    }
    json_decref(errors);
    return true;
}

static int single_write(oms_request *req, oms_op_type type)
{
    const char *branch = req->params[0];
    oms_kind kind = param_kind(req);
    const char *url_name = type == OMS_OP_CREATE ? NULL : req->params[2];
    static const char *const verbs[] = {"create", "update", "delete"};
    req->ctx.audit_action = action_name(req, kind, verbs[type]);
    const char *if_match = oms_req_etag(req, "If-Match");
    if (type != OMS_OP_CREATE && !if_match)
        return oms_resp_problem(req, OMS_EPRECONDREQ, "this request needs If-Match with the resource's ETag", NULL);
    if (type != OMS_OP_DELETE && !valid_body(req, kind, url_name))
        return OMS_OK;
    bool bad;
    const char *message = commit_message(req, &bad);
    if (bad)
        return oms_resp_problem(req, OMS_EINVAL, "X-Commit-Message must be percent-encoded UTF-8, at most 4096 bytes", NULL);
    oms_write_op op = {.op = type, .kind = kind, .doc = type == OMS_OP_DELETE ? NULL : req->json};
    op.api_name = url_name ? url_name : json_string_value(json_object_get(req->json, "api_name"));
    if (type != OMS_OP_CREATE)
        op.if_match = if_match;
    oms_api_issue_keys(req, NULL, message);
    oms_write w = {.branch = branch, .if_match_head = type == OMS_OP_CREATE ? if_match : NULL, .ops = &op,
                   .nops = 1, .message = message, .audit_action = req->ctx.audit_action};
    oms_write_result res;
    oms_error err = {0};
    int rc = oms_vcs_write(oms_req_ctx(req), &w, &res, &err);
    if (rc) {
        oms_resp_error(req, rc, &err);
        oms_write_result_clear(&res);
        return OMS_OK;
    }
    write_headers(req, &res);
    if (type == OMS_OP_DELETE) {
        oms_resp_text(req, 204, "application/json", "", 0);
    } else {
        const oms_entry *e = oms_snapshot_get(res.snap, kind, op.api_name);
        if (type == OMS_OP_CREATE) {
            char *loc = oms_arena_printf(req->arena, "/api/v1/schemas/%s/%s/%s", req->path.seg[3],
                                         oms_kind_segment(kind), op.api_name);
            oms_resp_header(req, "Location", loc);
        }
        respond_entry(req, type == OMS_OP_CREATE ? 201 : 200, e, branch);
    }
    oms_write_result_clear(&res);
    return OMS_OK;
}

int oms_h_resource_create(oms_request *req) { return single_write(req, OMS_OP_CREATE); }
int oms_h_resource_replace(oms_request *req) { return single_write(req, OMS_OP_REPLACE); }
int oms_h_resource_delete(oms_request *req) { return single_write(req, OMS_OP_DELETE); }

/* ---- batch and validate ---- */

static const char *const k_batch_fields[] = {"message", "issue_id", "issue_ids", "operations", NULL};
static const char *const k_op_fields[] = {"op", "kind", "api_name", "document", "if_match", NULL};

static bool only_fields(const json_t *o, const char *const *allowed, const char *where, json_t *errors)
{
    const char *key;
    json_t *v;
    bool ok = true;
    json_object_foreach((json_t *)o, key, v) {
        bool known = false;
        for (size_t i = 0; allowed[i]; i++)
            known = known || strcmp(key, allowed[i]) == 0;
        if (!known) {
            json_array_append_new(errors, json_pack("{s:s,s:s}", "path", where, "message", "unknown field"));
            json_object_set_new(json_array_get(errors, json_array_size(errors) - 1), "field", json_string(key));
            ok = false;
        }
    }
    return ok;
}

/* Parses {"message","issue_ids","operations":[...]} into ops; documents are
 * validated in place. Errors carry the operation's index. */
static int parse_batch(oms_request *req, oms_write_op **out, size_t *n, json_t *errors)
{
    json_t *body = req->json;
    if (!json_is_object(body)) {
        json_array_append_new(errors, json_pack("{s:s,s:s}", "path", "", "message", "the body must be a JSON object"));
        return -1;
    }
    only_fields(body, k_batch_fields, "", errors);
    json_t *ops = json_object_get(body, "operations");
    if (!json_is_array(ops) || json_array_size(ops) == 0 || json_array_size(ops) > 10000) {
        json_array_append_new(errors, json_pack("{s:s,s:s}", "path", "/operations", "message",
                                                "operations must be a non-empty array of at most 10000"));
        return -1;
    }
    const json_t *msg = json_object_get(body, "message");
    if (msg && !json_is_string(msg))
        json_array_append_new(errors, json_pack("{s:s,s:s}", "path", "/message", "message", "must be a string"));
    *n = json_array_size(ops);
    *out = oms_arena_alloc(req->arena, *n * sizeof **out);
    size_t i;
    json_t *o;
    json_array_foreach(ops, i, o) {
        char *where = oms_arena_printf(req->arena, "/operations/%zu", i);
        oms_write_op *op = &(*out)[i];
        if (!json_is_object(o)) {
            json_array_append_new(errors, json_pack("{s:s,s:s}", "path", where, "message", "must be an object"));
            continue;
        }
        only_fields(o, k_op_fields, where, errors);
        const char *opname = json_string_value(json_object_get(o, "op"));
        const char *kind = json_string_value(json_object_get(o, "kind"));
        const char *name = json_string_value(json_object_get(o, "api_name"));
        json_t *doc = json_object_get(o, "document");
        const char *if_match = json_string_value(json_object_get(o, "if_match"));
        if (!opname || (strcmp(opname, "create") && strcmp(opname, "replace") && strcmp(opname, "delete"))) {
            json_array_append_new(errors, json_pack("{s:s,s:s}", "path", oms_arena_printf(req->arena, "%s/op", where),
                                                    "message", "op must be create, replace or delete"));
            continue;
        }
        op->op = !strcmp(opname, "create") ? OMS_OP_CREATE : !strcmp(opname, "replace") ? OMS_OP_REPLACE : OMS_OP_DELETE;
        if (!kind || oms_kind_parse(&op->kind, kind)) {
            json_array_append_new(errors, json_pack("{s:s,s:s}", "path", oms_arena_printf(req->arena, "%s/kind", where),
                                                    "message", "unknown kind"));
            continue;
        }
        if (op->op != OMS_OP_CREATE && (!name || !oms_valid_api_name(name))) {
            json_array_append_new(errors, json_pack("{s:s,s:s}", "path", oms_arena_printf(req->arena, "%s/api_name", where),
                                                    "message", "api_name is required and must match ^[A-Za-z][A-Za-z0-9_]{0,99}$"));
            continue;
        }
        op->if_match = if_match;
        if (op->op == OMS_OP_DELETE) {
            if (doc)
                json_array_append_new(errors, json_pack("{s:s,s:s}", "path", oms_arena_printf(req->arena, "%s/document", where),
                                                        "message", "a delete takes no document"));
            op->api_name = name;
            continue;
        }
        if (!json_is_object(doc)) {
            json_array_append_new(errors, json_pack("{s:s,s:s}", "path", oms_arena_printf(req->arena, "%s/document", where),
                                                    "message", "document must be an object"));
            continue;
        }
        json_t *errs = json_array();
        if (oms_validate_document(op->kind, doc, name, errs) > 0) {
            size_t k;
            json_t *e;
            json_array_foreach(errs, k, e) {
                json_t *copy = json_deep_copy(e);
                json_object_set_new(copy, "path", json_sprintf("%s/document%s", where, json_string_value(json_object_get(e, "path"))));
                json_array_append_new(errors, copy);
            }
        }
        json_decref(errs);
        op->doc = doc;
        op->api_name = json_string_value(json_object_get(doc, "api_name"));
        if (!op->api_name)
            op->api_name = "";
    }
    return json_array_size(errors) ? -1 : 0;
}

static int batch(oms_request *req, bool dry_run)
{
    const char *branch = req->params[0];
    req->ctx.audit_action = dry_run ? NULL : "schema.changes";
    json_t *errors = json_array();
    oms_write_op *ops = NULL;
    size_t n = 0;
    if (parse_batch(req, &ops, &n, errors)) {
        if (dry_run)
            return oms_resp_json(req, 200, json_pack("{s:b,s:o,s:b,s:[]}", "valid", 0, "errors", errors, "breaking", 0, "changes"));
        return oms_resp_problem_as(req, OMS_EINVAL, "invalid_document", "the change set is not valid",
                                   json_pack("{s:o}", "errors", errors));
    }
    json_decref(errors);
    const char *message = json_string_value(json_object_get(req->json, "message"));
    oms_api_issue_keys(req, req->json, message);
    oms_write w = {.branch = branch, .if_match_head = oms_req_etag(req, "If-Match"), .ops = ops, .nops = n,
                   .message = message, .dry_run = dry_run, .audit_action = "schema.changes"};
    oms_write_result res;
    oms_error err = {0};
    oms_ctx *ctx = oms_req_ctx(req);
    int rc = oms_vcs_write(ctx, &w, &res, &err);
    if (dry_run) {
        json_t *out;
        if (rc == OMS_OK || rc == OMS_ECONFLICT || rc == OMS_EPRECOND || rc == OMS_ENOTFOUND) {
            json_t *extra = oms_ctx_take_problem_extra(ctx);
            json_t *errs = json_object_get(extra, "errors");
            json_t *list = errs ? json_incref(errs) : json_array();
            if (rc && !errs)
                json_array_append_new(list, json_pack("{s:s,s:s,s:O?}", "code", err.problem ? err.problem : oms_err_problem_code((oms_err)rc),
                                                      "message", err.msg, "detail", extra));
            json_decref(extra);
            json_t *changes = res.changes ? json_incref(res.changes) : json_array();
            out = json_pack("{s:b,s:o,s:b,s:o}", "valid", rc == OMS_OK, "errors", list, "breaking", res.breaking,
                            "changes", changes);
            oms_resp_json(req, 200, out);
        } else {
            oms_resp_error(req, rc, &err);
        }
        oms_write_result_clear(&res);
        return OMS_OK;
    }
    if (rc) {
        oms_resp_error(req, rc, &err);
        oms_write_result_clear(&res);
        return OMS_OK;
    }
    write_headers(req, &res);
    oms_resp_etag(req, res.commit);
    oms_resp_json(req, 200, json_pack("{s:s,s:b,s:b,s:O}", "commit", res.commit, "changed", res.changed,
                                      "breaking", res.breaking, "changes", res.changes));
    oms_write_result_clear(&res);
    return OMS_OK;
}

int oms_h_schema_changes(oms_request *req) { return batch(req, false); }
int oms_h_schema_validate(oms_request *req) { return batch(req, true); }
