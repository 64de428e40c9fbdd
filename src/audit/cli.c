/* `oms audit verify | export | archive | seal | report | rebuild-facets`
 * (SPEC §2, §9).
 * Exit codes: 0 done (verify: intact), 1 verify found tampering or archive
 * refused a log that does not verify, 2 cannot run (configuration,
 * database). Commands that read the log record their own audit event, with
 * the operating-system user in its detail. */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit/internal.h"
#include "audit/monitor.h"
#include "infra/config.h"
#include "util/time.h"

#define EXIT_TAMPERED 1
#define EXIT_CANNOT 2

static int cannot(const char *what, const oms_error *err)
{
    fprintf(stderr, "oms: audit %s: %s\n", what, err->msg);
    return EXIT_CANNOT;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: oms audit verify [--json] [--archive FILE]\n"
            "       oms audit export [--format jsonl|csv] [--from T] [--to T] [--actor SUB] [--action A|PREFIX.*]\n"
            "                        [--resource KIND[/NAME]] [--branch B] [--outcome success|denied|failure]\n"
            "       oms audit archive [--before T] --out FILE   (T defaults to now - OMS_AUDIT_RETENTION_DAYS)\n"
            "       oms audit seal\n"
            "       oms audit report [--from T] [--to T] [--format json|csv|html]\n"
            "       oms audit rebuild-facets   (after verify found the facets of filtered reads altered)\n"
            "times are RFC 3339 (2026-01-31T00:00:00Z) or dates (2026-01-31)\n");
    return EXIT_CANNOT;
}

/* Opens a fully migrated store and loads the key: `sign` for the commands
 * that sign checkpoints (seal, archive), which may create it only for a
 * database without checkpoints and refuse one that did not sign them;
 * verify and report only read it (verify must not invent the key it checks
 * against, and reports a wrong one as bad checkpoints). */
static int open_audit_store(oms_store **out, oms_config *cfg, bool need_key, bool sign, oms_error *err)
{
    int rc = oms_store_open(out, oms_config_str(cfg, "DATABASE_URL"), (int)oms_config_int(cfg, "OMS_DB_BUSY_TIMEOUT_MS"),
                            err);
    if (rc)
        return rc;
    int v = 0;
    if ((rc = oms_store_schema_version(*out, &v, err)) == OMS_OK && v < oms_store_latest_version(*out))
        rc = oms_err_set(err, OMS_ECONFIG, "the database is at schema version %d of %d: run oms migrate", v,
                         oms_store_latest_version(*out));
    if (rc == OMS_OK && need_key)
        rc = oms_audit_load_key(cfg, *out, sign, err);
    if (rc) {
        oms_store_close(*out);
        *out = NULL;
    }
    return rc;
}

/* Records the command's own event and seals it (with a key), so a CLI
 * read never leaves an unsealed tail behind. */
static void record(oms_store *s, const char *action, const char *command, json_t *detail)
{
    struct passwd *pw = getpwuid(geteuid());
    json_object_set_new(detail, "os_user", json_string(pw && pw->pw_name ? pw->pw_name : "unknown"));
    char *d = json_dumps(detail, JSON_COMPACT);
    json_decref(detail);
    oms_audit_event ev = {.actor_sub = "oms-cli", .action = action, .outcome = "success", .resource_kind = "audit",
                          .client_addr = "local", .user_agent = command, .detail = d};
    oms_error err;
    if (oms_audit_record(s, &ev, &err) != OMS_OK)
        fprintf(stderr, "oms: warning: %s\n", err.msg);
    else if (oms_audit_may_sign() && oms_audit_seal(s, NULL, &err) != OMS_OK)
        fprintf(stderr, "oms: warning: cannot seal: %s\n", err.msg);
    free(d);
}

