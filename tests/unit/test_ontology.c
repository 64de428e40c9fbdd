/* Unit tests for src/ontology: kind names, document validation (shapes,
 * defaults, unknown fields, grammars), references and the integrity rules
 * of SPEC §3. Documents are written in JSON with single quotes for
 * readability (J() turns them into double quotes). Integrity runs against a
 * branch held in a JSON object: {"KIND": {"API_NAME": document}}. */
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
    json_t *v = json_loads(s, JSON_DECODE_ANY, &err);
    if (!v) {
        fprintf(stderr, "bad test JSON: %s: %s\n", err.text, s);
        abort();
    }
    free(s);
    return v;
}

/* Validates `text` as kind k; returns the errors, *out (optional) the
 * document after validation (defaults filled). */
static json_t *validate(oms_kind k, const char *text, const char *url_name, json_t **out)
{
    json_t *doc = J(text), *errors = json_array();
    int n = oms_validate_document(k, doc, url_name, errors);
    CHECK_EQ_INT(n, json_array_size(errors));
    if (out)
        *out = doc;
    else
        json_decref(doc);
    return errors;
}

static const json_t *error_at(const json_t *errors, const char *path)
{
    size_t i;
    const json_t *e;
    json_array_foreach(errors, i, e)
        if (strcmp(json_string_value(json_object_get(e, "path")), path) == 0)
            return e;
    return NULL;
}

static const char *message_at(const json_t *errors, const char *path)
{
    return json_string_value(json_object_get(error_at(errors, path), "message"));
}

static bool contains(const char *haystack, const char *needle)
{
    return haystack && strstr(haystack, needle) != NULL;
}

static void dump(const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT);
    fprintf(stderr, "    %s\n", s);
    free(s);
}

/* `text` validates as kind k without errors. */
#define CHECK_VALID(k, text)                                \
    do {                                                    \
        json_t *_e = validate(k, text, NULL, NULL);         \
        CHECK_EQ_INT(json_array_size(_e), 0);               \
        if (json_array_size(_e))                            \
            dump(_e);                                       \
        json_decref(_e);                                    \
    } while (0)

/* `text` fails validation as kind k with an error at `path` whose message
 * contains `msg`. */
#define CHECK_INVALID(k, text, path, msg)                   \
    do {                                                    \
        json_t *_e = validate(k, text, NULL, NULL);         \
        CHECK(contains(message_at(_e, path), msg));         \
        if (!contains(message_at(_e, path), msg))           \
            dump(_e);                                       \
        json_decref(_e);                                    \
    } while (0)

static const char *str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

#define PERSON_PROPS                                                                 \
    "'properties': [{'api_name': 'id', 'type': 'string', 'required': true},"         \
    " {'api_name': 'name', 'type': 'string'}]"

/* A minimal valid object type, with `extra` members added. */
static char *object_type(const char *extra)
{
    static char buf[8192];
    snprintf(buf, sizeof buf, "{'api_name': 'Person', 'primary_key': 'id', %s%s%s}",
             PERSON_PROPS, *extra ? ", " : "", extra);
    return buf;
}

/* ---- kinds --------------------------------------------------------------- */

static void kind_names(void)
{
    static const char *const segments[] = {"object-types", "link-types",  "action-types",
                                           "function-types", "interfaces", "shared-properties"};
    static const char *const nouns[] = {"object_type",   "link_type", "action_type",
                                        "function_type", "interface", "shared_property"};
    for (int k = 0; k < OMS_KIND__COUNT; k++) {
        oms_kind parsed = OMS_KIND__COUNT;
        CHECK_EQ_STR(oms_kind_segment((oms_kind)k), segments[k]);
        CHECK_EQ_STR(oms_kind_noun((oms_kind)k), nouns[k]);
        CHECK_EQ_INT(oms_kind_parse(&parsed, segments[k]), 0);
        CHECK_EQ_INT(parsed, k);
    }
    oms_kind parsed;
    CHECK_EQ_INT(oms_kind_parse(&parsed, "object_type"), -1);
    CHECK_EQ_INT(oms_kind_parse(&parsed, "Object-Types"), -1);
    CHECK_EQ_INT(oms_kind_parse(&parsed, ""), -1);
}

/* ---- valid documents and defaults ------------------------------------------- */

static void valid_object_type_gets_defaults(void)
{
    json_t *doc;
    json_t *e = validate(OMS_KIND_OBJECT_TYPE, object_type(""), NULL, &doc);
    CHECK_EQ_INT(json_array_size(e), 0);
    CHECK_EQ_STR(str(doc, "display_name"), "Person");
    CHECK_EQ_STR(str(doc, "description"), "");
    CHECK_EQ_STR(str(doc, "status"), "experimental");
    CHECK_EQ_STR(str(doc, "title_property"), "id");
    CHECK(json_is_array(json_object_get(doc, "implements")));
    CHECK_EQ_INT(json_array_size(json_object_get(doc, "implements")), 0);
    const json_t *p = json_array_get(json_object_get(doc, "properties"), 1);
    CHECK_EQ_STR(str(p, "display_name"), "name");
    CHECK_EQ_STR(str(p, "description"), "");
    CHECK(json_is_false(json_object_get(p, "array")));
    CHECK(json_is_false(json_object_get(p, "required")));
    CHECK(json_object_get(p, "enum") == NULL);
    CHECK(json_object_get(p, "shared_property") == NULL);
    CHECK(json_is_true(json_object_get(json_array_get(json_object_get(doc, "properties"), 0),
                                       "required")));
    json_decref(e);
    json_decref(doc);
}

static void explicit_values_are_kept(void)
{
    json_t *doc;
    json_t *e = validate(OMS_KIND_OBJECT_TYPE,
                         object_type("'display_name': 'Human', 'description': 'A person',"
                                     " 'status': 'active', 'title_property': 'name',"
                                     " 'implements': ['Named']"),
                         NULL, &doc);
    CHECK_EQ_INT(json_array_size(e), 0);
    CHECK_EQ_STR(str(doc, "display_name"), "Human");
    CHECK_EQ_STR(str(doc, "description"), "A person");
    CHECK_EQ_STR(str(doc, "status"), "active");
    CHECK_EQ_STR(str(doc, "title_property"), "name");
    CHECK_EQ_STR(json_string_value(json_array_get(json_object_get(doc, "implements"), 0)),
                 "Named");
    json_decref(e);
    json_decref(doc);
}

static void valid_link_type(void)
{
    json_t *doc;
    json_t *e = validate(OMS_KIND_LINK_TYPE,
                         "{'api_name': 'employs', 'from': 'Company', 'to': 'Person',"
                         " 'cardinality': 'one_to_many'}",
                         NULL, &doc);
    CHECK_EQ_INT(json_array_size(e), 0);
    CHECK_EQ_STR(str(doc, "status"), "experimental");
    CHECK_EQ_STR(str(doc, "display_name"), "employs");
    CHECK_EQ_STR(str(doc, "description"), "");
    json_decref(e);
    json_decref(doc);
    static const char *const cards[] = {"one_to_one", "one_to_many", "many_to_one",
                                        "many_to_many"};
    for (size_t i = 0; i < 4; i++) {
        char text[256];
        snprintf(text, sizeof text,
                 "{'api_name': 'l', 'from': 'A', 'to': 'A', 'cardinality': '%s'}", cards[i]);
        CHECK_VALID(OMS_KIND_LINK_TYPE, text);
    }
}

