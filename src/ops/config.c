#include "ops/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "auth/jwt.h"

const oms_cfg_def oms_cfg_table[] = {
    {"DATABASE_URL", CFG_STRING, "sqlite:oms-data/oms.db", 0, 0, false, true,
     "postgresql://user:pass@host:port/db or sqlite:PATH (password redacted in output)"},
    {"JWT_SECRET", CFG_STRING, NULL, 0, 0, true, true, "HMAC secret, at least 32 bytes"},
    {"JWT_PREVIOUS_SECRET", CFG_STRING, NULL, 0, 0, true, true,
     "previous HMAC secret, still accepted for verification during rotation"},
    {"JWT_ALGORITHM", CFG_STRING, "HS256", 0, 0, false, false, "HS256, HS384, HS512, RS256 or ES256"},
    {"JWT_PUBLIC_KEY_FILE", CFG_STRING, NULL, 0, 0, false, false, "PEM public key for RS256/ES256"},
    {"JWT_JWKS_FILE", CFG_STRING, NULL, 0, 0, false, false, "JWKS file for RS256/ES256: not supported yet, refused at start-up (use JWT_PUBLIC_KEY_FILE)"},
    {"JWT_ISSUER", CFG_STRING, NULL, 0, 0, false, false, "required `iss` when set"},
    {"JWT_AUDIENCE", CFG_STRING, NULL, 0, 0, false, false, "required `aud` when set"},
    {"OMS_LISTEN", CFG_STRING, "127.0.0.1:8080", 0, 0, false, false, "address:port to listen on"},
    {"OMS_AUDIT_KEY", CFG_STRING, NULL, 0, 0, true, true, "HMAC key signing audit checkpoints"},
    {"OMS_AUDIT_RETENTION_DAYS", CFG_INT, "2555", 1, 36500, false, false,
     "age after which `oms audit archive` moves events to a file (default for --before)"},
    {"OMS_AUDIT_WAIT_MS", CFG_INT, "10000", 100, 600000, false, false,
     "how long a request waits for its audit event to commit before it answers 503 (the event is then withdrawn"
     " and the 503 recorded instead; docs/audit.md)"},
    {"OMS_ALERT_WEBHOOK_URL", CFG_STRING, NULL, 0, 0, false, false, "security alert webhook"},
    {"OMS_ALERT_WEBHOOK_SECRET", CFG_STRING, NULL, 0, 0, true, true, "webhook HMAC secret"},
    {"OMS_TRUSTED_PROXIES", CFG_STRING, "", 0, 0, false, false, "CIDRs whose X-Forwarded-For is believed"},
    {"OMS_LOG_LEVEL", CFG_STRING, "info", 0, 0, false, false, "debug, info, warn or error"},
    {"OMS_WORKERS", CFG_INT, "0", 0, 256, false, false, "worker threads (0: one per core on SQLite, four per core on PostgreSQL)"},
    {"OMS_MAX_CONNECTIONS", CFG_INT, "1024", 1, 100000, false, false, "concurrent connections"},
    {"OMS_CONNECTION_TIMEOUT", CFG_INT, "15", 1, 3600, false, false,
     "seconds a connection may stay idle or trickle a request"},
    {"OMS_DB_BUSY_TIMEOUT_MS", CFG_INT, "5000", 0, 600000, false, false,
     "how long a SQLite writer waits for the write lock"},
    {"OMS_PG_PREPARED_STATEMENTS", CFG_INT, "1", 0, 1, false, false,
     "prepare statements per PostgreSQL connection (0 behind a transaction-pooling proxy that cannot)"},
    /* governance (SPEC §6.3, §6.4) */
    {"OMS_ISSUE_EXEMPT_BRANCHES", CFG_STRING, "sandbox/**,personal/**", 0, 0, false, false,
     "branch globs where changes need no issue reference"},
    {"OMS_ISSUE_KEY_PATTERNS", CFG_STRING, "[A-Z][A-Z0-9_]{0,31}-[0-9]{1,18};#[0-9]{1,18}", 0, 0, false, false,
     "issue key forms: POSIX extended regular expressions separated by ';'"},
    {"OMS_ISSUE_TRACKER_URL", CFG_STRING, NULL, 0, 0, false, false,
     "when set, each key is checked with GET on this URL ({key} is replaced); 2xx means it exists"},
    {"OMS_ISSUE_TRACKER_TIMEOUT_MS", CFG_INT, "2000", 50, 60000, false, false, "tracker request timeout"},
    {"OMS_ISSUE_TRACKER_CACHE_SECONDS", CFG_INT, "300", 0, 86400, false, false,
     "how long a key the tracker confirmed is trusted"},
    {"OMS_OVERRIDE_APPROVALS", CFG_INT, "1", 1, 5, false, false, "approvals an emergency override needs"},
    /* search and index rebuilds (SPEC §8, docs/search.md) */
    {"OMS_SEARCH_SWITCH_MAX_MS", CFG_INT, "2000", 100, 60000, false, false,
     "longest a rebuild's switch may block writes to its branch (the lifetime of its switch lock)"},
    {"OMS_SEARCH_JOB_HEARTBEAT_SECONDS", CFG_INT, "10", 1, 3600, false, false,
     "heartbeat interval of a rebuild job's lock; after three missed heartbeats the job is failed"},
    {"OMS_SEARCH_BATCH", CFG_INT, "500", 10, 10000, false, false,
     "resources a rebuild indexes per transaction (also the backlog left for the switch)"},
    {"OMS_SEARCH_THROTTLE_MS", CFG_INT, "0", 0, 10000, false, false,
     "pause between a rebuild's batches, to bound its load on the database"},
};
const size_t oms_cfg_table_len = sizeof oms_cfg_table / sizeof oms_cfg_table[0];

