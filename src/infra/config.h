/* Configuration is one table (Redis static_configs[], pgbouncer
 * bouncer_params[]): name, type, default, bounds, secret or not. The same
 * table drives parsing, validation and `oms config check`.
 * Precedence: command-line flags > environment > --config FILE. */
#ifndef OMS_CONFIG_H
#define OMS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/error.h"

typedef enum { CFG_STRING, CFG_INT } oms_cfg_type;

typedef struct {
    const char *name;       /* environment name, e.g. DATABASE_URL */
    oms_cfg_type type;
    const char *def;        /* default as text, NULL for none */
    long min, max;          /* bounds for CFG_INT */
    bool secret;            /* never printed, never logged */
    bool has_file_form;     /* NAME_FILE reads the value from a file */
    const char *help;
} oms_cfg_def;

typedef struct oms_config oms_config;

extern const oms_cfg_def oms_cfg_table[];
extern const size_t oms_cfg_table_len;

/* Builds the configuration from argv flags (--name value / --name=value, where
 * name is the setting lower-cased with '-' for '_', or the setting itself),
 * the environment and an optional --config FILE. Consumed flags are removed
 * from argv; remaining arguments stay in order. On failure `err` says which
 * setting is wrong without echoing any secret value. */
int oms_config_load(oms_config **out, int *argc, char **argv, char **envp, oms_error *err);
void oms_config_free(oms_config *c);

const char *oms_config_str(const oms_config *c, const char *name); /* NULL when unset */
long oms_config_int(const oms_config *c, const char *name);
/* Where the value came from: "default", "environment", "file", "flag", "unset". */
const char *oms_config_source(const oms_config *c, const char *name);

/* The file a setting's value was read from (NAME_FILE), or NULL. */
const char *oms_config_file_path(const oms_config *c, const char *name);
/* Reads NAME_FILE again (rotation without restart): *out is a malloc'd
 * value, NULL when a file_optional file is missing or empty. */
int oms_config_reread(const oms_config *c, const char *name, char **out, oms_error *err);

/* Validates the settings below auth that `oms serve` needs (the audit key);
 * the identity rules come first, in oms_config_validate_serve
 * (src/auth/config_rules.h), which ends with this. */
int oms_config_validate_common(const oms_config *c, oms_error *err);
/* A "COUNT/SECONDS" threshold (the OMS_ALERT_* settings): OMS_ECONFIG
 * naming the setting and the form when it is anything else. */
int oms_config_count_window(const oms_config *c, const char *name, int64_t *count, int64_t *window_s,
                            oms_error *err);
/* "sha256:" and the first 16 hex digits of the value's SHA-256: tells which
 * secret is loaded without revealing it. */
void oms_config_secret_fingerprint(const void *secret, size_t len, char out[24]);
/* The rules for an HMAC secret: at least 32 bytes, not a placeholder. */
int oms_config_check_secret(const char *name, const char *value, oms_error *err);
/* True when the secret is a known placeholder (case-insensitive). */
bool oms_config_weak_secret(const char *s, size_t len);

/* Prints the settings table as Markdown (docs/configuration.md). */
void oms_config_print_docs(FILE *f);

/* Prints the effective configuration, secrets redacted. */
void oms_config_print(const oms_config *c, FILE *f);

#endif
