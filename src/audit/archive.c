/* Retention (docs/audit.md "Archiving"): `oms audit archive` moves a sealed,
 * verified range of chain positions (old events with their links) into a
 * file and leaves a signed archive record of it. The rows are deleted in
 * the same transaction that appends the record; the delete triggers let
 * through only rows an archive record covers, so nothing else can remove
 * events or links, and verification then starts from the record's chain
 * hash. Only this command (never the service) deletes events. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit/internal.h"
#include "store/audit_sql.h"
#include "util/alloc.h"
#include "util/encoding.h"
#include "util/time.h"

typedef struct {
    int fd;
    EVP_MD_CTX *md;
    int64_t bytes;
    bool failed;
} out_file;

static void out_write(out_file *o, const char *s, size_t n)
{
    if (o->failed)
        return;
    EVP_DigestUpdate(o->md, s, n);
    o->bytes += (int64_t)n;
    while (n) {
        ssize_t w = write(o->fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            o->failed = true;
            return;
        }
        s += w;
        n -= (size_t)w;
    }
}

/* A position as stored: its chain position, then the event's columns with
 * the chain link; numbers as numbers, text as strings, NULL as null. */
static json_t *raw_row(int64_t pos, const char *const f[AC__COUNT])
{
    json_t *o = json_object();
    json_object_set_new(o, "pos", json_integer(pos));
    for (int k = 0; k < AC__COUNT; k++) {
        const char *v = f[k];
        json_t *j;
        if (!v)
            j = json_null();
        else if (k == AC_SEQ || k == AC_TIME || k == AC_STATUS)
            j = json_integer(strtoll(v, NULL, 10));
        else
            j = json_string(v);
        json_object_set_new(o, oms_audit_col_names[k], j ? j : json_null());
    }
    return o;
}

