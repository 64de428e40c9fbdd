/* Unit tests for oms_diff_documents (src/ontology/diff.c): field-level ops
 * and the breaking-change rules of SPEC §3, one case per rule, plus the
 * widenings that must not be breaking. Documents are written in JSON with
 * single quotes for readability (J() turns them into double quotes). */
#include <stdbool.h>

#include "ontology/ontology.h"
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

static json_t *hire(void)
{
    return J("{'api_name': 'hire', 'display_name': 'hire', 'description': '', 'status': 'active',"
             " 'parameters': ["
             "  {'api_name': 'who', 'display_name': 'who', 'description': '',"
             "   'type': 'object_reference', 'array': false, 'required': true,"
             "   'object_type': 'Person'},"
             "  {'api_name': 'salary', 'display_name': 'salary', 'description': '',"
             "   'type': 'integer', 'array': false, 'required': false}],"
             " 'rules': [{'type': 'modify_object', 'object_type': 'Person'}]}");
}

static json_t *score_fn(void)
{
    return J("{'api_name': 'score', 'display_name': 'score', 'description': '',"
             " 'status': 'active', 'deterministic': true,"
             " 'inputs': [{'api_name': 'p', 'display_name': 'p', 'description': '',"
             "   'type': 'object_reference', 'array': false, 'required': true,"
             "   'object_type': 'Person'}],"
             " 'output': {'type': 'integer', 'array': false}}");
}

static json_t *named_iface(void)
{
    return J("{'api_name': 'Named', 'display_name': 'Named', 'description': '',"
             " 'status': 'active', 'extends': [],"
             " 'properties': [{'api_name': 'name', 'display_name': 'name', 'description': '',"
             "   'type': 'string', 'array': false, 'required': false}]}");
}

static json_t *email_sp(void)
{
    return J("{'api_name': 'email', 'display_name': 'email', 'description': '',"
             " 'status': 'active', 'type': 'string', 'array': false}");
}

/* Person with one property's field changed; diffs it against Person. */
static json_t *person_prop_change(const char *status, const char *pname, const char *field,
                                  json_t *value, bool *breaking)
{
    json_t *old_doc = person(status), *new_doc = person(status);
    json_object_set_new(prop(new_doc, pname), field, value);
    return run(OMS_KIND_OBJECT_TYPE, old_doc, new_doc, breaking);
}

/* ---- whole resources ----------------------------------------------------------- */

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

static void delete_resource_is_breaking(void)
{
    bool b = false;
    json_t *ops = run(OMS_KIND_OBJECT_TYPE, person("active"), NULL, &b);
    CHECK_EQ_INT(json_array_size(ops), 1);
    CHECK_OP(ops, "", "remove", true);
    CHECK(json_object_get(json_array_get(ops, 0), "old") != NULL);
    CHECK(json_object_get(json_array_get(ops, 0), "new") == NULL);
    CHECK(b);
    json_decref(ops);
}

static void delete_deprecated_resource_is_breaking(void)
{
    bool b = false;
    json_t *ops = run(OMS_KIND_LINK_TYPE, knows("one_to_many"), NULL, &b);
    CHECK(b);
    json_decref(ops);
    ops = run(OMS_KIND_OBJECT_TYPE, person("deprecated"), NULL, &b);
    CHECK(b);
    json_decref(ops);
}

static void delete_experimental_resource_not_breaking(void)
{
    bool b = true;
    json_t *ops = run(OMS_KIND_OBJECT_TYPE, person("experimental"), NULL, &b);
    CHECK_OP(ops, "", "remove", false);
    CHECK(!b);
    json_decref(ops);
}

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

/* ---- properties ----------------------------------------------------------------- */

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

static void add_optional_property_not_breaking(void)
{
    bool b = true;
    json_t *old_doc = person("active"), *new_doc = person("active");
    json_array_append_new(json_object_get(new_doc, "properties"),
                          J("{'api_name': 'nick', 'display_name': 'nick', 'description': '',"
                            " 'type': 'string', 'array': false, 'required': false}"));
    json_t *ops = run(OMS_KIND_OBJECT_TYPE, old_doc, new_doc, &b);
    CHECK_EQ_INT(json_array_size(ops), 1);
    CHECK_OP(ops, "/properties/nick", "add", false);
    const json_t *added = json_object_get(json_array_get(ops, 0), "new");
    CHECK_EQ_STR(json_string_value(json_object_get(added, "api_name")), "nick");
    CHECK(!b);
    json_decref(ops);
}

