/* The backup file format (docs/backup.md): JSON lines, optionally inside one
 * zstd frame.
 *
 *   OMS-BACKUP 1                                       magic and format version
 *   {"format":"oms-backup","format_version":1,...}    header
 *   {"section":"objects","columns":[...]}             a section: its header,
 *   ["<hash>","tree","{}"]                             its records (cells as
 *   ...                                                strings or null),
 *   {"end":"objects","rows":N,"sha256":"..."}          its end: rows and SHA-256
 *   ...                                                of header + records
 *   {"manifest":{...},"sha256":"..."}                  trailer: the manifest and
 *                                                      the SHA-256 of every byte
 *                                                      before this line
 *
 * Sections come in the order of oms_backup_sections, every one present. */
#ifndef OMS_BACKUP_FORMAT_H
#define OMS_BACKUP_FORMAT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "backup/stream.h"
#include "store/backup_sql.h"

#define OMS_BK_MAGIC "OMS-BACKUP 1\n"
#define OMS_BK_FORMAT_VERSION 1

/* ---- writing ---- */

typedef struct oms_bk_writer oms_bk_writer;

/* Writes the magic and the header (`header` is borrowed; format and
 * format_version are added). */
int oms_bk_writer_new(oms_bk_writer **out, oms_bk_out *o, json_t *header, oms_error *err);
int oms_bk_writer_section(oms_bk_writer *w, const oms_backup_section *s, oms_error *err);
int oms_bk_writer_row(oms_bk_writer *w, const char *const *cells, oms_error *err);
int oms_bk_writer_end_section(oms_bk_writer *w, oms_error *err);
/* The trailer; *sha256 (may be NULL) gets the whole file's hash. */
int oms_bk_writer_finish(oms_bk_writer *w, char sha256[65], oms_error *err);
int64_t oms_bk_writer_rows(const oms_bk_writer *w);
void oms_bk_writer_free(oms_bk_writer *w);

/* ---- reading ---- */

/* What a reader hands to its consumer. Every callback may be NULL;
 * returning an error stops the read. Cells are borrowed until the next
 * call; `row` is the record itself (json_incref to keep it). */
typedef struct {
    int (*header)(void *ctx, const json_t *header, oms_error *err);
    int (*section)(void *ctx, const oms_backup_section *s, oms_error *err);
    int (*row)(void *ctx, const oms_backup_section *s, const char *const *cells, json_t *row, oms_error *err);
    int (*section_end)(void *ctx, const oms_backup_section *s, int64_t rows, oms_error *err);
} oms_bk_sink;

typedef struct {
    bool compressed;
    int format_version;
    int schema_version;
    char created_at[40];
    char source_backend[16];
    int64_t rows;     /* records in all sections */
    int nsections;
    char sha256[65];  /* the whole file's, as the trailer states and the reader computed */
} oms_bk_summary;

/* Reads and checks the file's structure and every hash, feeding the
 * sink. A damaged file fails with OMS_EINVAL and a message naming the
 * section, the record and what is wrong. */
int oms_bk_read(const char *path, const oms_bk_sink *sink, void *ctx, oms_bk_summary *sum, oms_error *err);

/* ---- the manifest (manifest.c) ---- */

/* {"format_version", "schema_version", "sections": [{"name","rows","sha256"}], "rows"} */
json_t *oms_bk_manifest_new(int schema_version);
int oms_bk_manifest_add(json_t *m, const char *section, int64_t rows, const char *sha256);
/* Compares the trailer's manifest with what the reader saw (`seen`, built
 * the same way); false with a message naming the first difference. */
bool oms_bk_manifest_match(const json_t *trailer, const json_t *seen, char *why, size_t cap);

#endif