static void valid_action_type(void)
{
    json_t *doc;
    json_t *e = validate(OMS_KIND_ACTION_TYPE,
                         "{'api_name': 'hire', 'parameters': ["
                         "  {'api_name': 'who', 'type': 'object_reference', 'object_type': 'Person',"
                         "   'required': true},"
                         "  {'api_name': 'tags', 'type': 'string', 'array': true}],"
                         " 'rules': [{'type': 'create_object', 'object_type': 'Person'},"
                         "  {'type': 'modify_object', 'object_type': 'Person'},"
                         "  {'type': 'delete_object', 'object_type': 'Person'},"
                         "  {'type': 'create_link', 'link_type': 'employs'},"
                         "  {'type': 'delete_link', 'link_type': 'employs'}]}",
                         NULL, &doc);
    CHECK_EQ_INT(json_array_size(e), 0);
    const json_t *p = json_array_get(json_object_get(doc, "parameters"), 1);
    CHECK_EQ_STR(str(p, "display_name"), "tags");
    CHECK_EQ_STR(str(p, "description"), "");
    CHECK(json_is_false(json_object_get(p, "required")));
    CHECK(json_is_true(json_object_get(p, "array")));
    /* Rules get nothing added: they have exactly their two fields. */
    CHECK_EQ_INT(json_object_size(json_array_get(json_object_get(doc, "rules"), 0)), 2);
    json_decref(e);
    json_decref(doc);

    e = validate(OMS_KIND_ACTION_TYPE, "{'api_name': 'noop'}", NULL, &doc);
    CHECK_EQ_INT(json_array_size(e), 0);
    CHECK_EQ_INT(json_array_size(json_object_get(doc, "parameters")), 0);
    CHECK_EQ_INT(json_array_size(json_object_get(doc, "rules")), 0);
    CHECK(json_is_array(json_object_get(doc, "rules")));
    json_decref(e);
    json_decref(doc);
}

static void valid_function_type(void)
{
    json_t *doc;
    json_t *e = validate(OMS_KIND_FUNCTION_TYPE,
                         "{'api_name': 'score', 'output': {'type': 'double'}}", NULL, &doc);
    CHECK_EQ_INT(json_array_size(e), 0);
    CHECK(json_is_false(json_object_get(doc, "deterministic")));
    CHECK(json_is_array(json_object_get(doc, "inputs")));
    CHECK(json_is_false(json_object_get(json_object_get(doc, "output"), "array")));
    CHECK(json_object_get(json_object_get(doc, "output"), "object_type") == NULL);
    json_decref(e);
    json_decref(doc);
    CHECK_VALID(OMS_KIND_FUNCTION_TYPE,
                "{'api_name': 'best', 'deterministic': true,"
                " 'inputs': [{'api_name': 'p', 'type': 'object_reference', 'object_type': 'Person'}],"
                " 'output': {'type': 'object_reference', 'object_type': 'Person', 'array': true}}");
}

static void valid_interface(void)
{
    json_t *doc;
    json_t *e = validate(OMS_KIND_INTERFACE, "{'api_name': 'Named'}", NULL, &doc);
    CHECK_EQ_INT(json_array_size(e), 0);
    CHECK(json_is_array(json_object_get(doc, "properties")));
    CHECK(json_is_array(json_object_get(doc, "extends")));
    CHECK_EQ_STR(str(doc, "status"), "experimental");
    json_decref(e);
    json_decref(doc);
    CHECK_VALID(OMS_KIND_INTERFACE,
                "{'api_name': 'Named', 'extends': ['Thing', 'Other'],"
                " 'properties': [{'api_name': 'name', 'type': 'string', 'shared_property': 'nm'}]}");
}

static void valid_shared_property(void)
{
    json_t *doc;
    json_t *e = validate(OMS_KIND_SHARED_PROPERTY, "{'api_name': 'email', 'type': 'string'}",
                         NULL, &doc);
    CHECK_EQ_INT(json_array_size(e), 0);
    CHECK(json_is_false(json_object_get(doc, "array")));
    CHECK_EQ_STR(str(doc, "display_name"), "email");
    json_decref(e);
    json_decref(doc);
}

static void every_property_type_is_accepted(void)
{
    static const char *const types[] = {"string", "integer", "long",      "double",   "decimal",
                                        "boolean", "date",   "timestamp", "geopoint", "json"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "{'api_name': 'sp', 'type': '%s'}", types[i]);
        CHECK_VALID(OMS_KIND_SHARED_PROPERTY, text);
    }
    CHECK_INVALID(OMS_KIND_SHARED_PROPERTY, "{'api_name': 'sp', 'type': 'object_reference'}",
                  "/type", "must be one of");
}

static void validation_is_idempotent(void)
{
    json_t *doc;
    json_t *e = validate(OMS_KIND_OBJECT_TYPE, object_type(""), NULL, &doc);
    json_t *copy = json_deep_copy(doc);
    json_t *e2 = json_array();
    CHECK_EQ_INT(oms_validate_document(OMS_KIND_OBJECT_TYPE, copy, NULL, e2), 0);
    CHECK(json_equal(doc, copy));
    json_decref(e);
    json_decref(e2);
    json_decref(copy);
    json_decref(doc);
}

/* ---- top level -------------------------------------------------------------- */

static void meta_is_removed(void)
{
    json_t *doc;
    json_t *e = validate(OMS_KIND_SHARED_PROPERTY,
                         "{'api_name': 'email', 'type': 'string', 'meta': {'etag': 'x'}}", NULL,
                         &doc);
    CHECK_EQ_INT(json_array_size(e), 0);
    CHECK(json_object_get(doc, "meta") == NULL);
    json_decref(e);
    json_decref(doc);
}

static void top_level_must_be_object(void)
{
    json_t *e = validate(OMS_KIND_OBJECT_TYPE, "[1, 2]", NULL, NULL);
    CHECK_EQ_INT(json_array_size(e), 1);
    CHECK(error_at(e, "") != NULL);
    json_decref(e);
    e = validate(OMS_KIND_LINK_TYPE, "'text'", NULL, NULL);
    CHECK(error_at(e, "") != NULL);
    json_decref(e);
}

static void api_name_from_url(void)
{
    json_t *doc;
    json_t *e = validate(OMS_KIND_SHARED_PROPERTY, "{'type': 'string'}", "email", &doc);
    CHECK_EQ_INT(json_array_size(e), 0);
    CHECK_EQ_STR(str(doc, "api_name"), "email");
    CHECK_EQ_STR(str(doc, "display_name"), "email");
    json_decref(e);
    json_decref(doc);

    e = validate(OMS_KIND_SHARED_PROPERTY, "{'api_name': 'email', 'type': 'string'}", "email",
                 NULL);
    CHECK_EQ_INT(json_array_size(e), 0);
    json_decref(e);

    e = validate(OMS_KIND_SHARED_PROPERTY, "{'api_name': 'mail', 'type': 'string'}", "email",
                 NULL);
    CHECK(contains(message_at(e, "/api_name"), "URL"));
    json_decref(e);
}

static void api_name_required_without_url(void)
{
    CHECK_INVALID(OMS_KIND_SHARED_PROPERTY, "{'type': 'string'}", "/api_name", "required");
}