static int cmd_verify(oms_config *cfg, int argc, char **argv)
{
    bool as_json = false;
    const char *archive = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            as_json = true;
        else if (!strcmp(argv[i], "--archive") && i + 1 < argc)
            archive = argv[++i];
        else
            return usage();
    }
    oms_error err;
    oms_store *s = NULL;
    if (open_audit_store(&s, cfg, true, false, &err))
        return cannot("verify", &err);
    int code;
    if (archive) {
        bool ok;
        json_t *sum = NULL;
        if (oms_audit_archive_verify(s, archive, &ok, &sum, &err)) {
            oms_store_close(s);
            return cannot("verify", &err);
        }
        char *t = json_dumps(sum, JSON_COMPACT);
        if (as_json)
            printf("%s\n", t);
        else if (ok)
            printf("archive ok: %s holds chain positions %lld to %lld, as its signed record says\n", archive,
                   (long long)json_integer_value(json_object_get(sum, "from_pos")),
                   (long long)json_integer_value(json_object_get(sum, "to_pos")));
        else
            printf("archive TAMPERED: %s: %s\n", archive, json_string_value(json_object_get(sum, "reason")));
        free(t);
        json_decref(sum);
        if (!ok) {
            json_t *al = json_pack("{s:s,s:s,s:s?}", "rule", "audit_verification_failed", "by", "cli archive",
                                   "reason", json_string_value(json_object_get(sum, "reason")));
            oms_monitor_raise_now(s, NULL, "audit_verification_failed", "critical", al);
            json_decref(al);
        }
        code = ok ? 0 : EXIT_TAMPERED;
    } else {
        oms_audit_verify_result v;
        if (oms_audit_verify(s, &v, &err)) {
            oms_store_close(s);
            return cannot("verify", &err);
        }
        if (as_json) {
            json_t *j = oms_audit_verify_json(&v);
            char *t = json_dumps(j, JSON_COMPACT);
            printf("%s\n", t);
            free(t);
            json_decref(j);
        } else if (v.ok) {
            printf("audit chain ok: %lld events (seq %lld to %lld) at chain positions up to %lld, %lld checkpoints,"
                   " sealed up to position %lld, %lld unsealed, %lld pending (not chained yet%s)\n",
                   (long long)v.events, (long long)v.first_seq, (long long)v.last_seq, (long long)v.last_pos,
                   (long long)v.checkpoints, (long long)v.sealed_upto, (long long)v.unsealed, (long long)v.pending,
                   v.overdue ? "; some for longer than the grace period: is a server sealing?" : "");
        } else {
            printf("audit chain TAMPERED: first bad seq %lld%s: %s\n", (long long)v.first_bad_seq,
                   v.bad_checkpoint ? " (checkpoint)" : "", v.reason);
            if (v.bad_checkpoint)
                printf("bad checkpoint: %lld\n", (long long)v.bad_checkpoint);
        }
        record(s, "audit.verify", "oms audit verify", json_pack("{s:b,s:I}", "ok", v.ok, "first_bad_seq", (json_int_t)v.first_bad_seq));
        if (!v.ok) {
            json_t *al = json_pack("{s:s,s:s,s:I,s:I,s:s}", "rule", "audit_verification_failed", "by", "cli",
                                   "first_bad_seq", (json_int_t)v.first_bad_seq, "bad_checkpoint",
                                   (json_int_t)v.bad_checkpoint, "reason", v.reason);
            oms_monitor_raise_now(s, NULL, "audit_verification_failed", "critical", al);
            json_decref(al);
        }
        code = v.ok ? 0 : EXIT_TAMPERED;
    }
    oms_store_close(s);
    return code;
}

