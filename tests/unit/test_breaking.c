/* Unit tests for oms_diff_documents (src/ontology/diff.c): the breaking-
 * change rules of SPEC §3 as a table (rules_table: one row per change, one
 * loop), then the field-level mechanics the rows do not show (op order,
 * pointers, matching by name, copies). Documents are written in JSON with
 * single quotes for readability (J() turns them into double quotes). The
 * test includes diff.c to look each row's rule up in its rule tables. */
#include <stdbool.h>

#include "ontology/diff.c"
#include "t.h"

/* ---- helpers ------------------------------------------------------------ */

static json_t *J(const char *text)
{
    char *s = strdup(text);
    for (char *c = s; *c; c++)
        if (*c == '\'')
            *c = '"';
    json_error_t err;
    json_t *v = json_loads(s, 0, &err);
    if (!v) {
        fprintf(stderr, "bad test JSON: %s: %s\n", err.text, s);
        abort();
    }
    free(s);
    return v;
}

/* Diffs and releases both documents (either may be NULL). */
static json_t *run(oms_kind k, json_t *old_doc, json_t *new_doc, bool *breaking)
{
    json_t *ops = oms_diff_documents(k, old_doc, new_doc, breaking);
    json_decref(old_doc);
    json_decref(new_doc);
    return ops;
}

static const json_t *op_at(const json_t *ops, const char *path)
{
    size_t i;
    const json_t *op;
    json_array_foreach(ops, i, op)
        if (strcmp(json_string_value(json_object_get(op, "path")), path) == 0)
            return op;
    return NULL;
}

static const char *op_kind(const json_t *op)
{
    return json_string_value(json_object_get(op, "op"));
}

static bool op_breaking(const json_t *op)
{
    return json_is_true(json_object_get(op, "breaking"));
}

/* The op at `path` exists, is `kind`, and its breaking flag is `brk`. */
#define CHECK_OP(ops, path, kind, brk)                                   \
    do {                                                                 \
        const json_t *_op = op_at(ops, path);                            \
        CHECK(_op != NULL);                                              \
        if (_op) {                                                       \
            CHECK_EQ_STR(op_kind(_op), kind);                            \
            CHECK_EQ_INT(op_breaking(_op), brk);                         \
        }                                                                \
    } while (0)

static json_t *named(json_t *arr, const char *name)
{
    size_t i;
    json_t *item;
    json_array_foreach(arr, i, item)
        if (strcmp(json_string_value(json_object_get(item, "api_name")), name) == 0)
            return item;
    return NULL;
}

/* Property `name` of a document with properties[]. */
static json_t *prop(json_t *doc, const char *name)
{
    return named(json_object_get(doc, "properties"), name);
}

static void set_str(json_t *obj, const char *key, const char *val)
{
    json_object_set_new(obj, key, json_string(val));
}

static void set_bool(json_t *obj, const char *key, bool val)
{
    json_object_set_new(obj, key, json_boolean(val));
}

/* ---- documents in stored (validated) form ---------------------------------- */

static json_t *person(const char *status)
{
    json_t *d = J("{'api_name': 'Person', 'display_name': 'Person', 'description': '',"
                  " 'properties': ["
                  "  {'api_name': 'id', 'display_name': 'id', 'description': '',"
                  "   'type': 'string', 'array': false, 'required': true},"
                  "  {'api_name': 'age', 'display_name': 'Age', 'description': '',"
                  "   'type': 'integer', 'array': false, 'required': false},"
                  "  {'api_name': 'born', 'display_name': 'Born', 'description': '',"
                  "   'type': 'date', 'array': false, 'required': false},"
                  "  {'api_name': 'score', 'display_name': 'Score', 'description': '',"
                  "   'type': 'long', 'array': false, 'required': false}],"
                  " 'primary_key': 'id', 'title_property': 'id', 'implements': []}");
    set_str(d, "status", status);
    return d;
}

static json_t *knows(const char *cardinality)
{
    json_t *d = J("{'api_name': 'knows', 'display_name': 'knows', 'description': '',"
                  " 'status': 'active', 'from': 'Person', 'to': 'Person'}");
    set_str(d, "cardinality", cardinality);
    return d;
}