static void bad_api_names(void)
{
    CHECK_INVALID(OMS_KIND_SHARED_PROPERTY, "{'api_name': '1email', 'type': 'string'}",
                  "/api_name", "must match");
    CHECK_INVALID(OMS_KIND_SHARED_PROPERTY, "{'api_name': '_email', 'type': 'string'}",
                  "/api_name", "must match");
    CHECK_INVALID(OMS_KIND_SHARED_PROPERTY, "{'api_name': 'e-mail', 'type': 'string'}",
                  "/api_name", "must match");
    CHECK_INVALID(OMS_KIND_SHARED_PROPERTY, "{'api_name': '', 'type': 'string'}", "/api_name",
                  "must match");
    CHECK_INVALID(OMS_KIND_SHARED_PROPERTY, "{'api_name': 7, 'type': 'string'}", "/api_name",
                  "must be a string");
    CHECK_INVALID(OMS_KIND_OBJECT_TYPE,
                  object_type("'properties': [{'api_name': 'id', 'type': 'string', 'required': true},"
                              " {'api_name': 'bad name', 'type': 'string'}]"),
                  "/properties/1/api_name", "must match");
    CHECK_INVALID(OMS_KIND_OBJECT_TYPE, object_type("'implements': ['ok', 'not ok']"),
                  "/implements/1", "must match");
    CHECK_INVALID(OMS_KIND_LINK_TYPE,
                  "{'api_name': 'l', 'from': 'A/B', 'to': 'B', 'cardinality': 'one_to_one'}",
                  "/from", "must match");

    char text[512], name[102];
    memset(name, 'a', 101);
    name[101] = '\0';
    snprintf(text, sizeof text, "{'api_name': '%s', 'type': 'string'}", name);
    CHECK_INVALID(OMS_KIND_SHARED_PROPERTY, text, "/api_name", "must match");
    name[100] = '\0';
    snprintf(text, sizeof text, "{'api_name': '%s', 'type': 'string'}", name);
    CHECK_VALID(OMS_KIND_SHARED_PROPERTY, text);
}

static void display_name_length(void)
{
    char text[2048], dn[1024];
    CHECK_INVALID(OMS_KIND_SHARED_PROPERTY,
                  "{'api_name': 'e', 'type': 'string', 'display_name': ''}", "/display_name",
                  "1 to 200");
    memset(dn, 'x', 201);
    dn[201] = '\0';
    snprintf(text, sizeof text, "{'api_name': 'e', 'type': 'string', 'display_name': '%s'}", dn);
    CHECK_INVALID(OMS_KIND_SHARED_PROPERTY, text, "/display_name", "1 to 200");
    dn[200] = '\0';
    snprintf(text, sizeof text, "{'api_name': 'e', 'type': 'string', 'display_name': '%s'}", dn);
    CHECK_VALID(OMS_KIND_SHARED_PROPERTY, text);
    /* Characters, not bytes: 200 two-byte characters pass. */
    dn[0] = '\0';
    for (int i = 0; i < 200; i++)
        strcat(dn, "\xc3\xa9");
    snprintf(text, sizeof text, "{'api_name': 'e', 'type': 'string', 'display_name': '%s'}", dn);
    CHECK_VALID(OMS_KIND_SHARED_PROPERTY, text);
    CHECK_INVALID(OMS_KIND_OBJECT_TYPE,
                  object_type("'properties': [{'api_name': 'id', 'type': 'string',"
                              " 'required': true, 'display_name': ''}]"),
                  "/properties/0/display_name", "1 to 200");
}

static void description_length(void)
{
    char *text = malloc(5000), *d = malloc(4200);
    memset(d, 'x', 4097);
    d[4097] = '\0';
    snprintf(text, 5000, "{'api_name': 'e', 'type': 'string', 'description': '%s'}", d);
    CHECK_INVALID(OMS_KIND_SHARED_PROPERTY, text, "/description", "at most 4096");
    d[4096] = '\0';
    snprintf(text, 5000, "{'api_name': 'e', 'type': 'string', 'description': '%s'}", d);
    CHECK_VALID(OMS_KIND_SHARED_PROPERTY, text);
    free(text);
    free(d);
}

static void bad_status(void)
{
    CHECK_INVALID(OMS_KIND_SHARED_PROPERTY, "{'api_name': 'e', 'type': 'string', 'status': 'beta'}",
                  "/status", "experimental, active, deprecated");
    CHECK_VALID(OMS_KIND_SHARED_PROPERTY,
                "{'api_name': 'e', 'type': 'string', 'status': 'deprecated'}");
}

/* ---- unknown fields and JSON types -------------------------------------------- */

static void unknown_fields_rejected_at_every_level(void)
{
    CHECK_INVALID(OMS_KIND_OBJECT_TYPE, object_type("'colour': 'red'"), "/colour",
                  "unknown field");
    CHECK_INVALID(OMS_KIND_OBJECT_TYPE,
                  object_type("'properties': [{'api_name': 'id', 'type': 'string',"
                              " 'required': true}, {'api_name': 'x', 'type': 'string'},"
                              " {'api_name': 'y', 'type': 'string', 'colour': 'red'}]"),
                  "/properties/2/colour", "unknown field");
    CHECK_INVALID(OMS_KIND_ACTION_TYPE,
                  "{'api_name': 'a', 'parameters': [{'api_name': 'p', 'type': 'string',"
                  " 'default': 1}]}",
                  "/parameters/0/default", "unknown field");
    CHECK_INVALID(OMS_KIND_ACTION_TYPE,
                  "{'api_name': 'a', 'rules': [{'type': 'create_object', 'object_type': 'P',"
                  " 'when': 'always'}]}",
                  "/rules/0/when", "unknown field");
    CHECK_INVALID(OMS_KIND_FUNCTION_TYPE,
                  "{'api_name': 'f', 'output': {'type': 'string', 'nullable': true}}",
                  "/output/nullable", "unknown field");
    CHECK_INVALID(OMS_KIND_FUNCTION_TYPE,
                  "{'api_name': 'f', 'output': {'type': 'string'},"
                  " 'inputs': [{'api_name': 'i', 'type': 'string', 'api-name': 'x'}]}",
                  "/inputs/0/api-name", "unknown field");
    /* A field of another kind is unknown here, and pointer tokens are escaped. */
    CHECK_INVALID(OMS_KIND_LINK_TYPE,
                  "{'api_name': 'l', 'from': 'A', 'to': 'B', 'cardinality': 'one_to_one',"
                  " 'properties': [], 'a/b~c': 1}",
                  "/properties", "unknown field");
    CHECK_INVALID(OMS_KIND_LINK_TYPE,
                  "{'api_name': 'l', 'from': 'A', 'to': 'B', 'cardinality': 'one_to_one',"
                  " 'a/b~c': 1}",
                  "/a~1b~0c", "unknown field");
    /* `meta` is only ignored at the top. */
    CHECK_INVALID(OMS_KIND_INTERFACE,
                  "{'api_name': 'I', 'properties': [{'api_name': 'p', 'type': 'string',"
                  " 'meta': {}}]}",
                  "/properties/0/meta", "unknown field");
}