static void fsync_dir(const char *path)
{
    char *copy = oms_xstrdup(path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(copy);
}

static bool write_row(void *ctx, const oms_audit_walk *w, const char *const f[AC__COUNT])
{
    out_file *o = ctx;
    json_t *row = raw_row(w->last_pos, f);
    char *line = json_dumps(row, JSON_COMPACT);
    json_decref(row);
    if (!line) {
        o->failed = true;
        return false;
    }
    out_write(o, line, strlen(line));
    out_write(o, "\n", 1);
    free(line);
    return !o->failed;
}

/* The last position to archive: the furthest sealed one, after the last
 * archive, whose event is older than `before`. */
static int range_end(oms_dbconn *c, int64_t before_ms, int64_t start_after, int64_t sealed, int64_t legacy_upto,
                     int64_t *to_pos, oms_error *err)
{
    int rc = oms_store_audit_archive_chain_end(c, before_ms, start_after, sealed, to_pos, err);
    if (rc || *to_pos || start_after >= legacy_upto)
        return rc;
    /* Legacy positions are their events' seqs. */
    return oms_store_audit_archive_legacy_end(c, before_ms, start_after, sealed < legacy_upto ? sealed : legacy_upto,
                                              to_pos, err);
}

int oms_audit_archive(oms_store *s, int64_t before_ms, const char *path, json_t **summary, oms_error *err)
{
    *summary = NULL;
    int rc = oms_audit_seal(s, NULL, err);
    if (rc)
        return rc;
    oms_audit_verify_result v;
    if ((rc = oms_audit_verify(s, &v, err)))
        return rc;
    if (!v.ok)
        return oms_err_set(err, OMS_EAUDIT, "refusing to archive: the audit log does not verify (%s)", v.reason);
    oms_dbconn *c;
    if ((rc = oms_db_conn(s->db, &c, err)))
        return rc;

    /* The range: chain positions after the last archive. */
    int64_t start_after = v.archived_upto, legacy_upto, to_pos;
    char start_hash[65] = AUDIT_GENESIS;
    bool found;
    if ((rc = oms_store_audit_archive_start_hash(c, start_after, &found, start_hash, err)))
        return rc;
    if ((rc = oms_audit_legacy_upto(c, &legacy_upto, err)) ||
        (rc = range_end(c, before_ms, start_after, v.sealed_upto, legacy_upto, &to_pos, err)))
        return rc;
    char before[40];
    oms_time_rfc3339_ms(before, sizeof before, before_ms);
    if (to_pos == 0) {
        *summary = json_pack("{s:I,s:s}", "archived", (json_int_t)0, "before", before);
        return OMS_OK;
    }

    out_file o = {.fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600), .md = EVP_MD_CTX_new()};
    if (o.fd < 0) {
        EVP_MD_CTX_free(o.md);
        return oms_err_set(err, OMS_EIO, "cannot create %s: %s", path, strerror(errno));
    }
    EVP_DigestInit_ex(o.md, EVP_sha256(), NULL);
    json_t *hdr = json_pack("{s:i,s:I,s:I,s:I,s:s,s:s,s:s}", "oms_audit_archive", 2, "from_pos",
                            (json_int_t)start_after + 1, "to_pos", (json_int_t)to_pos, "legacy_upto",
                            (json_int_t)legacy_upto, "prev_hash", start_hash, "before", before, "created_by",
                            oms_audit_instance());
    char *line = json_dumps(hdr, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(hdr);
    out_write(&o, line, strlen(line));
    out_write(&o, "\n", 1);
    free(line);

    oms_audit_walk w;
    oms_audit_walk_init(&w, legacy_upto, start_after, start_hash);
    bool broken = false;
    rc = oms_audit_walk_db(c, &w, to_pos, 0, write_row, &o, &broken, err);
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_DigestFinal_ex(o.md, md, &mdlen);
    EVP_MD_CTX_free(o.md);
    char sha[65];
    oms_hex(sha, md, sizeof md);
    bool synced = !o.failed && fsync(o.fd) == 0;
    close(o.fd);
    if (rc == OMS_OK && (broken || w.last_pos != to_pos))
        rc = oms_err_set(err, OMS_EAUDIT,
                         "the range changed while it was archived (chain position %lld): nothing was deleted",
                         (long long)(w.bad_pos ? w.bad_pos : w.last_pos + 1));
    if (rc == OMS_OK && !synced)
        rc = oms_err_set(err, OMS_EIO, "cannot write %s: nothing was deleted", path);
    if (rc) {
        unlink(path);
        return rc;
    }
    fsync_dir(path);

    /* One transaction: the signed record, the deletes it permits (events
     * first: their delete trigger finds their chain position), and the
     * audit event of the archiving itself. */
    char *name_copy = oms_xstrdup(path);
    json_t *detail = json_pack("{s:s,s:s,s:I,s:s}", "file", basename(name_copy), "sha256", sha, "bytes",
                               (json_int_t)o.bytes, "before", before);
    free(name_copy);
    char *dtext = json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS);
    oms_audit_checkpoint cp = {.kind = "archive", .from_seq = start_after + 1, .upto_seq = to_pos,
                               .event_count = w.count, .time_ms = oms_now_ms(), .detail = dtext};
    memcpy(cp.chain_hash, w.prev, sizeof cp.chain_hash);
    if ((rc = oms_db_begin(c, true, err)) == OMS_OK) {
        char range[64];
        snprintf(range, sizeof range, "%lld-%lld", (long long)start_after + 1, (long long)to_pos);
        oms_audit_event ev = {.actor_sub = "oms-cli", .action = "audit.archive", .outcome = "success",
                              .resource_kind = "audit", .resource_id = range, .detail = dtext, .client_addr = "local",
                              .user_agent = "oms audit archive"};
        if ((rc = oms_store_audit_seal_lock(c, err)) ||
            (rc = oms_audit_checkpoint_insert(c, &cp, err)) ||
            (rc = oms_store_audit_archive_delete(c, to_pos, legacy_upto, err)) ||
            (rc = oms_audit_append(c, &ev, err)) || (rc = oms_db_commit(c, err)))
            oms_db_rollback(c);
    }
    free(dtext);
    if (rc) {
        unlink(path);
        json_decref(detail);
        return rc;
    }
    json_object_set_new(detail, "archived", json_integer(w.count));
    json_object_set_new(detail, "from_pos", json_integer(start_after + 1));
    json_object_set_new(detail, "to_pos", json_integer(to_pos));
    json_object_set_new(detail, "chain_hash", json_string(w.prev));
    json_object_set_new(detail, "record", json_integer(cp.id));
    *summary = detail;
    return OMS_OK;
}

/* ---- checking a file against its record ---- */

/* Version 1 files (before schema version 8) name positions by seq and mark
 * no legacy range: the whole range is walked as legacy-tolerant, as then;
 * the signed chain hash covers every row either way. */
