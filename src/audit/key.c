/* OMS_AUDIT_KEY: the HMAC key that signs checkpoints. Required on
 * PostgreSQL (several instances must share it, so none may invent one); on
 * SQLite, when unset, a random key is generated into a 0600 file beside the
 * database and reused afterwards. The key never appears in logs or output. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/internal.h"
#include "ops/config.h"
#include "ops/log.h"
#include "util/encoding.h"

#define KEY_MAX 4096
#define KEY_MIN 32

static unsigned char g_key[KEY_MAX];
static size_t g_keylen;

bool oms_audit_have_key(void) { return g_keylen > 0; }

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
    char *copy = strdup(path);
    if (!copy)
        return oms_err_set(err, OMS_ENOMEM, "out of memory");
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
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
        return oms_err_set(err, OMS_EIO, "no randomness for the audit key");
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

int oms_audit_load_key(const oms_config *cfg, oms_store *s, bool create, oms_error *err)
{
    const char *k = oms_config_str(cfg, "OMS_AUDIT_KEY");
    if (k)
        return set_key(k, strlen(k), "OMS_AUDIT_KEY", err);
    if (oms_db_backend_of(s->db) == OMS_DB_PG)
        return oms_err_set(err, OMS_ECONFIG, "OMS_AUDIT_KEY (or OMS_AUDIT_KEY_FILE) is required on PostgreSQL");
    char path[4096];
    int rc = key_path(path, sizeof path, oms_config_str(cfg, "DATABASE_URL"), err);
    if (rc)
        return rc;
    if (access(path, F_OK) == 0)
        return read_key_file(path, err);
    if (!create)
        return oms_err_set(err, OMS_ECONFIG, "OMS_AUDIT_KEY is not set and %s does not exist", path);
    return generate_key_file(path, err);
}
