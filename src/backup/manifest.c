/* The manifest: what a backup holds (format and schema versions, every
 * section's record count and SHA-256, the total), written in the trailer
 * and rebuilt by the reader from what it actually read. */
#include <stdio.h>
#include <string.h>

#include "backup/format.h"

json_t *oms_bk_manifest_new(int schema_version)
{
    return json_pack("{s:i,s:i,s:[],s:I}", "format_version", OMS_BK_FORMAT_VERSION, "schema_version",
                     schema_version, "sections", "rows", (json_int_t)0);
}

int oms_bk_manifest_add(json_t *m, const char *section, int64_t rows, const char *sha256)
{
    json_t *e = json_pack("{s:s,s:I,s:s}", "name", section, "rows", (json_int_t)rows, "sha256", sha256);
    json_t *arr = json_object_get(m, "sections");
    if (!e || !arr || json_array_append_new(arr, e))
        return OMS_ENOMEM;
    json_int_t total = json_integer_value(json_object_get(m, "rows")) + rows;
    return json_object_set_new(m, "rows", json_integer(total)) ? OMS_ENOMEM : OMS_OK;
}

bool oms_bk_manifest_match(const json_t *trailer, const json_t *seen, char *why, size_t cap)
{
    if (!json_is_object(trailer)) {
        snprintf(why, cap, "the manifest is not an object");
        return false;
    }
    static const char *const ints[] = {"format_version", "schema_version", "rows"};
    for (size_t i = 0; i < 3; i++) {
        const json_t *a = json_object_get(trailer, ints[i]), *b = json_object_get(seen, ints[i]);
        if (!json_is_integer(a) || json_integer_value(a) != json_integer_value(b)) {
            snprintf(why, cap, "the manifest's %s (%lld) differs from the file's (%lld)", ints[i],
                     (long long)json_integer_value(a), (long long)json_integer_value(b));
            return false;
        }
    }
    const json_t *ta = json_object_get(trailer, "sections"), *sa = json_object_get(seen, "sections");
    if (!json_is_array(ta) || json_array_size(ta) != json_array_size(sa)) {
        snprintf(why, cap, "the manifest lists %zu sections, the file has %zu", json_array_size(ta),
                 json_array_size(sa));
        return false;
    }
    for (size_t i = 0; i < json_array_size(sa); i++) {
        const json_t *t = json_array_get(ta, i), *s = json_array_get(sa, i);
        const char *name = json_string_value(json_object_get(s, "name"));
        const char *tn = json_string_value(json_object_get(t, "name"));
        const char *th = json_string_value(json_object_get(t, "sha256"));
        if (!tn || strcmp(tn, name) != 0) {
            snprintf(why, cap, "the manifest's section %zu is %s, the file's is %s", i + 1, tn ? tn : "(none)", name);
            return false;
        }
        if (json_integer_value(json_object_get(t, "rows")) != json_integer_value(json_object_get(s, "rows"))) {
            snprintf(why, cap, "section %s: the manifest says %lld records, the file has %lld", name,
                     (long long)json_integer_value(json_object_get(t, "rows")),
                     (long long)json_integer_value(json_object_get(s, "rows")));
            return false;
        }
        if (!th || strcmp(th, json_string_value(json_object_get(s, "sha256"))) != 0) {
            snprintf(why, cap, "section %s: the manifest's SHA-256 differs from the section's", name);
            return false;
        }
    }
    return true;
}
