/* The file-only checks of a backup (check.h). The hashes are the service's
 * own: objects by oms_sha256_hex over their canonical text, commits by
 * oms_commit_id, audit positions by the audit walker and checkpoints by
 * oms_audit_checkpoint_hmac (src/audit/internal.h, used here so that
 * restore verifies exactly what `oms audit verify` does). Memory stays
 * bounded: per checkpoint a position and a chain hash, nothing per event. */
#include "backup/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/internal.h"
#include "util/alloc.h"
#include "util/encoding.h"
#include "util/trie.h"
#include "vcs/commit.h"

typedef struct {
    int64_t id, upto;
    char chain_hash[65];
} seal;

struct oms_bk_check {
    bool have_key;
    oms_bk_check_counts n;
    /* checkpoints: the HMAC chain as it is read, then the valid ones */
    char prev_hmac[65];
    int64_t next_id;
    bool any_signed_ok;
    seal *seals;
    size_t nseals, cap;
    size_t next_seal;
    int64_t start_pos;   /* after the newest archive record */
    char start_hash[65];
    int64_t legacy_upto;
    oms_audit_walk w;
    bool walking;
};

oms_bk_check *oms_bk_check_new(bool have_key)
{
    oms_bk_check *c = oms_xcalloc(1, sizeof *c);
    c->have_key = have_key;
    c->n.signatures_checked = have_key;
    snprintf(c->prev_hmac, sizeof c->prev_hmac, "%s", AUDIT_GENESIS);
    snprintf(c->start_hash, sizeof c->start_hash, "%s", AUDIT_GENESIS);
    c->next_id = 1;
    return c;
}

void oms_bk_check_free(oms_bk_check *c)
{
    if (!c)
        return;
    free(c->seals);
    free(c);
}

void oms_bk_check_counts_get(const oms_bk_check *c, oms_bk_check_counts *out) { *out = c->n; }

static bool is(const oms_backup_section *s, const char *name) { return strcmp(s->name, name) == 0; }

static int check_object(oms_bk_check *c, const char *const *v, oms_error *err)
{
    /* hash, type, content */
    if (!v[0] || !v[1] || !v[2])
        return oms_err_set(err, OMS_EINVAL, "object %s: a required field is null", v[0] ? v[0] : "(unnamed)");
    if (strcmp(v[1], "resource") != 0 && strcmp(v[1], "tree") != 0)
        return oms_err_set(err, OMS_EINVAL, "object %s: unknown type", v[0]);
    char h[65];
    oms_sha256_hex(h, v[2], strlen(v[2]));
    if (strcmp(h, v[0]) != 0)
        return oms_err_set(err, OMS_EINVAL, "object %s: its content does not hash to its name (forged or modified)",
                           v[0]);
    c->n.objects++;
    return OMS_OK;
}

/* tree_nodes: hash, body (hex): the body hashes to the name and is a
 * well-formed node (util/trie.h). */
static int check_tree_node(oms_bk_check *c, const char *const *v, oms_error *err)
{
    const char *name = v[0] ? v[0] : "(unnamed)";
    unsigned char want[32], got[32];
    size_t len = 0;
    unsigned char *body = v[1] ? oms_trie_unhex_alloc(v[1], &len) : NULL;
    oms_trie_node n;
    int rc = OMS_OK;
    if (!v[0] || strlen(v[0]) != 64 || oms_trie_unhex(want, v[0], 32) || !body || oms_trie_parse(body, len, &n))
        rc = oms_err_set(err, OMS_EINVAL, "tree node %.64s: malformed", name);
    if (rc == OMS_OK) {
        oms_sha256(got, body, len);
        if (memcmp(got, want, 32) != 0)
            rc = oms_err_set(err, OMS_EINVAL, "tree node %.64s: its body does not hash to its name (forged or modified)",
                             name);
    }
    free(body);
    (void)c;
    return rc;
}

static int check_tree(const char *const *v, oms_error *err)
{
    unsigned char h[32];
    if (!v[0] || !v[1] || strlen(v[0]) != 64 || strlen(v[1]) != 64 || oms_trie_unhex(h, v[0], 32) ||
        oms_trie_unhex(h, v[1], 32))
        return oms_err_set(err, OMS_EINVAL, "tree %.64s: malformed", v[0] ? v[0] : "(unnamed)");
    return OMS_OK;
}

