#include "infra/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "util/alloc.h"
#include "util/encoding.h"

const oms_cfg_def oms_cfg_table[] = {
    {"DATABASE_URL", CFG_STRING, "sqlite:oms-data/oms.db", 0, 0, false, true,
     "postgresql://user:pass@host:port/db or sqlite:PATH (password redacted in output)"},
    {"JWT_SECRET", CFG_STRING, NULL, 0, 0, true, true,
     "HMAC secret, at least 32 bytes; the file form is re-read on SIGHUP and when it changes"},
    {"JWT_PREVIOUS_SECRET", CFG_STRING, NULL, 0, 0, true, true,
     "previous HMAC secret, still accepted for verification during rotation; its file may be missing or empty "
     "(no previous secret) and is re-read like JWT_SECRET_FILE"},
    {"JWT_ALGORITHM", CFG_STRING, "HS256", 0, 0, false, false,
     "the only algorithms accepted: HS256, HS384 or HS512 (with JWT_SECRET), or RS256, ES256, EdDSA alone or as a "
     "comma-separated list (with a public key or a JWKS)"},
    {"JWT_PUBLIC_KEY_FILE", CFG_STRING, NULL, 0, 0, false, false,
     "PEM public key for one of RS256, ES256, EdDSA; re-read on SIGHUP and when it changes"},
    {"JWT_JWKS_FILE", CFG_STRING, NULL, 0, 0, false, false,
     "JWKS file (RFC 7517): keys chosen by `kid`; re-read on SIGHUP and when it changes; needs JWT_ISSUER and "
     "JWT_AUDIENCE"},
    {"JWT_JWKS_URL", CFG_STRING, NULL, 0, 0, false, false,
     "JWKS URL of the identity provider (https; http only to a loopback address): cached for its Cache-Control "
     "max-age, refetched for an unknown `kid` and on SIGHUP; needs JWT_ISSUER and JWT_AUDIENCE"},
    {"JWT_OIDC_ISSUER", CFG_STRING, NULL, 0, 0, false, false,
     "OpenID Connect issuer URL: the JWKS URL is discovered from ISSUER/.well-known/openid-configuration, whose "
     "`issuer` must be exactly this; needs JWT_ISSUER and JWT_AUDIENCE"},
    {"JWT_JWKS_REFETCH_SECONDS", CFG_INT, "30", 1, 3600, false, false,
     "a token with an unknown `kid` causes at most one JWKS fetch per this many seconds; also the shortest time a "
     "key set is cached"},
    {"JWT_JWKS_CACHE_SECONDS", CFG_INT, "300", 1, 86400, false, false,
     "how long a key set is cached when the response has no Cache-Control max-age (a max-age is honoured up to "
     "86400)"},
    {"JWT_JWKS_TIMEOUT_MS", CFG_INT, "5000", 100, 60000, false, false,
     "time allowed for one discovery or JWKS request (connecting gets at most half)"},
    {"JWT_ISSUER", CFG_STRING, NULL, 0, 0, false, false, "required `iss` when set; required with a JWKS"},
    {"JWT_AUDIENCE", CFG_STRING, NULL, 0, 0, false, false, "required `aud` when set; required with a JWKS"},
    {"JWT_ROLES_CLAIM", CFG_STRING, "roles", 0, 0, false, false,
     "the claim holding roles (or groups, with OMS_ROLE_MAP): a name, or a dotted path such as realm_access.roles"},
    {"OMS_ROLE_MAP", CFG_STRING, NULL, 0, 0, false, false,
     "provider groups to OMS roles, `group=role[,role];...`; when set, only mapped groups grant roles"},
    {"OMS_SECRET_FILE_POLL_SECONDS", CFG_INT, "5", 0, 3600, false, false,
     "how often `_FILE` secrets and key files are checked for a change (0: only on SIGHUP)"},
    {"OMS_LISTEN", CFG_STRING, "127.0.0.1:8080", 0, 0, false, false, "address:port to listen on"},
    {"OMS_AUDIT_KEY", CFG_STRING, NULL, 0, 0, true, true, "HMAC key signing audit checkpoints"},
    {"OMS_AUDIT_RETENTION_DAYS", CFG_INT, "2555", 1, 36500, false, false,
     "age after which `oms audit archive` moves events to a file (default for --before)"},
    {"OMS_AUDIT_WAIT_MS", CFG_INT, "10000", 100, 600000, false, false,
     "how long a request waits for its audit event to commit before it answers 503 (the event is then withdrawn"
     " and the 503 recorded instead; docs/audit.md)"},
    {"OMS_ALERT_WEBHOOK_URL", CFG_STRING, NULL, 0, 0, false, false, "security alert webhook"},
    {"OMS_ALERT_WEBHOOK_SECRET", CFG_STRING, NULL, 0, 0, true, true, "webhook HMAC secret"},
    /* events and webhooks (docs/events.md) */
    {"OMS_WEBHOOK_TIMEOUT_MS", CFG_INT, "10000", 100, 120000, false, false,
     "time allowed for one webhook delivery attempt (connecting gets at most 5 s of it)"},
    {"OMS_WEBHOOK_BACKOFF_MS", CFG_INT, "1000", 1, 3600000, false, false,
     "first retry delay of a failed webhook delivery; it doubles per attempt (at most 1 h, with jitter) until the "
     "delivery is 24 h old, then it is dead"},
    {"OMS_WEBHOOK_POLL_MS", CFG_INT, "200", 10, 60000, false, false,
     "how often the webhook sender looks for new events when idle"},
    {"OMS_WEBHOOK_WORKERS", CFG_INT, "4", 1, 16, false, false,
     "webhook sender threads: subscriptions sent to at once (a hanging receiver holds one for the timeout)"},
    {"OMS_EVENTS_RETENTION_HOURS", CFG_INT, "168", 1, 87600, false, false,
     "age after which delivered events are dropped from the outbox (and from GET /api/v1/events)"},
    {"OMS_ALERT_AUTH_FAILURES", CFG_STRING, "20/300", 0, 0, false, false,
     "COUNT/SECONDS: authentication failures (401) from one client address within that many seconds that raise an "
     "auth_failure_burst alert (once per address and window); COUNT 1..1000000, SECONDS 1..86400"},
    {"OMS_ALERT_DENIALS", CFG_STRING, "20/300", 0, 0, false, false,
     "COUNT/SECONDS: authorization denials (403) of one principal within that many seconds that raise a "
     "denial_burst alert (once per principal and window); COUNT 1..1000000, SECONDS 1..86400"},
    {"OMS_TRUSTED_PROXIES", CFG_STRING, "", 0, 0, false, false,
     "IPv4 and IPv6 networks (ADDRESS[/PREFIX], comma-separated) whose X-Forwarded-For is believed: the client is "
     "then the rightmost hop not in the list; from any other peer the header is ignored"},
    {"OMS_LOG_LEVEL", CFG_STRING, "info", 0, 0, false, false, "debug, info, warn or error"},
    {"OMS_WORKERS", CFG_INT, "0", 0, 256, false, false,
     "handler threads, which run requests that may touch the database (0: four per core on PostgreSQL, eight on "
     "SQLite, one per core on SQLite with OMS_GROUP_COMMIT=0; at most 64)"},
    /* connections and slow clients (docs/security.md "Slow clients (SPEC §6.5)") */
    {"OMS_MAX_CONNECTIONS", CFG_INT, "4096", 16, 100000, false, false,
     "concurrent connections, at most; at the cap a new connection closes the oldest one that is idle or still "
     "sending its headers, and from three quarters of it an idle kept-alive connection is closed after 1 s. The "
     "soft descriptor limit is raised to fit (or this lowered, with a warning)"},
    {"OMS_MAX_CONNECTIONS_PER_CLIENT", CFG_INT, "64", 0, 100000, false, false,
     "concurrent connections from one client address (an IPv6 /64 counts as one), at most; more are closed as "
     "they are accepted (0: no limit; behind a reverse proxy every connection comes from the proxy)"},
    {"OMS_CONNECTION_TIMEOUT", CFG_INT, "15", 1, 3600, false, false,
     "seconds a connection may pass without sending or reading a byte, and a kept-alive connection may wait for "
     "its next request"},
    {"OMS_HEADER_TIMEOUT_MS", CFG_INT, "10000", 100, 600000, false, false,
     "a new connection must send its request line and headers within this; a kept-alive one, its headers within "
     "this of its request line. Else it is closed"},
    {"OMS_MIN_DATA_RATE", CFG_INT, "1024", 0, 1000000000, false, false,
     "bytes per second: a request body must arrive, and an answer be read, at least this fast on average once "
     "OMS_DATA_RATE_GRACE_MS has passed, else the connection is closed (0: no minimum)"},
    {"OMS_DATA_RATE_GRACE_MS", CFG_INT, "5000", 0, 600000, false, false,
     "how long a body or an answer may take before OMS_MIN_DATA_RATE applies"},
    {"OMS_REQUEST_TIMEOUT_MS", CFG_INT, "120000", 1000, 86400000, false, false,
     "the longest a request may take, from its first byte to the last byte of its answer; past it the connection "
     "is closed, except while a handler thread runs it (an answer that comes later still gets "
     "OMS_DATA_RATE_GRACE_MS to be read)"},
    /* dispatch and draining (docs/operations.md "Shutdown and draining") */
    {"OMS_REQUEST_QUEUE", CFG_INT, "512", 1, 100000, false, false,
     "requests waiting for a handler thread, at most; past it a request is answered 503 `overloaded`"},
    {"OMS_REQUEST_DEADLINE_MS", CFG_INT, "5000", 10, 600000, false, false,
     "how long a request may wait for a handler thread before it is answered 503 `overloaded`"},
    {"OMS_DRAIN_TIMEOUT_MS", CFG_INT, "20000", 0, 600000, false, false,
     "on SIGTERM, how long in-flight requests may take to finish before the server exits anyway"},
    /* database deadlines (docs/operations.md "Timeouts and deadlines") */
    {"OMS_DB_BUSY_TIMEOUT_MS", CFG_INT, "5000", 0, 600000, false, false,
     "SQLite: how long a write waits for the write lock; past it the request answers 503 database_timeout"},
    {"OMS_SQLITE_WRITER_CACHE_MB", CFG_INT, "16", 0, 4096, false, false,
     "SQLite: MiB of page cache of the one handle every write transaction runs on (it stays warm from one write "
     "to the next; 0: SQLite's default of 2 MiB). Resident memory grows by up to this much as writes fill it "
     "(docs/storage.md \"The WAL (SQLite)\")"},
    {"OMS_SQLITE_CHECKPOINT_PAGES", CFG_INT, "4000", 0, 1000000, false, false,
     "SQLite: past this many pages of write-ahead log a background thread copies it into the database "
     "(PASSIVE; metric oms_sqlite_checkpoints_total); pages written again before then are copied once (0: "
     "SQLite's default of 1,000)"},
    {"OMS_SQLITE_MMAP_MB", CFG_INT, "0", 0, 1048576, false, false,
     "SQLite: MiB of the database file each connection reads through a memory map instead of read calls (0: "
     "none). Mapped pages are kept by a host's proactive reclaim of unmapped file pages; it costs about a tenth "
     "of the commits a second with 16 writers (docs/storage.md \"Reading the file through a memory map\")"},
    {"OMS_DB_STATEMENT_TIMEOUT_MS", CFG_INT, "5000", 0, 600000, false, false,
     "PostgreSQL statement_timeout (0: the server's own); OMS also stops waiting for an answer 1 s after it; either "
     "way the request answers 503 database_timeout"},
    {"OMS_DB_LOCK_TIMEOUT_MS", CFG_INT, "3000", 0, 600000, false, false,
     "PostgreSQL lock_timeout (0: the server's own): a write waiting longer for a row or advisory lock answers 503 "
     "database_timeout"},
    {"OMS_DB_IDLE_TX_TIMEOUT_MS", CFG_INT, "30000", 0, 3600000, false, false,
     "PostgreSQL idle_in_transaction_session_timeout (0: the server's own): the server ends a session left idle "
     "inside a transaction"},
    {"OMS_DB_CONNECT_TIMEOUT", CFG_INT, "5", 1, 300, false, false,
     "seconds OMS waits to connect to PostgreSQL and set the session up; a connect_timeout in DATABASE_URL wins"},
    {"OMS_DB_KEEPALIVES_IDLE", CFG_INT, "30", 1, 7200, false, false,
     "seconds of silence before TCP keepalive probes to PostgreSQL; DATABASE_URL's own wins"},
    {"OMS_DB_KEEPALIVES_INTERVAL", CFG_INT, "10", 1, 600, false, false, "seconds between TCP keepalive probes"},
    {"OMS_DB_KEEPALIVES_COUNT", CFG_INT, "3", 1, 100, false, false,
     "unanswered keepalive probes after which the connection is dead"},
    {"OMS_DB_SESSION_SETTINGS", CFG_INT, "1", 0, 1, false, false,
     "PostgreSQL: set the timeouts once per connection (1), or with SET LOCAL in every transaction (0: behind a "
     "transaction-pooling proxy; statements outside a transaction then get the server's or role's defaults)"},
    {"OMS_READY_TIMEOUT_MS", CFG_INT, "1000", 100, 30000, false, false,
     "deadline of the /ready database check; a check that takes longer answers 503"},
    {"OMS_READY_MIN_FREE_MB", CFG_INT, "64", 0, 1048576, false, false,
     "SQLite: /ready answers 503 \"disk full\" below this much free space on the database's filesystem"},
    {"OMS_PG_SOLE_WRITER", CFG_INT, "1", 0, 1, false, false,
     "PostgreSQL: 1: an instance that finds no other writer of its database takes the sole-writer lease and "
     "answers repeat reads of a branch from memory until another writer appears (docs/storage.md \"The "
     "sole-writer lease\"); 0: it never takes it. Off behind a transaction-pooling proxy (OMS_DB_SESSION_SETTINGS=0)"},
    {"OMS_PG_PREPARED_STATEMENTS", CFG_INT, "1", 0, 1, false, false,
     "prepare statements per PostgreSQL connection (0 behind a transaction-pooling proxy that cannot)"},
    /* abuse protection (SPEC §6.5; docs/security.md "Abuse protection"), per instance */
    {"OMS_RATE_LIMIT_ENABLED", CFG_INT, "1", 0, 1, false, false,
     "1: rate limits apply and every answer carries RateLimit-Policy and RateLimit; 0: off"},
    {"OMS_RATE_LIMIT_READ", CFG_STRING, "100/s:200", 0, 0, false, false,
     "reads (GET, HEAD, OPTIONS) per principal, or per client address without a token: RATE/UNIT:BURST, "
     "UNIT s, m or h"},
    {"OMS_RATE_LIMIT_WRITE", CFG_STRING, "20/s:40", 0, 0, false, false,
     "other methods per principal, or per client address without a token: RATE/UNIT:BURST"},
    {"OMS_RATE_LIMIT_AUTH_FAILURE", CFG_STRING, "10/m:10", 0, 0, false, false,
     "authentication failures (and other requests refused before authentication) per client address; once "
     "used up, every request from the address is answered 429 until it recovers: RATE/UNIT:BURST"},
    {"OMS_RATE_LIMIT_OVERRIDES", CFG_STRING, "", 0, 0, false, false,
     "read and write limits of named principals (service accounts): SUB=CLASS:RATE/UNIT:BURST[,CLASS:...] "
     "entries separated by ';', CLASS read or write, e.g. svc-indexer=read:1000/s:2000,write:200/s:400"},
    {"OMS_RATE_LIMIT_KEYS", CFG_INT, "65536", 512, 4194304, false, false,
     "principals and addresses tracked at once (32 bytes each, allocated at start-up); past it the key "
     "whose limits expire first is dropped (metric oms_ratelimit_evictions_total)"},
    {"OMS_RATE_LIMIT_AUDIT_WINDOW", CFG_INT, "60", 1, 3600, false, false,
     "seconds of a refusal window: one key's 429s past the sample are one aggregated audit event per window"},
    {"OMS_RATE_LIMIT_AUDIT_SAMPLE", CFG_INT, "5", 0, 1000, false, false,
     "429s of one key and class per window recorded as events of their own, before the rest are aggregated"},
    {"OMS_RATE_LIMIT_STORM_KEY", CFG_INT, "1000", 1, 1000000000, false, false,
     "429s of one key in one window that raise a rate_limit_storm alert (once per key and window)"},
    {"OMS_RATE_LIMIT_STORM_TOTAL", CFG_INT, "10000", 1, 1000000000, false, false,
     "429s of all keys in one window that raise a rate_limit_storm alert for key *"},
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
     "resources a rebuild indexes per build transaction (also the most a catch-up round takes)"},
    {"OMS_SEARCH_THROTTLE_MS", CFG_INT, "0", 0, 10000, false, false,
     "pause between a rebuild's build batches, to bound its load on the database"},
    /* memory (docs/storage.md "In-memory snapshots") */
    {"OMS_SNAPSHOT_CACHE_MB", CFG_INT, "256", 1, 65536, false, false,
     "MiB of branch and commit snapshots kept in memory (an LRU by bytes): writers and reads of a cached head "
     "never load it from the database (metrics oms_snapshot_cache_bytes, oms_snapshot_cache_limit_bytes)"},
    /* writes (docs/storage.md "Group commit") */
    {"OMS_GROUP_COMMIT", CFG_INT, "1", 0, 1, false, false,
     "1: writes of one branch that queue behind a transaction of that branch commit together in the next one, "
     "each in its own savepoint and with its own commit and audit event (one WAL flush for many); 0: one "
     "transaction per write"},
    {"OMS_DIFF_CACHE_MB", CFG_INT, "32", 1, 4096, false, false,
     "MiB of diffs between two commits kept in memory as text (at most 64 pairs, least recently used out; a diff "
     "larger than an eighth of this is not kept; metric oms_diff_cache_bytes)"},
    {"OMS_SQLITE_WAL_RESET_MB", CFG_INT, "64", 1, 65536, false, false,
     "SQLite: past this size the write-ahead log is copied into the database and truncated by a background task, "
     "holding writes for at most a second while older readers finish (under steady reads SQLite's own checkpoints "
     "never restart the log; metric oms_sqlite_wal_resets_total)"},
};
const size_t oms_cfg_table_len = sizeof oms_cfg_table / sizeof oms_cfg_table[0];