/* ---- the rules, as a table --------------------------------------------------------
 *
 * One row per change: what it is, the kind, the old and the new document
 * (NULL: the resource does not exist on that side), whether the diff must
 * flag it breaking, and the one op it gives (pointer and op) with the rule
 * of src/ontology/diff.c's tables that judges it. The rule is looked up in
 * those tables from the op's pointer (rule_at below), so a row fails when
 * the verdict is right for the wrong reason, e.g. a field that fell out of
 * the table into "none".
 *
 * Rule names: resource_added, resource_removed, item_added (a named
 * property, parameter or input: breaking when required), item_removed,
 * any_change, type_narrowing (any type change but a widening),
 * becomes_required, cardinality_narrowing, none. */

/* Documents in stored form, short: only the fields the diff reads. */
#define PROP(name, type, req) "{'api_name': '" name "', 'type': '" type "', 'array': false, 'required': " req "}"
#define PROPX(name, type, req, extra) \
    "{'api_name': '" name "', 'type': '" type "', 'array': false, 'required': " req ", " extra "}"
#define OT(status, props, extra)                                                                  \
    "{'api_name': 'Person', 'status': '" status "', 'display_name': 'Person', 'description': '', " \
    "'primary_key': 'id', 'title_property': 'id', 'implements': [], " extra                       \
    "'properties': [" PROP("id", "string", "true") props "]}"
#define AGE(type) ", " PROP("age", type, "false")
#define LINK(status, from, to, card) \
    "{'api_name': 'knows', 'status': '" status "', 'from': '" from "', 'to': '" to "', 'cardinality': '" card "'}"
#define WHO(target) PROPX("who", "object_reference", "true", "'object_type': '" target "'")
#define ACT(params, rules) \
    "{'api_name': 'hire', 'status': 'active', 'parameters': [" WHO("Person") params "], 'rules': [" rules "]}"
#define RULE0 "{'type': 'modify_object', 'object_type': 'Person'}"
#define FN(inputs, otype, oarray, det)                                                      \
    "{'api_name': 'score', 'status': 'active', 'deterministic': " det ", 'inputs': [" inputs \
    "], 'output': {'type': '" otype "', 'array': " oarray "}}"
#define P_IN PROPX("p", "object_reference", "true", "'object_type': 'Person'")
#define IFACE(props, extends) \
    "{'api_name': 'Named', 'status': 'active', 'extends': [" extends "], 'properties': [" props "]}"
#define NAME(type) PROP("name", type, "false")
#define SP(status, type, array) "{'api_name': 'email', 'status': '" status "', 'type': '" type "', 'array': " array "}"

typedef struct {
    const char *what;
    oms_kind kind;
    const char *old_doc, *new_doc;
    bool breaking;
    const char *path, *op, *rule;
} rule_row;

#define OBJ OMS_KIND_OBJECT_TYPE
#define LNK OMS_KIND_LINK_TYPE
#define ACTN OMS_KIND_ACTION_TYPE
#define FUNC OMS_KIND_FUNCTION_TYPE
#define IFC OMS_KIND_INTERFACE
#define SHP OMS_KIND_SHARED_PROPERTY