typedef struct {
    char *value;
    const char *source;
} cfg_value;

struct oms_config {
    cfg_value v[sizeof oms_cfg_table / sizeof oms_cfg_table[0]];
};

static int find_def(const char *name, size_t len)
{
    for (size_t i = 0; i < oms_cfg_table_len; i++)
        if (strlen(oms_cfg_table[i].name) == len && strncmp(oms_cfg_table[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

/* Flag spelling: --jwt-secret-file or --JWT_SECRET_FILE; OMS_ may be dropped
 * (--listen is OMS_LISTEN). Writes the setting name into buf. */
static void flag_to_name(char *buf, size_t cap, const char *flag, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 1 < cap; i++)
        buf[n++] = flag[i] == '-' ? '_' : (char)toupper((unsigned char)flag[i]);
    buf[n] = '\0';
}

static int lookup(const char *name, size_t len, bool *is_file)
{
    *is_file = false;
    int i = find_def(name, len);
    if (i >= 0)
        return i;
    if (len > 5 && strncmp(name + len - 5, "_FILE", 5) == 0) {
        i = find_def(name, len - 5);
        if (i >= 0 && oms_cfg_table[i].has_file_form) {
            *is_file = true;
            return i;
        }
    }
    return -1;
}

/* Staged values: plain and _FILE forms are kept apart so "both set" can be
 * detected whichever sources they came from. */
typedef struct {
    char *plain, *file;
    const char *plain_src, *file_src;
} staged;

static void stage(staged *s, int idx, bool is_file, const char *val, const char *src)
{
    char **slot = is_file ? &s[idx].file : &s[idx].plain;
    free(*slot);
    *slot = strdup(val);
    if (is_file)
        s[idx].file_src = src;
    else
        s[idx].plain_src = src;
}

static int read_config_file(staged *s, const char *path, oms_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return oms_err_set(err, OMS_ECONFIG, "cannot open config file %s", path);
    char line[8192];
    int lineno = 0, rc = OMS_OK;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t n = strcspn(line, "\r\n");
        line[n] = '\0';
        char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        if (*p == '\0' || *p == '#')
            continue;
        char *eq = strchr(p, '=');
        if (!eq) {
            rc = oms_err_set(err, OMS_ECONFIG, "config file %s line %d: expected KEY=VALUE", path, lineno);
            break;
        }
        size_t klen = (size_t)(eq - p);
        while (klen && isspace((unsigned char)p[klen - 1]))
            klen--;
        bool is_file;
        int idx = lookup(p, klen, &is_file);
        if (idx < 0) {
            rc = oms_err_set(err, OMS_ECONFIG, "config file %s line %d: unknown setting %.*s", path,
                             lineno, (int)(klen > 64 ? 64 : klen), p);
            break;
        }
        stage(s, idx, is_file, eq + 1, "file");
    }
    fclose(f);
    return rc;
}

/* Reads a secret file; a single trailing newline is not part of the value. */
static int read_value_file(char **out, const char *name, const char *path, oms_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return oms_err_set(err, OMS_ECONFIG, "%s_FILE: cannot read %s", name, path);
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    bool more = !feof(f);
    fclose(f);
    if (more)
        return oms_err_set(err, OMS_ECONFIG, "%s_FILE: %s is too large", name, path);
    if (n && buf[n - 1] == '\n')
        n--;
    if (n && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    if (strlen(buf) != n)
        return oms_err_set(err, OMS_ECONFIG, "%s_FILE: %s contains a NUL byte", name, path);
    *out = strdup(buf);
    return OMS_OK;
}

static int check_int(const oms_cfg_def *d, const char *v, oms_error *err)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || errno)
        return oms_err_set(err, OMS_ECONFIG, "%s must be an integer", d->name);
    if (x < d->min || x > d->max)
        return oms_err_set(err, OMS_ECONFIG, "%s must be between %ld and %ld", d->name, d->min, d->max);
    return OMS_OK;
}

int oms_config_load(oms_config **out, int *argc, char **argv, char **envp, oms_error *err)
{
    staged s[sizeof oms_cfg_table / sizeof oms_cfg_table[0]];
    memset(s, 0, sizeof s);
    oms_config *c = calloc(1, sizeof *c);
    const char *config_file = NULL;
    int rc = OMS_OK;

    /* Flags are collected first (they win), the rest of argv is kept. */
    staged flags[sizeof oms_cfg_table / sizeof oms_cfg_table[0]];
    memset(flags, 0, sizeof flags);
    int w = 1;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) {
            argv[w++] = argv[i];
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const char *val = eq ? eq + 1 : NULL;
        if (nlen == 6 && strncmp(name, "config", 6) == 0) {
            if (!val && i + 1 < *argc)
                val = argv[++i];
            if (!val) {
                rc = oms_err_set(err, OMS_ECONFIG, "--config needs a file");
                goto cleanup;
            }
            config_file = val;
            continue;
        }
        char buf[128];
        flag_to_name(buf, sizeof buf, name, nlen);
        bool is_file;
        int idx = lookup(buf, strlen(buf), &is_file);
        if (idx < 0) {
            char prefixed[140];
            snprintf(prefixed, sizeof prefixed, "OMS_%s", buf);
            idx = lookup(prefixed, strlen(prefixed), &is_file);
        }
        if (idx < 0) { /* not a setting: a subcommand option */
            argv[w++] = argv[i];
            continue;
        }
        if (!val && i + 1 < *argc)
            val = argv[++i];
        if (!val) {
            rc = oms_err_set(err, OMS_ECONFIG, "--%.*s needs a value", (int)nlen, name);
            goto cleanup;
        }
        stage(flags, idx, is_file, val, "flag");
    }
    argv[w] = NULL;
    *argc = w;

    if (config_file && (rc = read_config_file(s, config_file, err)) != OMS_OK)
        goto cleanup;
    for (char **e = envp; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq)
            continue;
        bool is_file;
        int idx = lookup(*e, (size_t)(eq - *e), &is_file);
        if (idx >= 0)
            stage(s, idx, is_file, eq + 1, "environment");
    }
    for (size_t i = 0; i < oms_cfg_table_len; i++) {
        if (flags[i].plain)
            stage(s, (int)i, false, flags[i].plain, "flag");
        if (flags[i].file)
            stage(s, (int)i, true, flags[i].file, "flag");
    }

    for (size_t i = 0; i < oms_cfg_table_len; i++) {
        const oms_cfg_def *d = &oms_cfg_table[i];
        if (s[i].plain && s[i].file) {
            rc = oms_err_set(err, OMS_ECONFIG, "both %s and %s_FILE are set; use one", d->name, d->name);
            goto cleanup;
        }
        if (s[i].file) {
            if ((rc = read_value_file(&c->v[i].value, d->name, s[i].file, err)) != OMS_OK)
                goto cleanup;
            c->v[i].source = "file";
        } else if (s[i].plain) {
            c->v[i].value = strdup(s[i].plain);
            c->v[i].source = s[i].plain_src;
        } else if (d->def) {
            c->v[i].value = strdup(d->def);
            c->v[i].source = "default";
        } else {
            c->v[i].source = "unset";
        }
        if (d->type == CFG_INT && c->v[i].value && (rc = check_int(d, c->v[i].value, err)) != OMS_OK)
            goto cleanup;
    }
    *out = c;
    c = NULL;
