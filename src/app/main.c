/* oms: subcommand dispatch. Configuration refusals exit with status 2 and
 * one clear line on stderr. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "audit/monitor.h"
#include "auth/identity.h"
#include "backup/backup.h"
#include "auth/jwt.h"
#include "auth/role_map.h"
#include "cli/cli.h"
#include "governance/issue_check.h"
#include "api/openapi.h"
#include "http/app.h"
#include "http/client_addr.h"
#include "http/ratelimit.h"
#include "auth/config_rules.h"
#include "infra/config.h"
#include "infra/log.h"
#include "search/cli.h"
#include "search/index.h"
#include "store/sole_writer.h"
#include "store/store.h"
#include "util/ids.h"
#include "util/alloc.h"
#include "util/heap.h"
#include "util/time.h"
#include "txn/change.h"
#include "vcs/diff_cache.h"
#include "vcs/snapshot_cache.h"
#include "vcs/write.h"
#include "webhooks/change_events.h"
#include "webhooks/sender.h"

extern char **environ;

#define EXIT_REFUSED 2

static int refuse_start(const char *what, const oms_error *err)
{
    fprintf(stderr, "oms: %s: %s\n", what, err->msg);
    return EXIT_REFUSED;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: oms [--config FILE] [--SETTING VALUE ...] COMMAND\n"
            "commands:\n"
            "  serve                      run the server\n"
            "  migrate [--to N]           apply database migrations (up to schema version N)\n"
            "  token --sub NAME [--roles a,b] [--ttl 1h] [--allow-unknown-roles]\n"
            "                             mint a token signed with the configured secret\n"
            "  config check               print the effective configuration (secrets redacted)\n"
            "  routes                     the route table as JSON lines (method, pattern, permission)\n"
            "  audit verify|export|archive|seal|report|rebuild-facets\n"
            "                             the audit log (`oms audit` for details)\n"
            "  backup -o FILE | --verify FILE\n"
            "                             a verified snapshot of the database (docs/backup.md)\n"
            "  restore FILE [--force]     load a backup into an empty database, all or nothing\n"
            "  index rebuild --branch B [--wait] [--json]\n"
            "                             rebuild a branch's search index (client: OMS_URL, OMS_TOKEN)\n"
            "  branch|get|export|apply|diff|propose|review|merge|tag|lock|search|audit tail|login\n"
            "                             the client (`oms help`, docs/cli.md)\n"
            "settings: see `oms config check`; flags > environment > --config FILE\n");
    return EXIT_REFUSED;
}

/* The route table as data, for tests that walk it from outside (a new
 * content route must come with its read-denial probe) and for tooling. */
static int cmd_routes(void)
{
    for (size_t i = 0; i < oms_app_routes_count; i++) {
        const oms_route *r = &oms_app_routes[i];
        json_t *o = json_pack("{s:s,s:s,s:s,s:b,s:s?}", "method", r->method, "pattern", r->pattern, "permission",
                              oms_perm_name(r->perm), "change", r->change, "audit_action", r->audit_action);
        char *s = json_dumps(o, JSON_COMPACT);
        if (s)
            puts(s);
        free(s);
        json_decref(o);
    }
    return 0;
}

static int open_store(oms_store **out, const oms_config *cfg, oms_error *err)
{
    oms_db_pg_prepared = oms_config_int(cfg, "OMS_PG_PREPARED_STATEMENTS") != 0;
    oms_db_opts o = {
        .busy_timeout_ms = (int)oms_config_int(cfg, "OMS_DB_BUSY_TIMEOUT_MS"),
        .writer_cache_mb = (int)oms_config_int(cfg, "OMS_SQLITE_WRITER_CACHE_MB"),
        .checkpoint_pages = (int)oms_config_int(cfg, "OMS_SQLITE_CHECKPOINT_PAGES"),
        .mmap_mb = (int)oms_config_int(cfg, "OMS_SQLITE_MMAP_MB"),
        .statement_timeout_ms = (int)oms_config_int(cfg, "OMS_DB_STATEMENT_TIMEOUT_MS"),
        .lock_timeout_ms = (int)oms_config_int(cfg, "OMS_DB_LOCK_TIMEOUT_MS"),
        .idle_tx_timeout_ms = (int)oms_config_int(cfg, "OMS_DB_IDLE_TX_TIMEOUT_MS"),
        .connect_timeout_s = (int)oms_config_int(cfg, "OMS_DB_CONNECT_TIMEOUT"),
        .keepalives_idle_s = (int)oms_config_int(cfg, "OMS_DB_KEEPALIVES_IDLE"),
        .keepalives_interval_s = (int)oms_config_int(cfg, "OMS_DB_KEEPALIVES_INTERVAL"),
        .keepalives_count = (int)oms_config_int(cfg, "OMS_DB_KEEPALIVES_COUNT"),
        .session_settings = oms_config_int(cfg, "OMS_DB_SESSION_SETTINGS") != 0,
    };
    return oms_store_open_opts(out, oms_config_str(cfg, "DATABASE_URL"), &o, err);
}