static void wrong_json_types(void)
{
    CHECK_INVALID(OMS_KIND_SHARED_PROPERTY, "{'api_name': 'e', 'type': 'string', 'status': 5}",
                  "/status", "must be one of");
    CHECK_INVALID(OMS_KIND_SHARED_PROPERTY, "{'api_name': 'e', 'type': 'string', 'array': 'no'}",
                  "/array", "must be a boolean");
    CHECK_INVALID(OMS_KIND_SHARED_PROPERTY,
                  "{'api_name': 'e', 'type': 'string', 'description': null}", "/description",
                  "must be a string");
    CHECK_INVALID(OMS_KIND_SHARED_PROPERTY,
                  "{'api_name': 'e', 'type': 'string', 'display_name': 3}", "/display_name",
                  "must be a string");
    CHECK_INVALID(OMS_KIND_OBJECT_TYPE, object_type("'implements': 'Named'"), "/implements",
                  "must be an array");
    CHECK_INVALID(OMS_KIND_OBJECT_TYPE,
                  "{'api_name': 'P', 'primary_key': 'id', 'properties': {'id': 1}}",
                  "/properties", "must be an array");
    CHECK_INVALID(OMS_KIND_OBJECT_TYPE,
                  object_type("'properties': [{'api_name': 'id', 'type': 'string',"
                              " 'required': 1}]"),
                  "/properties/0/required", "must be a boolean");
    CHECK_INVALID(OMS_KIND_OBJECT_TYPE,
                  "{'api_name': 'P', 'primary_key': 'id', 'properties': ['id']}",
                  "/properties/0", "must be an object");
    CHECK_INVALID(OMS_KIND_FUNCTION_TYPE, "{'api_name': 'f', 'output': 'string'}", "/output",
                  "must be an object");
    CHECK_INVALID(OMS_KIND_FUNCTION_TYPE,
                  "{'api_name': 'f', 'output': {'type': 'string'}, 'deterministic': 'yes'}",
                  "/deterministic", "must be a boolean");
    CHECK_INVALID(OMS_KIND_OBJECT_TYPE, object_type("'primary_key': ['id']"), "/primary_key",
                  "must be a string");
}

static void bad_enumerated_values(void)
{
    CHECK_INVALID(OMS_KIND_OBJECT_TYPE,
                  object_type("'properties': [{'api_name': 'id', 'type': 'text',"
                              " 'required': true}]"),
                  "/properties/0/type", "must be one of: string, integer");
    CHECK_INVALID(OMS_KIND_LINK_TYPE,
                  "{'api_name': 'l', 'from': 'A', 'to': 'B', 'cardinality': 'few'}",
                  "/cardinality", "one_to_one");
    CHECK_INVALID(OMS_KIND_ACTION_TYPE,
                  "{'api_name': 'a', 'rules': [{'type': 'update_object', 'object_type': 'P'}]}",
                  "/rules/0/type", "must be one of");
    /* object_reference is for parameters only. */
    CHECK_INVALID(OMS_KIND_INTERFACE,
                  "{'api_name': 'I', 'properties': [{'api_name': 'p',"
                  " 'type': 'object_reference'}]}",
                  "/properties/0/type", "must be one of");
}

static void required_fields(void)
{
    json_t *e = validate(OMS_KIND_OBJECT_TYPE, "{'api_name': 'P'}", NULL, NULL);
    CHECK(contains(message_at(e, "/properties"), "required"));
    CHECK(contains(message_at(e, "/primary_key"), "required"));
    json_decref(e);
    e = validate(OMS_KIND_LINK_TYPE, "{'api_name': 'l'}", NULL, NULL);
    CHECK(contains(message_at(e, "/from"), "required"));
    CHECK(contains(message_at(e, "/to"), "required"));
    CHECK(contains(message_at(e, "/cardinality"), "required"));
    CHECK_EQ_INT(json_array_size(e), 3);
    json_decref(e);
    CHECK_INVALID(OMS_KIND_FUNCTION_TYPE, "{'api_name': 'f'}", "/output", "required");
    CHECK_INVALID(OMS_KIND_FUNCTION_TYPE, "{'api_name': 'f', 'output': {}}", "/output/type",
                  "required");
    CHECK_INVALID(OMS_KIND_SHARED_PROPERTY, "{'api_name': 's'}", "/type", "required");
    CHECK_INVALID(OMS_KIND_INTERFACE, "{'api_name': 'I', 'properties': [{'api_name': 'p'}]}",
                  "/properties/0/type", "required");
    CHECK_INVALID(OMS_KIND_INTERFACE, "{'api_name': 'I', 'properties': [{'type': 'string'}]}",
                  "/properties/0/api_name", "required");
    CHECK_INVALID(OMS_KIND_ACTION_TYPE, "{'api_name': 'a', 'rules': [{'object_type': 'P'}]}",
                  "/rules/0/type", "required");
}

/* ---- per-field rules ---------------------------------------------------------- */

static void enum_rules(void)
{
    CHECK_VALID(OMS_KIND_INTERFACE,
                "{'api_name': 'I', 'properties': [{'api_name': 'p', 'type': 'string',"
                " 'enum': ['a', 'b']}]}");
    CHECK_INVALID(OMS_KIND_INTERFACE,
                  "{'api_name': 'I', 'properties': [{'api_name': 'p', 'type': 'integer',"
                  " 'enum': ['1', '2']}]}",
                  "/properties/0/enum", "only allowed when type is string");
    CHECK_INVALID(OMS_KIND_INTERFACE,
                  "{'api_name': 'I', 'properties': [{'api_name': 'p', 'type': 'string',"
                  " 'enum': ['a', 'b', 'a']}]}",
                  "/properties/0/enum/2", "duplicate");
    CHECK_INVALID(OMS_KIND_INTERFACE,
                  "{'api_name': 'I', 'properties': [{'api_name': 'p', 'type': 'string',"
                  " 'enum': ['a', 2]}]}",
                  "/properties/0/enum/1", "must be a string");
    CHECK_INVALID(OMS_KIND_INTERFACE,
                  "{'api_name': 'I', 'properties': [{'api_name': 'p', 'type': 'string',"
                  " 'enum': 'a'}]}",
                  "/properties/0/enum", "must be an array");
}

static void object_reference_needs_object_type(void)
{
    CHECK_INVALID(OMS_KIND_ACTION_TYPE,
                  "{'api_name': 'a', 'parameters': [{'api_name': 'p', 'type': 'object_reference'}]}",
                  "/parameters/0/object_type", "required when type is object_reference");
    CHECK_INVALID(OMS_KIND_ACTION_TYPE,
                  "{'api_name': 'a', 'parameters': [{'api_name': 'p', 'type': 'string',"
                  " 'object_type': 'Person'}]}",
                  "/parameters/0/object_type", "only allowed when type is object_reference");
    CHECK_INVALID(OMS_KIND_FUNCTION_TYPE,
                  "{'api_name': 'f', 'output': {'type': 'object_reference'}}",
                  "/output/object_type", "required when type is object_reference");
    CHECK_INVALID(OMS_KIND_FUNCTION_TYPE,
                  "{'api_name': 'f', 'output': {'type': 'long', 'object_type': 'P'}}",
                  "/output/object_type", "only allowed");
    CHECK_INVALID(OMS_KIND_FUNCTION_TYPE,
                  "{'api_name': 'f', 'output': {'type': 'long'},"
                  " 'inputs': [{'api_name': 'i', 'type': 'object_reference'}]}",
                  "/inputs/0/object_type", "required");
    /* object_type is not a property field at all. */
    CHECK_INVALID(OMS_KIND_INTERFACE,
                  "{'api_name': 'I', 'properties': [{'api_name': 'p', 'type': 'string',"
                  " 'object_type': 'P'}]}",
                  "/properties/0/object_type", "unknown field");
}

