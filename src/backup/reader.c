/* Reads the record format of format.h and checks its structure as it
 * goes: the magic, the header, the sections in their order with their
 * columns, each record's shape, each section's count and SHA-256, the
 * manifest and the whole file's SHA-256, and nothing after the trailer.
 * Every finding names where it is (section, record, line). */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup/format.h"
#include "util/alloc.h"
#include "util/encoding.h"

typedef struct {
    oms_bk_in *in;
    EVP_MD_CTX *whole, *sect;
    int64_t lineno;
    const char *line;
    size_t len;
} rd;

static void digest_hex(EVP_MD_CTX *ctx, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    EVP_MD_CTX *copy = EVP_MD_CTX_new();
    if (!copy) {
        memset(out, '0', 64);
        out[64] = '\0';
        return;
    }
    EVP_MD_CTX_copy_ex(copy, ctx);
    EVP_DigestFinal_ex(copy, md, &n);
    EVP_MD_CTX_free(copy);
    oms_hex(out, md, sizeof md);
}

/* The next line: 1, 0 at the end (a last line without '\n' is damage), or
 * an error. */
static int next(rd *r, const char *where, oms_error *err)
{
    int rc = oms_bk_in_line(r->in, &r->line, &r->len, err);
    if (rc < 0)
        return rc;
    if (rc == 0 && r->len > 0)
        return oms_err_set(err, OMS_EINVAL, "truncated file: it ends inside a record (%s, line %lld)", where,
                           (long long)r->lineno + 1);
    if (rc == 0)
        return 0;
    r->lineno++;
    return 1;
}

static void hash_line(rd *r, bool in_section)
{
    EVP_DigestUpdate(r->whole, r->line, r->len);
    if (in_section)
        EVP_DigestUpdate(r->sect, r->line, r->len);
}

static json_t *parse(rd *r, const char *what, oms_error *err)
{
    json_error_t je;
    json_t *j = json_loadb(r->line, r->len - 1, JSON_REJECT_DUPLICATES, &je);
    if (!j)
        oms_err_set(err, OMS_EINVAL, "damaged file: %s (line %lld) is not valid JSON", what, (long long)r->lineno);
    return j;
}

static int expect_more(int rc, const char *where, oms_error *err)
{
    if (rc == 0)
        return oms_err_set(err, OMS_EINVAL, "truncated file: it ends %s", where);
    return rc;
}

static int read_header(rd *r, const oms_bk_sink *sink, void *ctx, oms_bk_summary *sum, oms_error *err)
{
    int rc = next(r, "the magic line", err);
    if (rc <= 0)
        return expect_more(rc, "before its first line", err);
    if (r->len != strlen(OMS_BK_MAGIC) || memcmp(r->line, OMS_BK_MAGIC, r->len) != 0) {
        if (r->len >= 11 && memcmp(r->line, "OMS-BACKUP ", 11) == 0)
            return oms_err_set(err, OMS_EINVAL, "unsupported backup format version (this oms reads version %d)",
                               OMS_BK_FORMAT_VERSION);
        return oms_err_set(err, OMS_EINVAL, "not an OMS backup file (no OMS-BACKUP magic line)");
    }
    hash_line(r, false);
    if ((rc = next(r, "the header", err)) <= 0)
        return expect_more(rc, "before its header", err);
    hash_line(r, false);
    json_t *h = parse(r, "the header", err);
    if (!h)
        return OMS_EINVAL;
    const char *fmt = json_string_value(json_object_get(h, "format"));
    json_t *fv = json_object_get(h, "format_version"), *sv = json_object_get(h, "schema_version");
    if (!fmt || strcmp(fmt, "oms-backup") != 0 || !json_is_integer(fv) || !json_is_integer(sv)) {
        json_decref(h);
        return oms_err_set(err, OMS_EINVAL, "damaged file: the header lacks format, format_version or schema_version");
    }
    if (json_integer_value(fv) != OMS_BK_FORMAT_VERSION) {
        json_decref(h);
        return oms_err_set(err, OMS_EINVAL, "unsupported backup format version %lld (this oms reads version %d)",
                           (long long)json_integer_value(fv), OMS_BK_FORMAT_VERSION);
    }
    sum->format_version = (int)json_integer_value(fv);
    sum->schema_version = (int)json_integer_value(sv);
    snprintf(sum->created_at, sizeof sum->created_at, "%s",
             json_string_value(json_object_get(h, "created_at")) ? json_string_value(json_object_get(h, "created_at"))
                                                                  : "");
    snprintf(sum->source_backend, sizeof sum->source_backend, "%s",
             json_string_value(json_object_get(h, "source_backend"))
                 ? json_string_value(json_object_get(h, "source_backend"))
                 : "");
    rc = sink && sink->header ? sink->header(ctx, h, err) : OMS_OK;
    json_decref(h);
    return rc;
}