static const rule_row RULES[] = {
    /* whole resources */
    {"adding a type", OBJ, NULL, OT("active", "", ""), false, "", "add", "resource_added"},
    {"deleting a type", OBJ, OT("active", "", ""), NULL, true, "", "remove", "resource_removed"},
    {"deleting a deprecated type", OBJ, OT("deprecated", "", ""), NULL, true, "", "remove", "resource_removed"},
    {"deleting a link type", LNK, LINK("active", "Person", "Person", "one_to_many"), NULL, true, "", "remove",
     "resource_removed"},
    {"deleting an experimental type", OBJ, OT("experimental", "", ""), NULL, false, "", "remove", "resource_removed"},
    {"deleting a type without a status (experimental by default)", OBJ, "{'properties': []}", NULL, false, "",
     "remove", "resource_removed"},

    /* properties */
    {"deleting a property", OBJ, OT("active", AGE("integer"), ""), OT("active", "", ""), true, "/properties/age",
     "remove", "item_removed"},
    {"adding an optional property", OBJ, OT("active", "", ""), OT("active", AGE("integer"), ""), false,
     "/properties/age", "add", "item_added"},
    {"adding a required property", OBJ, OT("active", "", ""), OT("active", ", " PROP("age", "integer", "true"), ""),
     true, "/properties/age", "add", "item_added"},
    {"changing a property type", OBJ, OT("active", AGE("integer"), ""), OT("active", AGE("string"), ""), true,
     "/properties/age/type", "replace", "type_narrowing"},
    {"widening integer to long", OBJ, OT("active", AGE("integer"), ""), OT("active", AGE("long"), ""), false,
     "/properties/age/type", "replace", "type_narrowing"},
    {"widening long to double", OBJ, OT("active", AGE("long"), ""), OT("active", AGE("double"), ""), false,
     "/properties/age/type", "replace", "type_narrowing"},
    {"widening integer to double", OBJ, OT("active", AGE("integer"), ""), OT("active", AGE("double"), ""), false,
     "/properties/age/type", "replace", "type_narrowing"},
    {"widening date to timestamp", OBJ, OT("active", AGE("date"), ""), OT("active", AGE("timestamp"), ""), false,
     "/properties/age/type", "replace", "type_narrowing"},
    {"narrowing long to integer", OBJ, OT("active", AGE("long"), ""), OT("active", AGE("integer"), ""), true,
     "/properties/age/type", "replace", "type_narrowing"},
    {"narrowing timestamp to date", OBJ, OT("active", AGE("timestamp"), ""), OT("active", AGE("date"), ""), true,
     "/properties/age/type", "replace", "type_narrowing"},
    {"narrowing double to long", OBJ, OT("active", AGE("double"), ""), OT("active", AGE("long"), ""), true,
     "/properties/age/type", "replace", "type_narrowing"},
    {"integer to decimal is not a widening", OBJ, OT("active", AGE("integer"), ""), OT("active", AGE("decimal"), ""),
     true, "/properties/age/type", "replace", "type_narrowing"},
    {"date to string is not a widening", OBJ, OT("active", AGE("date"), ""), OT("active", AGE("string"), ""), true,
     "/properties/age/type", "replace", "type_narrowing"},
    {"setting the array flag", OBJ, OT("active", AGE("integer"), ""),
     OT("active", ", " PROPX("age", "integer", "false", "'array': true"), ""), true, "/properties/age/array",
     "replace", "any_change"},
    {"making a property required", OBJ, OT("active", AGE("integer"), ""),
     OT("active", ", " PROP("age", "integer", "true"), ""), true, "/properties/age/required", "replace",
     "becomes_required"},
    {"making a property optional", OBJ, OT("active", ", " PROP("age", "integer", "true"), ""),
     OT("active", AGE("integer"), ""), false, "/properties/age/required", "replace", "becomes_required"},
    {"a property's description", OBJ, OT("active", AGE("integer"), ""),
     OT("active", ", " PROPX("age", "integer", "false", "'description': 'years'"), ""), false,
     "/properties/age/description", "add", "none"},
    {"a property's enum", OBJ, OT("active", AGE("string"), ""),
     OT("active", ", " PROPX("age", "string", "false", "'enum': ['a']"), ""), false, "/properties/age/enum", "add",
     "none"},

    /* resource-level fields */
    {"changing the primary key", OBJ, OT("active", AGE("integer"), ""),
     "{'api_name': 'Person', 'status': 'active', 'display_name': 'Person', 'description': '', 'primary_key': 'age',"
     " 'title_property': 'id', 'implements': [], 'properties': [" PROP("id", "string", "true") AGE("integer") "]}",
     true, "/primary_key", "replace", "any_change"},
    {"active to deprecated", OBJ, OT("active", "", ""), OT("deprecated", "", ""), false, "/status", "replace", "none"},
    {"the description", OBJ, OT("active", "", ""),
     "{'api_name': 'Person', 'status': 'active', 'display_name': 'Person', 'description': 'A human',"
     " 'primary_key': 'id', 'title_property': 'id', 'implements': [], 'properties': [" PROP("id", "string", "true")
     "]}",
     false, "/description", "replace", "none"},
    {"implementing an interface", OBJ, OT("active", "", ""),
     "{'api_name': 'Person', 'status': 'active', 'display_name': 'Person', 'description': '', 'primary_key': 'id',"
     " 'title_property': 'id', 'implements': ['Named'], 'properties': [" PROP("id", "string", "true") "]}",
     false, "/implements", "replace", "none"},
    {"an experimental type's property type", OBJ, OT("experimental", AGE("integer"), ""),
     OT("experimental", AGE("string"), ""), false, "/properties/age/type", "replace", "type_narrowing"},
    {"an experimental type's property deleted", OBJ, OT("experimental", AGE("integer"), ""),
     OT("experimental", "", ""), false, "/properties/age", "remove", "item_removed"},

    /* link types */
    {"many_to_many to one_to_many", LNK, LINK("active", "Person", "Person", "many_to_many"),
     LINK("active", "Person", "Person", "one_to_many"), true, "/cardinality", "replace", "cardinality_narrowing"},
    {"many_to_many to many_to_one", LNK, LINK("active", "Person", "Person", "many_to_many"),
     LINK("active", "Person", "Person", "many_to_one"), true, "/cardinality", "replace", "cardinality_narrowing"},
    {"many_to_many to one_to_one", LNK, LINK("active", "Person", "Person", "many_to_many"),
     LINK("active", "Person", "Person", "one_to_one"), true, "/cardinality", "replace", "cardinality_narrowing"},
    {"one_to_many to one_to_one", LNK, LINK("active", "Person", "Person", "one_to_many"),
     LINK("active", "Person", "Person", "one_to_one"), true, "/cardinality", "replace", "cardinality_narrowing"},
    {"many_to_one to one_to_one", LNK, LINK("active", "Person", "Person", "many_to_one"),
     LINK("active", "Person", "Person", "one_to_one"), true, "/cardinality", "replace", "cardinality_narrowing"},
    {"one_to_many to many_to_one (one side narrows)", LNK, LINK("active", "Person", "Person", "one_to_many"),
     LINK("active", "Person", "Person", "many_to_one"), true, "/cardinality", "replace", "cardinality_narrowing"},
    {"many_to_one to one_to_many (one side narrows)", LNK, LINK("active", "Person", "Person", "many_to_one"),
     LINK("active", "Person", "Person", "one_to_many"), true, "/cardinality", "replace", "cardinality_narrowing"},
    {"one_to_one to one_to_many", LNK, LINK("active", "Person", "Person", "one_to_one"),
     LINK("active", "Person", "Person", "one_to_many"), false, "/cardinality", "replace", "cardinality_narrowing"},
    {"one_to_one to many_to_one", LNK, LINK("active", "Person", "Person", "one_to_one"),
     LINK("active", "Person", "Person", "many_to_one"), false, "/cardinality", "replace", "cardinality_narrowing"},
    {"one_to_one to many_to_many", LNK, LINK("active", "Person", "Person", "one_to_one"),
     LINK("active", "Person", "Person", "many_to_many"), false, "/cardinality", "replace", "cardinality_narrowing"},
    {"one_to_many to many_to_many", LNK, LINK("active", "Person", "Person", "one_to_many"),
     LINK("active", "Person", "Person", "many_to_many"), false, "/cardinality", "replace", "cardinality_narrowing"},
    {"many_to_one to many_to_many", LNK, LINK("active", "Person", "Person", "many_to_one"),
     LINK("active", "Person", "Person", "many_to_many"), false, "/cardinality", "replace", "cardinality_narrowing"},
    {"an experimental link narrowed", LNK, LINK("experimental", "Person", "Person", "many_to_many"),
     LINK("experimental", "Person", "Person", "one_to_one"), false, "/cardinality", "replace", "cardinality_narrowing"},
    {"a link's target", LNK, LINK("active", "Person", "Person", "one_to_many"),
     LINK("active", "Person", "Company", "one_to_many"), true, "/to", "replace", "any_change"},
    {"a link's source", LNK, LINK("active", "Person", "Person", "one_to_many"),
     LINK("active", "Company", "Person", "one_to_many"), true, "/from", "replace", "any_change"},

    /* action types */
    {"removing an action parameter", ACTN, ACT(", " PROP("salary", "integer", "false"), RULE0), ACT("", RULE0), true,
     "/parameters/salary", "remove", "item_removed"},
    {"adding a required action parameter", ACTN, ACT("", RULE0), ACT(", " PROP("start", "date", "true"), RULE0), true,
     "/parameters/start", "add", "item_added"},
    {"adding an optional action parameter", ACTN, ACT("", RULE0), ACT(", " PROP("start", "date", "false"), RULE0),
     false, "/parameters/start", "add", "item_added"},
    {"making an action parameter required", ACTN, ACT(", " PROP("salary", "integer", "false"), RULE0),
     ACT(", " PROP("salary", "integer", "true"), RULE0), true, "/parameters/salary/required", "replace",
     "becomes_required"},
    {"an action parameter's type", ACTN, ACT(", " PROP("salary", "integer", "false"), RULE0),
     ACT(", " PROP("salary", "string", "false"), RULE0), true, "/parameters/salary/type", "replace",
     "type_narrowing"},
    {"widening an action parameter", ACTN, ACT(", " PROP("salary", "integer", "false"), RULE0),
     ACT(", " PROP("salary", "long", "false"), RULE0), false, "/parameters/salary/type", "replace",
     "type_narrowing"},
    {"an action parameter's object type", ACTN, ACT("", RULE0),
     "{'api_name': 'hire', 'status': 'active', 'parameters': [" WHO("Robot") "], 'rules': [" RULE0 "]}", true,
     "/parameters/who/object_type", "replace", "any_change"},
    {"an action's rules", ACTN, ACT("", RULE0), ACT("", RULE0 ", {'type': 'create_link', 'link_type': 'knows'}"),
     false, "/rules", "replace", "none"},

    /* function types */
    {"removing a function input", FUNC, FN(P_IN, "integer", "false", "true"), FN("", "integer", "false", "true"),
     true, "/inputs/p", "remove", "item_removed"},
    {"adding a required function input", FUNC, FN(P_IN, "integer", "false", "true"),
     FN(P_IN ", " PROP("q", "integer", "true"), "integer", "false", "true"), true, "/inputs/q", "add", "item_added"},
    {"adding an optional function input", FUNC, FN(P_IN, "integer", "false", "true"),
     FN(P_IN ", " PROP("q", "integer", "false"), "integer", "false", "true"), false, "/inputs/q", "add",
     "item_added"},
    {"a function output's type", FUNC, FN(P_IN, "integer", "false", "true"), FN(P_IN, "string", "false", "true"),
     true, "/output/type", "replace", "type_narrowing"},
    {"widening a function output", FUNC, FN(P_IN, "integer", "false", "true"), FN(P_IN, "long", "false", "true"),
     false, "/output/type", "replace", "type_narrowing"},
    {"a function output's array flag", FUNC, FN(P_IN, "integer", "false", "true"), FN(P_IN, "integer", "true", "true"),
     true, "/output/array", "replace", "any_change"},
    {"a function's determinism", FUNC, FN(P_IN, "integer", "false", "true"), FN(P_IN, "integer", "false", "false"),
     false, "/deterministic", "replace", "none"},

    /* interfaces and shared properties */
    {"removing an interface property", IFC, IFACE(NAME("string"), ""), IFACE("", ""), true, "/properties/name",
     "remove", "item_removed"},
    {"adding an optional interface property", IFC, IFACE(NAME("string"), ""),
     IFACE(NAME("string") ", " PROP("alias", "string", "false"), ""), false, "/properties/alias", "add",
     "item_added"},
    {"extending another interface", IFC, IFACE(NAME("string"), ""), IFACE(NAME("string"), "'Thing'"), false,
     "/extends", "replace", "none"},
    {"an interface property's type", IFC, IFACE(NAME("string"), ""), IFACE(NAME("json"), ""), true,
     "/properties/name/type", "replace", "type_narrowing"},
    {"a shared property's type", SHP, SP("active", "string", "false"), SP("active", "json", "false"), true, "/type",
     "replace", "type_narrowing"},
    {"widening a shared property", SHP, SP("active", "integer", "false"), SP("active", "long", "false"), false,
     "/type", "replace", "type_narrowing"},
    {"a shared property's array flag", SHP, SP("active", "string", "false"), SP("active", "string", "true"), true,
     "/array", "replace", "any_change"},
    {"an experimental shared property's type", SHP, SP("experimental", "string", "false"),
     SP("experimental", "json", "false"), false, "/type", "replace", "type_narrowing"},
};