static void rule_targets(void)
{
    CHECK_INVALID(OMS_KIND_ACTION_TYPE, "{'api_name': 'a', 'rules': [{'type': 'create_object'}]}",
                  "/rules/0/object_type", "required");
    CHECK_INVALID(OMS_KIND_ACTION_TYPE,
                  "{'api_name': 'a', 'rules': [{'type': 'delete_object', 'link_type': 'L'}]}",
                  "/rules/0/link_type", "not allowed");
    CHECK_INVALID(OMS_KIND_ACTION_TYPE,
                  "{'api_name': 'a', 'rules': [{'type': 'create_link', 'object_type': 'P'}]}",
                  "/rules/0/link_type", "required");
    CHECK_INVALID(OMS_KIND_ACTION_TYPE,
                  "{'api_name': 'a', 'rules': [{'type': 'delete_link', 'link_type': 'L',"
                  " 'object_type': 'P'}]}",
                  "/rules/0/object_type", "not allowed");
    CHECK_INVALID(OMS_KIND_ACTION_TYPE,
                  "{'api_name': 'a', 'rules': [{'type': 'modify_object', 'object_type': '9'}]}",
                  "/rules/0/object_type", "must match");
}

static void duplicates_rejected(void)
{
    CHECK_INVALID(OMS_KIND_OBJECT_TYPE,
                  object_type("'properties': [{'api_name': 'id', 'type': 'string',"
                              " 'required': true}, {'api_name': 'id', 'type': 'long'}]"),
                  "/properties/1/api_name", "duplicate api_name 'id'");
    CHECK_INVALID(OMS_KIND_OBJECT_TYPE, object_type("'implements': ['A', 'B', 'A']"),
                  "/implements/2", "duplicate");
    CHECK_INVALID(OMS_KIND_ACTION_TYPE,
                  "{'api_name': 'a', 'parameters': [{'api_name': 'p', 'type': 'string'},"
                  " {'api_name': 'p', 'type': 'string'}]}",
                  "/parameters/1/api_name", "duplicate");
    CHECK_INVALID(OMS_KIND_FUNCTION_TYPE,
                  "{'api_name': 'f', 'output': {'type': 'long'}, 'inputs': ["
                  " {'api_name': 'i', 'type': 'string'}, {'api_name': 'i', 'type': 'long'}]}",
                  "/inputs/1/api_name", "duplicate");
    CHECK_INVALID(OMS_KIND_INTERFACE, "{'api_name': 'I', 'extends': ['A', 'A']}", "/extends/1",
                  "duplicate");
    /* Names are case-sensitive. */
    CHECK_VALID(OMS_KIND_INTERFACE, "{'api_name': 'I', 'extends': ['A', 'a']}");
}

static void interface_cannot_extend_itself(void)
{
    CHECK_INVALID(OMS_KIND_INTERFACE, "{'api_name': 'I', 'extends': ['J', 'I']}", "/extends/1",
                  "itself");
}

static void object_type_needs_a_property(void)
{
    CHECK_INVALID(OMS_KIND_OBJECT_TYPE, "{'api_name': 'P', 'primary_key': 'id', 'properties': []}",
                  "/properties", "at least one");
}

static void too_many_properties(void)
{
    json_t *doc = J(object_type(""));
    json_t *props = json_object_get(doc, "properties");
    for (int i = 0; json_array_size(props) <= 1000; i++) {
        char name[32];
        snprintf(name, sizeof name, "p%d", i);
        json_array_append_new(props, json_pack("{s:s, s:s}", "api_name", name, "type", "long"));
    }
    json_t *e = json_array();
    oms_validate_document(OMS_KIND_OBJECT_TYPE, doc, NULL, e);
    CHECK(contains(message_at(e, "/properties"), "at most 1000"));
    json_decref(e);
    json_decref(doc);
}

/* Primary key and title property rules are checked by validation (400 with
 * every problem at once) and again by integrity (every commit). */
static void primary_key_rules(void)
{
    CHECK_VALID(OMS_KIND_OBJECT_TYPE,
                "{'api_name': 'P', 'primary_key': 'n', 'properties': [{'api_name': 'n',"
                " 'type': 'integer', 'required': true}]}");
    CHECK_VALID(OMS_KIND_OBJECT_TYPE,
                "{'api_name': 'P', 'primary_key': 'n', 'properties': [{'api_name': 'n',"
                " 'type': 'long', 'required': true}]}");
    CHECK_INVALID(OMS_KIND_OBJECT_TYPE,
                  object_type("'primary_key': 'nope'"), "/primary_key", "names no property");
    CHECK_INVALID(OMS_KIND_OBJECT_TYPE,
                  object_type("'primary_key': 'name'"), "/primary_key", "must be required");
    CHECK_INVALID(OMS_KIND_OBJECT_TYPE,
                  "{'api_name': 'P', 'primary_key': 'n', 'properties': [{'api_name': 'n',"
                  " 'type': 'string', 'required': true, 'array': true}]}",
                  "/primary_key", "must not be an array");
    CHECK_INVALID(OMS_KIND_OBJECT_TYPE,
                  "{'api_name': 'P', 'primary_key': 'n', 'properties': [{'api_name': 'n',"
                  " 'type': 'double', 'required': true}]}",
                  "/primary_key", "string, integer or long");
    CHECK_INVALID(OMS_KIND_OBJECT_TYPE,
                  "{'api_name': 'P', 'primary_key': 'n', 'properties': [{'api_name': 'n',"
                  " 'type': 'timestamp', 'required': true}]}",
                  "/primary_key", "string, integer or long");
    CHECK_INVALID(OMS_KIND_OBJECT_TYPE, object_type("'title_property': 'nope'"),
                  "/title_property", "names no property");
}

static void errors_are_collected(void)
{
    json_t *e = validate(OMS_KIND_LINK_TYPE,
                         "{'api_name': '1l', 'from': 'A', 'to': '-', 'cardinality': 'x',"
                         " 'status': 'new', 'extra': 1}",
                         NULL, NULL);
    CHECK_EQ_INT(json_array_size(e), 5);
    CHECK(error_at(e, "/api_name") && error_at(e, "/to") && error_at(e, "/cardinality") &&
          error_at(e, "/status") && error_at(e, "/extra"));
    json_decref(e);
}

static void errors_are_capped(void)
{
    json_t *doc = J("{'api_name': 's', 'type': 'string'}");
    for (int i = 0; i < 150; i++) {
        char key[16];
        snprintf(key, sizeof key, "x%d", i);
        json_object_set_new(doc, key, json_true());
    }
    json_t *e = json_array();
    CHECK_EQ_INT(oms_validate_document(OMS_KIND_SHARED_PROPERTY, doc, NULL, e), 100);
    CHECK_EQ_INT(json_array_size(e), 100);
    json_decref(e);
    json_decref(doc);
}

/* ---- references ------------------------------------------------------------------ */

static void collect_ref(void *ctx, oms_kind kind, const char *api_name, const char *path)
{
    char line[512];
    snprintf(line, sizeof line, "%s %s/%s", path, oms_kind_segment(kind), api_name);
    json_array_append_new(ctx, json_string(line));
}