static bool columns_match(const json_t *cols, const oms_backup_section *s)
{
    size_t n = oms_backup_section_ncols(s);
    if (!json_is_array(cols) || json_array_size(cols) != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        const char *c = json_string_value(json_array_get(cols, i));
        if (!c || strcmp(c, s->columns[i]) != 0)
            return false;
    }
    return true;
}

static int read_section(rd *r, const oms_backup_section *s, const oms_bk_sink *sink, void *ctx, json_t *seen,
                        oms_error *err)
{
    char where[96];
    snprintf(where, sizeof where, "before section %s", s->name);
    int rc = next(r, where, err);
    if (rc <= 0)
        return expect_more(rc, where, err);
    rc = OMS_OK;
    hash_line(r, false);
    EVP_DigestInit_ex(r->sect, EVP_sha256(), NULL);
    EVP_DigestUpdate(r->sect, r->line, r->len);
    json_t *h = parse(r, "a section header", err);
    if (!h)
        return OMS_EINVAL;
    const char *name = json_string_value(json_object_get(h, "section"));
    if (!name || strcmp(name, s->name) != 0) {
        rc = oms_err_set(err, OMS_EINVAL, "damaged file: section %s expected at line %lld, found %s", s->name,
                         (long long)r->lineno, name ? name : "something else");
        json_decref(h);
        return rc;
    }
    if (!columns_match(json_object_get(h, "columns"), s)) {
        json_decref(h);
        return oms_err_set(err, OMS_EINVAL, "section %s: its columns differ from this schema's", s->name);
    }
    json_decref(h);
    if (sink && sink->section && (rc = sink->section(ctx, s, err)))
        return rc;
    size_t ncols = oms_backup_section_ncols(s);
    const char **cells = oms_xcalloc(ncols, sizeof *cells);
    int64_t rows = 0;
    snprintf(where, sizeof where, "inside section %s", s->name);
    for (;;) {
        if ((rc = next(r, where, err)) <= 0) {
            rc = rc ? rc
                    : oms_err_set(err, OMS_EINVAL, "truncated file: it ends inside section %s (after %lld records)",
                                  s->name, (long long)rows);
            break;
        }
        rc = OMS_OK;
        hash_line(r, false);
        if (r->line[0] == '{') { /* the section's end */
            json_t *e = parse(r, "a section end", err);
            if (!e) {
                rc = OMS_EINVAL;
                break;
            }
            const char *en = json_string_value(json_object_get(e, "end"));
            const char *eh = json_string_value(json_object_get(e, "sha256"));
            json_t *er = json_object_get(e, "rows");
            char h2[65];
            digest_hex(r->sect, h2);
            if (!en || strcmp(en, s->name) != 0 || !eh || !json_is_integer(er))
                rc = oms_err_set(err, OMS_EINVAL, "damaged file: section %s has no proper end (line %lld)", s->name,
                                 (long long)r->lineno);
            else if (json_integer_value(er) != rows)
                rc = oms_err_set(err, OMS_EINVAL, "section %s: %lld records found, its end says %lld (records removed"
                                 " or added)", s->name, (long long)rows, (long long)json_integer_value(er));
            else if (strcmp(eh, h2) != 0)
                rc = oms_err_set(err, OMS_EINVAL, "section %s: SHA-256 mismatch (records damaged, reordered or"
                                 " changed)", s->name);
            else if (oms_bk_manifest_add(seen, s->name, rows, h2))
                rc = oms_err_set(err, OMS_ENOMEM, "out of memory");
            json_decref(e);
            if (rc == OMS_OK && sink && sink->section_end)
                rc = sink->section_end(ctx, s, rows, err);
            break;
        }
        EVP_DigestUpdate(r->sect, r->line, r->len);
        rows++;
        char what[96];
        snprintf(what, sizeof what, "section %s, record %lld", s->name, (long long)rows);
        json_t *row = parse(r, what, err);
        if (!row) {
            rc = OMS_EINVAL;
            break;
        }
        if (!json_is_array(row) || json_array_size(row) != ncols) {
            rc = oms_err_set(err, OMS_EINVAL, "damaged file: %s (line %lld) does not have %zu cells", what,
                             (long long)r->lineno, ncols);
            json_decref(row);
            break;
        }
        for (size_t i = 0; i < ncols && rc == OMS_OK; i++) {
            json_t *v = json_array_get(row, i);
            if (json_is_null(v))
                cells[i] = NULL;
            else if (json_is_string(v))
                cells[i] = json_string_value(v);
            else
                rc = oms_err_set(err, OMS_EINVAL, "damaged file: %s, column %s is neither text nor null", what,
                                 s->columns[i]);
        }
        if (rc == OMS_OK && sink && sink->row)
            rc = sink->row(ctx, s, cells, row, err);
        json_decref(row);
        if (rc)
            break;
    }
    free(cells);
    return rc;
}