static const char *brule_name(brule r)
{
    switch (r) {
    case B_NEVER:
        return "none";
    case B_ALWAYS:
        return "any_change";
    case B_TYPE:
        return "type_narrowing";
    case B_BECOMES_TRUE:
        return "becomes_required";
    case B_CARDINALITY:
        return "cardinality_narrowing";
    }
    return "?";
}

/* The rule diff.c's tables hold for the value at `path` (unescaped tokens
 * are not needed: the rows use plain names), given the op there. */
static const char *rule_at(oms_kind k, const char *path, const char *op)
{
    if (!*path)
        return strcmp(op, "add") == 0 ? "resource_added" : "resource_removed";
    const rule_set *rules = &KIND_RULES[k];
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path + 1);
    char *save = NULL;
    for (char *tok = strtok_r(buf, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
        const field_rule *r = find_rule(rules, tok);
        if (r->shape == S_NAMED_LIST) {
            char *item = strtok_r(NULL, "/", &save);
            if (!item)
                return brule_name(r->rule); /* the list compared whole */
            if (!save || !*save)
                return strcmp(op, "add") == 0 ? "item_added" : "item_removed";
            rules = r->sub;
        } else if (r->shape == S_OBJECT && save && *save) {
            rules = r->sub;
        } else {
            return brule_name(r->rule);
        }
    }
    return "?";
}

