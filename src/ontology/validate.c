/* Document validation (SPEC §3), driven by one field table per object shape:
 * the tables say which fields exist (everything else is an unknown field),
 * their JSON type and grammar, whether they are required and their default.
 * Rules that relate several fields of one object live in small `post`
 * functions. Defaults are filled in place so the stored form is canonical.
 *
 * The primary key and title property rules are checked here (so a client
 * gets a 400 with every problem at once) and again by oms_check_integrity
 * (so documents produced by merges or reverts are held to them too); both
 * use the same helpers in model.c. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ontology/names.h"
#include "ontology/internal.h"
#include "ontology/kind_schema.h"

#define DISPLAY_NAME_MAX 200
#define DESCRIPTION_MAX 4096

typedef enum {
    V_API_NAME,     /* string in the api_name grammar (also references) */
    V_DISPLAY_NAME, /* string of 1..200 characters */
    V_DESCRIPTION,  /* string of at most 4096 characters */
    V_BOOL,
    V_ENUM,         /* string from field_spec.values */
    V_NAME_LIST,    /* array of unique api_names */
    V_STRING_SET,   /* array of unique strings */
    V_OBJECT_LIST,  /* array of objects shaped by field_spec.sub */
    V_OBJECT,       /* object shaped by field_spec.sub */
} vkind;

typedef enum {
    D_NONE,
    D_EMPTY_STRING,
    D_FALSE,
    D_EMPTY_ARRAY,
    D_EXPERIMENTAL,
    D_API_NAME,    /* display_name defaults to the object's api_name */
    D_PRIMARY_KEY, /* title_property defaults to primary_key */
} vdefault;

typedef struct vctx vctx;
typedef struct object_spec object_spec;

typedef struct {
    const char *name;
    vkind kind;
    bool required;
    vdefault dflt;
    const char *const *values; /* V_ENUM */
    const object_spec *sub;    /* V_OBJECT_LIST, V_OBJECT */
} field_spec;

struct object_spec {
    const field_spec *fields;
    size_t nfields;
    bool named;                        /* list items: api_name unique in the list */
    void (*post)(vctx *v, json_t *obj); /* rules across fields, after defaults */
};

struct vctx {
    json_t *errors;
    int added;
    oms_ont_ptr ptr; /* pointer of the value being checked */
};

/* ---- error reporting ---------------------------------------------------- */