int oms_audit_archive_verify(oms_store *s, const char *path, bool *ok, json_t **summary, oms_error *err)
{
    *ok = false;
    *summary = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return oms_err_set(err, OMS_EIO, "cannot read %s: %s", path, strerror(errno));
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    json_t *hdr = NULL;
    int version = 0;
    int64_t from = 0, to = 0;
    oms_audit_walk w;
    oms_audit_walk_init(&w, 0, 0, NULL);
    bool broken = false;
    const char *why = NULL;
    while ((n = getline(&line, &cap, f)) > 0) {
        EVP_DigestUpdate(md, line, (size_t)n);
        if (broken)
            continue;
        json_t *j = json_loadb(line, (size_t)n, 0, NULL);
        if (!hdr) {
            hdr = j;
            version = (int)json_integer_value(json_object_get(hdr, "oms_audit_archive"));
            if (!json_is_object(hdr) || (version != 1 && version != 2)) {
                broken = true;
                why = "not an OMS audit archive";
                continue;
            }
            from = json_integer_value(json_object_get(hdr, version == 1 ? "from_seq" : "from_pos"));
            to = json_integer_value(json_object_get(hdr, version == 1 ? "to_seq" : "to_pos"));
            oms_audit_walk_init(&w, version == 1 ? to : json_integer_value(json_object_get(hdr, "legacy_upto")),
                                from - 1, json_string_value(json_object_get(hdr, "prev_hash")));
            continue;
        }
        const char *fields[AC__COUNT];
        char nums[3][24];
        int ni = 0;
        for (int k = 0; k < AC__COUNT; k++) {
            json_t *v = json_object_get(j, oms_audit_col_names[k]);
            if (json_is_integer(v) && ni < 3) {
                snprintf(nums[ni], sizeof nums[ni], "%lld", (long long)json_integer_value(v));
                fields[k] = nums[ni++];
            } else {
                fields[k] = json_string_value(v);
            }
        }
        int64_t seq = json_integer_value(json_object_get(j, "seq"));
        int64_t pos = version == 1 ? seq : json_integer_value(json_object_get(j, "pos"));
        if (!json_is_object(j) || !fields[AC_SEQ] || !oms_audit_walk_row(&w, pos, seq, fields)) {
            broken = true;
            why = w.reason[0] ? w.reason : "malformed row";
        }
        json_decref(j);
    }
    free(line);
    fclose(f);
    unsigned char d[32];
    unsigned int dl = 0;
    EVP_DigestFinal_ex(md, d, &dl);
    EVP_MD_CTX_free(md);
    char sha[65];
    oms_hex(sha, d, sizeof d);
    if (!hdr) {
        return oms_err_set(err, OMS_EINVAL, "%s is empty", path);
    }
    json_decref(hdr);
    /* The signed record of this range. */
    oms_dbconn *c;
    oms_dbres *r = NULL;
    int rc = oms_db_conn(s->db, &c, err);
    if (rc == OMS_OK)
        rc = oms_store_audit_archive_records(c, from, to, &r, err);
    if (rc)
        return rc;
    oms_audit_checkpoint cp = {0};
    bool found = r->nrows > 0;
    if (found)
        oms_audit_checkpoint_from_row(&cp, r, 0);
    oms_dbres_free(r);
    char h[65];
    json_t *detail = found && cp.detail ? json_loads(cp.detail, 0, NULL) : NULL;
    const char *rec_sha = json_string_value(json_object_get(detail, "sha256"));
    if (!why && !found)
        why = "no archive record covers this range";
    else if (!why && (!oms_audit_checkpoint_hmac(h, &cp) || strcmp(h, cp.hmac) != 0))
        why = "the archive record is forged or modified";
    else if (!why && (!rec_sha || strcmp(rec_sha, sha) != 0))
        why = "the file's sha256 differs from the signed record";
    else if (!why && (w.last_pos != to || strcmp(w.prev, cp.chain_hash) != 0 || w.count != cp.event_count))
        why = "the file's events do not match the signed record";
    *ok = why == NULL;
    *summary = json_pack("{s:b,s:s,s:I,s:I,s:I,s:s}", "ok", *ok, "file", path, "from_pos", (json_int_t)from, "to_pos",
                         (json_int_t)to, "events", (json_int_t)w.count, "sha256", sha);
    if (why)
        json_object_set_new(*summary, "reason", json_string(why));
    json_decref(detail);
    oms_audit_checkpoint_clear(&cp);
    return OMS_OK;
}