static const char *route_query(const char *method, const char *pattern)
{
    const oms_openapi_route *m = oms_openapi_find(method, pattern);
    return m && m->query ? m->query : "";
}

static int cmd_serve(oms_config *cfg)
{
    oms_error err;
    oms_app app = {.cfg = cfg, .route_query = route_query};
    int code = EXIT_REFUSED;
    /* SIGTERM, SIGINT and SIGHUP are taken by the main thread's sigwait
     * once the server runs (src/http/server.c). They are blocked here,
     * before any thread starts, so that every thread inherits the mask.
     * Before, the threads started while the server was being set up (the
     * audit writer, the checkpointer, the webhook sender, the sole-writer
     * lease...) did not block them: a SIGTERM that arrived while the main
     * thread was still starting the server (its listener already up) went
     * to one of them with the default action, and the process ended at
     * once: no drain, no server.stop event, no lease given back. Now a
     * signal during start-up waits for the server and stops it the usual
     * way (docs/operations.md "Shutdown and draining"). */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    if (oms_config_validate_serve(cfg, &err))
        return refuse_start("refusing to start", &err);
    oms_heap_serve();
    if (oms_client_addr_configure(cfg, &err) || oms_ratelimit_configure(cfg, &err) ||
        oms_monitor_configure(cfg, &err))
        return refuse_start("refusing to start", &err);
    if (oms_identity_init(&app.jwt, cfg, &err))
        return refuse_start("refusing to start", &err);
    if (oms_issue_check_configure(cfg, &err))
        return refuse_start("refusing to start", &err);
    if (oms_routes_new(&app.routes, oms_app_routes, oms_app_routes_count, &err)) {
        code = refuse_start("refusing to start", &err);
        goto cleanup;
    }
    if (open_store(&app.store, cfg, &err)) {
        code = refuse_start("refusing to start: database unreachable", &err);
        goto cleanup;
    }
    if (oms_audit_load_key(cfg, app.store, true, &err)) {
        code = refuse_start("refusing to start", &err);
        goto cleanup;
    }
    int applied = 0, from_version = 0;
    oms_store_schema_version(app.store, &from_version, &err);
    if (oms_store_migrate(app.store, &applied, &err)) {
        code = refuse_start("refusing to start", &err);
        goto cleanup;
    }
    if (oms_audit_after_migrate(app.store, from_version, applied, &err)) {
        code = refuse_start("refusing to start: the audit store cannot write", &err);
        goto cleanup;
    }
    if (applied)
        oms_log_write(OMS_LOG_INFO, NULL, NULL, "applied %d migration(s)", applied);
    if (oms_identity_start(app.store, app.jwt, &err)) {
        code = refuse_start("refusing to start", &err);
        goto cleanup;
    }
    /* the search index moves with every commit, in the commit's transaction */
    oms_vcs_set_commit_hook(oms_search_on_commit, oms_search_on_branch_create, oms_search_on_branch_delete);
    /* every change writes its event to the outbox, in its transaction */
    oms_change_set_outbox(oms_change_events_outbox);
    oms_change_set_outbox_render(oms_change_events_render);
    if (oms_webhook_sender_start(app.store, cfg, &err)) {
        code = refuse_start("refusing to start", &err);
        goto cleanup;
    }
    /* PostgreSQL: the only writer answers repeat reads from memory */
    oms_sole_writer *sole = NULL;
    if (oms_config_int(cfg, "OMS_PG_SOLE_WRITER") && oms_config_int(cfg, "OMS_DB_SESSION_SETTINGS") &&
        oms_sole_writer_start(app.store->db, &sole, &err))
        oms_log_write(OMS_LOG_WARN, NULL, NULL, "sole-writer lease off: %s", err.msg);
    code = oms_server_run(&app, &err) ? refuse_start("serve", &err) : 0;
    oms_sole_writer_stop(sole);
    oms_webhook_sender_stop();
cleanup:
    oms_identity_stop();
    oms_store_close(app.store);
    oms_routes_free(app.routes);
    oms_identity_free(app.jwt);
    return code;
}

