/* Versioned migrations, one SQL file per version per backend
 * (src/store/migrations/NNNN_name.{sqlite,pg}.sql), embedded at build time. */
#ifndef OMS_MIGRATIONS_H
#define OMS_MIGRATIONS_H

typedef struct {
    int version;
    const char *backend; /* "sqlite" or "pg" */
    const char *name;
    const char *sql;
} oms_migration;

extern const oms_migration oms_migrations[];
extern const int oms_migrations_count;

#endif