static void verr(vctx *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void verr(vctx *v, const char *fmt, ...)
{
    if (v->added >= OMS_ONT_MAX_ERRORS)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    oms_ont_error_append(v->errors, oms_ont_ptr_str(&v->ptr), NULL, msg);
    v->added++;
}

/* Error at the child `field` (a member name) of the current value. */
static void verr_at(vctx *v, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void verr_at(vctx *v, const char *field, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t mark = oms_ont_ptr_push(&v->ptr, field);
    verr(v, "%s", msg);
    oms_ont_ptr_pop(&v->ptr, mark);
}

/* ---- scalar checks ------------------------------------------------------ */

/* Characters, not bytes: jansson guarantees valid UTF-8, so counting the
 * bytes that do not continue a sequence counts code points. */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

static void list_values(char *buf, size_t len, const char *const *values)
{
    size_t o = 0;
    buf[0] = '\0';
    for (; *values && o < len; values++)
        o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? ", " : "", *values);
}

static bool check_api_name(vctx *v, const json_t *val)
{
    if (!json_is_string(val)) {
        verr(v, "must be a string");
        return false;
    }
    if (!oms_valid_api_name(json_string_value(val))) {
        verr(v, "must match ^[A-Za-z][A-Za-z0-9_]{0,99}$");
        return false;
    }
    return true;
}

static void check_text(vctx *v, const json_t *val, size_t min, size_t max)
{
    if (!json_is_string(val)) {
        verr(v, "must be a string");
        return;
    }
    size_t n = utf8_chars(json_string_value(val));
    if (n < min || n > max) {
        if (min)
            verr(v, "must be %zu to %zu characters long", min, max);
        else
            verr(v, "must be at most %zu characters long", max);
    }
}

static void check_enum(vctx *v, const json_t *val, const char *const *values)
{
    if (json_is_string(val) && oms_ont_in_list(values, json_string_value(val)))
        return;
    char allowed[256];
    list_values(allowed, sizeof allowed, values);
    verr(v, "must be one of: %s", allowed);
}

/* ---- arrays -------------------------------------------------------------- */

static bool check_array(vctx *v, const json_t *val)
{
    if (!json_is_array(val)) {
        verr(v, "must be an array");
        return false;
    }
    if (json_array_size(val) > OMS_ONT_MAX_ITEMS) {
        verr(v, "must have at most %d items", OMS_ONT_MAX_ITEMS);
        return false;
    }
    return true;
}

/* Array of unique strings; api_names when `names`. */
static void check_string_list(vctx *v, const json_t *val, bool names)
{
    if (!check_array(v, val))
        return;
    json_t *seen = json_object();
    size_t i;
    json_t *item;
    json_array_foreach(val, i, item) {
        size_t mark = oms_ont_ptr_push_index(&v->ptr, i);
        if (names ? check_api_name(v, item) : json_is_string(item)) {
            if (!oms_ont_set_add(seen, json_string_value(item)))
                verr(v, "duplicate value '%s'", json_string_value(item));
        } else if (!names) {
            verr(v, "must be a string");
        }
        oms_ont_ptr_pop(&v->ptr, mark);
    }
    json_decref(seen);
}

static void validate_object(vctx *v, const object_spec *spec, json_t *obj);

static void check_object_list(vctx *v, const object_spec *sub, json_t *val)
{
    if (!check_array(v, val))
        return;
    json_t *seen = json_object();
    size_t i;
    json_t *item;
    json_array_foreach(val, i, item) {
        size_t mark = oms_ont_ptr_push_index(&v->ptr, i);
        if (!json_is_object(item)) {
            verr(v, "must be an object");
        } else {
            validate_object(v, sub, item);
            const char *name = oms_ont_str(item, "api_name");
            if (sub->named && name && !oms_ont_set_add(seen, name))
                verr_at(v, "api_name", "duplicate api_name '%s'", name);
        }
        oms_ont_ptr_pop(&v->ptr, mark);
    }
    json_decref(seen);
}

/* ---- objects ------------------------------------------------------------- */

static void check_value(vctx *v, const field_spec *f, json_t *val)
{
    switch (f->kind) {
    case V_API_NAME:
        check_api_name(v, val);
        break;
    case V_DISPLAY_NAME:
        check_text(v, val, 1, DISPLAY_NAME_MAX);
        break;
    case V_DESCRIPTION:
        check_text(v, val, 0, DESCRIPTION_MAX);
        break;
    case V_BOOL:
        if (!json_is_boolean(val))
            verr(v, "must be a boolean");
        break;
    case V_ENUM:
        check_enum(v, val, f->values);
        break;
    case V_NAME_LIST:
        check_string_list(v, val, true);
        break;
    case V_STRING_SET:
        check_string_list(v, val, false);
        break;
    case V_OBJECT_LIST:
        check_object_list(v, f->sub, val);
        break;
    case V_OBJECT:
        if (json_is_object(val))
            validate_object(v, f->sub, val);
        else
            verr(v, "must be an object");
        break;
    }
}

/* A copy of a string field, or NULL (no default) when it is not one. */
static json_t *copy_string(const json_t *val)
{
    return json_is_string(val) ? json_string(json_string_value(val)) : NULL;
}

static json_t *default_value(vdefault d, const json_t *obj)
{
    switch (d) {
    case D_EMPTY_STRING:
        return json_string("");
    case D_FALSE:
        return json_false();
    case D_EMPTY_ARRAY:
        return json_array();
    case D_EXPERIMENTAL:
        return json_string("experimental");
    case D_API_NAME:
        return copy_string(json_object_get(obj, "api_name"));
    case D_PRIMARY_KEY:
        return copy_string(json_object_get(obj, "primary_key"));
    case D_NONE:
        break;
    }
    return NULL;
}

static const field_spec *find_field(const object_spec *spec, const char *name)
{
    for (size_t i = 0; i < spec->nfields; i++)
        if (strcmp(spec->fields[i].name, name) == 0)
            return &spec->fields[i];
    return NULL;
}

static void validate_object(vctx *v, const object_spec *spec, json_t *obj)
{
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val) {
        const field_spec *f = find_field(spec, key);
        size_t mark = oms_ont_ptr_push(&v->ptr, key);
        if (f)
            check_value(v, f, val);
        else
            verr(v, "unknown field");
        oms_ont_ptr_pop(&v->ptr, mark);
    }
    /* Defaults come in table order, after the checks: D_API_NAME and
     * D_PRIMARY_KEY copy fields that were checked above. */
    for (size_t i = 0; i < spec->nfields; i++) {
        const field_spec *f = &spec->fields[i];
        if (json_object_get(obj, f->name))
            continue;
        if (f->required) {
            verr_at(v, f->name, "is required");
            continue;
        }
        json_t *d = default_value(f->dflt, obj);
        if (d)
            json_object_set_new(obj, f->name, d);
    }
    if (spec->post)
        spec->post(v, obj);
}