/* schema.migrate is recorded only at a schema the audit code writes to
 * (events chained after commit, version 8); `oms migrate --to 7` and
 * earlier, which build the upgrade test's old databases, stop short of it. */
static bool version_has_audit_chain(oms_store *s)
{
    oms_error err;
    int v = 0;
    return oms_store_schema_version(s, &v, &err) == OMS_OK && v >= OMS_AUDIT_SCHEMA_VERSION;
}

/* oms migrate [--to N]: --to stops at schema version N (upgrade tests). */
static int cmd_migrate(oms_config *cfg, int argc, char **argv)
{
    oms_error err;
    oms_store *store = NULL;
    long target = 0;
    for (int i = 0; i < argc; i++) {
        char *end = NULL;
        if (!strcmp(argv[i], "--to") && i + 1 < argc)
            target = strtol(argv[++i], &end, 10);
        if (!end || *end || target <= 0)
            return usage();
    }
    if (open_store(&store, cfg, &err))
        return refuse_start("database unreachable", &err);
    int applied = 0, version = 0, from_version = 0;
    oms_store_schema_version(store, &from_version, &err);
    int rc = target ? oms_store_migrate_to(store, (int)target, &applied, &err) : oms_store_migrate(store, &applied, &err);
    if (rc == OMS_OK && version_has_audit_chain(store))
        rc = oms_audit_after_migrate(store, from_version, applied, &err);
    if (rc == OMS_OK)
        rc = oms_store_schema_version(store, &version, &err);
    oms_store_close(store);
    if (rc)
        return refuse_start("migrate", &err);
    printf("applied %d migration(s); schema version %d\n", applied, version);
    return 0;
}

/* "90", "90s", "15m", "1h", "7d" -> seconds; -1 when malformed. */
static long parse_duration(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || v <= 0)
        return -1;
    long mul = 1;
    if (*end == 'm') mul = 60;
    else if (*end == 'h') mul = 3600;
    else if (*end == 'd') mul = 86400;
    else if (*end == 's' || *end == '\0') mul = 1;
    else return -1;
    if (*end && end[1])
        return -1;
    return v * mul;
}

/* A value of --roles grants something: a role of the table, or, with
 * OMS_ROLE_MAP (token values are then groups), a group the map names. */
static bool role_grants(const oms_role_map *map, const char *value)
{
    return map ? oms_role_map_find(map, value) != NULL : oms_role_canonical(value) != NULL;
}

static int cmd_token(oms_config *cfg, int argc, char **argv)
{
    const char *sub = NULL, *roles_arg = "", *ttl_arg = "1h";
    bool allow_unknown = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--sub") && v) { sub = v; i++; }
        else if (!strcmp(a, "--roles") && v) { roles_arg = v; i++; }
        else if (!strcmp(a, "--ttl") && v) { ttl_arg = v; i++; }
        else if (!strcmp(a, "--allow-unknown-roles")) allow_unknown = true;
        else return usage();
    }
    long ttl = parse_duration(ttl_arg);
    if (!sub || !*sub || ttl <= 0)
        return usage();
    oms_error err;
    oms_jwt_alg alg;
    if (oms_jwt_alg_parse(&alg, oms_config_str(cfg, "JWT_ALGORITHM")) || !oms_jwt_alg_is_hmac(alg)) {
        fprintf(stderr, "oms: token: only HMAC algorithms can mint tokens here\n");
        return EXIT_REFUSED;
    }
    if (oms_config_validate_serve(cfg, &err))
        return refuse_start("token", &err);
    oms_role_map *map = NULL;
    const char *map_text = oms_config_str(cfg, "OMS_ROLE_MAP");
    if (map_text && oms_role_map_parse(&map, map_text, &err))
        return refuse_start("token", &err);
    char *roles_copy = oms_xstrdup(roles_arg);
    const char *roles[64];
    size_t n = 0;
    int code = 0;
    for (char *save = NULL, *t = strtok_r(roles_copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (n == 64) {
            fprintf(stderr, "oms: token: at most 64 roles\n");
            code = EXIT_REFUSED;
            goto cleanup;
        }
        /* A typo ("develper") would mint a token that silently grants
         * nothing; say so instead, unless asked for on purpose. */
        if (!allow_unknown && !role_grants(map, t)) {
            fprintf(stderr, "oms: token: unknown %s \"%s\" grants nothing (%s); --allow-unknown-roles mints it anyway\n",
                    map ? "group" : "role", t,
                    map ? "OMS_ROLE_MAP does not name it"
                        : "roles: viewer, developer, reviewer, admin, auditor, security_officer, service_account");
            code = EXIT_REFUSED;
            goto cleanup;
        }
        roles[n++] = t;
    }
    const char *secret = oms_config_str(cfg, "JWT_SECRET");
    char *tok = NULL;
    oms_jwt_mint_args m = {.alg = alg, .secret = (const unsigned char *)secret, .secret_len = strlen(secret),
                           .sub = sub, .roles = roles, .nroles = n,
                           .roles_claim = oms_config_str(cfg, "JWT_ROLES_CLAIM"), .now = oms_now_ms() / 1000,
                           .ttl = ttl, .issuer = oms_config_str(cfg, "JWT_ISSUER"),
                           .audience = oms_config_str(cfg, "JWT_AUDIENCE")};
    if (oms_jwt_mint(&tok, &m, &err)) {
        code = refuse_start("token", &err);
        goto cleanup;
    }
    printf("%s\n", tok);
    free(tok);
cleanup:
    free(roles_copy);
    oms_role_map_free(map);
    return code;
}

