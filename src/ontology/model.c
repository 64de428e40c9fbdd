/* Domain facts of SPEC §3 shared by validation, integrity and diff. */
#include <stdio.h>
#include <string.h>

#include "ontology/internal.h"

const char *const oms_ont_property_types[] = {"string", "integer", "long",      "double",
                                              "decimal", "boolean", "date",     "timestamp",
                                              "geopoint", "json",    NULL};
const char *const oms_ont_parameter_types[] = {
    "string", "integer", "long",     "double", "decimal",          "boolean",
    "date",   "timestamp", "geopoint", "json", "object_reference", NULL};
const char *const oms_ont_statuses[] = {"experimental", "active", "deprecated", NULL};
const char *const oms_ont_cardinalities[] = {"one_to_one", "one_to_many", "many_to_one",
                                             "many_to_many", NULL};
const char *const oms_ont_rule_types[] = {"create_object", "modify_object", "delete_object",
                                          "create_link",   "delete_link",   NULL};

int oms_status_index(const char *s, size_t len)
{
    for (int i = 0; oms_ont_statuses[i]; i++)
        if (strlen(oms_ont_statuses[i]) == len && memcmp(oms_ont_statuses[i], s, len) == 0)
            return i;
    return -1;
}

/* Types a primary key may have: exact, stable identities only. */
static const char *const PK_TYPES[] = {"string", "integer", "long", NULL};

bool oms_ont_in_list(const char *const *list, const char *s)
{
    if (!s)
        return false;
    for (; *list; list++)
        if (strcmp(*list, s) == 0)
            return true;
    return false;
}

bool oms_ont_type_widens(const char *from, const char *to)
{
    static const struct {
        const char *from, *to;
    } WIDENINGS[] = {
        {"integer", "long"},
        {"integer", "double"},
        {"long", "double"},
        {"date", "timestamp"},
    };
    if (!from || !to)
        return false;
    for (size_t i = 0; i < sizeof WIDENINGS / sizeof WIDENINGS[0]; i++)
        if (strcmp(WIDENINGS[i].from, from) == 0 && strcmp(WIDENINGS[i].to, to) == 0)
            return true;
    return false;
}

/* A cardinality as two flags: may the from side be many, may the to side be
 * many ("one_to_many": one source, many targets). Returns -1 if unknown. */
static int cardinality_flags(const char *c)
{
    static const struct {
        const char *name;
        int flags; /* bit 1: from-side many, bit 0: to-side many */
    } CARD[] = {
        {"one_to_one", 0},
        {"one_to_many", 1},
        {"many_to_one", 2},
        {"many_to_many", 3},
    };
    if (!c)
        return -1;
    for (size_t i = 0; i < sizeof CARD / sizeof CARD[0]; i++)
        if (strcmp(CARD[i].name, c) == 0)
            return CARD[i].flags;
    return -1;
}

bool oms_ont_cardinality_narrows(const char *from, const char *to)
{
    int f = cardinality_flags(from), t = cardinality_flags(to);
    if (f < 0 || t < 0)
        return true;
    /* Narrowing: a side that allowed many no longer does. */
    return (f & ~t) != 0;
}

const char *oms_ont_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

json_t *oms_ont_find_named(const json_t *arr, const char *name, size_t *idx)
{
    size_t i;
    json_t *item;
    if (!name)
        return NULL;
    json_array_foreach(arr, i, item) {
        const char *n = oms_ont_str(item, "api_name");
        if (n && strcmp(n, name) == 0) {
            if (idx)
                *idx = i;
            return item;
        }
    }
    return NULL;
}

bool oms_ont_primary_key_ok(const json_t *doc, char *msg, size_t msglen)
{
    const char *pk = oms_ont_str(doc, "primary_key");
    if (!pk)
        return true;
    const json_t *prop = oms_ont_find_named(json_object_get(doc, "properties"), pk, NULL);
    if (!prop) {
        snprintf(msg, msglen, "primary_key '%s' names no property", pk);
        return false;
    }
    if (!json_is_true(json_object_get(prop, "required"))) {
        snprintf(msg, msglen, "primary key property '%s' must be required", pk);
        return false;
    }
    if (json_is_true(json_object_get(prop, "array"))) {
        snprintf(msg, msglen, "primary key property '%s' must not be an array", pk);
        return false;
    }
    if (!oms_ont_in_list(PK_TYPES, oms_ont_str(prop, "type"))) {
        snprintf(msg, msglen, "primary key property '%s' must be of type string, integer or long",
                 pk);
        return false;
    }
    return true;
}

bool oms_ont_title_property_ok(const json_t *doc, char *msg, size_t msglen)
{
    const char *title = oms_ont_str(doc, "title_property");
    if (!title)
        return true;
    if (!oms_ont_find_named(json_object_get(doc, "properties"), title, NULL)) {
        snprintf(msg, msglen, "title_property '%s' names no property", title);
        return false;
    }
    return true;
}

bool oms_ont_set_add(json_t *set, const char *s)
{
    if (json_object_get(set, s))
        return false;
    json_object_set_new(set, s, json_true());
    return true;
}