/* One row: exactly one op, at the row's pointer, of the row's kind, with
 * the row's verdict on the op and on the whole diff, judged by the row's rule. */
static void rules_table(void)
{
    for (size_t i = 0; i < sizeof RULES / sizeof RULES[0]; i++) {
        const rule_row *row = &RULES[i];
        int before = t_failed_current;
        t_failed_current = 0;
        bool b = !row->breaking;
        json_t *ops = run(row->kind, row->old_doc ? J(row->old_doc) : NULL, row->new_doc ? J(row->new_doc) : NULL, &b);
        CHECK_EQ_INT(json_array_size(ops), 1);
        const json_t *op = json_array_get(ops, 0);
        if (op) {
            CHECK_EQ_STR(json_string_value(json_object_get(op, "path")), row->path);
            CHECK_EQ_STR(op_kind(op), row->op);
            CHECK_EQ_INT(op_breaking(op), row->breaking);
        }
        CHECK_EQ_INT(b, row->breaking);
        CHECK_EQ_STR(rule_at(row->kind, row->path, row->op), row->rule);
        if (t_failed_current)
            fprintf(stderr, "  row %zu: %s\n", i, row->what);
        t_failed_current |= before;
        json_decref(ops);
    }
}

/* ---- mechanics ------------------------------------------------------------------ */