int main(int argc, char **argv)
{
    oms_alloc_init(); /* one allocation-failure policy, jansson included (docs/memory.md) */
    oms_heap_configure();
    /* client commands speak the public API only: no server configuration */
    if (oms_cli_is_command(argc, argv))
        return oms_cli_main(argc, argv);
    /* every id and key the server makes comes from the kernel's generator
     * (util/ids.h): without it, refuse now rather than mid-request */
    if (!oms_random_available()) {
        fprintf(stderr, "oms: refusing to start: the kernel gives no randomness (getrandom)\n");
        return EXIT_REFUSED;
    }
    oms_error err;
    oms_config *cfg = NULL;
    if (oms_config_load(&cfg, &argc, argv, environ, &err))
        return refuse_start("configuration", &err);
    if (oms_log_set_level(oms_config_str(cfg, "OMS_LOG_LEVEL"))) {
        fprintf(stderr, "oms: configuration: OMS_LOG_LEVEL must be debug, info, warn, error or off\n");
        oms_config_free(cfg);
        return EXIT_REFUSED;
    }
    /* process-wide bounds every subcommand shares */
    oms_snapshot_cache_set_limit_mb((size_t)oms_config_int(cfg, "OMS_SNAPSHOT_CACHE_MB"));
    oms_diff_cache_set_limit_mb((size_t)oms_config_int(cfg, "OMS_DIFF_CACHE_MB"));
    oms_change_group_commit(oms_config_int(cfg, "OMS_GROUP_COMMIT") != 0);
    int code;
    if (argc < 2)
        code = usage();
    else if (!strcmp(argv[1], "serve"))
        code = cmd_serve(cfg);
    else if (!strcmp(argv[1], "migrate"))
        code = cmd_migrate(cfg, argc - 2, argv + 2);
    else if (!strcmp(argv[1], "audit"))
        code = oms_audit_cli(cfg, argc - 2, argv + 2);
    else if (!strcmp(argv[1], "backup"))
        code = oms_backup_cli(cfg, argc - 2, argv + 2);
    else if (!strcmp(argv[1], "restore"))
        code = oms_restore_cli(cfg, argc - 2, argv + 2);
    else if (!strcmp(argv[1], "index"))
        code = oms_index_cli(argc - 2, argv + 2);
    else if (!strcmp(argv[1], "routes"))
        code = cmd_routes();
    else if (!strcmp(argv[1], "token"))
        code = cmd_token(cfg, argc - 2, argv + 2);
    else if (!strcmp(argv[1], "config") && argc == 3 && !strcmp(argv[2], "docs")) {
        oms_config_print_docs(stdout);
        code = 0;
    } else if (!strcmp(argv[1], "config") && argc == 3 && !strcmp(argv[2], "check")) {
        oms_config_print(cfg, stdout);
        oms_identity_describe(cfg, stdout);
        code = oms_config_validate_serve(cfg, &err) || oms_client_addr_configure(cfg, &err) ||
                       oms_ratelimit_configure(cfg, &err) || oms_monitor_configure(cfg, &err)
                   ? refuse_start("config check", &err)
                   : 0;
    } else
        code = usage();
    oms_config_free(cfg);
    return code;
}
