/* The identity rules of the configuration (src/auth/config_rules.c). */
#ifndef OMS_AUTH_CONFIG_RULES_H
#define OMS_AUTH_CONFIG_RULES_H

#include "infra/config.h"
#include "util/error.h"

/* Validates the settings `oms serve` needs: JWT secret rules of SPEC §2,
 * identity provider rules of §6.1, the role map, then the settings below
 * auth (oms_config_validate_common). */
int oms_config_validate_serve(const oms_config *c, oms_error *err);

#endif
