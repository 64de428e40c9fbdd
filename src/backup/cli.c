/* The commands: `oms backup -o FILE [--compress] [--level N] [--quiet]`,
 * `oms backup --verify FILE [--json]`, `oms restore FILE [--force]
 * [--quiet]`. Exit 0 on success, 1 when the file or the database refuses
 * (a damaged file, a non-empty target), 2 on usage and configuration. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "audit/audit.h"
#include "backup/backup.h"
#include "backup/restore.h"
#include "infra/config.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 2

static int usage(void)
{
    fprintf(stderr, "usage: oms backup -o FILE [--compress] [--level N] [--quiet]\n"
                    "       oms backup --verify FILE [--json]\n"
                    "       oms restore FILE [--force] [--quiet]\n"
                    "a FILE ending in .zst is compressed (zstd); see docs/backup.md\n");
    return EXIT_USAGE;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int open_store(oms_store **out, const oms_config *cfg, oms_error *err)
{
    const char *url = oms_config_str(cfg, "DATABASE_URL");
    int busy = (int)oms_config_int(cfg, "OMS_DB_BUSY_TIMEOUT_MS");
    return oms_store_open(out, url, busy > 0 ? busy : 5000, err);
}

static int verify_cmd(const oms_config *cfg, const char *path, bool as_json)
{
    oms_error err;
    bool have_key = oms_audit_load_key_offline(cfg, &err) == OMS_OK;
    if (!have_key && err.code != OMS_ENOTFOUND) {
        fprintf(stderr, "oms: backup --verify: %s\n", err.msg);
        return EXIT_USAGE;
    }
    oms_bk_summary sum;
    oms_bk_check_counts n = {0};
    int rc = oms_restore_verify_file(path, have_key, true, &sum, &n, &err);
    if (as_json) {
        json_t *o = json_pack("{s:s,s:b}", "file", path, "ok", rc == OMS_OK);
        if (rc)
            json_object_set_new(o, "reason", json_string(err.msg));
        else
            json_object_update_new(
                o, json_pack("{s:i,s:i,s:s,s:s,s:b,s:I,s:i,s:I,s:I,s:I,s:I,s:I,s:b,s:s}", "format_version",
                             sum.format_version, "schema_version", sum.schema_version, "created_at", sum.created_at,
                             "source_backend", sum.source_backend, "compressed", sum.compressed, "rows",
                             (json_int_t)sum.rows, "sections", sum.nsections, "objects", (json_int_t)n.objects,
                             "commits", (json_int_t)n.commits, "branches", (json_int_t)n.branches, "audit_events",
                             (json_int_t)n.events, "checkpoints", (json_int_t)n.checkpoints, "signatures_checked",
                             n.signatures_checked, "sha256", sum.sha256));
        char *s = json_dumps(o, JSON_COMPACT);
        if (s)
            puts(s);
        free(s);
        json_decref(o);
        return rc ? EXIT_FAILED : 0;
    }
    if (rc) {
        fprintf(stderr, "oms: backup --verify: %s: %s\n", path, err.msg);
        return EXIT_FAILED;
    }
    printf("%s: OK: format %d, schema version %d, %lld records in %d sections (%s%s, written %s from %s)\n"
           "  %lld objects, %lld commits, %lld branches, %lld audit events, %lld checkpoints (%s)\n"
           "  sha256 %s\n",
           path, sum.format_version, sum.schema_version, (long long)sum.rows, sum.nsections,
           sum.compressed ? "zstd" : "plain", "", sum.created_at, sum.source_backend, (long long)n.objects,
           (long long)n.commits, (long long)n.branches, (long long)n.events, (long long)n.checkpoints,
           n.signatures_checked ? "signatures verified" : "signatures not checked: no audit key", sum.sha256);
    return 0;
}

/* A backup exports the whole audit log: it is audited like an export
 * (SPEC §9), after the snapshot, in a transaction of its own. A database
 * that cannot take the event (a read-only standby) still gets its backup,
 * with a warning. */