/* ---- rules across fields -------------------------------------------------- */

static void property_post(vctx *v, json_t *prop)
{
    const char *type = oms_ont_str(prop, "type");
    if (json_object_get(prop, "enum") && type && oms_ont_in_list(oms_ont_property_types, type) &&
        strcmp(type, "string") != 0)
        verr_at(v, "enum", "is only allowed when type is string");
}

/* Parameters, inputs and function outputs: object_type goes with
 * object_reference, and only with it. */
static void typed_post(vctx *v, json_t *obj)
{
    const char *type = oms_ont_str(obj, "type");
    if (!type || !oms_ont_in_list(oms_ont_parameter_types, type))
        return;
    bool is_ref = strcmp(type, "object_reference") == 0;
    bool has_target = json_object_get(obj, "object_type") != NULL;
    if (is_ref && !has_target)
        verr_at(v, "object_type", "is required when type is object_reference");
    else if (!is_ref && has_target)
        verr_at(v, "object_type", "is only allowed when type is object_reference");
}

/* *_object rules name an object_type, *_link rules a link_type. */
static void rule_post(vctx *v, json_t *rule)
{
    const char *type = oms_ont_str(rule, "type");
    if (!type || !oms_ont_in_list(oms_ont_rule_types, type))
        return;
    size_t n = strlen(type);
    bool on_link = n > 5 && strcmp(type + n - 5, "_link") == 0;
    const char *want = on_link ? "link_type" : "object_type";
    const char *other = on_link ? "object_type" : "link_type";
    if (!json_object_get(rule, want))
        verr_at(v, want, "is required for a %s rule", type);
    if (json_object_get(rule, other))
        verr_at(v, other, "is not allowed for a %s rule", type);
}

static void object_type_post(vctx *v, json_t *doc)
{
    char msg[256];
    const json_t *props = json_object_get(doc, "properties");
    if (json_is_array(props) && json_array_size(props) == 0)
        verr_at(v, "properties", "must have at least one property");
    if (!oms_ont_primary_key_ok(doc, msg, sizeof msg))
        verr_at(v, "primary_key", "%s", msg);
    if (!oms_ont_title_property_ok(doc, msg, sizeof msg))
        verr_at(v, "title_property", "%s", msg);
}

static void interface_post(vctx *v, json_t *doc)
{
    const char *self = oms_ont_str(doc, "api_name");
    const json_t *ext = json_object_get(doc, "extends");
    size_t i;
    json_t *item;
    if (!self || !json_is_array(ext))
        return;
    json_array_foreach(ext, i, item) {
        const char *name = json_string_value(item);
        if (name && strcmp(name, self) == 0) {
            size_t mark = oms_ont_ptr_push(&v->ptr, "extends");
            oms_ont_ptr_push_index(&v->ptr, i);
            verr(v, "an interface cannot extend itself");
            oms_ont_ptr_pop(&v->ptr, mark);
        }
    }
}

/* ---- the tables ------------------------------------------------------------ */

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Fields of every named item: properties, parameters, inputs. */
#define ITEM_FIELDS                                                         \
    {.name = "api_name", .kind = V_API_NAME, .required = true},             \
        {.name = "display_name", .kind = V_DISPLAY_NAME, .dflt = D_API_NAME}, \
        {.name = "description", .kind = V_DESCRIPTION, .dflt = D_EMPTY_STRING}