static int cmd_export(oms_config *cfg, int argc, char **argv)
{
    oms_audit_filter f;
    memset(&f, 0, sizeof f);
    oms_audit_format fmt = OMS_AUDIT_JSONL;
    oms_error err;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0 || i + 1 >= argc)
            return usage();
        const char *name = argv[i] + 2, *v = argv[++i];
        if (!strcmp(name, "format")) {
            if (!strcmp(v, "csv"))
                fmt = OMS_AUDIT_CSV;
            else if (strcmp(v, "jsonl"))
                return usage();
        } else if (!strcmp(name, "order") || !oms_audit_filter_set(&f, name, v, &err)) {
            if (strcmp(name, "order"))
                fprintf(stderr, "oms: audit export: %s\n", err.msg);
            return usage();
        }
    }
    oms_store *s = NULL;
    if (open_audit_store(&s, cfg, false, false, &err))
        return cannot("export", &err);
    oms_audit_exporter *x = NULL;
    if (oms_audit_exporter_new(&x, s->db, &f, fmt, &err)) {
        oms_store_close(s);
        return cannot("export", &err);
    }
    /* Recorded before the data leaves, as the API does. */
    record(s, "audit.export", "oms audit export",
           json_pack("{s:o,s:s}", "filter", oms_audit_filter_json(&f), "format", fmt == OMS_AUDIT_CSV ? "csv" : "jsonl"));
    char buf[65536];
    long n;
    while ((n = oms_audit_exporter_read(x, buf, sizeof buf)) > 0)
        fwrite(buf, 1, (size_t)n, stdout);
    oms_audit_exporter_free(x);
    oms_store_close(s);
    if (n < 0 || fflush(stdout) != 0) {
        fprintf(stderr, "oms: audit export: the export was cut short\n");
        return EXIT_CANNOT;
    }
    return 0;
}

static int cmd_archive(oms_config *cfg, int argc, char **argv)
{
    const char *out = NULL, *before_arg = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc)
            out = argv[++i];
        else if (!strcmp(argv[i], "--before") && i + 1 < argc)
            before_arg = argv[++i];
        else
            return usage();
    }
    if (!out)
        return usage();
    int64_t before;
    if (before_arg) {
        if (!oms_audit_parse_time(before_arg, &before)) {
            fprintf(stderr, "oms: audit archive: --before must be an RFC 3339 time\n");
            return EXIT_CANNOT;
        }
    } else {
        before = oms_now_ms() - oms_config_int(cfg, "OMS_AUDIT_RETENTION_DAYS") * 86400LL * 1000;
    }
    oms_error err;
    oms_store *s = NULL;
    if (open_audit_store(&s, cfg, true, true, &err))
        return cannot("archive", &err);
    json_t *sum = NULL;
    int rc = oms_audit_archive(s, before, out, &sum, &err);
    oms_store_close(s);
    if (rc) {
        fprintf(stderr, "oms: audit archive: %s\n", err.msg);
        return rc == OMS_EAUDIT ? EXIT_TAMPERED : EXIT_CANNOT;
    }
    if (json_integer_value(json_object_get(sum, "archived")) == 0)
        printf("nothing to archive before %s\n", json_string_value(json_object_get(sum, "before")));
    else
        printf("archived %lld events (chain positions %lld to %lld) into %s, sha256 %s; signed record %lld\n",
               (long long)json_integer_value(json_object_get(sum, "archived")),
               (long long)json_integer_value(json_object_get(sum, "from_pos")),
               (long long)json_integer_value(json_object_get(sum, "to_pos")), out,
               json_string_value(json_object_get(sum, "sha256")),
               (long long)json_integer_value(json_object_get(sum, "record")));
    json_decref(sum);
    return 0;
}

static int cmd_seal(oms_config *cfg, int argc, char **argv)
{
    if (argc)
        return usage();
    oms_error err;
    oms_store *s = NULL;
    if (open_audit_store(&s, cfg, true, true, &err))
        return cannot("seal", &err);
    int64_t upto = 0;
    int rc = oms_audit_seal(s, &upto, &err);
    oms_store_close(s);
    if (rc)
        return cannot("seal", &err);
    if (upto)
        printf("chained and sealed up to chain position %lld\n", (long long)upto);
    else
        printf("nothing to seal\n");
    return 0;
}