/* The refs of `text` (validated first) joined by "; ". */
static char *refs_of(oms_kind k, const char *text)
{
    static char out[2048];
    json_t *doc;
    json_t *e = validate(k, text, NULL, &doc);
    CHECK_EQ_INT(json_array_size(e), 0);
    json_t *lines = json_array();
    oms_document_refs(k, doc, collect_ref, lines);
    out[0] = '\0';
    size_t i;
    json_t *line;
    json_array_foreach(lines, i, line) {
        if (i)
            strcat(out, "; ");
        strcat(out, json_string_value(line));
    }
    json_decref(lines);
    json_decref(e);
    json_decref(doc);
    return out;
}

static void refs_object_type(void)
{
    CHECK_EQ_STR(refs_of(OMS_KIND_OBJECT_TYPE,
                         "{'api_name': 'P', 'primary_key': 'id', 'implements': ['Named', 'Aged'],"
                         " 'properties': [{'api_name': 'id', 'type': 'string', 'required': true},"
                         " {'api_name': 'n', 'type': 'string', 'shared_property': 'name'}]}"),
                 "/implements/0 interfaces/Named; /implements/1 interfaces/Aged; "
                 "/properties/1/shared_property shared-properties/name");
}

static void refs_link_type(void)
{
    CHECK_EQ_STR(refs_of(OMS_KIND_LINK_TYPE, "{'api_name': 'employs', 'from': 'Company',"
                                             " 'to': 'Person', 'cardinality': 'one_to_many'}"),
                 "/from object-types/Company; /to object-types/Person");
}

static void refs_action_type(void)
{
    CHECK_EQ_STR(refs_of(OMS_KIND_ACTION_TYPE,
                         "{'api_name': 'hire', 'parameters': [{'api_name': 'n', 'type': 'string'},"
                         " {'api_name': 'who', 'type': 'object_reference', 'object_type': 'Person'}],"
                         " 'rules': [{'type': 'create_link', 'link_type': 'employs'},"
                         " {'type': 'modify_object', 'object_type': 'Person'}]}"),
                 "/parameters/1/object_type object-types/Person; "
                 "/rules/1/object_type object-types/Person; /rules/0/link_type link-types/employs");
}

static void refs_function_type(void)
{
    CHECK_EQ_STR(refs_of(OMS_KIND_FUNCTION_TYPE,
                         "{'api_name': 'f', 'inputs': [{'api_name': 'c', 'type': 'object_reference',"
                         " 'object_type': 'Company'}],"
                         " 'output': {'type': 'object_reference', 'object_type': 'Person'}}"),
                 "/inputs/0/object_type object-types/Company; "
                 "/output/object_type object-types/Person");
    CHECK_EQ_STR(refs_of(OMS_KIND_FUNCTION_TYPE, "{'api_name': 'f', 'output': {'type': 'long'}}"),
                 "");
}

static void refs_interface(void)
{
    CHECK_EQ_STR(refs_of(OMS_KIND_INTERFACE,
                         "{'api_name': 'I', 'extends': ['J'], 'properties': [{'api_name': 'p',"
                         " 'type': 'string', 'shared_property': 'sp'}]}"),
                 "/extends/0 interfaces/J; /properties/0/shared_property shared-properties/sp");
}

static void refs_shared_property(void)
{
    CHECK_EQ_STR(refs_of(OMS_KIND_SHARED_PROPERTY, "{'api_name': 's', 'type': 'string'}"), "");
}

/* ---- integrity ---------------------------------------------------------------------- */

/* The branch: {"KIND": {"API_NAME": doc}}. */
static const json_t *lookup(void *ctx, oms_kind kind, const char *api_name)
{
    return json_object_get(json_object_get(ctx, oms_kind_segment(kind)), api_name);
}

/* Adds `text` (validated) to the branch. */
static void put(json_t *branch, oms_kind k, const char *text)
{
    json_t *doc;
    json_t *e = validate(k, text, NULL, &doc);
    CHECK_EQ_INT(json_array_size(e), 0);
    if (json_array_size(e))
        dump(e);
    const char *seg = oms_kind_segment(k);
    if (!json_object_get(branch, seg))
        json_object_set_new(branch, seg, json_object());
    json_object_set_new(json_object_get(branch, seg), str(doc, "api_name"), doc);
    json_decref(e);
}

/* Integrity errors of `text` (validated) against the branch. */
static json_t *integrity(json_t *branch, oms_kind k, const char *text)
{
    json_t *doc;
    json_t *e = validate(k, text, NULL, &doc);
    CHECK_EQ_INT(json_array_size(e), 0);
    if (json_array_size(e))
        dump(e);
    json_t *errors = json_array();
    int n = oms_check_integrity(k, doc, lookup, branch, errors);
    CHECK_EQ_INT(n, json_array_size(errors));
    json_decref(e);
    json_decref(doc);
    return errors;
}

static const char *code_at(const json_t *errors, const char *path)
{
    return json_string_value(json_object_get(error_at(errors, path), "code"));
}

static json_t *sample_branch(void)
{
    json_t *b = json_object();
    put(b, OMS_KIND_SHARED_PROPERTY, "{'api_name': 'email', 'type': 'string'}");
    put(b, OMS_KIND_SHARED_PROPERTY, "{'api_name': 'tags', 'type': 'string', 'array': true}");
    put(b, OMS_KIND_INTERFACE, "{'api_name': 'Thing', 'properties': [{'api_name': 'id',"
                               " 'type': 'string'}]}");
    put(b, OMS_KIND_INTERFACE, "{'api_name': 'Contact', 'extends': ['Thing'],"
                               " 'properties': [{'api_name': 'email', 'type': 'string',"
                               " 'shared_property': 'email'}]}");
    put(b, OMS_KIND_INTERFACE, "{'api_name': 'Aged', 'properties': [{'api_name': 'age',"
                               " 'type': 'integer'}]}");
    put(b, OMS_KIND_OBJECT_TYPE, "{'api_name': 'Company', 'primary_key': 'id', 'properties':"
                                 " [{'api_name': 'id', 'type': 'long', 'required': true}]}");
    put(b, OMS_KIND_OBJECT_TYPE, object_type(""));
    put(b, OMS_KIND_LINK_TYPE, "{'api_name': 'employs', 'from': 'Company', 'to': 'Person',"
                               " 'cardinality': 'one_to_many'}");
    return b;
}

