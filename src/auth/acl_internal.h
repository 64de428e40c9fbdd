/* Pieces shared by the ACL files (acl_glob.c, acl_policy.c, acl.c); not an
 * interface for the rest of OMS. */
#ifndef OMS_ACL_INTERNAL_H
#define OMS_ACL_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/rbac.h"
#include "util/error.h"

/* A glob split once into the shape that decides how it is matched: most
 * real globs are a name ("main"), a prefix over everything below it
 * ("team-a/" then two stars) or a prefix over one segment ("feature/" then
 * one star), each a memcmp;
 * anything else runs a small NFA over the pre-split tokens. */
typedef enum {
    OMS_GLOB_EXACT,      /* text, no star */
    OMS_GLOB_PREFIX_ANY, /* text then a final `**` */
    OMS_GLOB_PREFIX_SEG, /* text then a final `*` */
    OMS_GLOB_GENERAL,    /* tokens: characters, OMS_GLOB_TOK_STAR, OMS_GLOB_TOK_STARSTAR */
} oms_glob_kind;

#define OMS_GLOB_TOK_STAR '\x01'
#define OMS_GLOB_TOK_STARSTAR '\x02'

typedef struct {
    oms_glob_kind kind;
    size_t len;  /* bytes of text (EXACT, PREFIX_*) or tokens (GENERAL) */
    char *text;  /* malloc'd */
} oms_acl_glob;

/* The glob must be valid (oms_acl_glob_valid). OMS_ENOMEM on allocation failure. */
int oms_acl_glob_compile(oms_acl_glob *out, const char *glob);
void oms_acl_glob_free(oms_acl_glob *g);
bool oms_acl_glob_matches(const oms_acl_glob *g, const char *branch, size_t len);

/* "user:NAME" or "role:NAME": *name points into s. */
int oms_acl_subject_parse(const char *s, bool *is_role, const char **name, oms_error *err);
/* A JSON array of 1..64 distinct known permission names. */
int oms_acl_perms_parse(const json_t *arr, oms_permset *out, oms_error *err);
/* A JSON array of 0..64 distinct valid globs. */
int oms_acl_branches_check(const json_t *arr, oms_error *err);

#endif
