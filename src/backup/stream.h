/* Bytes in and out of a backup file, plain or zstd-compressed, in bounded
 * memory. Output goes to FILE.tmp (created 0600) and becomes FILE only when
 * it is complete and on disk; input detects compression by its magic and
 * yields lines. */
#ifndef OMS_BACKUP_STREAM_H
#define OMS_BACKUP_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

/* The longest record a reader accepts (a line of the file). */
#define OMS_BK_MAX_LINE (64u << 20)

typedef struct oms_bk_out oms_bk_out;

/* level 0: plain; 1..19: zstd at that level. Refuses an existing FILE. */
int oms_bk_out_open(oms_bk_out **out, const char *path, int level, oms_error *err);
int oms_bk_out_write(oms_bk_out *o, const void *data, size_t len, oms_error *err);
/* commit: finishes the stream, fsyncs and renames FILE.tmp to FILE (and
 * fsyncs the directory); else removes FILE.tmp. Frees `o` either way. */
int oms_bk_out_close(oms_bk_out *o, bool commit, oms_error *err);
/* Bytes written to the file so far (compressed size when compressed). */
int64_t oms_bk_out_bytes(const oms_bk_out *o);

typedef struct oms_bk_in oms_bk_in;

int oms_bk_in_open(oms_bk_in **out, const char *path, oms_error *err);
/* The next line with its '\n' (borrowed until the next call): 1, or 0 at
 * the end of the data (*len then holds the length of a last line without
 * '\n', 0 when none), or an error (a damaged or truncated compressed
 * stream, a read error, a line longer than OMS_BK_MAX_LINE). */
int oms_bk_in_line(oms_bk_in *in, const char **line, size_t *len, oms_error *err);
bool oms_bk_in_compressed(const oms_bk_in *in);
void oms_bk_in_close(oms_bk_in *in);

#endif
