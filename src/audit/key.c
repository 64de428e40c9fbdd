/* OMS_AUDIT_KEY: the HMAC key that signs checkpoints. Required on
 * PostgreSQL (several instances must share it, so none may invent one); on
 * SQLite, when unset, a random key is generated into a 0600 file beside the
 * database, only while the database holds no checkpoint, and reused
 * afterwards. A command that signs checks the key against the newest
 * checkpoint first. The key never appears in logs or output. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/ids.h"
#include "audit/internal.h"
#include "infra/config.h"
#include "infra/log.h"
#include "store/audit_sql.h"
#include "util/alloc.h"
#include "util/encoding.h"

#define KEY_MAX 4096
#define KEY_MIN 32

static unsigned char g_key[KEY_MAX];
static size_t g_keylen;
static bool g_may_sign; /* the key signed the database's checkpoints (or there are none) */

bool oms_audit_have_key(void) { return g_keylen > 0; }
bool oms_audit_may_sign(void) { return g_keylen > 0 && g_may_sign; }

bool oms_audit_hmac_hex(char out[65], const void *data, size_t len)
{
    if (!g_keylen)
        return false;
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (!HMAC(EVP_sha256(), g_key, (int)g_keylen, data, len, md, &mdlen) || mdlen != 32)
        return false;
    oms_hex(out, md, sizeof md);
    return true;
}

static int set_key(const char *k, size_t n, const char *what, oms_error *err)
{
    if (n < KEY_MIN)
        return oms_err_set(err, OMS_ECONFIG, "%s is shorter than %d bytes", what, KEY_MIN);
    if (n > KEY_MAX)
        return oms_err_set(err, OMS_ECONFIG, "%s is longer than %d bytes", what, KEY_MAX);
    if (oms_config_weak_secret(k, n))
        return oms_err_set(err, OMS_ECONFIG, "%s is a known placeholder or too simple", what);
    OPENSSL_cleanse(g_key, sizeof g_key);
    memcpy(g_key, k, n);
    g_keylen = n;
    return OMS_OK;
}

/* <directory of the SQLite database>/audit.key */
static int key_path(char *out, size_t cap, const char *url, oms_error *err)
{
    const char *path = url + strlen("sqlite:");
    char *copy = oms_xstrdup(path);
    int n = snprintf(out, cap, "%s/audit.key", dirname(copy));
    free(copy);
    if (n < 0 || (size_t)n >= cap)
        return oms_err_set(err, OMS_ECONFIG, "the database path is too long");
    return OMS_OK;
}

static int read_key_file(const char *path, oms_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return oms_err_set(err, OMS_ECONFIG, "cannot read the audit key file %s: %s", path, strerror(errno));
    char buf[KEY_MAX + 2];
    ssize_t n = read(fd, buf, sizeof buf);
    struct stat st;
    bool loose = fstat(fd, &st) == 0 && (st.st_mode & 077);
    close(fd);
    if (n < 0)
        return oms_err_set(err, OMS_ECONFIG, "cannot read the audit key file %s", path);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    if (loose)
        oms_log_write(OMS_LOG_WARN, NULL, NULL, "the audit key file %s is readable by others: chmod 600 it", path);
    int rc = set_key(buf, (size_t)n, "the audit key file", err);
    OPENSSL_cleanse(buf, sizeof buf);
    return rc;
}