static void add_required_property_is_breaking(void)
{
    bool b = false;
    json_t *old_doc = person("active"), *new_doc = person("active");
    json_array_append_new(json_object_get(new_doc, "properties"),
                          J("{'api_name': 'nick', 'display_name': 'nick', 'description': '',"
                            " 'type': 'string', 'array': false, 'required': true}"));
    json_t *ops = run(OMS_KIND_OBJECT_TYPE, old_doc, new_doc, &b);
    CHECK_OP(ops, "/properties/nick", "add", true);
    CHECK(b);
    json_decref(ops);
}

static void property_type_change_is_breaking(void)
{
    bool b = false;
    json_t *ops = person_prop_change("active", "age", "type", json_string("string"), &b);
    CHECK_EQ_INT(json_array_size(ops), 1);
    CHECK_OP(ops, "/properties/age/type", "replace", true);
    const json_t *op = json_array_get(ops, 0);
    CHECK_EQ_STR(json_string_value(json_object_get(op, "old")), "integer");
    CHECK_EQ_STR(json_string_value(json_object_get(op, "new")), "string");
    CHECK(b);
    json_decref(ops);
}

static void widening_integer_to_long_not_breaking(void)
{
    bool b = true;
    json_t *ops = person_prop_change("active", "age", "type", json_string("long"), &b);
    CHECK_OP(ops, "/properties/age/type", "replace", false);
    CHECK(!b);
    json_decref(ops);
}

static void widening_long_to_double_not_breaking(void)
{
    bool b = true;
    json_t *ops = person_prop_change("active", "score", "type", json_string("double"), &b);
    CHECK_OP(ops, "/properties/score/type", "replace", false);
    CHECK(!b);
    json_decref(ops);
}

static void widening_integer_to_double_not_breaking(void)
{
    bool b = true;
    json_t *ops = person_prop_change("active", "age", "type", json_string("double"), &b);
    CHECK_OP(ops, "/properties/age/type", "replace", false);
    CHECK(!b);
    json_decref(ops);
}

static void widening_date_to_timestamp_not_breaking(void)
{
    bool b = true;
    json_t *ops = person_prop_change("active", "born", "type", json_string("timestamp"), &b);
    CHECK_OP(ops, "/properties/born/type", "replace", false);
    CHECK(!b);
    json_decref(ops);
}

static void narrowing_long_to_integer_is_breaking(void)
{
    bool b = false;
    json_t *ops = person_prop_change("active", "score", "type", json_string("integer"), &b);
    CHECK_OP(ops, "/properties/score/type", "replace", true);
    CHECK(b);
    json_decref(ops);
}

static void narrowing_timestamp_to_date_and_double_to_long_breaking(void)
{
    bool b = false;
    json_t *old_doc = person("active"), *new_doc = person("active");
    set_str(prop(old_doc, "born"), "type", "timestamp");
    set_str(prop(new_doc, "born"), "type", "date");
    set_str(prop(old_doc, "score"), "type", "double");
    json_t *ops = run(OMS_KIND_OBJECT_TYPE, old_doc, new_doc, &b);
    CHECK_OP(ops, "/properties/born/type", "replace", true);
    CHECK_OP(ops, "/properties/score/type", "replace", true);
    CHECK(b);
    json_decref(ops);
}

/* Widening is about reading old values as the new type: decimal is not in
 * the list, nor is anything to string. */
static void other_type_changes_are_breaking(void)
{
    bool b = false;
    json_t *ops = person_prop_change("active", "age", "type", json_string("decimal"), &b);
    CHECK_OP(ops, "/properties/age/type", "replace", true);
    json_decref(ops);
    ops = person_prop_change("active", "born", "type", json_string("string"), &b);
    CHECK_OP(ops, "/properties/born/type", "replace", true);
    json_decref(ops);
}

static void array_flag_set_is_breaking(void)
{
    bool b = false;
    json_t *ops = person_prop_change("active", "age", "array", json_true(), &b);
    CHECK_OP(ops, "/properties/age/array", "replace", true);
    CHECK(b);
    json_decref(ops);
}

static void array_flag_cleared_is_breaking(void)
{
    json_t *old_doc = person("active"), *new_doc = person("active");
    set_bool(prop(old_doc, "age"), "array", true);
    bool b = false;
    json_t *ops = run(OMS_KIND_OBJECT_TYPE, old_doc, new_doc, &b);
    CHECK_OP(ops, "/properties/age/array", "replace", true);
    CHECK(b);
    json_decref(ops);
}