static void identical_documents_no_ops(void)
{
    bool b = true;
    json_t *ops = run(OMS_KIND_OBJECT_TYPE, person("active"), person("active"), &b);
    CHECK_EQ_INT(json_array_size(ops), 0);
    CHECK(!b);
    json_decref(ops);
}

static void both_null_no_ops(void)
{
    bool b = true;
    json_t *ops = run(OMS_KIND_INTERFACE, NULL, NULL, &b);
    CHECK(json_is_array(ops));
    CHECK_EQ_INT(json_array_size(ops), 0);
    CHECK(!b);
    json_decref(ops);
}

static void breaking_out_param_optional(void)
{
    json_t *ops = run(OMS_KIND_OBJECT_TYPE, person("active"), NULL, NULL);
    CHECK_OP(ops, "", "remove", true);
    json_decref(ops);
}

static void properties_matched_by_name_when_reordered(void)
{
    bool b = true;
    json_t *old_doc = person("active"), *new_doc = person("active");
    json_t *props = json_object_get(new_doc, "properties");
    json_t *first = json_incref(json_array_get(props, 0));
    json_array_remove(props, 0);
    json_array_append_new(props, first); /* id moves last */
    json_t *ops = run(OMS_KIND_OBJECT_TYPE, old_doc, new_doc, &b);
    CHECK_EQ_INT(json_array_size(ops), 0);
    CHECK(!b);
    json_decref(ops);
}