static void integrity_of_consistent_documents(void)
{
    json_t *b = sample_branch();
    json_t *e = integrity(b, OMS_KIND_OBJECT_TYPE,
                          "{'api_name': 'Employee', 'primary_key': 'id',"
                          " 'implements': ['Contact', 'Aged'], 'properties': ["
                          " {'api_name': 'id', 'type': 'string', 'required': true},"
                          " {'api_name': 'email', 'type': 'string', 'shared_property': 'email'},"
                          " {'api_name': 'age', 'type': 'integer'},"
                          " {'api_name': 'labels', 'type': 'string', 'array': true,"
                          "  'shared_property': 'tags'}]}");
    CHECK_EQ_INT(json_array_size(e), 0);
    if (json_array_size(e))
        dump(e);
    json_decref(e);
    static const struct {
        oms_kind k;
        const char *text;
    } docs[] = {
        {OMS_KIND_LINK_TYPE, "{'api_name': 'knows', 'from': 'Person', 'to': 'Person',"
                             " 'cardinality': 'many_to_many'}"},
        {OMS_KIND_ACTION_TYPE, "{'api_name': 'hire', 'parameters': [{'api_name': 'c',"
                               " 'type': 'object_reference', 'object_type': 'Company'}],"
                               " 'rules': [{'type': 'create_link', 'link_type': 'employs'},"
                               " {'type': 'create_object', 'object_type': 'Person'}]}"},
        {OMS_KIND_FUNCTION_TYPE, "{'api_name': 'boss', 'inputs': [{'api_name': 'p',"
                                 " 'type': 'object_reference', 'object_type': 'Person'}],"
                                 " 'output': {'type': 'object_reference', 'object_type': 'Person'}}"},
        {OMS_KIND_INTERFACE, "{'api_name': 'Staff', 'extends': ['Contact', 'Aged']}"},
        {OMS_KIND_SHARED_PROPERTY, "{'api_name': 'x', 'type': 'json'}"},
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        e = integrity(b, docs[i].k, docs[i].text);
        CHECK_EQ_INT(json_array_size(e), 0);
        if (json_array_size(e))
            dump(e);
        json_decref(e);
    }
    json_decref(b);
}

static void unresolved_link_ends(void)
{
    json_t *b = sample_branch();
    json_t *e = integrity(b, OMS_KIND_LINK_TYPE,
                          "{'api_name': 'owns', 'from': 'Nobody', 'to': 'Nothing',"
                          " 'cardinality': 'one_to_many'}");
    CHECK_EQ_INT(json_array_size(e), 2);
    CHECK_EQ_STR(code_at(e, "/from"), "unresolved_reference");
    CHECK(contains(message_at(e, "/from"), "object-types/Nobody"));
    CHECK_EQ_STR(code_at(e, "/to"), "unresolved_reference");
    CHECK(contains(message_at(e, "/to"), "object-types/Nothing"));
    json_decref(e);
    json_decref(b);
}

static void unresolved_references_of_each_kind(void)
{
    json_t *b = sample_branch();
    json_t *e = integrity(b, OMS_KIND_ACTION_TYPE,
                          "{'api_name': 'a', 'parameters': [{'api_name': 'p',"
                          " 'type': 'object_reference', 'object_type': 'Ghost'}],"
                          " 'rules': [{'type': 'delete_object', 'object_type': 'Ghost'},"
                          " {'type': 'delete_link', 'link_type': 'haunts'}]}");
    CHECK_EQ_INT(json_array_size(e), 3);
    CHECK(contains(message_at(e, "/parameters/0/object_type"), "object-types/Ghost"));
    CHECK(contains(message_at(e, "/rules/0/object_type"), "object-types/Ghost"));
    CHECK(contains(message_at(e, "/rules/1/link_type"), "link-types/haunts"));
    json_decref(e);

    e = integrity(b, OMS_KIND_FUNCTION_TYPE,
                  "{'api_name': 'f', 'output': {'type': 'object_reference', 'object_type': 'Ghost'}}");
    CHECK_EQ_STR(code_at(e, "/output/object_type"), "unresolved_reference");
    json_decref(e);

    e = integrity(b, OMS_KIND_OBJECT_TYPE,
                  object_type("'implements': ['Ghostly'], 'properties': [{'api_name': 'id',"
                              " 'type': 'string', 'required': true, 'shared_property': 'boo'}]"));
    CHECK_EQ_INT(json_array_size(e), 2);
    CHECK(contains(message_at(e, "/implements/0"), "interfaces/Ghostly"));
    CHECK(contains(message_at(e, "/properties/0/shared_property"), "shared-properties/boo"));
    json_decref(e);

    e = integrity(b, OMS_KIND_INTERFACE, "{'api_name': 'I', 'extends': ['Ghostly']}");
    CHECK_EQ_STR(code_at(e, "/extends/0"), "unresolved_reference");
    json_decref(e);
    json_decref(b);
}

static void integrity_checks_keys(void)
{
    /* A document that skipped validation (e.g. produced by a merge). */
    json_t *doc = J("{'api_name': 'P', 'primary_key': 'n', 'title_property': 'gone',"
                    " 'properties': [{'api_name': 'n', 'type': 'string', 'required': false,"
                    " 'array': false}]}");
    json_t *e = json_array(), *b = json_object();
    oms_check_integrity(OMS_KIND_OBJECT_TYPE, doc, lookup, b, e);
    CHECK_EQ_STR(code_at(e, "/primary_key"), "invalid_primary_key");
    CHECK(contains(message_at(e, "/primary_key"), "required"));
    CHECK_EQ_STR(code_at(e, "/title_property"), "invalid_title_property");
    json_decref(e);

    json_object_set_new(doc, "primary_key", json_string("zz"));
    e = json_array();
    oms_check_integrity(OMS_KIND_OBJECT_TYPE, doc, lookup, b, e);
    CHECK(contains(message_at(e, "/primary_key"), "names no property"));
    json_decref(e);
    json_decref(doc);
    json_decref(b);
}

static void interface_not_satisfied_missing_property(void)
{
    json_t *b = sample_branch();
    json_t *e = integrity(b, OMS_KIND_OBJECT_TYPE, object_type("'implements': ['Aged']"));
    CHECK_EQ_INT(json_array_size(e), 1);
    CHECK_EQ_STR(code_at(e, "/implements/0"), "interface_not_satisfied");
    CHECK(contains(message_at(e, "/implements/0"), "'age'"));
    CHECK(contains(message_at(e, "/implements/0"), "'Aged'"));
    json_decref(e);
    json_decref(b);
}

static void interface_not_satisfied_wrong_type(void)
{
    json_t *b = sample_branch();
    json_t *e = integrity(b, OMS_KIND_OBJECT_TYPE,
                          object_type("'implements': ['Aged'], 'properties': [{'api_name': 'id',"
                                      " 'type': 'string', 'required': true},"
                                      " {'api_name': 'age', 'type': 'long'}]"));
    CHECK_EQ_INT(json_array_size(e), 1);
    CHECK_EQ_STR(code_at(e, "/properties/1/type"), "interface_not_satisfied");
    CHECK(contains(message_at(e, "/properties/1/type"), "integer"));
    json_decref(e);

    e = integrity(b, OMS_KIND_OBJECT_TYPE,
                  object_type("'implements': ['Aged'], 'properties': [{'api_name': 'id',"
                              " 'type': 'string', 'required': true},"
                              " {'api_name': 'age', 'type': 'integer', 'array': true}]"));
    CHECK_EQ_INT(json_array_size(e), 1);
    CHECK_EQ_STR(code_at(e, "/properties/1/array"), "interface_not_satisfied");
    json_decref(e);
    json_decref(b);
}