static int generate_key_file(const char *path, oms_error *err)
{
    unsigned char raw[32];
    char hex[65];
    oms_random_bytes(raw, sizeof raw);
    oms_hex(hex, raw, sizeof raw);
    OPENSSL_cleanse(raw, sizeof raw);
    /* O_EXCL: two instances starting at once never overwrite each other's
     * key; the loser reads the winner's. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        OPENSSL_cleanse(hex, sizeof hex);
        if (errno == EEXIST)
            return read_key_file(path, err);
        return oms_err_set(err, OMS_ECONFIG, "cannot create the audit key file %s: %s", path, strerror(errno));
    }
    hex[64] = '\n';
    bool ok = write(fd, hex, 65) == 65 && fsync(fd) == 0;
    close(fd);
    hex[64] = '\0';
    int rc = ok ? set_key(hex, 64, "the generated audit key", err)
                : oms_err_set(err, OMS_EIO, "cannot write the audit key file %s", path);
    OPENSSL_cleanse(hex, sizeof hex);
    if (rc == OMS_OK)
        oms_log_write(OMS_LOG_WARN, NULL, NULL,
                      "OMS_AUDIT_KEY is not set: generated a random audit key into %s; back it up with the "
                      "database, and set OMS_AUDIT_KEY(_FILE) before moving to PostgreSQL",
                      path);
    return rc;
}

/* The checkpoints already signed: the number of them, and the newest and
 * the oldest (id 0 when there is none). Before schema version 4 there is no
 * checkpoint table. */
typedef struct {
    int64_t count;
    oms_audit_checkpoint newest, oldest;
} signed_history;

static int read_history(oms_store *s, signed_history *h, oms_error *err)
{
    memset(h, 0, sizeof *h);
    int version = 0;
    int rc = oms_store_schema_version(s, &version, err);
    if (rc || version < 4)
        return rc;
    oms_dbconn *c;
    oms_dbres *r = NULL;
    if ((rc = oms_db_conn(s->db, &c, err)))
        return rc;
    if ((rc = oms_store_audit_checkpoint_count(c, &h->count, err)))
        return rc;
    if (h->count == 0)
        return OMS_OK;
    oms_audit_checkpoint *out[2] = {&h->newest, &h->oldest};
    for (int i = 0; i < 2; i++) {
        if ((rc = oms_store_audit_checkpoint_edge(c, i == 0, &r, err)))
            return rc;
        if (r->nrows)
            oms_audit_checkpoint_from_row(out[i], r, 0);
        oms_dbres_free(r);
    }
    return OMS_OK;
}

static void history_clear(signed_history *h)
{
    oms_audit_checkpoint_clear(&h->newest);
    oms_audit_checkpoint_clear(&h->oldest);
}

static bool signed_with_key(const oms_audit_checkpoint *cp)
{
    char mac[65];
    return cp->id && oms_audit_checkpoint_hmac(mac, cp) && strlen(cp->hmac) == 64 &&
           CRYPTO_memcmp(mac, cp->hmac, 64) == 0;
}

/* A key that did not sign the database's checkpoints would sign new ones
 * that verification then reports forged, and call the whole history
 * forged: refused. The newest checkpoint decides; when it does not verify
 * but the oldest does, the key is the right one and the newest checkpoint
 * was changed: that is tampering for `oms audit verify` to report, not a
 * reason to stop the service. */
static int key_matches_history(const signed_history *h, const char *source, bool quiet, oms_error *err)
{
    if (h->count == 0 || signed_with_key(&h->newest))
        return OMS_OK;
    if (h->oldest.id != h->newest.id && signed_with_key(&h->oldest)) {
        if (!quiet)
            oms_log_write(OMS_LOG_ERROR, NULL, NULL,
                          "audit checkpoint %lld does not verify with the key that signed checkpoint %lld: the"
                          " audit log was tampered with; run oms audit verify",
                          (long long)h->newest.id, (long long)h->oldest.id);
        return OMS_OK;
    }
    return oms_err_set(err, OMS_ECONFIG,
                       "audit key mismatch: the key did not sign this database's %lld audit checkpoints; set"
                       " OMS_AUDIT_KEY (or OMS_AUDIT_KEY_FILE) to the key that did, or restore the audit.key"
                       " backed up with the database (key from %s)",
                       (long long)h->count, source);
}

int oms_audit_load_key(const oms_config *cfg, oms_store *s, bool sign, oms_error *err)
{
    const char *k = oms_config_str(cfg, "OMS_AUDIT_KEY");
    if (!k && oms_store_audit_shared(s->db))
        return oms_err_set(err, OMS_ECONFIG, "OMS_AUDIT_KEY (or OMS_AUDIT_KEY_FILE) is required on PostgreSQL");
    char path[4096], source[4200];
    int rc = OMS_OK;
    signed_history h;
    g_may_sign = false;
    if ((rc = read_history(s, &h, err)))
        return rc;
    if (k) {
        rc = set_key(k, strlen(k), "OMS_AUDIT_KEY", err);
        snprintf(source, sizeof source, "OMS_AUDIT_KEY");
    } else if ((rc = key_path(path, sizeof path, oms_config_str(cfg, "DATABASE_URL"), err)) == OMS_OK) {
        snprintf(source, sizeof source, "%s", path);
        if (access(path, F_OK) == 0)
            rc = read_key_file(path, err);
        else if (!sign)
            rc = oms_err_set(err, OMS_ECONFIG, "OMS_AUDIT_KEY is not set and %s does not exist", path);
        else if (h.count > 0) /* a new key is for a log nothing has signed yet */
            rc = oms_err_set(err, OMS_ECONFIG,
                             "audit key missing: this database holds %lld signed audit checkpoints; restore the"
                             " audit.key backed up with it, or set OMS_AUDIT_KEY (or OMS_AUDIT_KEY_FILE) to the key"
                             " that signed them (no key at %s)",
                             (long long)h.count, path);
        else
            rc = generate_key_file(path, err);
    }
    if (rc == OMS_OK) {
        oms_error quiet;
        if (sign)
            rc = key_matches_history(&h, source, false, err);
        /* verify and report read with any key, and sign their own event's
         * checkpoint only with the right one */
        g_may_sign = sign ? rc == OMS_OK : key_matches_history(&h, source, true, &quiet) == OMS_OK;
    }
    if (rc) {
        OPENSSL_cleanse(g_key, sizeof g_key);
        g_keylen = 0;
    }
    history_clear(&h);
    return rc;
}

int oms_audit_load_key_offline(const oms_config *cfg, oms_error *err)
{
    const char *k = oms_config_str(cfg, "OMS_AUDIT_KEY");
    g_may_sign = false;
    if (k)
        return set_key(k, strlen(k), "OMS_AUDIT_KEY", err);
    const char *url = oms_config_str(cfg, "DATABASE_URL");
    char path[4096];
    int rc;
    if (!url || strncmp(url, "sqlite:", 7) != 0)
        return oms_err_set(err, OMS_ENOTFOUND, "OMS_AUDIT_KEY (or OMS_AUDIT_KEY_FILE) is not set");
    if ((rc = key_path(path, sizeof path, url, err)))
        return rc;
    if (access(path, F_OK) != 0)
        return oms_err_set(err, OMS_ENOTFOUND, "OMS_AUDIT_KEY (or OMS_AUDIT_KEY_FILE) is not set and %s does not exist",
                           path);
    return read_key_file(path, err);
}