cleanup:
    for (size_t i = 0; i < oms_cfg_table_len; i++) {
        free(s[i].plain);
        free(s[i].file);
        free(flags[i].plain);
        free(flags[i].file);
    }
    oms_config_free(c);
    return rc;
}

void oms_config_free(oms_config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < oms_cfg_table_len; i++) {
        if (c->v[i].value && oms_cfg_table[i].secret)
            memset(c->v[i].value, 0, strlen(c->v[i].value));
        free(c->v[i].value);
    }
    free(c);
}

const char *oms_config_str(const oms_config *c, const char *name)
{
    int i = find_def(name, strlen(name));
    return i < 0 ? NULL : c->v[i].value;
}

long oms_config_int(const oms_config *c, const char *name)
{
    const char *v = oms_config_str(c, name);
    return v ? strtol(v, NULL, 10) : 0;
}

const char *oms_config_source(const oms_config *c, const char *name)
{
    int i = find_def(name, strlen(name));
    return i < 0 ? "unset" : c->v[i].source;
}

/* Placeholders seen in sample configs and tutorials. A secret that contains
 * one of them was typed by a person from an example, not generated. */
static const char *const k_placeholders[] = {
    "your-secret-key", "your_secret_key", "yoursecretkey", "changeme", "change-me", "change_me", /* refused */
    "dev-secret", "dev_secret", "devsecret", "secret-key", "secret_key", "secretkey", "supersecret", /* refused */
    "super-secret", "replace-me", "replaceme", "mysecret", "my-secret", "placeholder", "example",
    "password", "jwt-secret", "jwt_secret", "default",
};