static void reordered_and_changed_uses_names(void)
{
    bool b = false;
    json_t *old_doc = person("active"), *new_doc = person("active");
    json_t *props = json_object_get(new_doc, "properties");
    json_t *age = json_incref(json_array_get(props, 1));
    json_array_remove(props, 1);
    json_array_insert_new(props, 0, age);
    set_str(age, "type", "long");
    json_t *ops = run(OMS_KIND_OBJECT_TYPE, old_doc, new_doc, &b);
    CHECK_EQ_INT(json_array_size(ops), 1);
    CHECK_OP(ops, "/properties/age/type", "replace", false);
    json_decref(ops);
}

/* New order first, then what was removed in old order. */
static void op_order_is_deterministic(void)
{
    bool b;
    json_t *old_doc = person("active"), *new_doc = person("active");
    json_t *props = json_object_get(new_doc, "properties");
    json_array_clear(props);
    json_array_append_new(props, J("{'api_name': 'z', 'type': 'string'}"));
    json_array_append_new(props, J("{'api_name': 'a', 'type': 'string'}"));
    set_str(new_doc, "description", "changed");
    json_t *ops = run(OMS_KIND_OBJECT_TYPE, old_doc, new_doc, &b);
    static const char *const want[] = {"/description", "/properties/z", "/properties/a",
                                       "/properties/id", "/properties/age", "/properties/born",
                                       "/properties/score"};
    CHECK_EQ_INT(json_array_size(ops), 7);
    for (size_t i = 0; i < 7 && i < json_array_size(ops); i++)
        CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(ops, i), "path")), want[i]);
    json_decref(ops);
}

static void pointer_tokens_are_escaped(void)
{
    bool b;
    /* Not valid api_names, but the diff must still produce valid pointers. */
    json_t *old_doc = J("{'status': 'active', 'x/y~z': 1,"
                        " 'properties': [{'api_name': 'a/b~c', 'type': 'integer'}]}");
    json_t *new_doc = J("{'status': 'active', 'x/y~z': 2,"
                        " 'properties': [{'api_name': 'a/b~c', 'type': 'string'}]}");
    json_t *ops = run(OMS_KIND_OBJECT_TYPE, old_doc, new_doc, &b);
    CHECK_OP(ops, "/x~1y~0z", "replace", false);
    CHECK_OP(ops, "/properties/a~1b~0c/type", "replace", true);
    json_decref(ops);
}

static void ops_do_not_alias_documents(void)
{
    bool b;
    json_t *old_doc = person("active"), *new_doc = person("active");
    set_str(new_doc, "description", "x");
    json_t *ops = oms_diff_documents(OMS_KIND_OBJECT_TYPE, old_doc, new_doc, &b);
    set_str(new_doc, "description", "mutated later");
    CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(ops, 0), "new")), "x");
    json_decref(ops);
    json_decref(old_doc);
    json_decref(new_doc);
}

static void meta_is_ignored(void)
{
    bool b = true;
    json_t *old_doc = person("active"), *new_doc = person("active");
    json_object_set_new(old_doc, "meta", J("{'etag': 'a'}"));
    json_object_set_new(new_doc, "meta", J("{'etag': 'b'}"));
    json_t *ops = run(OMS_KIND_OBJECT_TYPE, old_doc, new_doc, &b);
    CHECK_EQ_INT(json_array_size(ops), 0);
    json_decref(ops);
}

static void enum_appearing_and_disappearing(void)
{
    bool b = true;
    json_t *old_doc = person("active"), *new_doc = person("active");
    json_object_set_new(prop(new_doc, "id"), "enum", J("['a', 'b']"));
    json_object_set_new(prop(old_doc, "born"), "enum", J("['x']"));
    json_object_set_new(prop(old_doc, "age"), "enum", J("['1']"));
    json_object_set_new(prop(new_doc, "age"), "enum", J("['1', '2']"));
    json_t *ops = run(OMS_KIND_OBJECT_TYPE, old_doc, new_doc, &b);
    CHECK_EQ_INT(json_array_size(ops), 3);
    CHECK_OP(ops, "/properties/id/enum", "add", false);
    CHECK_OP(ops, "/properties/born/enum", "remove", false);
    CHECK_OP(ops, "/properties/age/enum", "replace", false);
    const json_t *rep = op_at(ops, "/properties/age/enum");
    CHECK_EQ_INT(json_array_size(json_object_get(rep, "new")), 2);
    CHECK(json_object_get(op_at(ops, "/properties/id/enum"), "old") == NULL);
    CHECK(json_object_get(op_at(ops, "/properties/born/enum"), "new") == NULL);
    CHECK(!b);
    json_decref(ops);
}