/* Fields of every resource. */
#define COMMON_FIELDS \
    ITEM_FIELDS,      \
        {.name = "status", .kind = V_ENUM, .dflt = D_EXPERIMENTAL, .values = oms_ont_statuses}

static const field_spec PROPERTY_FIELDS[] = {
    ITEM_FIELDS,
    {.name = "type", .kind = V_ENUM, .required = true, .values = oms_ont_property_types},
    {.name = "array", .kind = V_BOOL, .dflt = D_FALSE},
    {.name = "required", .kind = V_BOOL, .dflt = D_FALSE},
    {.name = "enum", .kind = V_STRING_SET},
    {.name = "shared_property", .kind = V_API_NAME},
};
static const object_spec PROPERTY = {PROPERTY_FIELDS, N(PROPERTY_FIELDS), true, property_post};

static const field_spec PARAMETER_FIELDS[] = {
    ITEM_FIELDS,
    {.name = "type", .kind = V_ENUM, .required = true, .values = oms_ont_parameter_types},
    {.name = "array", .kind = V_BOOL, .dflt = D_FALSE},
    {.name = "required", .kind = V_BOOL, .dflt = D_FALSE},
    {.name = "object_type", .kind = V_API_NAME},
};
static const object_spec PARAMETER = {PARAMETER_FIELDS, N(PARAMETER_FIELDS), true, typed_post};

static const field_spec OUTPUT_FIELDS[] = {
    {.name = "type", .kind = V_ENUM, .required = true, .values = oms_ont_parameter_types},
    {.name = "array", .kind = V_BOOL, .dflt = D_FALSE},
    {.name = "object_type", .kind = V_API_NAME},
};
static const object_spec OUTPUT = {OUTPUT_FIELDS, N(OUTPUT_FIELDS), false, typed_post};

static const field_spec RULE_FIELDS[] = {
    {.name = "type", .kind = V_ENUM, .required = true, .values = oms_ont_rule_types},
    {.name = "object_type", .kind = V_API_NAME},
    {.name = "link_type", .kind = V_API_NAME},
};
static const object_spec RULE = {RULE_FIELDS, N(RULE_FIELDS), false, rule_post};

static const field_spec OBJECT_TYPE_FIELDS[] = {
    COMMON_FIELDS,
    {.name = "properties", .kind = V_OBJECT_LIST, .required = true, .sub = &PROPERTY},
    {.name = "primary_key", .kind = V_API_NAME, .required = true},
    {.name = "title_property", .kind = V_API_NAME, .dflt = D_PRIMARY_KEY},
    {.name = "implements", .kind = V_NAME_LIST, .dflt = D_EMPTY_ARRAY},
};

static const field_spec LINK_TYPE_FIELDS[] = {
    COMMON_FIELDS,
    {.name = "from", .kind = V_API_NAME, .required = true},
    {.name = "to", .kind = V_API_NAME, .required = true},
    {.name = "cardinality", .kind = V_ENUM, .required = true, .values = oms_ont_cardinalities},
};

static const field_spec ACTION_TYPE_FIELDS[] = {
    COMMON_FIELDS,
    {.name = "parameters", .kind = V_OBJECT_LIST, .dflt = D_EMPTY_ARRAY, .sub = &PARAMETER},
    {.name = "rules", .kind = V_OBJECT_LIST, .dflt = D_EMPTY_ARRAY, .sub = &RULE},
};

static const field_spec FUNCTION_TYPE_FIELDS[] = {
    COMMON_FIELDS,
    {.name = "inputs", .kind = V_OBJECT_LIST, .dflt = D_EMPTY_ARRAY, .sub = &PARAMETER},
    {.name = "output", .kind = V_OBJECT, .required = true, .sub = &OUTPUT},
    {.name = "deterministic", .kind = V_BOOL, .dflt = D_FALSE},
};