bool oms_config_weak_secret(const char *s, size_t len)
{
    for (size_t i = 0; i < sizeof k_placeholders / sizeof k_placeholders[0]; i++) {
        size_t pl = strlen(k_placeholders[i]);
        for (size_t off = 0; off + pl <= len; off++)
            if (strncasecmp(s + off, k_placeholders[i], pl) == 0)
                return true;
    }
    if (len && strcasecmp(s, "secret") == 0)
        return true;
    /* Very low variety ("aaaa...", "abababab...") is not a secret either. */
    bool seen[256] = {false};
    int distinct = 0;
    for (size_t i = 0; i < len; i++)
        if (!seen[(unsigned char)s[i]]) {
            seen[(unsigned char)s[i]] = true;
            distinct++;
        }
    return distinct < 8;
}

static int check_secret(const char *name, const char *v, oms_error *err)
{
    size_t len = strlen(v);
    if (len < 32)
        return oms_err_set(err, OMS_ECONFIG, "%s is shorter than 32 bytes", name);
    if (oms_config_weak_secret(v, len))
        return oms_err_set(err, OMS_ECONFIG, "%s is a known placeholder or too predictable", name);
    return OMS_OK;
}

/* Names the refused value only when it is short printable ASCII (it is not
 * a secret, but it is echoed to a terminal). */
static int algorithm_refused(const char *alg, oms_error *err)
{
    bool printable = alg && *alg && strlen(alg) <= 32;
    for (const char *p = alg; printable && *p; p++)
        printable = *p >= 0x21 && *p <= 0x7e;
    if (printable)
        return oms_err_set(err, OMS_ECONFIG,
                           "JWT_ALGORITHM=%s is refused: it must be HS256, HS384, HS512, RS256 or ES256", alg);
    return oms_err_set(err, OMS_ECONFIG, "JWT_ALGORITHM is refused: it must be HS256, HS384, HS512, RS256 or ES256");
}