static void experimental_resource_never_breaking(void)
{
    bool b = true;
    json_t *old_doc = person("experimental"), *new_doc = person("active");
    json_array_remove(json_object_get(new_doc, "properties"), 3);      /* score removed */
    set_str(prop(new_doc, "age"), "type", "string");                   /* type change */
    set_bool(prop(new_doc, "born"), "required", true);                 /* made required */
    set_str(new_doc, "primary_key", "age");                            /* pk change */
    json_t *ops = run(OMS_KIND_OBJECT_TYPE, old_doc, new_doc, &b);
    CHECK_EQ_INT(json_array_size(ops), 5);
    size_t i;
    const json_t *op;
    json_array_foreach(ops, i, op)
        CHECK(!op_breaking(op));
    CHECK(!b);
    json_decref(ops);

    json_t *l = knows("many_to_many");
    set_str(l, "status", "experimental");
    ops = run(OMS_KIND_LINK_TYPE, l, knows("one_to_one"), &b);
    CHECK_OP(ops, "/cardinality", "replace", false);
    CHECK(!b);
    json_decref(ops);
}

/* The old version decides: an active resource going experimental still
 * breaks its consumers in that change. */
static void becoming_experimental_still_breaking(void)
{
    bool b = false;
    json_t *old_doc = person("active"), *new_doc = person("experimental");
    json_array_remove(json_object_get(new_doc, "properties"), 3);
    json_t *ops = run(OMS_KIND_OBJECT_TYPE, old_doc, new_doc, &b);
    CHECK_OP(ops, "/properties/score", "remove", true);
    CHECK_OP(ops, "/status", "replace", false);
    CHECK(b);
    json_decref(ops);
}

static void add_resource_is_one_op_not_breaking(void)
{
    bool b = true;
    json_t *ops = run(OMS_KIND_OBJECT_TYPE, NULL, person("active"), &b);
    CHECK_EQ_INT(json_array_size(ops), 1);
    CHECK_OP(ops, "", "add", false);
    const json_t *op = json_array_get(ops, 0);
    CHECK_EQ_STR(json_string_value(json_object_get(json_object_get(op, "new"), "api_name")),
                 "Person");
    CHECK(json_object_get(op, "old") == NULL);
    CHECK(!b);
    json_decref(ops);
}

static void delete_property_is_breaking(void)
{
    bool b = false;
    json_t *old_doc = person("active"), *new_doc = person("active");
    json_array_remove(json_object_get(new_doc, "properties"), 1); /* age */
    json_t *ops = run(OMS_KIND_OBJECT_TYPE, old_doc, new_doc, &b);
    CHECK_EQ_INT(json_array_size(ops), 1);
    CHECK_OP(ops, "/properties/age", "remove", true);
    CHECK_EQ_STR(json_string_value(json_object_get(
                     json_object_get(json_array_get(ops, 0), "old"), "type")),
                 "integer");
    CHECK(b);
    json_decref(ops);
}

int main(void)
{
    static const t_case cases[] = {
        T(rules_table),
        T(add_resource_is_one_op_not_breaking),
        T(delete_property_is_breaking),
        T(identical_documents_no_ops),
        T(both_null_no_ops),
        T(breaking_out_param_optional),
        T(properties_matched_by_name_when_reordered),
        T(reordered_and_changed_uses_names),
        T(op_order_is_deterministic),
        T(pointer_tokens_are_escaped),
        T(ops_do_not_alias_documents),
        T(meta_is_ignored),
        T(enum_appearing_and_disappearing),
        T(experimental_resource_never_breaking),
        T(becoming_experimental_still_breaking),
    };
    return T_RUN("breaking", cases);
}