static int cmd_report(oms_config *cfg, int argc, char **argv)
{
    const char *format = "json";
    int64_t to = oms_now_ms() + 1, from = 0;
    bool has_from = false;
    for (int i = 0; i < argc; i++) {
        if (i + 1 >= argc)
            return usage();
        if (!strcmp(argv[i], "--format"))
            format = argv[++i];
        else if (!strcmp(argv[i], "--from") && oms_audit_parse_time(argv[i + 1], &from))
            has_from = ++i > 0;
        else if (!strcmp(argv[i], "--to") && oms_audit_parse_time(argv[i + 1], &to))
            i++;
        else
            return usage();
    }
    if (strcmp(format, "json") && strcmp(format, "csv") && strcmp(format, "html"))
        return usage();
    if (!has_from)
        from = to - 30LL * 86400 * 1000;
    oms_error err;
    oms_store *s = NULL;
    if (open_audit_store(&s, cfg, true, false, &err))
        return cannot("report", &err);
    const char *exempt = oms_config_str(cfg, "OMS_ISSUE_EXEMPT_BRANCHES");
    json_t *rep = oms_compliance_report(s, exempt ? exempt : "sandbox/**,personal/**", from, to, &err);
    if (!rep) {
        oms_store_close(s);
        return cannot("report", &err);
    }
    record(s, "compliance.report", "oms audit report",
           json_pack("{s:O,s:s}", "period", json_object_get(rep, "period"), "format", format));
    oms_store_close(s);
    char *out = !strcmp(format, "csv")    ? oms_compliance_report_csv(rep)
                : !strcmp(format, "html") ? oms_compliance_report_html(rep)
                                          : json_dumps(rep, JSON_INDENT(2));
    json_decref(rep);
    if (out)
        fputs(out, stdout);
    if (out && !strcmp(format, "json"))
        fputc('\n', stdout);
    free(out);
    return 0;
}

/* The facets of filtered reads written again from the events (facets.c).
 * Verification does not need to pass first: the chain is checked by
 * verify, and what the facets held before is in this command's event. */
static int cmd_rebuild_facets(oms_config *cfg, int argc, char **argv)
{
    (void)argv;
    if (argc)
        return usage();
    oms_error err;
    oms_store *s = NULL;
    if (open_audit_store(&s, cfg, true, false, &err))
        return cannot("rebuild-facets", &err);
    struct passwd *pw = getpwuid(geteuid());
    json_t *sum = NULL;
    int rc = oms_audit_facets_rebuild(s, pw && pw->pw_name ? pw->pw_name : "unknown", &sum, &err);
    if (rc == OMS_OK && oms_audit_may_sign() && oms_audit_seal(s, NULL, &err) != OMS_OK)
        fprintf(stderr, "oms: warning: cannot seal: %s\n", err.msg);
    oms_store_close(s);
    if (rc)
        return cannot("rebuild-facets", &err);
    long long differs = (long long)json_integer_value(json_object_get(sum, "first_differing_seq"));
    long long orphan = (long long)json_integer_value(json_object_get(sum, "first_orphan_seq"));
    printf("rebuilt the audit log's facets: %lld rows", (long long)json_integer_value(json_object_get(sum, "rows")));
    if (!differs && !orphan)
        printf("; they were intact\n");
    else
        printf("; before, the first event with a missing or altered row was seq %lld, the first row without its"
               " event seq %lld (0: none)\n", differs, orphan);
    json_decref(sum);
    return 0;
}

int oms_audit_cli(oms_config *cfg, int argc, char **argv)
{
    if (argc < 1)
        return usage();
    if (!strcmp(argv[0], "verify"))
        return cmd_verify(cfg, argc - 1, argv + 1);
    if (!strcmp(argv[0], "export"))
        return cmd_export(cfg, argc - 1, argv + 1);
    if (!strcmp(argv[0], "archive"))
        return cmd_archive(cfg, argc - 1, argv + 1);
    if (!strcmp(argv[0], "seal"))
        return cmd_seal(cfg, argc - 1, argv + 1);
    if (!strcmp(argv[0], "report"))
        return cmd_report(cfg, argc - 1, argv + 1);
    if (!strcmp(argv[0], "rebuild-facets"))
        return cmd_rebuild_facets(cfg, argc - 1, argv + 1);
    return usage();
}
