/* The references of a document to other resources, with the JSON pointer of
 * each referring field. The table says where each kind keeps references; the
 * walker tolerates malformed documents (it skips what is not a string). */
#include <stdio.h>

#include "ontology/internal.h"

typedef enum {
    R_FIELD,       /* doc[field] */
    R_LIST,        /* doc[field][i] */
    R_ITEM_FIELD,  /* doc[field][i][sub] */
    R_OBJECT_FIELD /* doc[field][sub] */
} ref_shape;

typedef struct {
    oms_kind owner;  /* kind of the referring document */
    ref_shape shape;
    const char *field, *sub;
    oms_kind target; /* kind referred to */
} ref_spec;

static const ref_spec REFS[] = {
    {OMS_KIND_OBJECT_TYPE, R_LIST, "implements", NULL, OMS_KIND_INTERFACE},
    {OMS_KIND_OBJECT_TYPE, R_ITEM_FIELD, "properties", "shared_property", OMS_KIND_SHARED_PROPERTY},
    {OMS_KIND_LINK_TYPE, R_FIELD, "from", NULL, OMS_KIND_OBJECT_TYPE},
    {OMS_KIND_LINK_TYPE, R_FIELD, "to", NULL, OMS_KIND_OBJECT_TYPE},
    {OMS_KIND_ACTION_TYPE, R_ITEM_FIELD, "parameters", "object_type", OMS_KIND_OBJECT_TYPE},
    {OMS_KIND_ACTION_TYPE, R_ITEM_FIELD, "rules", "object_type", OMS_KIND_OBJECT_TYPE},
    {OMS_KIND_ACTION_TYPE, R_ITEM_FIELD, "rules", "link_type", OMS_KIND_LINK_TYPE},
    {OMS_KIND_FUNCTION_TYPE, R_ITEM_FIELD, "inputs", "object_type", OMS_KIND_OBJECT_TYPE},
    {OMS_KIND_FUNCTION_TYPE, R_OBJECT_FIELD, "output", "object_type", OMS_KIND_OBJECT_TYPE},
    {OMS_KIND_INTERFACE, R_LIST, "extends", NULL, OMS_KIND_INTERFACE},
    {OMS_KIND_INTERFACE, R_ITEM_FIELD, "properties", "shared_property", OMS_KIND_SHARED_PROPERTY},
};

static void emit(const ref_spec *r, const json_t *val, const char *path, oms_ref_fn fn, void *ctx)
{
    const char *name = json_string_value(val);
    if (name)
        fn(ctx, r->target, name, path);
}

/* Field names are fixed, short and need no escaping, so the pointers fit a
 * small buffer on this stack frame (the callback copies what it keeps). */
static void walk(const ref_spec *r, const json_t *doc, oms_ref_fn fn, void *ctx)
{
    char path[128];
    const json_t *val = json_object_get(doc, r->field);
    size_t i;
    const json_t *item;

    switch (r->shape) {
    case R_FIELD:
        snprintf(path, sizeof path, "/%s", r->field);
        emit(r, val, path, fn, ctx);
        break;
    case R_LIST:
        json_array_foreach(val, i, item) {
            snprintf(path, sizeof path, "/%s/%zu", r->field, i);
            emit(r, item, path, fn, ctx);
        }
        break;
    case R_ITEM_FIELD:
        json_array_foreach(val, i, item) {
            snprintf(path, sizeof path, "/%s/%zu/%s", r->field, i, r->sub);
            emit(r, json_object_get(item, r->sub), path, fn, ctx);
        }
        break;
    case R_OBJECT_FIELD:
        snprintf(path, sizeof path, "/%s/%s", r->field, r->sub);
        emit(r, json_object_get(val, r->sub), path, fn, ctx);
        break;
    }
}

void oms_document_refs(oms_kind k, const json_t *doc, oms_ref_fn fn, void *ctx)
{
    if (!json_is_object(doc) || !fn)
        return;
    for (size_t i = 0; i < sizeof REFS / sizeof REFS[0]; i++)
        if (REFS[i].owner == k)
            walk(&REFS[i], doc, fn, ctx);
}