static const field_spec INTERFACE_FIELDS[] = {
    COMMON_FIELDS,
    {.name = "properties", .kind = V_OBJECT_LIST, .dflt = D_EMPTY_ARRAY, .sub = &PROPERTY},
    {.name = "extends", .kind = V_NAME_LIST, .dflt = D_EMPTY_ARRAY},
};

static const field_spec SHARED_PROPERTY_FIELDS[] = {
    COMMON_FIELDS,
    {.name = "type", .kind = V_ENUM, .required = true, .values = oms_ont_property_types},
    {.name = "array", .kind = V_BOOL, .dflt = D_FALSE},
};

static const object_spec KIND_SPECS[OMS_KIND__COUNT] = {
    [OMS_KIND_OBJECT_TYPE] = {OBJECT_TYPE_FIELDS, N(OBJECT_TYPE_FIELDS), false, object_type_post},
    [OMS_KIND_LINK_TYPE] = {LINK_TYPE_FIELDS, N(LINK_TYPE_FIELDS), false, NULL},
    [OMS_KIND_ACTION_TYPE] = {ACTION_TYPE_FIELDS, N(ACTION_TYPE_FIELDS), false, NULL},
    [OMS_KIND_FUNCTION_TYPE] = {FUNCTION_TYPE_FIELDS, N(FUNCTION_TYPE_FIELDS), false, NULL},
    [OMS_KIND_INTERFACE] = {INTERFACE_FIELDS, N(INTERFACE_FIELDS), false, interface_post},
    [OMS_KIND_SHARED_PROPERTY] = {SHARED_PROPERTY_FIELDS, N(SHARED_PROPERTY_FIELDS), false, NULL},
};

/* ---- entry point ------------------------------------------------------------ */

/* The URL names the resource: the body may omit api_name, not contradict it. */
static void apply_url_name(vctx *v, json_t *doc, const char *url_api_name)
{
    const json_t *name = json_object_get(doc, "api_name");
    if (!name) {
        json_object_set_new(doc, "api_name", json_string(url_api_name));
    } else if (json_is_string(name) && strcmp(json_string_value(name), url_api_name) != 0) {
        verr_at(v, "api_name", "must equal the api_name in the URL ('%s')", url_api_name);
    }
}

int oms_validate_document(oms_kind k, json_t *doc, const char *url_api_name, json_t *errors)
{
    vctx v = {.errors = errors};
    oms_ont_ptr_init(&v.ptr);
    if ((unsigned)k >= OMS_KIND__COUNT) {
        verr(&v, "unknown resource kind");
        goto cleanup;
    }
    if (!json_is_object(doc)) {
        verr(&v, "the document must be a JSON object");
        goto cleanup;
    }
    /* Server-maintained data is returned under `meta` and ignored on input. */
    json_object_del(doc, "meta");
    if (url_api_name)
        apply_url_name(&v, doc, url_api_name);
    validate_object(&v, &KIND_SPECS[k], doc);
cleanup:
    oms_ont_ptr_free(&v.ptr);
    return v.added;
}

/* ---- the same tables as JSON Schema (2020-12) ------------------------------- */

/* The OpenAPI document (src/api/openapi.c) publishes one schema per kind,
 * generated here from the tables above so it cannot drift from them. Rules
 * across fields that JSON Schema can say (enum only on strings, object_type
 * with object_reference, a rule's target) are written as if/then; rules
 * that need other objects (primary key, title property, self-extension) are
 * named in "x-oms-rules" and proven by tests/api/test_openapi.py. */
static json_t *schema_of(const object_spec *spec);

static json_t *enum_of(const char *const *values)
{
    json_t *a = json_array();
    for (; *values; values++)
        json_array_append_new(a, json_string(*values));
    return a;
}