/* Contact extends Thing: implementing Contact requires Thing's `id` too. */
static void interfaces_apply_transitively(void)
{
    json_t *b = sample_branch();
    json_t *e = integrity(b, OMS_KIND_OBJECT_TYPE,
                          "{'api_name': 'Lead', 'primary_key': 'key', 'implements': ['Contact'],"
                          " 'properties': [{'api_name': 'key', 'type': 'string', 'required': true},"
                          " {'api_name': 'email', 'type': 'string'}]}");
    CHECK_EQ_INT(json_array_size(e), 1);
    CHECK_EQ_STR(code_at(e, "/implements/0"), "interface_not_satisfied");
    CHECK(contains(message_at(e, "/implements/0"), "'Thing'"));
    json_decref(e);

    /* Three levels deep. */
    put(b, OMS_KIND_INTERFACE, "{'api_name': 'Vip', 'extends': ['Contact'],"
                               " 'properties': [{'api_name': 'tier', 'type': 'integer'}]}");
    e = integrity(b, OMS_KIND_OBJECT_TYPE,
                  "{'api_name': 'Lead', 'primary_key': 'id', 'implements': ['Vip'],"
                  " 'properties': [{'api_name': 'id', 'type': 'integer', 'required': true},"
                  " {'api_name': 'email', 'type': 'string'}, {'api_name': 'tier', 'type': 'integer'}]}");
    CHECK_EQ_INT(json_array_size(e), 1);
    CHECK_EQ_STR(code_at(e, "/properties/0/type"), "interface_not_satisfied");
    CHECK(contains(message_at(e, "/properties/0/type"), "'Thing'"));
    json_decref(e);
    json_decref(b);
}

static void extends_cycle_detected(void)
{
    json_t *b = json_object();
    put(b, OMS_KIND_INTERFACE, "{'api_name': 'B', 'extends': ['A']}");
    json_t *e = integrity(b, OMS_KIND_INTERFACE, "{'api_name': 'A', 'extends': ['B']}");
    CHECK_EQ_INT(json_array_size(e), 1);
    CHECK_EQ_STR(code_at(e, "/extends/0"), "extends_cycle");
    CHECK(contains(message_at(e, "/extends/0"), "A -> B -> A"));
    json_decref(e);

    /* Through a longer chain, and the branch's old A does not matter: the
     * document under check stands for itself. */
    put(b, OMS_KIND_INTERFACE, "{'api_name': 'A'}");
    put(b, OMS_KIND_INTERFACE, "{'api_name': 'C', 'extends': ['B']}");
    put(b, OMS_KIND_INTERFACE, "{'api_name': 'D'}");
    e = integrity(b, OMS_KIND_INTERFACE, "{'api_name': 'A', 'extends': ['D', 'C']}");
    CHECK_EQ_INT(json_array_size(e), 1);
    CHECK_EQ_STR(code_at(e, "/extends/1"), "extends_cycle");
    CHECK(contains(message_at(e, "/extends/1"), "A -> C -> B -> A"));
    json_decref(e);
    json_decref(b);
}

static void self_extension_is_a_cycle(void)
{
    /* Validation refuses it; integrity catches it in unvalidated documents. */
    json_t *doc = J("{'api_name': 'A', 'extends': ['A'], 'properties': []}");
    json_t *e = json_array(), *b = json_object();
    oms_check_integrity(OMS_KIND_INTERFACE, doc, lookup, b, e);
    CHECK_EQ_STR(code_at(e, "/extends/0"), "extends_cycle");
    json_decref(e);
    json_decref(doc);
    json_decref(b);
}

/* A cycle elsewhere in the branch neither hangs the walk nor is blamed on
 * a document that is not part of it. */
static void cycles_elsewhere_terminate(void)
{
    json_t *b = json_object();
    put(b, OMS_KIND_INTERFACE, "{'api_name': 'B', 'extends': ['C'],"
                               " 'properties': [{'api_name': 'b', 'type': 'string'}]}");
    put(b, OMS_KIND_INTERFACE, "{'api_name': 'C', 'extends': ['B'],"
                               " 'properties': [{'api_name': 'c', 'type': 'string'}]}");
    json_t *e = integrity(b, OMS_KIND_INTERFACE, "{'api_name': 'A', 'extends': ['B']}");
    CHECK_EQ_INT(json_array_size(e), 0);
    json_decref(e);
    e = integrity(b, OMS_KIND_OBJECT_TYPE,
                  object_type("'implements': ['B'], 'properties': [{'api_name': 'id',"
                              " 'type': 'string', 'required': true}]"));
    CHECK_EQ_INT(json_array_size(e), 2); /* b and c missing, each once */
    json_decref(e);
    json_decref(b);
}

static void long_extends_chain_is_bounded(void)
{
    json_t *b = json_object();
    char text[256];
    for (int i = 0; i < 500; i++) {
        snprintf(text, sizeof text, "{'api_name': 'I%d', 'extends': ['I%d']}", i, i + 1);
        put(b, OMS_KIND_INTERFACE, text);
    }
    json_t *e = integrity(b, OMS_KIND_INTERFACE, "{'api_name': 'Top', 'extends': ['I0']}");
    CHECK_EQ_INT(json_array_size(e), 0);
    json_decref(e);
    json_decref(b);
}

static void shared_property_mismatch(void)
{
    json_t *b = sample_branch();
    json_t *e = integrity(b, OMS_KIND_OBJECT_TYPE,
                          object_type("'properties': [{'api_name': 'id', 'type': 'string',"
                                      " 'required': true}, {'api_name': 'mail', 'type': 'json',"
                                      " 'shared_property': 'email'}]"));
    CHECK_EQ_INT(json_array_size(e), 1);
    CHECK_EQ_STR(code_at(e, "/properties/1/type"), "shared_property_mismatch");
    CHECK(contains(message_at(e, "/properties/1/type"), "'email'"));
    json_decref(e);

    e = integrity(b, OMS_KIND_INTERFACE,
                  "{'api_name': 'Tagged', 'properties': [{'api_name': 'tags', 'type': 'string',"
                  " 'shared_property': 'tags'}]}");
    CHECK_EQ_INT(json_array_size(e), 1);
    CHECK_EQ_STR(code_at(e, "/properties/0/array"), "shared_property_mismatch");
    json_decref(e);
    json_decref(b);
}

int main(void)
{
    static const t_case cases[] = {
        T(kind_names),
        T(valid_object_type_gets_defaults),
        T(explicit_values_are_kept),
        T(valid_link_type),
        T(valid_action_type),
        T(valid_function_type),
        T(valid_interface),
        T(valid_shared_property),
        T(every_property_type_is_accepted),
        T(validation_is_idempotent),
        T(meta_is_removed),
        T(top_level_must_be_object),
        T(api_name_from_url),
        T(api_name_required_without_url),
        T(bad_api_names),
        T(display_name_length),
        T(description_length),
        T(bad_status),
        T(unknown_fields_rejected_at_every_level),
        T(wrong_json_types),
        T(bad_enumerated_values),
        T(required_fields),
        T(enum_rules),
        T(object_reference_needs_object_type),
        T(rule_targets),
        T(duplicates_rejected),
        T(interface_cannot_extend_itself),
        T(object_type_needs_a_property),
        T(too_many_properties),
        T(primary_key_rules),
        T(errors_are_collected),
        T(errors_are_capped),
        T(refs_object_type),
        T(refs_link_type),
        T(refs_action_type),
        T(refs_function_type),
        T(refs_interface),
        T(refs_shared_property),
        T(integrity_of_consistent_documents),
        T(unresolved_link_ends),
        T(unresolved_references_of_each_kind),
        T(integrity_checks_keys),
        T(interface_not_satisfied_missing_property),
        T(interface_not_satisfied_wrong_type),
        T(interfaces_apply_transitively),
        T(extends_cycle_detected),
        T(self_extension_is_a_cycle),
        T(cycles_elsewhere_terminate),
        T(long_extends_chain_is_bounded),
        T(shared_property_mismatch),
    };
    return T_RUN("ontology", cases);
}