static void record_backup(oms_store *s, const char *path, const oms_backup_result *res)
{
    oms_error err;
    json_t *d = json_pack("{s:s,s:s,s:I}", "file", path, "sha256", res->sha256, "rows", (json_int_t)res->rows);
    char *detail = d ? json_dumps(d, JSON_COMPACT) : NULL;
    oms_audit_event ev = {.actor_sub = "oms", .action = "backup.create", .outcome = "success", .detail = detail};
    if (!detail || oms_audit_record(s, &ev, &err))
        fprintf(stderr, "oms: backup: warning: the backup was written but could not be audited: %s\n",
                detail ? err.msg : "out of memory");
    free(detail);
    json_decref(d);
}

int oms_backup_cli(oms_config *cfg, int argc, char **argv)
{
    const char *out = NULL, *verify = NULL;
    bool compress = false, quiet = false, as_json = false;
    long level = 3;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && v) { out = v; i++; }
        else if (!strcmp(a, "--verify") && v) { verify = v; i++; }
        else if (!strcmp(a, "--compress") || !strcmp(a, "-z")) compress = true;
        else if (!strcmp(a, "--level") && v) {
            level = strtol(v, &end, 10);
            if (!end || *end || level < 1 || level > 19)
                return usage();
            compress = true;
            i++;
        } else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) quiet = true;
        else if (!strcmp(a, "--json")) as_json = true;
        else return usage();
    }
    if (verify && !out)
        return verify_cmd(cfg, verify, as_json);
    if (!out || verify)
        return usage();
    if (ends_with(out, ".zst"))
        compress = true;
    oms_error err;
    oms_store *s = NULL;
    if (open_store(&s, cfg, &err)) {
        fprintf(stderr, "oms: backup: database unreachable: %s\n", err.msg);
        return EXIT_USAGE;
    }
    oms_backup_result res;
    int rc = oms_backup_write(s, out, compress ? (int)level : 0, quiet, &res, &err);
    if (rc == OMS_OK)
        record_backup(s, out, &res);
    oms_store_close(s);
    if (rc) {
        fprintf(stderr, "oms: backup: %s\n", err.msg);
        return rc == OMS_ECONFIG ? EXIT_USAGE : EXIT_FAILED;
    }
    struct stat st;
    long long bytes = stat(out, &st) == 0 ? (long long)st.st_size : (long long)res.bytes;
    printf("backup: wrote %s: %lld records, %lld bytes%s, sha256 %s\n", out, (long long)res.rows, bytes,
           compress ? " (zstd)" : "", res.sha256);
    return 0;
}

int oms_restore_cli(oms_config *cfg, int argc, char **argv)
{
    const char *path = NULL;
    bool force = false, quiet = false;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--force")) force = true;
        else if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q")) quiet = true;
        else if (argv[i][0] != '-' && !path) path = argv[i];
        else return usage();
    }
    if (!path)
        return usage();
    oms_error err;
    /* the key first, and pass 1 before the target is even opened: a
     * damaged file or a wrong key leaves the target untouched */
    if (oms_audit_load_key_offline(cfg, &err)) {
        fprintf(stderr, "oms: restore: %s; restore verifies the backup's signed audit checkpoints with the key that"
                        " signed them\n", err.msg);
        return EXIT_USAGE;
    }
    oms_bk_summary sum;
    if (oms_restore_verify_file(path, true, quiet, &sum, NULL, &err)) {
        fprintf(stderr, "oms: restore: refusing %s: %s; nothing was written\n", path, err.msg);
        return EXIT_FAILED;
    }
    if (!quiet)
        fprintf(stderr, "restore: %s verified (%lld records, sha256 %s)\n", path, (long long)sum.rows, sum.sha256);
    oms_store *s = NULL;
    if (open_store(&s, cfg, &err)) {
        fprintf(stderr, "oms: restore: database unreachable: %s\n", err.msg);
        return EXIT_USAGE;
    }
    int rc = oms_restore_run(s, path, force, quiet, &sum, &err);
    const char *backend = oms_db_backend_name(s->db);
    if (rc)
        fprintf(stderr, "oms: restore: refusing %s: %s; nothing was written\n", path, err.msg);
    else
        printf("restore: restored %s into %s: %lld records; hashes, references and the audit chain verified\n", path,
               backend, (long long)sum.rows);
    oms_store_close(s);
    return rc == OMS_OK ? 0 : rc == OMS_ECONFIG ? EXIT_USAGE : EXIT_FAILED;
}
