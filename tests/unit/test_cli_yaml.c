/* The client's YAML: what plain scalars resolve to, that the writer's
 * output reads back as the same JSON (strings that look like numbers,
 * booleans or nulls, punctuation, line breaks, non-ASCII), that the output
 * is deterministic, and that errors and nodes carry their line. */
#include <jansson.h>

#include "cli/cli.h"
#include "t.h"

static json_t *parse(const char *text, oms_cli_lines **lines, char *msg)
{
    json_t *v = NULL;
    if (oms_cli_yaml_parse(&v, lines, "f.yaml", text, strlen(text), msg, 256))
        return NULL;
    return v;
}

static void resolves_plain_scalars(void)
{
    char msg[256];
    json_t *v = parse("a: 12\nb: -3\nc: 1.5\nd: true\ne: null\nf: ~\ng: yes\nh: '12'\ni: \"true\"\nj: 1e3\n"
                      "k: 0x1F\nl:\nm: False\n", NULL, msg);
    CHECK(v != NULL);
    CHECK(json_integer_value(json_object_get(v, "a")) == 12);
    CHECK(json_integer_value(json_object_get(v, "b")) == -3);
    CHECK(json_is_real(json_object_get(v, "c")) && json_real_value(json_object_get(v, "c")) == 1.5);
    CHECK(json_is_true(json_object_get(v, "d")));
    CHECK(json_is_null(json_object_get(v, "e")) && json_is_null(json_object_get(v, "f")));
    CHECK_EQ_STR(json_string_value(json_object_get(v, "g")), "yes"); /* YAML 1.2: not a boolean */
    CHECK_EQ_STR(json_string_value(json_object_get(v, "h")), "12");
    CHECK_EQ_STR(json_string_value(json_object_get(v, "i")), "true");
    CHECK(json_is_real(json_object_get(v, "j")) && json_real_value(json_object_get(v, "j")) == 1000.0);
    CHECK_EQ_STR(json_string_value(json_object_get(v, "k")), "0x1F");
    CHECK(json_is_null(json_object_get(v, "l")));
    CHECK(json_is_false(json_object_get(v, "m")));
    json_decref(v);
}

static void round_trips(void)
{
    const char *strings[] = {"", " ", "yes", "No", "on", "null", "~", "true", "123", "-1", "1.5", "1e3", ".inf",
                             "- x", "a: b", "a #b", "#x", "key:", "@at", "`tick", "'q'", "\"dq\"", "multi\nline\n",
                             "tab\there", "trailing ", " leading", "Caf\xc3\xa9", "ls\xe2\x80\xa8ps", "nel\xc2\x85",
                             "back\\slash", "{x}", "[y]", "*a", "&a", "!tag", "%p", "|", ">", "?", "Person id",
                             "a/b.c-d_e (f)", "0o17", "=", "<<", NULL};
    json_t *arr = json_array();
    for (size_t i = 0; strings[i]; i++)
        json_array_append_new(arr, json_string(strings[i]));
    json_t *doc = json_pack("{s:s,s:o,s:{s:[],s:{},s:[[i,f],{s:b}],s:n,s:I,s:f,s:f}}", "api_name", "Person",
                            "values", arr, "nested", "empty_list", "empty_map", "deep", 1, 2.25, "x", 1, "nil",
                            "big", (json_int_t)9007199254740993LL, "real", 0.1, "whole", 3.0);
    CHECK(doc != NULL);
    char *y = oms_cli_yaml_dump(doc), msg[256] = "";
    CHECK(y != NULL);
    json_t *back = y ? parse(y, NULL, msg) : NULL;
    if (!back)
        fprintf(stderr, "  %s\n%s\n", msg, y ? y : "");
    CHECK(back && json_equal(doc, back));
    char *y2 = back ? oms_cli_yaml_dump(back) : NULL;
    CHECK(y2 && !strcmp(y, y2)); /* deterministic */
    CHECK(y && !strncmp(y, "api_name: Person\nnested:\n", 25));
    free(y);
    free(y2);
    json_decref(back);
    json_decref(doc);
}

static void errors_and_lines(void)
{
    char msg[256];
    oms_cli_lines *lines = NULL;
    json_t *v = parse("api_name: P\nproperties:\n  - api_name: id\n    type: string\n  - api_name: n\n    type: x\n",
                      &lines, msg);
    CHECK(v != NULL);
    CHECK_EQ_INT(oms_cli_lines_find(lines, "/properties/1/type"), 6);
    CHECK_EQ_INT(oms_cli_lines_find(lines, "/properties/n/type"), 5); /* by api_name: the element's line */
    CHECK_EQ_INT(oms_cli_lines_find(lines, "/properties/1/nothing"), 5);
    CHECK_EQ_INT(oms_cli_lines_find(lines, "/api_name"), 1);
    json_decref(v);
    oms_cli_lines_free(lines);
    CHECK(parse("a: 1\na: 2\n", NULL, msg) == NULL);
    CHECK(strstr(msg, "f.yaml:2:1: duplicate key \"a\"") != NULL);
    CHECK(parse("a: &x 1\nb: *x\n", NULL, msg) == NULL && strstr(msg, "f.yaml:2:") && strstr(msg, "aliases"));
    CHECK(parse("a: 1\n---\nb: 2\n", NULL, msg) == NULL && strstr(msg, "f.yaml:2:"));
    CHECK(parse("a: [1, 2\n", NULL, msg) == NULL && strstr(msg, "f.yaml:"));
    CHECK(parse("? [1]\n: x\n", NULL, msg) == NULL && strstr(msg, "a key must be a string"));
    CHECK(parse("a: !custom x\n", NULL, msg) == NULL && strstr(msg, "unsupported tag"));
    CHECK(parse("a: 99999999999999999999\n", NULL, msg) == NULL && strstr(msg, "out of range"));
    CHECK(parse("", NULL, msg) == NULL && strstr(msg, "no document"));
    char deep[400] = "";
    for (int i = 0; i < 70; i++)
        strcat(deep, "[");
    CHECK(parse(deep, NULL, msg) == NULL);
    json_t *j = parse("{\"api_name\": \"X\", \"n\": [1, 2.5, true, null, \"s\\u00e9\"]}", NULL, msg);
    CHECK(j && json_array_size(json_object_get(j, "n")) == 5); /* JSON files read as YAML */
    json_decref(j);
}

int main(void)
{
    static const t_case cases[] = {
        {"resolves_plain_scalars", resolves_plain_scalars},
        {"round_trips", round_trips},
        {"errors_and_lines", errors_and_lines},
    };
    return t_main("cli_yaml", cases, sizeof cases / sizeof cases[0]);
}
