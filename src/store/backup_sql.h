/* Storage operations of backup and restore (docs/backup.md): the tables a
 * backup holds, read in keyset pages inside one snapshot, and written back
 * inside one restore transaction. Both dialects side by side, columns by
 * name; nothing outside src/store knows which database it talks to. */
#ifndef OMS_BACKUP_SQL_H
#define OMS_BACKUP_SQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* One section of a backup file: a table (or a joined view of the audit
 * log), its columns in file order, and how it is paged. */
typedef struct {
    const char *name;           /* section name in the file */
    const char *const *columns; /* NULL-terminated */
    int nkeys;                  /* the first nkeys columns order the rows */
    unsigned int_keys;          /* bit i: key column i is an integer */
    int since;                  /* the schema version that added it (0: always there); a
                                 * file of an earlier version has no such section */
} oms_backup_section;

/* The sections in file order (ends with a NULL name). */
extern const oms_backup_section oms_backup_sections[];
const oms_backup_section *oms_backup_section_find(const char *name);
size_t oms_backup_section_ncols(const oms_backup_section *s);

/* Opens the backup's read transaction: one snapshot of the whole database
 * (PostgreSQL REPEATABLE READ READ ONLY; SQLite a deferred read transaction
 * pinned at its first read), with no statement deadline. */
int oms_backup_sql_begin_snapshot(oms_dbconn *c, oms_error *err);
/* Rows in a section (for progress). */
int oms_backup_sql_count(oms_dbconn *c, const oms_backup_section *s, int64_t *out, oms_error *err);
/* Up to `limit` rows of a section after the key `after` (the previous
 * page's last row's key cells; NULL: from the start), in key order, cells
 * in column order. */
int oms_backup_sql_page(oms_dbconn *c, const oms_backup_section *s, const char *const *after, int limit,
                        oms_dbres **out, oms_error *err);

/* ---- restore, inside the caller's write transaction ---- */

/* Opens the restore transaction: the write lock (SQLite), no statement
 * deadline and the migration lock (PostgreSQL). */
int oms_backup_sql_begin_restore(oms_dbconn *c, oms_error *err);
/* What the target holds beyond a fresh schema (0: nothing; schema
 * version 0 counts as empty). `what` names it when not empty. */
int oms_backup_sql_target_content(oms_dbconn *c, int version, int64_t *rows, char *what, size_t cap,
                                  oms_error *err);
/* At schema version > 0, drops every table, sequence and function of the
 * schema (restore replaces the whole database: OMS owns its database or
 * schema); at version 0 drops nothing. Then rebuilds the schema at the binary's
 * version and removes the rows the migrations seed (root commit, main,
 * counters), which the backup brings back. */
int oms_backup_sql_reset(oms_store *s, oms_dbconn *c, int version, oms_error *err);
/* Inserts `n` rows of a section, cells in column order (NULL for SQL
 * NULL). The audit log section fills audit_events and audit_chain. */
int oms_backup_sql_insert(oms_dbconn *c, const oms_backup_section *s, const char *const *cells, size_t n,
                          oms_error *err);
/* A file of schema version 13 (legacy JSON trees in objects): its trees
 * converted to the stored trie (migration 0014's own conversion). */
int oms_backup_sql_convert_trees(oms_dbconn *c, oms_error *err);
/* After the rows: sequences and counters continue after the restored
 * values (audit seq, lock fencing). */
int oms_backup_sql_finish(oms_dbconn *c, oms_error *err);
/* References the rows must satisfy (every commit's tree and parents,
 * branch heads, branch resources, tree entries' objects...). *ok false
 * with `what` naming the first dangling reference. */
int oms_backup_sql_check_refs(oms_dbconn *c, bool *ok, char *what, size_t cap, oms_error *err);

#endif
