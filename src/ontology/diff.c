/* Field-level diff of two versions of a resource, with the breaking-change
 * rules of SPEC §3. A rule table per kind says, field by field, how a change
 * is judged and whether the field is a list of named items (matched by
 * api_name) or a nested object; every other field is a plain value whose
 * changes are never breaking.
 *
 * Ops follow the new document's field order, then fields only in the old
 * one in its order; named items likewise (new order, then removed items in
 * old order), so output is deterministic and reordering alone gives no op.
 *
 * Beyond the SPEC list, adding a property that is required is breaking, for
 * the reason making one required is (existing objects lack it), mirroring
 * "adding a required action parameter". */
#include <stdio.h>
#include <string.h>

#include "ontology/internal.h"

typedef enum {
    B_NEVER,
    B_ALWAYS,       /* any change (reference targets, array flags, keys) */
    B_TYPE,         /* any change except a widening */
    B_BECOMES_TRUE, /* `required` turned on */
    B_CARDINALITY,  /* a link cardinality narrowed */
} brule;

typedef enum {
    S_VALUE,      /* compared as a whole value */
    S_NAMED_LIST, /* array of objects matched by api_name, diffed item by item */
    S_OBJECT,     /* object diffed member by member */
    S_IGNORED,    /* server-maintained data: never diffed */
} shape;

typedef struct rule_set rule_set;

typedef struct {
    const char *field;
    brule rule;
    shape shape;
    const rule_set *sub; /* rules of the items (S_NAMED_LIST) or members (S_OBJECT) */
} field_rule;

struct rule_set {
    const field_rule *rules;
    size_t n;
};

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define SET(a) {a, N(a)}

static const field_rule PROPERTY_RULES[] = {
    {"type", B_TYPE, S_VALUE, NULL},
    {"array", B_ALWAYS, S_VALUE, NULL},
    {"required", B_BECOMES_TRUE, S_VALUE, NULL},
};
static const rule_set PROPERTY = SET(PROPERTY_RULES);

/* Action parameters, function inputs and outputs: retargeting an
 * object_reference changes its type. */
static const field_rule PARAMETER_RULES[] = {
    {"type", B_TYPE, S_VALUE, NULL},
    {"array", B_ALWAYS, S_VALUE, NULL},
    {"required", B_BECOMES_TRUE, S_VALUE, NULL},
    {"object_type", B_ALWAYS, S_VALUE, NULL},
};
static const rule_set PARAMETER = SET(PARAMETER_RULES);

/* Named lists fall back to B_ALWAYS when they cannot be matched by name
 * (malformed documents): a conservative verdict. */
static const field_rule OBJECT_TYPE_RULES[] = {
    {"meta", B_NEVER, S_IGNORED, NULL},
    {"properties", B_ALWAYS, S_NAMED_LIST, &PROPERTY},
    {"primary_key", B_ALWAYS, S_VALUE, NULL},
};
static const field_rule LINK_TYPE_RULES[] = {
    {"meta", B_NEVER, S_IGNORED, NULL},
    {"from", B_ALWAYS, S_VALUE, NULL},
    {"to", B_ALWAYS, S_VALUE, NULL},
    {"cardinality", B_CARDINALITY, S_VALUE, NULL},
};
static const field_rule ACTION_TYPE_RULES[] = {
    {"meta", B_NEVER, S_IGNORED, NULL},
    {"parameters", B_ALWAYS, S_NAMED_LIST, &PARAMETER},
};
static const field_rule FUNCTION_TYPE_RULES[] = {
    {"meta", B_NEVER, S_IGNORED, NULL},
    {"inputs", B_ALWAYS, S_NAMED_LIST, &PARAMETER},
    {"output", B_ALWAYS, S_OBJECT, &PARAMETER},
};
static const field_rule INTERFACE_RULES[] = {
    {"meta", B_NEVER, S_IGNORED, NULL},
    {"properties", B_ALWAYS, S_NAMED_LIST, &PROPERTY},
};
static const field_rule SHARED_PROPERTY_RULES[] = {
    {"meta", B_NEVER, S_IGNORED, NULL},
    {"type", B_TYPE, S_VALUE, NULL},
    {"array", B_ALWAYS, S_VALUE, NULL},
};

static const rule_set KIND_RULES[OMS_KIND__COUNT] = {
    [OMS_KIND_OBJECT_TYPE] = SET(OBJECT_TYPE_RULES),
    [OMS_KIND_LINK_TYPE] = SET(LINK_TYPE_RULES),
    [OMS_KIND_ACTION_TYPE] = SET(ACTION_TYPE_RULES),
    [OMS_KIND_FUNCTION_TYPE] = SET(FUNCTION_TYPE_RULES),
    [OMS_KIND_INTERFACE] = SET(INTERFACE_RULES),
    [OMS_KIND_SHARED_PROPERTY] = SET(SHARED_PROPERTY_RULES),
};

static const field_rule PLAIN = {NULL, B_NEVER, S_VALUE, NULL};