/* Settings whose NAME_FILE may be missing or empty, leaving the setting
 * unset: the previous secret of a rotation is there only for a while, and
 * the path stays configured (docs/identity.md). */
static bool file_optional(const oms_cfg_def *d)
{
    return strcmp(d->name, "JWT_PREVIOUS_SECRET") == 0;
}

typedef struct {
    char *value;
    const char *source;
    char *file_path; /* NAME_FILE, when the value came from there */
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
    *slot = oms_xstrdup(val);
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

/* Reads a secret file; a single trailing newline is not part of the value.
 * An optional file that is missing or empty leaves *out NULL. */
static int read_value_file(char **out, const oms_cfg_def *d, const char *path, oms_error *err)
{
    const char *name = d->name;
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f && file_optional(d) && errno == ENOENT)
        return OMS_OK;
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
    if (n == 0 && file_optional(d))
        return OMS_OK;
    *out = oms_xstrdup(buf);
    OPENSSL_cleanse(buf, n);
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
    oms_config *c = oms_xcalloc(1, sizeof *c);
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
            if ((rc = read_value_file(&c->v[i].value, d, s[i].file, err)) != OMS_OK)
                goto cleanup;
            c->v[i].source = c->v[i].value ? "file" : "file (missing or empty)";
            c->v[i].file_path = oms_xstrdup(s[i].file);
        } else if (s[i].plain) {
            c->v[i].value = oms_xstrdup(s[i].plain);
            c->v[i].source = s[i].plain_src;
        } else if (d->def) {
            c->v[i].value = oms_xstrdup(d->def);
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
        free(c->v[i].file_path);
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

const char *oms_config_file_path(const oms_config *c, const char *name)
{
    int i = find_def(name, strlen(name));
    return i < 0 ? NULL : c->v[i].file_path;
}

int oms_config_reread(const oms_config *c, const char *name, char **out, oms_error *err)
{
    *out = NULL;
    int i = find_def(name, strlen(name));
    if (i < 0 || !c->v[i].file_path)
        return oms_err_set(err, OMS_ECONFIG, "%s was not read from a file", name);
    return read_value_file(out, &oms_cfg_table[i], c->v[i].file_path, err);
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

int oms_config_check_secret(const char *name, const char *v, oms_error *err)
{
    size_t len = strlen(v);
    if (len < 32)
        return oms_err_set(err, OMS_ECONFIG, "%s is shorter than 32 bytes", name);
    if (oms_config_weak_secret(v, len))
        return oms_err_set(err, OMS_ECONFIG, "%s is a known placeholder or too predictable", name);
    return OMS_OK;
}

static bool parse_count(const char **p, int64_t max, int64_t *out)
{
    const char *s = *p;
    while (*s == ' ')
        s++;
    int64_t v = 0;
    const char *digits = s;
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (*s++ - '0');
        if (v > max)
            return false;
    }
    while (*s == ' ')
        s++;
    *p = s;
    *out = v;
    return s > digits && v >= 1;
}

int oms_config_count_window(const oms_config *c, const char *name, int64_t *count, int64_t *window_s,
                            oms_error *err)
{
    const char *v = oms_config_str(c, name);
    const char *p = v ? v : "";
    if (!parse_count(&p, 1000000, count) || *p++ != '/' || !parse_count(&p, 86400, window_s) || *p)
        return oms_err_set(err, OMS_ECONFIG,
                           "%s must be COUNT/SECONDS (for example 20/300: 20 within 300 seconds), with COUNT "
                           "1..1000000 and SECONDS 1..86400",
                           name);
    return OMS_OK;
}

int oms_config_validate_common(const oms_config *c, oms_error *err)
{
    int64_t n, w;
    if (oms_config_count_window(c, "OMS_ALERT_AUTH_FAILURES", &n, &w, err) ||
        oms_config_count_window(c, "OMS_ALERT_DENIALS", &n, &w, err))
        return OMS_ECONFIG;
    const char *audit_key = oms_config_str(c, "OMS_AUDIT_KEY");
    if (audit_key && strlen(audit_key) < 32)
        return oms_err_set(err, OMS_ECONFIG, "OMS_AUDIT_KEY is shorter than 32 bytes");
    return OMS_OK;
}

void oms_config_secret_fingerprint(const void *secret, size_t len, char out[24])
{
    unsigned char h[32];
    char hex[65];
    oms_sha256(h, secret, len);
    oms_hex(hex, h, sizeof h);
    snprintf(out, 24, "sha256:%.*s", 16, hex);
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
        if (!v && c->v[i].file_path)
            fprintf(f, "(unset: %s is missing or empty)", c->v[i].file_path);
        else if (!v)
            fputs("(unset)", f);
        else if (d->secret) {
            /* A fingerprint tells which secret is loaded without revealing it. */
            char fp[24];
            oms_config_secret_fingerprint(v, strlen(v), fp);
            fprintf(f, "(set, redacted) %s", fp);
        }
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
          "Generated by `oms config docs` from the settings table in `src/infra/config.c`; a test keeps\n"
          "this file and the table in step. Precedence: command-line flags (`--listen 127.0.0.1:9000`,\n"
          "`--OMS_LISTEN ...`) > environment > `--config FILE` (KEY=VALUE lines). A setting with a\n"
          "file form also accepts `NAME_FILE` (the value is read from that file, one trailing newline\n"
          "dropped; `(optional)`: the file may be missing or empty); setting both forms is refused.\n"
          "Secrets are never printed: `oms config check` shows them as `(set, redacted)` with a\n"
          "fingerprint (the first 16 hex digits of the value's SHA-256), and the fingerprints of key\n"
          "files. `_FILE` secrets and key files are re-read on SIGHUP and when they change\n"
          "(docs/identity.md).\n\n"
          "| setting | type | default | bounds | secret | `_FILE` form | meaning |\n"
          "|---|---|---|---|---|---|---|\n", f);
    for (size_t i = 0; i < oms_cfg_table_len; i++) {
        const oms_cfg_def *d = &oms_cfg_table[i];
        char bounds[48] = "";
        if (d->type == CFG_INT)
            snprintf(bounds, sizeof bounds, "%ld..%ld", d->min, d->max);
        fprintf(f, "| `%s` | %s | %s%s%s | %s | %s | %s | %s |\n", d->name, d->type == CFG_INT ? "integer" : "string",
                d->def ? "`" : "", d->def ? (*d->def ? d->def : " ") : "none", d->def ? "`" : "", bounds,
                d->secret ? "yes" : "", d->has_file_form ? (file_optional(d) ? "yes (optional)" : "yes") : "",
                d->help);
    }
}