static int check_commit(oms_bk_check *c, const char *const *v, oms_error *err)
{
    /* id, tree, first_parent, parents, author, message, time_ms, issue_keys, override_id, generation */
    const char *id = v[0] ? v[0] : "(unnamed)";
    if (!v[0] || !v[1] || !v[3] || !v[4] || !v[5] || !v[6] || !v[7])
        return oms_err_set(err, OMS_EINVAL, "commit %s: a required field is null", id);
    int rc = OMS_OK;
    json_t *parents = json_loads(v[3], 0, NULL), *keys = json_loads(v[7], 0, NULL);
    oms_commit_info ci = {.tree = v[1], .author = v[4], .message = v[5], .override_id = v[8]};
    char *end = NULL;
    ci.time_ms = strtoll(v[6], &end, 10);
    if (!json_is_array(parents) || json_array_size(parents) > 2 || !json_is_array(keys) || !end || *end) {
        rc = oms_err_set(err, OMS_EINVAL, "commit %s: malformed parents, issue keys or time", id);
        goto cleanup;
    }
    ci.nparents = json_array_size(parents);
    for (size_t i = 0; i < ci.nparents; i++)
        if (!(ci.parents[i] = json_string_value(json_array_get(parents, i)))) {
            rc = oms_err_set(err, OMS_EINVAL, "commit %s: a parent is not a commit id", id);
            goto cleanup;
        }
    if ((ci.nparents ? !v[2] || strcmp(v[2], ci.parents[0]) != 0 : v[2] != NULL)) {
        rc = oms_err_set(err, OMS_EINVAL, "commit %s: first_parent does not match its parents", id);
        goto cleanup;
    }
    ci.issue_keys = keys;
    char h[65];
    if (oms_commit_id(&ci, h, NULL)) {
        rc = oms_err_set(err, OMS_ENOMEM, "out of memory");
        goto cleanup;
    }
    if (strcmp(h, v[0]) != 0) {
        rc = oms_err_set(err, OMS_EINVAL, "commit %s: its id is not the hash of its content (forged or modified)", id);
        goto cleanup;
    }
    c->n.commits++;
cleanup:
    json_decref(parents);
    json_decref(keys);
    return rc;
}

static int64_t num(const char *s) { return s ? strtoll(s, NULL, 10) : 0; }

/* id, kind, from_seq, upto_seq, chain_hash, event_count, time_ms, sealed_by, detail, prev_hmac, hmac:
 * OMS_AUDIT_CHECKPOINT_COLS order (src/store/audit_sql.h). */
static int check_checkpoint(oms_bk_check *c, const char *const *v, oms_error *err)
{
    oms_audit_checkpoint cp = {0};
    cp.id = num(v[0]);
    snprintf(cp.kind, sizeof cp.kind, "%s", v[1] ? v[1] : "");
    cp.from_seq = num(v[2]);
    cp.upto_seq = num(v[3]);
    snprintf(cp.chain_hash, sizeof cp.chain_hash, "%s", v[4] ? v[4] : "");
    cp.event_count = num(v[5]);
    cp.time_ms = num(v[6]);
    snprintf(cp.sealed_by, sizeof cp.sealed_by, "%s", v[7] ? v[7] : "");
    cp.detail = (char *)v[8];
    snprintf(cp.prev_hmac, sizeof cp.prev_hmac, "%s", v[9] ? v[9] : "");
    snprintf(cp.hmac, sizeof cp.hmac, "%s", v[10] ? v[10] : "");
    if (cp.id != c->next_id)
        return oms_err_set(err, OMS_EINVAL, "audit checkpoint %lld is missing (found %lld)", (long long)c->next_id,
                           (long long)cp.id);
    c->next_id++;
    if (c->have_key) {
        char mac[65];
        bool ok = strlen(cp.hmac) == 64 && oms_audit_checkpoint_hmac(mac, &cp) && oms_ct_equal(mac, cp.hmac, 64);
        if (!ok && !c->any_signed_ok)
            return oms_err_set(err, OMS_EINVAL,
                               "audit key mismatch: checkpoint %lld does not verify with the configured audit key;"
                               " restore needs OMS_AUDIT_KEY (or OMS_AUDIT_KEY_FILE) set to the key that signed this"
                               " backup's checkpoints",
                               (long long)cp.id);
        if (!ok)
            return oms_err_set(err, OMS_EINVAL, "audit checkpoint %lld is forged or modified (its HMAC does not verify)",
                               (long long)cp.id);
        c->any_signed_ok = true;
    }
    if (strcmp(cp.prev_hmac, c->prev_hmac) != 0)
        return oms_err_set(err, OMS_EINVAL, "audit checkpoint %lld does not follow its predecessor", (long long)cp.id);
    snprintf(c->prev_hmac, sizeof c->prev_hmac, "%s", cp.hmac);
    if (strcmp(cp.kind, "archive") == 0 && cp.upto_seq >= c->start_pos) {
        c->start_pos = cp.upto_seq;
        snprintf(c->start_hash, sizeof c->start_hash, "%s", cp.chain_hash);
    }
    if (c->nseals == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        seal *p = oms_xrealloc(c->seals, cap * sizeof *p);
        c->seals = p;
        c->cap = cap;
    }
    seal *s = &c->seals[c->nseals++];
    s->id = cp.id;
    s->upto = cp.upto_seq;
    snprintf(s->chain_hash, sizeof s->chain_hash, "%s", cp.chain_hash);
    c->n.checkpoints++;
    return OMS_OK;
}