int oms_config_validate_serve(const oms_config *c, oms_error *err)
{
    const char *alg = oms_config_str(c, "JWT_ALGORITHM");
    /* The algorithm first: every other rule depends on it, and an algorithm
     * that is not on the list ("none" above all) must be refused as itself,
     * not mistaken for a public-key one and blamed on another setting. */
    oms_jwt_alg parsed;
    if (oms_jwt_alg_parse(&parsed, alg) != OMS_OK)
        return algorithm_refused(alg, err);
    bool hmac = parsed <= OMS_JWT_HS512;
    const char *secret = oms_config_str(c, "JWT_SECRET");
    const char *prev = oms_config_str(c, "JWT_PREVIOUS_SECRET");
    if (hmac) {
        if (!secret)
            return oms_err_set(err, OMS_ECONFIG, "no JWT secret: set JWT_SECRET or JWT_SECRET_FILE");
        int rc = check_secret("JWT_SECRET", secret, err);
        if (rc)
            return rc;
        if (prev && (rc = check_secret("JWT_PREVIOUS_SECRET", prev, err)) != OMS_OK)
            return rc;
    } else {
        /* Key confusion guard: a public-key algorithm never sees an HMAC secret. */
        if (secret || prev)
            return oms_err_set(err, OMS_ECONFIG, "JWT_SECRET must not be set with JWT_ALGORITHM=%s", alg);
        if (!oms_config_str(c, "JWT_PUBLIC_KEY_FILE"))
            return oms_err_set(err, OMS_ECONFIG, "JWT_ALGORITHM=%s needs JWT_PUBLIC_KEY_FILE", alg);
    }
    /* A setting we would silently ignore is worse than a refusal. */
    if (oms_config_str(c, "JWT_JWKS_FILE"))
        return oms_err_set(err, OMS_ECONFIG, "JWT_JWKS_FILE is not supported yet: give the key in JWT_PUBLIC_KEY_FILE");
    const char *audit_key = oms_config_str(c, "OMS_AUDIT_KEY");
    if (audit_key && strlen(audit_key) < 32)
        return oms_err_set(err, OMS_ECONFIG, "OMS_AUDIT_KEY is shorter than 32 bytes");
    return OMS_OK;
}

/* postgresql://user:PASS@host -> postgresql://user:***@host */
static void print_redacted_url(FILE *f, const char *v)
{
    const char *scheme = strstr(v, "://");
    const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
    const char *colon = scheme && at ? memchr(scheme + 3, ':', (size_t)(at - scheme - 3)) : NULL;
    if (colon)
        fprintf(f, "%.*s:***%s", (int)(colon - v), v, at);
    else
        fputs(v, f);
    if (strstr(v, "password="))
        fputs(" (password parameter redacted)", f);
}

void oms_config_print(const oms_config *c, FILE *f)
{
    for (size_t i = 0; i < oms_cfg_table_len; i++) {
        const oms_cfg_def *d = &oms_cfg_table[i];
        const char *v = c->v[i].value;
        fprintf(f, "%s=", d->name);
        if (!v)
            fputs("(unset)", f);
        else if (d->secret)
            fputs("(set, redacted)", f);
        else if (strcmp(d->name, "DATABASE_URL") == 0 && strstr(v, "password="))
            fputs("(set, contains a password parameter: redacted)", f);
        else if (strcmp(d->name, "DATABASE_URL") == 0)
            print_redacted_url(f, v);
        else
            fputs(v, f);
        fprintf(f, "  # %s\n", c->v[i].source);
    }
}

void oms_config_print_docs(FILE *f)
{
    fputs("# Configuration\n\n"
          "Generated by `oms config docs` from the settings table in `src/ops/config.c`; a test keeps\n"
          "this file and the table in step. Precedence: command-line flags (`--listen 127.0.0.1:9000`,\n"
          "`--OMS_LISTEN ...`) > environment > `--config FILE` (KEY=VALUE lines). A setting with a\n"
          "file form also accepts `NAME_FILE` (the value is read from that file, one trailing newline\n"
          "dropped); setting both forms is refused. Secrets are never printed: `oms config check`\n"
          "shows them as `(set, redacted)`.\n\n"
          "| setting | type | default | bounds | secret | `_FILE` form | meaning |\n"
          "|---|---|---|---|---|---|---|\n", f);
    for (size_t i = 0; i < oms_cfg_table_len; i++) {
        const oms_cfg_def *d = &oms_cfg_table[i];
        char bounds[48] = "";
        if (d->type == CFG_INT)
            snprintf(bounds, sizeof bounds, "%ld..%ld", d->min, d->max);
        fprintf(f, "| `%s` | %s | %s%s%s | %s | %s | %s | %s |\n", d->name, d->type == CFG_INT ? "integer" : "string",
                d->def ? "`" : "", d->def ? (*d->def ? d->def : " ") : "none", d->def ? "`" : "", bounds,
                d->secret ? "yes" : "", d->has_file_form ? "yes" : "", d->help);
    }
}