typedef struct {
    json_t *ops;
    bool breaking;     /* any op is */
    bool experimental; /* the old version is experimental: nothing is breaking */
    oms_ont_ptr ptr;   /* pointer of the value being compared */
} dctx;

/* ---- ops -------------------------------------------------------------------- */

/* Values are copied so the ops outlive (and never alias) the documents. */
/* Every breaking op carries its rule code and a sentence a reviewer can
 * read (SPEC §4): `why` is the reason's text after the pointer. */
static void emit_why(dctx *d, const char *op, const json_t *old_val, const json_t *new_val, bool breaking,
                     const char *code, const char *why);

static void emit(dctx *d, const char *op, const json_t *old_val, const json_t *new_val, bool breaking)
{
    emit_why(d, op, old_val, new_val, breaking, NULL, NULL);
}

static void emit_why(dctx *d, const char *op, const json_t *old_val, const json_t *new_val, bool breaking,
                     const char *code, const char *why)
{
    breaking = breaking && !d->experimental;
    json_t *o = json_object();
    if (!o)
        return;
    json_object_set_new(o, "path", json_string(oms_ont_ptr_str(&d->ptr)));
    json_object_set_new(o, "op", json_string(op));
    if (old_val)
        json_object_set_new(o, "old", json_deep_copy(old_val));
    if (new_val)
        json_object_set_new(o, "new", json_deep_copy(new_val));
    json_object_set_new(o, "breaking", json_boolean(breaking));
    if (breaking && code) {
        const char *path = oms_ont_ptr_str(&d->ptr);
        char reason[512];
        snprintf(reason, sizeof reason, "%s%s%s", *path ? path : "the resource", *path ? ": " : " ", why);
        json_object_set_new(o, "rule", json_string(code));
        json_object_set_new(o, "reason", json_string(reason));
    }
    json_array_append_new(d->ops, o);
    d->breaking = d->breaking || breaking;
}

/* The verdict on a field going from old_val to new_val (either may be NULL). */
static bool judge(brule rule, const json_t *old_val, const json_t *new_val)
{
    const char *o = json_string_value(old_val), *n = json_string_value(new_val);
    switch (rule) {
    case B_NEVER:
        return false;
    case B_ALWAYS:
        return true;
    case B_TYPE:
        return !oms_ont_type_widens(o, n);
    case B_BECOMES_TRUE:
        return json_is_true(new_val) && !json_is_true(old_val);
    case B_CARDINALITY:
        return oms_ont_cardinality_narrows(o, n);
    }
    return true;
}

/* The rule code of a breaking change of field `r`, and why it breaks. */
static const char *rule_code(const field_rule *r, const json_t *old_val, const json_t *new_val, char *why,
                             size_t cap)
{
    const char *o = json_string_value(old_val), *n = json_string_value(new_val);
    switch (r->rule) {
    case B_TYPE:
        snprintf(why, cap, "the type changes from %s to %s, which is not a widening: stored values and readers"
                           " of the old type may not convert", o ? o : "(none)", n ? n : "(none)");
        return "type_changed";
    case B_BECOMES_TRUE:
        snprintf(why, cap, "becomes required: existing objects and callers lack it");
        return "made_required";
    case B_CARDINALITY:
        snprintf(why, cap, "the cardinality narrows from %s to %s: existing links may no longer fit",
                 o ? o : "(none)", n ? n : "(none)");
        return "cardinality_narrowed";
    default:
        break;
    }
    const char *f = r->field ? r->field : "";
    if (strcmp(f, "primary_key") == 0) {
        snprintf(why, cap, "the primary key changes: every stored identity and reference to it changes meaning");
        return "primary_key_changed";
    }
    if (strcmp(f, "from") == 0 || strcmp(f, "to") == 0) {
        snprintf(why, cap, "the link's endpoint type changes: existing links point at the wrong type");
        return "link_endpoint_changed";
    }
    if (strcmp(f, "array") == 0) {
        snprintf(why, cap, "switches between a single value and a list: readers and writers of the old shape break");
        return "array_flag_changed";
    }
    if (strcmp(f, "object_type") == 0) {
        snprintf(why, cap, "the referenced object type changes: callers pass objects of the old type");
        return "object_type_changed";
    }
    snprintf(why, cap, "the list changes in a way that cannot be matched item by item, judged breaking");
    return "list_changed";
}

static void diff_value(dctx *d, const field_rule *r, const json_t *old_val, const json_t *new_val)
{
    char why[256];
    if (!old_val) {
        bool b = judge(r->rule, NULL, new_val);
        emit_why(d, "add", NULL, new_val, b, b ? rule_code(r, NULL, new_val, why, sizeof why) : NULL, why);
    } else if (!new_val) {
        bool b = judge(r->rule, old_val, NULL);
        emit_why(d, "remove", old_val, NULL, b, b ? rule_code(r, old_val, NULL, why, sizeof why) : NULL, why);
    } else if (!json_equal(old_val, new_val)) {
        bool b = judge(r->rule, old_val, new_val);
        emit_why(d, "replace", old_val, new_val, b, b ? rule_code(r, old_val, new_val, why, sizeof why) : NULL, why);
    }
}

