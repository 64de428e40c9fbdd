/* Writes the record format of format.h: every line goes to the output and
 * into the whole-file hash; section lines also into the section's hash. */
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "backup/format.h"
#include "util/alloc.h"
#include "util/encoding.h"

struct oms_bk_writer {
    oms_bk_out *o;
    EVP_MD_CTX *whole, *sect;
    const oms_backup_section *cur;
    size_t ncols;
    int64_t sect_rows, rows;
    json_t *manifest;
};

static void digest_hex(EVP_MD_CTX *ctx, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx, md, &n);
    oms_hex(out, md, sizeof md);
}

/* One line (without its '\n'), hashed into the whole file and, inside a
 * section, into the section. */
static int put_line(oms_bk_writer *w, const char *s, size_t len, bool in_section, oms_error *err)
{
    EVP_DigestUpdate(w->whole, s, len);
    EVP_DigestUpdate(w->whole, "\n", 1);
    if (in_section) {
        EVP_DigestUpdate(w->sect, s, len);
        EVP_DigestUpdate(w->sect, "\n", 1);
    }
    int rc = oms_bk_out_write(w->o, s, len, err);
    return rc ? rc : oms_bk_out_write(w->o, "\n", 1, err);
}

static int put_json(oms_bk_writer *w, json_t *j, bool in_section, oms_error *err)
{
    if (!j)
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (!s)
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    int rc = put_line(w, s, strlen(s), in_section, err);
    free(s);
    return rc;
}

int oms_bk_writer_new(oms_bk_writer **out, oms_bk_out *o, json_t *header, oms_error *err)
{
    *out = NULL;
    oms_bk_writer *w = oms_xcalloc(1, sizeof *w);
    w->o = o;
    w->whole = EVP_MD_CTX_new();
    w->sect = EVP_MD_CTX_new();
    int sv = (int)json_integer_value(json_object_get(header, "schema_version"));
    w->manifest = oms_bk_manifest_new(sv);
    if (!w->whole || !w->sect || !w->manifest) {
        oms_bk_writer_free(w);
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    }
    EVP_DigestInit_ex(w->whole, EVP_sha256(), NULL);
    json_t *h = json_pack("{s:s,s:i}", "format", "oms-backup", "format_version", OMS_BK_FORMAT_VERSION);
    int rc = h && json_object_update(h, header) == 0 ? OMS_OK : oms_err_set(err, OMS_ENOMEM, "out of memory");
    if (rc == OMS_OK)
        rc = put_line(w, OMS_BK_MAGIC, strlen(OMS_BK_MAGIC) - 1, false, err);
    if (rc == OMS_OK) {
        rc = put_json(w, h, false, err);
        h = NULL;
    }
    json_decref(h);
    if (rc) {
        oms_bk_writer_free(w);
        return rc;
    }
    *out = w;
    return OMS_OK;
}

int oms_bk_writer_section(oms_bk_writer *w, const oms_backup_section *s, oms_error *err)
{
    json_t *cols = json_array();
    if (!cols)
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    for (size_t i = 0; s->columns[i]; i++)
        json_array_append_new(cols, json_string(s->columns[i]));
    w->cur = s;
    w->ncols = oms_backup_section_ncols(s);
    w->sect_rows = 0;
    EVP_DigestInit_ex(w->sect, EVP_sha256(), NULL);
    return put_json(w, json_pack("{s:s,s:o}", "section", s->name, "columns", cols), true, err);
}

int oms_bk_writer_row(oms_bk_writer *w, const char *const *cells, oms_error *err)
{
    json_t *row = json_array();
    if (!row)
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    for (size_t i = 0; i < w->ncols; i++) {
        json_t *v = cells[i] ? json_string(cells[i]) : json_null();
        if (!v) {
            json_decref(row);
            return oms_err_set(err, OMS_EINVAL, "section %s, column %s: the value is not valid UTF-8", w->cur->name,
                               w->cur->columns[i]);
        }
        json_array_append_new(row, v);
    }
    w->sect_rows++;
    w->rows++;
    return put_json(w, row, true, err);
}

int oms_bk_writer_end_section(oms_bk_writer *w, oms_error *err)
{
    char h[65];
    digest_hex(w->sect, h);
    if (oms_bk_manifest_add(w->manifest, w->cur->name, w->sect_rows, h))
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    return put_json(w, json_pack("{s:s,s:I,s:s}", "end", w->cur->name, "rows", (json_int_t)w->sect_rows, "sha256", h),
                    false, err);
}

int oms_bk_writer_finish(oms_bk_writer *w, char sha256[65], oms_error *err)
{
    char h[65];
    EVP_MD_CTX *copy = EVP_MD_CTX_new();
    if (!copy)
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
    EVP_MD_CTX_copy_ex(copy, w->whole);
    digest_hex(copy, h);
    EVP_MD_CTX_free(copy);
    if (sha256)
        memcpy(sha256, h, 65);
    json_t *t = json_pack("{s:O,s:s}", "manifest", w->manifest, "sha256", h);
    return put_json(w, t, false, err);
}

int64_t oms_bk_writer_rows(const oms_bk_writer *w) { return w->rows; }

void oms_bk_writer_free(oms_bk_writer *w)
{
    if (!w)
        return;
    EVP_MD_CTX_free(w->whole);
    EVP_MD_CTX_free(w->sect);
    json_decref(w->manifest);
    free(w);
}
