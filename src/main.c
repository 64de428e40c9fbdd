/* oms: subcommand dispatch. Configuration refusals exit with status 2 and
 * one clear line on stderr. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "auth/jwt.h"
#include "governance/issue_check.h"
#include "http/app.h"
#include "ops/config.h"
#include "ops/log.h"
#include "search/handlers.h"
#include "store/store.h"
#include "util/time.h"

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
            "  token --sub NAME [--roles a,b] [--ttl 1h]\n"
            "                             mint a token signed with the configured secret\n"
            "  config check               print the effective configuration (secrets redacted)\n"
            "  routes                     the route table as JSON lines (method, pattern, permission)\n"
            "  audit verify|export|archive|seal|report\n"
            "                             the audit log (`oms audit` for details)\n"
            "  index rebuild --branch B [--wait] [--json]\n"
            "                             rebuild a branch's search index (client: OMS_URL, OMS_TOKEN)\n"
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
    return oms_store_open(out, oms_config_str(cfg, "DATABASE_URL"),
                          (int)oms_config_int(cfg, "OMS_DB_BUSY_TIMEOUT_MS"), err);
}

static int build_verifier(oms_jwt_verifier **out, const oms_config *cfg, oms_error *err)
{
    oms_jwt_config jc = {0};
    int rc = oms_jwt_alg_parse(&jc.alg, oms_config_str(cfg, "JWT_ALGORITHM"));
    if (rc)
        return oms_err_set(err, OMS_ECONFIG, "JWT_ALGORITHM must be HS256, HS384, HS512, RS256 or ES256");
    const char *secret = oms_config_str(cfg, "JWT_SECRET");
    const char *prev = oms_config_str(cfg, "JWT_PREVIOUS_SECRET");
    jc.secret = (const unsigned char *)secret;
    jc.secret_len = secret ? strlen(secret) : 0;
    jc.previous_secret = (const unsigned char *)prev;
    jc.previous_secret_len = prev ? strlen(prev) : 0;
    jc.public_key_file = oms_config_str(cfg, "JWT_PUBLIC_KEY_FILE");
    jc.issuer = oms_config_str(cfg, "JWT_ISSUER");
    jc.audience = oms_config_str(cfg, "JWT_AUDIENCE");
    jc.leeway = OMS_JWT_LEEWAY;
    return oms_jwt_verifier_new(out, &jc, err);
}

static int cmd_serve(oms_config *cfg)
{
    oms_error err;
    oms_app app = {.cfg = cfg};
    int code = EXIT_REFUSED;
    if (oms_config_validate_serve(cfg, &err))
        return refuse_start("refusing to start", &err);
    if (build_verifier(&app.jwt, cfg, &err))
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
    code = oms_server_run(&app, &err) ? refuse_start("serve", &err) : 0;
cleanup:
    oms_store_close(app.store);
    oms_routes_free(app.routes);
    oms_jwt_verifier_free(app.jwt);
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

static int cmd_token(oms_config *cfg, int argc, char **argv)
{
    const char *sub = NULL, *roles_arg = "", *ttl_arg = "1h";
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--sub") && v) { sub = v; i++; }
        else if (!strcmp(a, "--roles") && v) { roles_arg = v; i++; }
        else if (!strcmp(a, "--ttl") && v) { ttl_arg = v; i++; }
        else return usage();
    }
    long ttl = parse_duration(ttl_arg);
    if (!sub || !*sub || ttl <= 0)
        return usage();
    oms_error err;
    oms_jwt_alg alg;
    if (oms_jwt_alg_parse(&alg, oms_config_str(cfg, "JWT_ALGORITHM")) || alg > OMS_JWT_HS512) {
        fprintf(stderr, "oms: token: only HMAC algorithms can mint tokens here\n");
        return EXIT_REFUSED;
    }
    if (oms_config_validate_serve(cfg, &err))
        return refuse_start("token", &err);
    char *roles_copy = strdup(roles_arg);
    const char *roles[64];
    size_t n = 0;
    for (char *save = NULL, *t = strtok_r(roles_copy, ",", &save); t && n < 64; t = strtok_r(NULL, ",", &save))
        roles[n++] = t;
    const char *secret = oms_config_str(cfg, "JWT_SECRET");
    char *tok = NULL;
    int rc = oms_jwt_sign_hmac(&tok, alg, (const unsigned char *)secret, strlen(secret), sub, roles, n,
                               oms_now_ms() / 1000, ttl, oms_config_str(cfg, "JWT_ISSUER"),
                               oms_config_str(cfg, "JWT_AUDIENCE"), &err);
    free(roles_copy);
    if (rc)
        return refuse_start("token", &err);
    printf("%s\n", tok);
    free(tok);
    return 0;
}

int main(int argc, char **argv)
{
    /* glibc gives each thread its own heap arena; with many workers the
     * memory a large request freed stays spread over all of them. */
    mallopt(M_ARENA_MAX, 2);
    oms_error err;
    oms_config *cfg = NULL;
    if (oms_config_load(&cfg, &argc, argv, environ, &err))
        return refuse_start("configuration", &err);
    if (oms_log_set_level(oms_config_str(cfg, "OMS_LOG_LEVEL"))) {
        fprintf(stderr, "oms: configuration: OMS_LOG_LEVEL must be debug, info, warn, error or off\n");
        oms_config_free(cfg);
        return EXIT_REFUSED;
    }
    int code;
    if (argc < 2)
        code = usage();
    else if (!strcmp(argv[1], "serve"))
        code = cmd_serve(cfg);
    else if (!strcmp(argv[1], "migrate"))
        code = cmd_migrate(cfg, argc - 2, argv + 2);
    else if (!strcmp(argv[1], "audit"))
        code = oms_audit_cli(cfg, argc - 2, argv + 2);
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
        code = oms_config_validate_serve(cfg, &err) ? refuse_start("config check", &err) : 0;
    } else
        code = usage();
    oms_config_free(cfg);
    return code;
}