static int cmp_upto(const void *a, const void *b)
{
    const seal *x = a, *y = b;
    return x->upto < y->upto ? -1 : x->upto > y->upto;
}

/* The checkpoints are all read: the walk starts after the newest archive
 * record and must meet every later checkpoint. */
static void start_walk(oms_bk_check *c)
{
    size_t k = 0;
    for (size_t i = 0; i < c->nseals; i++)
        if (c->seals[i].upto > c->start_pos)
            c->seals[k++] = c->seals[i];
    c->nseals = k;
    if (c->nseals)
        qsort(c->seals, c->nseals, sizeof *c->seals, cmp_upto);
    oms_audit_walk_init(&c->w, c->legacy_upto, c->start_pos, c->start_hash);
    c->walking = true;
}

/* pos, event_seq, link_prev_hash, link_hash, then the event's 25 columns */
static int check_position(oms_bk_check *c, const char *const *v, oms_error *err)
{
    if (!c->walking)
        start_walk(c);
    const char *f[AC__COUNT];
    for (int k = 0; k < AC__HASHED - 1; k++)
        f[k] = v[4 + k];
    f[AC_PREV_HASH] = v[2];
    f[AC_HASH] = v[3];
    int64_t pos = num(v[0]), seq = num(v[1]);
    if (pos <= c->start_pos)
        return oms_err_set(err, OMS_EINVAL, "audit log: chain position %lld was archived and should not be here",
                           (long long)pos);
    if (!oms_audit_walk_row(&c->w, pos, seq, f)) {
        if (c->w.bad_seq == 0) /* a gap: the file has another position where this one belongs */
            return oms_err_set(err, OMS_EINVAL,
                               "audit log: chain position %lld is missing, position %lld comes in its place (records"
                               " removed or reordered)",
                               (long long)c->w.bad_pos, (long long)pos);
        return oms_err_set(err, OMS_EINVAL, "audit log: seq %lld (chain position %lld): %s", (long long)c->w.bad_seq,
                           (long long)c->w.bad_pos, c->w.reason);
    }
    if (c->next_seal < c->nseals && c->seals[c->next_seal].upto < c->w.last_pos)
        return oms_err_set(err, OMS_EINVAL, "audit log: chain position %lld, sealed by checkpoint %lld, is missing",
                           (long long)c->seals[c->next_seal].upto, (long long)c->seals[c->next_seal].id);
    while (c->next_seal < c->nseals && c->seals[c->next_seal].upto == c->w.last_pos) {
        if (strcmp(c->seals[c->next_seal].chain_hash, c->w.prev) != 0)
            return oms_err_set(err, OMS_EINVAL,
                               "audit log: the chain up to position %lld does not match the signed checkpoint %lld"
                               " (events removed, inserted or rewritten)",
                               (long long)c->w.last_pos, (long long)c->seals[c->next_seal].id);
        c->next_seal++;
    }
    c->n.chain_positions++;
    if (v[4])
        c->n.events++;
    return OMS_OK;
}

static int on_row(void *ctx, const oms_backup_section *s, const char *const *v, json_t *row, oms_error *err)
{
    oms_bk_check *c = ctx;
    (void)row;
    if (is(s, "objects"))
        return check_object(c, v, err);
    if (is(s, "tree_nodes"))
        return check_tree_node(c, v, err);
    if (is(s, "trees"))
        return check_tree(v, err);
    if (is(s, "commits"))
        return check_commit(c, v, err);
    if (is(s, "branches"))
        c->n.branches++;
    else if (is(s, "audit_chain_head"))
        c->legacy_upto = num(v[3]);
    else if (is(s, "audit_checkpoints"))
        return check_checkpoint(c, v, err);
    else if (is(s, "audit_log"))
        return check_position(c, v, err);
    else if (is(s, "audit_events_other"))
        c->n.events++;
    return OMS_OK;
}

static int on_section_end(void *ctx, const oms_backup_section *s, int64_t rows, oms_error *err)
{
    oms_bk_check *c = ctx;
    (void)rows;
    if (!is(s, "audit_log"))
        return OMS_OK;
    if (!c->walking)
        start_walk(c);
    if (c->next_seal < c->nseals)
        return oms_err_set(err, OMS_EINVAL,
                           "audit log: chain positions from %lld on, sealed by checkpoint %lld, are missing",
                           (long long)c->w.last_pos + 1, (long long)c->seals[c->next_seal].id);
    return OMS_OK;
}

const oms_bk_sink oms_bk_check_sink = {.row = on_row, .section_end = on_section_end};