static json_t *field_schema(const field_spec *f)
{
    switch (f->kind) {
    case V_API_NAME:
        return json_pack("{s:s, s:s}", "type", "string", "pattern", "^[A-Za-z][A-Za-z0-9_]{0,99}$");
    case V_DISPLAY_NAME:
        return json_pack("{s:s, s:i, s:i}", "type", "string", "minLength", 1, "maxLength", DISPLAY_NAME_MAX);
    case V_DESCRIPTION:
        return json_pack("{s:s, s:i}", "type", "string", "maxLength", DESCRIPTION_MAX);
    case V_BOOL:
        return json_pack("{s:s}", "type", "boolean");
    case V_ENUM:
        return json_pack("{s:s, s:o}", "type", "string", "enum", enum_of(f->values));
    case V_NAME_LIST:
    case V_STRING_SET: {
        json_t *items = f->kind == V_NAME_LIST
                            ? json_pack("{s:s, s:s}", "type", "string", "pattern", "^[A-Za-z][A-Za-z0-9_]{0,99}$")
                            : json_pack("{s:s}", "type", "string");
        return json_pack("{s:s, s:o, s:b, s:i}", "type", "array", "items", items, "uniqueItems", 1, "maxItems",
                         OMS_ONT_MAX_ITEMS);
    }
    case V_OBJECT_LIST:
        return json_pack("{s:s, s:o, s:i}", "type", "array", "items", schema_of(f->sub), "maxItems",
                         OMS_ONT_MAX_ITEMS);
    case V_OBJECT:
        return schema_of(f->sub);
    }
    return json_object();
}

static json_t *if_then(const char *field, json_t *cond, json_t *then)
{
    return json_pack("{s:{s:{s:o}, s:[s]}, s:o}", "if", "properties", field, cond, "required", field, "then", then);
}

/* The `post` rules JSON Schema can express, as allOf members. */
static void post_rules(const object_spec *spec, json_t *s)
{
    json_t *all = json_array();
    if (spec->post == property_post)
        json_array_append_new(all, if_then("type", json_pack("{s:{s:s}}", "not", "const", "string"),
                                           json_pack("{s:{s:[s]}}", "not", "required", "enum")));
    if (spec->post == typed_post) {
        json_array_append_new(all, if_then("type", json_pack("{s:s}", "const", "object_reference"),
                                           json_pack("{s:[s]}", "required", "object_type")));
        json_array_append_new(all, if_then("type", json_pack("{s:{s:s}}", "not", "const", "object_reference"),
                                           json_pack("{s:{s:[s]}}", "not", "required", "object_type")));
    }
    if (spec->post == rule_post) {
        json_array_append_new(all, if_then("type", json_pack("{s:s}", "pattern", "_link$"),
                                           json_pack("{s:[s], s:{s:[s]}}", "required", "link_type", "not",
                                                     "required", "object_type")));
        json_array_append_new(all, if_then("type", json_pack("{s:s}", "pattern", "_object$"),
                                           json_pack("{s:[s], s:{s:[s]}}", "required", "object_type", "not",
                                                     "required", "link_type")));
    }
    if (spec->post == object_type_post) {
        json_t *props = json_object_get(json_object_get(s, "properties"), "properties");
        json_object_set_new(props, "minItems", json_integer(1)); /* "at least one property" */
        json_object_set_new(s, "x-oms-rules",
                            json_pack("[s,s]", "primary_key names a required, non-array string/integer/long property",
                                      "title_property names a property"));
    }
    if (spec->post == interface_post)
        json_object_set_new(s, "x-oms-rules", json_pack("[s]", "an interface cannot extend itself"));
    if (json_array_size(all))
        json_object_set_new(s, "allOf", all);
    else
        json_decref(all);
}

static json_t *schema_of(const object_spec *spec)
{
    json_t *props = json_object(), *req = json_array();
    for (size_t i = 0; i < spec->nfields; i++) {
        const field_spec *f = &spec->fields[i];
        json_t *fs = field_schema(f);
        json_object_set_new(props, f->name, fs);
        if (f->required)
            json_array_append_new(req, json_string(f->name));
    }
    json_t *s = json_pack("{s:s, s:o, s:o, s:b}", "type", "object", "properties", props, "required", req,
                          "additionalProperties", 0);
    post_rules(spec, s);
    return s;
}

json_t *oms_kind_json_schema(oms_kind k)
{
    if ((unsigned)k >= OMS_KIND__COUNT)
        return NULL;
    json_t *s = schema_of(&KIND_SPECS[k]);
    /* Server data comes back under `meta`, and is ignored on input. */
    json_object_set_new(json_object_get(s, "properties"), "meta", json_pack("{s:s}", "type", "object"));
    return s;
}
