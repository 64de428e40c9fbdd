/* libFuzzer target for resource documents (SPEC §3): any bytes as JSON,
 * validated as every kind; a document that validates must then go through
 * references, integrity (against an empty branch) and a diff with itself
 * (which must report nothing). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ontology/ontology.h"

static const json_t *lookup_none(void *ctx, oms_kind kind, const char *name)
{
    (void)ctx, (void)kind, (void)name;
    return NULL;
}

static void ignore_ref(void *ctx, oms_kind kind, const char *name, const char *path)
{
    (void)ctx, (void)kind, (void)name, (void)path;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *base = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (!base)
        return 0;
    for (int k = 0; k < OMS_KIND__COUNT; k++) {
        json_t *doc = json_deep_copy(base), *errors = json_array();
        if (json_is_object(doc) && oms_validate_document((oms_kind)k, doc, NULL, errors) == 0) {
            oms_document_refs((oms_kind)k, doc, ignore_ref, NULL);
            json_t *ierr = json_array();
            oms_check_integrity((oms_kind)k, doc, lookup_none, NULL, ierr);
            json_decref(ierr);
            bool breaking = true;
            json_t *d = oms_diff_documents((oms_kind)k, doc, doc, &breaking);
            if (!d || json_array_size(d) != 0 || breaking)
                abort();
            json_decref(d);
        }
        json_decref(errors);
        json_decref(doc);
    }
    json_decref(base);
    return 0;
}
