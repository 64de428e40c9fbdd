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
 * one star), each a memcmp. Anything else is GENERAL: cheap rejections
 * first (literal prefix and suffix, length, number of '/'), then a
 * bit-parallel (Shift-And) automaton over the tokens, or a byte-per-state
 * one for globs of more than 63 tokens. */
typedef enum {
    OMS_GLOB_EXACT,      /* text, no star */
    OMS_GLOB_PREFIX_ANY, /* text then a final two-star */
    OMS_GLOB_PREFIX_SEG, /* text then a final one-star */
    OMS_GLOB_GENERAL,    /* tokens: characters, OMS_GLOB_TOK_STAR, OMS_GLOB_TOK_STARSTAR */
} oms_glob_kind;

#define OMS_GLOB_TOK_STAR '\x01'
#define OMS_GLOB_TOK_STARSTAR '\x02'
#define OMS_GLOB_CLASSES 41 /* [a-z0-9._/-] and "anything else" */

typedef struct {
    uint8_t kind;      /* oms_glob_kind */
    char head;         /* EXACT, PREFIX_*: text[0] (0 when empty); GENERAL: the last literal when it ends with one */
    bool crosses;      /* GENERAL: has a two-star token */
    uint8_t len;       /* bytes of text (EXACT, PREFIX_*) or tokens (GENERAL); globs are <= 128 bytes */
    uint8_t prefix, suffix; /* GENERAL: literal bytes before the first and after the last star */
    uint8_t min_len;   /* GENERAL: literal tokens, the shortest name that can match */
    uint8_t slashes;   /* GENERAL: '/' tokens */
    char *text;        /* malloc'd */
    uint64_t *lit;     /* GENERAL: Shift-And masks by character class; NULL above 63 tokens */
    uint64_t stars, starstars;
} oms_acl_glob;

/* The glob must be valid (oms_acl_glob_valid). OMS_ENOMEM on allocation failure. */
int oms_acl_glob_compile(oms_acl_glob *out, const char *glob);
void oms_acl_glob_free(oms_acl_glob *g);
bool oms_acl_glob_matches(const oms_acl_glob *g, const char *branch, size_t len);
/* The first (or, for GENERAL, last) byte check, inline in the decision
 * loop: it rejects most non-matching names without a call. */
static inline bool oms_acl_glob_may_match(const oms_acl_glob *g, const char *s, size_t len)
{
    if (!g->head)
        return true;
    if (len == 0)
        return false;
    return g->kind == OMS_GLOB_GENERAL ? s[len - 1] == g->head : s[0] == g->head;
}

/* "user:NAME" or "role:NAME": *name points into s. */
int oms_acl_subject_parse(const char *s, bool *is_role, const char **name, oms_error *err);
/* A JSON array of 1..64 distinct known permission names. */
int oms_acl_perms_parse(const json_t *arr, oms_permset *out, oms_error *err);
/* A JSON array of 0..64 distinct valid globs. */
int oms_acl_branches_check(const json_t *arr, oms_error *err);

#endif