static void making_property_required_is_breaking(void)
{
    bool b = false;
    json_t *ops = person_prop_change("active", "age", "required", json_true(), &b);
    CHECK_EQ_INT(json_array_size(ops), 1);
    CHECK_OP(ops, "/properties/age/required", "replace", true);
    CHECK(b);
    json_decref(ops);
}

static void making_property_optional_not_breaking(void)
{
    bool b = true;
    json_t *ops = person_prop_change("active", "id", "required", json_false(), &b);
    CHECK_OP(ops, "/properties/id/required", "replace", false);
    CHECK(!b);
    json_decref(ops);
}

static void property_metadata_changes_not_breaking(void)
{
    bool b = true;
    json_t *old_doc = person("active"), *new_doc = person("active");
    set_str(prop(new_doc, "age"), "description", "years");
    set_str(prop(new_doc, "age"), "display_name", "Age in years");
    json_t *ops = run(OMS_KIND_OBJECT_TYPE, old_doc, new_doc, &b);
    CHECK_EQ_INT(json_array_size(ops), 2);
    CHECK_OP(ops, "/properties/age/description", "replace", false);
    CHECK_OP(ops, "/properties/age/display_name", "replace", false);
    CHECK(!b);
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

/* ---- resource-level fields ------------------------------------------------------ */

static void primary_key_change_is_breaking(void)
{
    bool b = false;
    json_t *old_doc = person("active"), *new_doc = person("active");
    set_str(new_doc, "primary_key", "age");
    json_t *ops = run(OMS_KIND_OBJECT_TYPE, old_doc, new_doc, &b);
    CHECK_EQ_INT(json_array_size(ops), 1);
    CHECK_OP(ops, "/primary_key", "replace", true);
    CHECK(b);
    json_decref(ops);
}

static void metadata_changes_not_breaking(void)
{
    bool b = true;
    json_t *old_doc = person("active"), *new_doc = person("deprecated");
    set_str(new_doc, "description", "A human");
    set_str(new_doc, "display_name", "Human");
    set_str(new_doc, "title_property", "age");
    json_array_append_new(json_object_get(new_doc, "implements"), json_string("Named"));
    json_t *ops = run(OMS_KIND_OBJECT_TYPE, old_doc, new_doc, &b);
    CHECK_EQ_INT(json_array_size(ops), 5);
    CHECK_OP(ops, "/status", "replace", false);
    CHECK_OP(ops, "/description", "replace", false);
    CHECK_OP(ops, "/display_name", "replace", false);
    CHECK_OP(ops, "/title_property", "replace", false);
    CHECK_OP(ops, "/implements", "replace", false);
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

/* ---- link types ---------------------------------------------------------------- */

static bool cardinality_change_breaks(const char *from, const char *to)
{
    bool b = false;
    json_t *ops = run(OMS_KIND_LINK_TYPE, knows(from), knows(to), &b);
    CHECK_EQ_INT(json_array_size(ops), 1);
    CHECK(op_at(ops, "/cardinality") != NULL);
    json_decref(ops);
    return b;
}

static void narrowing_cardinality_is_breaking(void)
{
    CHECK(cardinality_change_breaks("many_to_many", "one_to_many"));
    CHECK(cardinality_change_breaks("many_to_many", "many_to_one"));
    CHECK(cardinality_change_breaks("many_to_many", "one_to_one"));
    CHECK(cardinality_change_breaks("one_to_many", "one_to_one"));
    CHECK(cardinality_change_breaks("many_to_one", "one_to_one"));
    /* One side widens, the other narrows: still narrowing. */
    CHECK(cardinality_change_breaks("one_to_many", "many_to_one"));
    CHECK(cardinality_change_breaks("many_to_one", "one_to_many"));
}

static void widening_cardinality_not_breaking(void)
{
    CHECK(!cardinality_change_breaks("one_to_one", "one_to_many"));
    CHECK(!cardinality_change_breaks("one_to_one", "many_to_one"));
    CHECK(!cardinality_change_breaks("one_to_one", "many_to_many"));
    CHECK(!cardinality_change_breaks("one_to_many", "many_to_many"));
    CHECK(!cardinality_change_breaks("many_to_one", "many_to_many"));
}

static void link_to_change_is_breaking(void)
{
    bool b = false;
    json_t *new_doc = knows("one_to_many");
    set_str(new_doc, "to", "Company");
    json_t *ops = run(OMS_KIND_LINK_TYPE, knows("one_to_many"), new_doc, &b);
    CHECK_OP(ops, "/to", "replace", true);
    CHECK(b);
    json_decref(ops);
}

static void link_from_change_is_breaking(void)
{
    json_t *new_doc = knows("one_to_many");
    set_str(new_doc, "from", "Company");
    bool b = false;
    json_t *ops = run(OMS_KIND_LINK_TYPE, knows("one_to_many"), new_doc, &b);
    CHECK_OP(ops, "/from", "replace", true);
    CHECK(b);
    json_decref(ops);
}

/* ---- action types ---------------------------------------------------------------- */

static void removing_action_parameter_is_breaking(void)
{
    bool b = false;
    json_t *new_doc = hire();
    json_array_remove(json_object_get(new_doc, "parameters"), 1);
    json_t *ops = run(OMS_KIND_ACTION_TYPE, hire(), new_doc, &b);
    CHECK_EQ_INT(json_array_size(ops), 1);
    CHECK_OP(ops, "/parameters/salary", "remove", true);
    CHECK(b);
    json_decref(ops);
}

static void adding_required_action_parameter_is_breaking(void)
{
    bool b = false;
    json_t *new_doc = hire();
    json_array_append_new(json_object_get(new_doc, "parameters"),
                          J("{'api_name': 'start', 'display_name': 'start', 'description': '',"
                            " 'type': 'date', 'array': false, 'required': true}"));
    json_t *ops = run(OMS_KIND_ACTION_TYPE, hire(), new_doc, &b);
    CHECK_OP(ops, "/parameters/start", "add", true);
    CHECK(b);
    json_decref(ops);
}

static void adding_optional_action_parameter_not_breaking(void)
{
    bool b = true;
    json_t *new_doc = hire();
    json_array_append_new(json_object_get(new_doc, "parameters"),
                          J("{'api_name': 'start', 'display_name': 'start', 'description': '',"
                            " 'type': 'date', 'array': false, 'required': false}"));
    json_t *ops = run(OMS_KIND_ACTION_TYPE, hire(), new_doc, &b);
    CHECK_OP(ops, "/parameters/start", "add", false);
    CHECK(!b);
    json_decref(ops);
}

static void making_action_parameter_required_is_breaking(void)
{
    bool b = false;
    json_t *new_doc = hire();
    set_bool(named(json_object_get(new_doc, "parameters"), "salary"), "required", true);
    json_t *ops = run(OMS_KIND_ACTION_TYPE, hire(), new_doc, &b);
    CHECK_OP(ops, "/parameters/salary/required", "replace", true);
    CHECK(b);
    json_decref(ops);
}

static void action_parameter_type_change_is_breaking(void)
{
    bool b = false;
    json_t *new_doc = hire();
    set_str(named(json_object_get(new_doc, "parameters"), "salary"), "type", "string");
    json_t *ops = run(OMS_KIND_ACTION_TYPE, hire(), new_doc, &b);
    CHECK_OP(ops, "/parameters/salary/type", "replace", true);
    CHECK(b);
    json_decref(ops);
}

static void action_parameter_widening_not_breaking(void)
{
    json_t *new_doc = hire();
    set_str(named(json_object_get(new_doc, "parameters"), "salary"), "type", "long");
    bool b = true;
    json_t *ops = run(OMS_KIND_ACTION_TYPE, hire(), new_doc, &b);
    CHECK_OP(ops, "/parameters/salary/type", "replace", false);
    CHECK(!b);
    json_decref(ops);
}

static void action_parameter_object_type_change_is_breaking(void)
{
    json_t *new_doc = hire();
    set_str(named(json_object_get(new_doc, "parameters"), "who"), "object_type", "Robot");
    bool b = false;
    json_t *ops = run(OMS_KIND_ACTION_TYPE, hire(), new_doc, &b);
    CHECK_OP(ops, "/parameters/who/object_type", "replace", true);
    CHECK(b);
    json_decref(ops);
}

static void action_rules_change_not_breaking(void)
{
    bool b = true;
    json_t *new_doc = hire();
    json_array_append_new(json_object_get(new_doc, "rules"),
                          J("{'type': 'create_link', 'link_type': 'knows'}"));
    json_t *ops = run(OMS_KIND_ACTION_TYPE, hire(), new_doc, &b);
    CHECK_OP(ops, "/rules", "replace", false);
    CHECK(!b);
    json_decref(ops);
}

/* ---- function types ---------------------------------------------------------------- */

static void removing_function_input_is_breaking(void)
{
    bool b = false;
    json_t *new_doc = score_fn();
    json_array_clear(json_object_get(new_doc, "inputs"));
    json_t *ops = run(OMS_KIND_FUNCTION_TYPE, score_fn(), new_doc, &b);
    CHECK_OP(ops, "/inputs/p", "remove", true);
    CHECK(b);
    json_decref(ops);
}

static void adding_required_function_input_is_breaking(void)
{
    json_t *new_doc = score_fn();
    json_array_append_new(json_object_get(new_doc, "inputs"),
                          J("{'api_name': 'q', 'type': 'integer', 'array': false,"
                            " 'required': true}"));
    bool b = false;
    json_t *ops = run(OMS_KIND_FUNCTION_TYPE, score_fn(), new_doc, &b);
    CHECK_OP(ops, "/inputs/q", "add", true);
    CHECK(b);
    json_decref(ops);
}

static void adding_optional_function_input_not_breaking(void)
{
    json_t *new_doc = score_fn();
    json_array_append_new(json_object_get(new_doc, "inputs"),
                          J("{'api_name': 'q', 'type': 'integer', 'array': false,"
                            " 'required': false}"));
    bool b = true;
    json_t *ops = run(OMS_KIND_FUNCTION_TYPE, score_fn(), new_doc, &b);
    CHECK_OP(ops, "/inputs/q", "add", false);
    CHECK(!b);
    json_decref(ops);
}

static void function_output_type_change_is_breaking(void)
{
    bool b = false;
    json_t *new_doc = score_fn();
    set_str(json_object_get(new_doc, "output"), "type", "string");
    json_t *ops = run(OMS_KIND_FUNCTION_TYPE, score_fn(), new_doc, &b);
    CHECK_EQ_INT(json_array_size(ops), 1);
    CHECK_OP(ops, "/output/type", "replace", true);
    CHECK(b);
    json_decref(ops);
}

static void function_output_widening_not_breaking(void)
{
    json_t *new_doc = score_fn();
    set_str(json_object_get(new_doc, "output"), "type", "long");
    bool b = true;
    json_t *ops = run(OMS_KIND_FUNCTION_TYPE, score_fn(), new_doc, &b);
    CHECK_OP(ops, "/output/type", "replace", false);
    CHECK(!b);
    json_decref(ops);
}

static void function_output_array_change_is_breaking(void)
{
    json_t *new_doc = score_fn();
    set_bool(json_object_get(new_doc, "output"), "array", true);
    bool b = false;
    json_t *ops = run(OMS_KIND_FUNCTION_TYPE, score_fn(), new_doc, &b);
    CHECK_OP(ops, "/output/array", "replace", true);
    CHECK(b);
    json_decref(ops);
}

static void function_deterministic_change_not_breaking(void)
{
    json_t *new_doc = score_fn();
    set_bool(new_doc, "deterministic", false);
    bool b = true;
    json_t *ops = run(OMS_KIND_FUNCTION_TYPE, score_fn(), new_doc, &b);
    CHECK_OP(ops, "/deterministic", "replace", false);
    CHECK(!b);
    json_decref(ops);
}

/* ---- interfaces and shared properties ------------------------------------------------ */

static void removing_interface_property_is_breaking(void)
{
    bool b = false;
    json_t *new_doc = named_iface();
    json_array_clear(json_object_get(new_doc, "properties"));
    json_t *ops = run(OMS_KIND_INTERFACE, named_iface(), new_doc, &b);
    CHECK_OP(ops, "/properties/name", "remove", true);
    CHECK(b);
    json_decref(ops);
}

static void interface_optional_property_added_and_extends_not_breaking(void)
{
    bool b = true;
    json_t *new_doc = named_iface();
    json_array_append_new(json_object_get(new_doc, "properties"),
                          J("{'api_name': 'alias', 'type': 'string', 'array': false,"
                            " 'required': false}"));
    json_array_append_new(json_object_get(new_doc, "extends"), json_string("Thing"));
    json_t *ops = run(OMS_KIND_INTERFACE, named_iface(), new_doc, &b);
    CHECK_OP(ops, "/properties/alias", "add", false);
    CHECK_OP(ops, "/extends", "replace", false);
    CHECK(!b);
    json_decref(ops);
}

static void interface_property_type_change_is_breaking(void)
{
    bool b = false;
    json_t *new_doc = named_iface();
    set_str(prop(new_doc, "name"), "type", "json");
    json_t *ops = run(OMS_KIND_INTERFACE, named_iface(), new_doc, &b);
    CHECK_OP(ops, "/properties/name/type", "replace", true);
    CHECK(b);
    json_decref(ops);
}

static void shared_property_type_change_is_breaking(void)
{
    bool b = false;
    json_t *new_doc = email_sp();
    set_str(new_doc, "type", "json");
    json_t *ops = run(OMS_KIND_SHARED_PROPERTY, email_sp(), new_doc, &b);
    CHECK_OP(ops, "/type", "replace", true);
    CHECK(b);
    json_decref(ops);
}

static void shared_property_widening_not_breaking(void)
{
    json_t *old_doc = email_sp();
    json_t *new_doc = email_sp();
    set_str(old_doc, "type", "integer");
    set_str(new_doc, "type", "long");
    bool b = true;
    json_t *ops = run(OMS_KIND_SHARED_PROPERTY, old_doc, new_doc, &b);
    CHECK_OP(ops, "/type", "replace", false);
    CHECK(!b);
    json_decref(ops);
}

static void shared_property_array_change_is_breaking(void)
{
    json_t *new_doc = email_sp();
    set_bool(new_doc, "array", true);
    bool b = false;
    json_t *ops = run(OMS_KIND_SHARED_PROPERTY, email_sp(), new_doc, &b);
    CHECK_OP(ops, "/array", "replace", true);
    CHECK(b);
    json_decref(ops);
}

int main(void)
{
    static const t_case cases[] = {
        T(add_resource_is_one_op_not_breaking),
        T(delete_resource_is_breaking),
        T(delete_deprecated_resource_is_breaking),
        T(delete_experimental_resource_not_breaking),
        T(identical_documents_no_ops),
        T(both_null_no_ops),
        T(breaking_out_param_optional),
        T(delete_property_is_breaking),
        T(add_optional_property_not_breaking),
        T(add_required_property_is_breaking),
        T(property_type_change_is_breaking),
        T(widening_integer_to_long_not_breaking),
        T(widening_long_to_double_not_breaking),
        T(widening_integer_to_double_not_breaking),
        T(widening_date_to_timestamp_not_breaking),
        T(narrowing_long_to_integer_is_breaking),
        T(narrowing_timestamp_to_date_and_double_to_long_breaking),
        T(other_type_changes_are_breaking),
        T(array_flag_set_is_breaking),
        T(array_flag_cleared_is_breaking),
        T(making_property_required_is_breaking),
        T(making_property_optional_not_breaking),
        T(property_metadata_changes_not_breaking),
        T(enum_appearing_and_disappearing),
        T(properties_matched_by_name_when_reordered),
        T(reordered_and_changed_uses_names),
        T(op_order_is_deterministic),
        T(pointer_tokens_are_escaped),
        T(ops_do_not_alias_documents),
        T(meta_is_ignored),
        T(primary_key_change_is_breaking),
        T(metadata_changes_not_breaking),
        T(experimental_resource_never_breaking),
        T(becoming_experimental_still_breaking),
        T(narrowing_cardinality_is_breaking),
        T(widening_cardinality_not_breaking),
        T(link_to_change_is_breaking),
        T(link_from_change_is_breaking),
        T(removing_action_parameter_is_breaking),
        T(adding_required_action_parameter_is_breaking),
        T(adding_optional_action_parameter_not_breaking),
        T(making_action_parameter_required_is_breaking),
        T(action_parameter_type_change_is_breaking),
        T(action_parameter_widening_not_breaking),
        T(action_parameter_object_type_change_is_breaking),
        T(action_rules_change_not_breaking),
        T(removing_function_input_is_breaking),
        T(adding_required_function_input_is_breaking),
        T(adding_optional_function_input_not_breaking),
        T(function_output_type_change_is_breaking),
        T(function_output_widening_not_breaking),
        T(function_output_array_change_is_breaking),
        T(function_deterministic_change_not_breaking),
        T(removing_interface_property_is_breaking),
        T(interface_optional_property_added_and_extends_not_breaking),
        T(interface_property_type_change_is_breaking),
        T(shared_property_type_change_is_breaking),
        T(shared_property_widening_not_breaking),
        T(shared_property_array_change_is_breaking),
    };
    return T_RUN("breaking", cases);
}