/* ---- objects and named lists ---------------------------------------------------- */

static void diff_object(dctx *d, const rule_set *rules, const json_t *old_obj,
                        const json_t *new_obj);

/* name -> item for an array of objects with unique string api_names; NULL
 * when the array is not one (it is then compared as a value). */
static json_t *index_by_name(const json_t *arr)
{
    json_t *index = json_object();
    size_t i;
    json_t *item;
    json_array_foreach(arr, i, item) {
        const char *name = oms_ont_str(item, "api_name");
        if (!name || json_object_get(index, name)) {
            json_decref(index);
            return NULL;
        }
        json_object_set(index, name, item);
    }
    return index;
}

/* Removing a named item is breaking (a property, parameter or input others
 * rely on); adding one is when it is required. */
static void diff_named(dctx *d, const field_rule *r, const json_t *old_arr, const json_t *new_arr)
{
    json_t *old_index = index_by_name(old_arr), *new_index = index_by_name(new_arr);
    const char *name;
    json_t *item;
    if (!old_index || !new_index) {
        diff_value(d, r, old_arr, new_arr);
        goto cleanup;
    }
    json_object_foreach(new_index, name, item) {
        const json_t *before = json_object_get(old_index, name);
        size_t mark = oms_ont_ptr_push(&d->ptr, name);
        if (before)
            diff_object(d, r->sub, before, item);
        else
            emit_why(d, "add", NULL, item, json_is_true(json_object_get(item, "required")), "required_item_added",
                     "a required item is added: existing objects and callers lack it");
        oms_ont_ptr_pop(&d->ptr, mark);
    }
    json_object_foreach(old_index, name, item) {
        if (json_object_get(new_index, name))
            continue;
        size_t mark = oms_ont_ptr_push(&d->ptr, name);
        emit_why(d, "remove", item, NULL, true, "item_removed",
                 "is removed: consumers that read or send it break");
        oms_ont_ptr_pop(&d->ptr, mark);
    }
cleanup:
    json_decref(old_index);
    json_decref(new_index);
}

static const field_rule *find_rule(const rule_set *rules, const char *field)
{
    for (size_t i = 0; rules && i < rules->n; i++)
        if (strcmp(rules->rules[i].field, field) == 0)
            return &rules->rules[i];
    return &PLAIN;
}

static void diff_field(dctx *d, const rule_set *rules, const char *field, const json_t *old_val,
                       const json_t *new_val)
{
    const field_rule *r = find_rule(rules, field);
    if (r->shape == S_IGNORED)
        return;
    size_t mark = oms_ont_ptr_push(&d->ptr, field);
    if (r->shape == S_NAMED_LIST && json_is_array(old_val) && json_is_array(new_val))
        diff_named(d, r, old_val, new_val);
    else if (r->shape == S_OBJECT && json_is_object(old_val) && json_is_object(new_val))
        diff_object(d, r->sub, old_val, new_val);
    else
        diff_value(d, r, old_val, new_val);
    oms_ont_ptr_pop(&d->ptr, mark);
}

static void diff_object(dctx *d, const rule_set *rules, const json_t *old_obj,
                        const json_t *new_obj)
{
    const char *key;
    json_t *val;
    /* jansson iterates objects in insertion order (the documents' order);
     * its iterator API takes non-const objects but does not modify them. */
    json_object_foreach((json_t *)new_obj, key, val)
        diff_field(d, rules, key, json_object_get(old_obj, key), val);
    json_object_foreach((json_t *)old_obj, key, val)
        if (!json_object_get(new_obj, key))
            diff_field(d, rules, key, val, NULL);
}

/* ---- entry point ---------------------------------------------------------------- */

/* A resource without a status has the default one, experimental. */
static bool is_experimental(const json_t *doc)
{
    const char *status = oms_ont_str(doc, "status");
    return !status || strcmp(status, "experimental") == 0;
}

json_t *oms_diff_documents(oms_kind k, const json_t *old_doc, const json_t *new_doc,
                           bool *breaking)
{
    dctx d = {.ops = json_array()};
    oms_ont_ptr_init(&d.ptr);
    if (!d.ops)
        goto cleanup;
    d.experimental = old_doc && is_experimental(old_doc);
    if (!old_doc && new_doc)
        emit(&d, "add", NULL, new_doc, false);
    else if (old_doc && !new_doc)
        emit_why(&d, "remove", old_doc, NULL, true, "resource_removed",
                 "is deleted: every consumer that uses it breaks");
    else if (old_doc && new_doc)
        diff_object(&d, (unsigned)k < OMS_KIND__COUNT ? &KIND_RULES[k] : NULL, old_doc, new_doc);
cleanup:
    oms_ont_ptr_free(&d.ptr);
    if (breaking)
        *breaking = d.breaking;
    return d.ops;
}