static int read_trailer(rd *r, json_t *seen, oms_bk_summary *sum, oms_error *err)
{
    char whole[65];
    digest_hex(r->whole, whole);
    int rc = next(r, "the trailer", err);
    if (rc <= 0)
        return expect_more(rc, "before its manifest (the trailer is missing)", err);
    rc = OMS_OK;
    json_t *t = parse(r, "the trailer", err);
    if (!t)
        return OMS_EINVAL;
    char why[200];
    const char *h = json_string_value(json_object_get(t, "sha256"));
    if (!json_object_get(t, "manifest") || !h)
        rc = oms_err_set(err, OMS_EINVAL, "damaged file: the trailer (line %lld) lacks its manifest or SHA-256",
                         (long long)r->lineno);
    else if (!oms_bk_manifest_match(json_object_get(t, "manifest"), seen, why, sizeof why))
        rc = oms_err_set(err, OMS_EINVAL, "manifest: %s", why);
    else if (strcmp(h, whole) != 0)
        rc = oms_err_set(err, OMS_EINVAL, "whole-file SHA-256 mismatch: the file was changed after it was written");
    json_decref(t);
    if (rc)
        return rc;
    memcpy(sum->sha256, whole, sizeof whole);
    rc = next(r, "after the trailer", err);
    if (rc < 0)
        return rc;
    if (rc > 0)
        return oms_err_set(err, OMS_EINVAL, "damaged file: data after the trailer (line %lld)", (long long)r->lineno);
    return OMS_OK;
}

int oms_bk_read(const char *path, const oms_bk_sink *sink, void *ctx, oms_bk_summary *sum, oms_error *err)
{
    memset(sum, 0, sizeof *sum);
    rd r = {0};
    json_t *seen = NULL;
    int rc = oms_bk_in_open(&r.in, path, err);
    if (rc)
        return rc;
    sum->compressed = oms_bk_in_compressed(r.in);
    r.whole = EVP_MD_CTX_new();
    r.sect = EVP_MD_CTX_new();
    if (!r.whole || !r.sect) {
        rc = oms_err_set(err, OMS_ENOMEM, "out of memory");
        goto cleanup;
    }
    EVP_DigestInit_ex(r.whole, EVP_sha256(), NULL);
    if ((rc = read_header(&r, sink, ctx, sum, err)))
        goto cleanup;
    if (!(seen = oms_bk_manifest_new(sum->schema_version))) {
        rc = oms_err_set(err, OMS_ENOMEM, "out of memory");
        goto cleanup;
    }
    for (const oms_backup_section *s = oms_backup_sections; s->name; s++) {
        if (s->since > sum->schema_version)
            continue; /* a file of an earlier schema has no such section */
        if ((rc = read_section(&r, s, sink, ctx, seen, err)))
            goto cleanup;
        sum->nsections++;
    }
    sum->rows = json_integer_value(json_object_get(seen, "rows"));
    rc = read_trailer(&r, seen, sum, err);
cleanup:
    json_decref(seen);
    EVP_MD_CTX_free(r.whole);
    EVP_MD_CTX_free(r.sect);
    oms_bk_in_close(r.in);
    return rc;
}
