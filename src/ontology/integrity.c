/* Integrity rules of SPEC §3: one document against the state of its branch,
 * reached through the caller's lookup function. Each rule is one function;
 * graph walks (transitive interfaces, extends cycles) carry a visited set
 * and a depth bound so a cyclic or very deep branch state cannot make them
 * loop or exhaust the stack. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ontology/internal.h"

/* Deepest `extends` chain followed; deeper chains are not explored. */
#define MAX_DEPTH 64

typedef struct {
    json_t *errors;
    int added;
    oms_lookup_fn lookup;
    void *lctx;
    oms_kind kind;
    const json_t *doc;
    const char *self; /* the document's api_name */
} ictx;

static void ierr(ictx *c, const char *path, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void ierr(ictx *c, const char *path, const char *code, const char *fmt, ...)
{
    if (c->added >= OMS_ONT_MAX_ERRORS)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    oms_ont_error_append(c->errors, path, code, msg);
    c->added++;
}

/* The document under check stands for its own name: the branch may hold an
 * older version of it, or none yet. */
static const json_t *resolve(ictx *c, oms_kind kind, const char *name)
{
    if (kind == c->kind && c->self && strcmp(name, c->self) == 0)
        return c->doc;
    return c->lookup ? c->lookup(c->lctx, kind, name) : NULL;
}

/* ---- every reference resolves ------------------------------------------------ */

static void check_ref(void *ctx, oms_kind kind, const char *api_name, const char *path)
{
    ictx *c = ctx;
    if (!resolve(c, kind, api_name))
        ierr(c, path, "unresolved_reference", "unresolved reference: %s/%s",
             oms_kind_segment(kind), api_name);
}

/* ---- object type keys ------------------------------------------------------- */

static void check_keys(ictx *c)
{
    char msg[256];
    if (!oms_ont_primary_key_ok(c->doc, msg, sizeof msg))
        ierr(c, "/primary_key", "invalid_primary_key", "%s", msg);
    if (!oms_ont_title_property_ok(c->doc, msg, sizeof msg))
        ierr(c, "/title_property", "invalid_title_property", "%s", msg);
}

/* ---- implemented interfaces, transitively ---------------------------------- */

/* The object type has `want` (a property of interface `iface`) with the same
 * type and array flag. `via` is the implements entry that led here. */
static void check_has_property(ictx *c, const json_t *want, const char *iface, const char *via)
{
    const char *name = oms_ont_str(want, "api_name");
    const char *want_type = oms_ont_str(want, "type");
    size_t j;
    char path[64];
    if (!name)
        return;
    const json_t *have = oms_ont_find_named(json_object_get(c->doc, "properties"), name, &j);
    if (!have) {
        ierr(c, via, "interface_not_satisfied", "missing property '%s' of interface '%s'", name,
             iface);
        return;
    }
    const char *have_type = oms_ont_str(have, "type");
    if (want_type && (!have_type || strcmp(have_type, want_type) != 0)) {
        snprintf(path, sizeof path, "/properties/%zu/type", j);
        ierr(c, path, "interface_not_satisfied",
             "property '%s' has type %s but interface '%s' requires %s", name,
             have_type ? have_type : "(none)", iface, want_type);
    }
    bool want_array = json_is_true(json_object_get(want, "array"));
    if (json_is_true(json_object_get(have, "array")) != want_array) {
        snprintf(path, sizeof path, "/properties/%zu/array", j);
        ierr(c, path, "interface_not_satisfied", "property '%s' must%s be an array, as in interface '%s'",
             name, want_array ? "" : " not", iface);
    }
}

static void satisfy(ictx *c, const char *iface, const char *via, json_t *visited, int depth)
{
    if (depth > MAX_DEPTH || !oms_ont_set_add(visited, iface))
        return;
    /* A missing interface is reported as an unresolved reference: directly
     * here, or on the interface whose `extends` names it. */
    const json_t *idoc = resolve(c, OMS_KIND_INTERFACE, iface);
    size_t i;
    const json_t *item;
    if (!idoc)
        return;
    json_array_foreach(json_object_get(idoc, "properties"), i, item)
        check_has_property(c, item, iface, via);
    json_array_foreach(json_object_get(idoc, "extends"), i, item) {
        const char *parent = json_string_value(item);
        if (parent)
            satisfy(c, parent, via, visited, depth + 1);
    }
}

static void check_interfaces(ictx *c)
{
    json_t *visited = json_object();
    size_t i;
    const json_t *item;
    char via[64];
    json_array_foreach(json_object_get(c->doc, "implements"), i, item) {
        const char *iface = json_string_value(item);
        snprintf(via, sizeof via, "/implements/%zu", i);
        if (iface)
            satisfy(c, iface, via, visited, 0);
    }
    json_decref(visited);
}

/* ---- extends has no cycle ------------------------------------------------------ */

/* The extends closure of `iface` leads back to the document: returns the
 * depth at which it does (chain[0..depth] then names the interfaces along
 * the way, the last being the document), or -1. Interfaces explored once
 * without finding the document are not explored again. */
static int cycle_depth(ictx *c, const char *iface, const char **chain, int depth, json_t *visited)
{
    chain[depth] = iface;
    if (strcmp(iface, c->self) == 0)
        return depth;
    if (depth >= MAX_DEPTH || !oms_ont_set_add(visited, iface))
        return -1;
    const json_t *idoc = resolve(c, OMS_KIND_INTERFACE, iface);
    size_t i;
    const json_t *item;
    json_array_foreach(json_object_get(idoc, "extends"), i, item) {
        const char *parent = json_string_value(item);
        int d = parent ? cycle_depth(c, parent, chain, depth + 1, visited) : -1;
        if (d >= 0)
            return d;
    }
    return -1;
}

static void check_extends_cycle(ictx *c)
{
    const char *chain[MAX_DEPTH + 1];
    char path[64], desc[1024];
    json_t *visited = json_object();
    size_t i;
    const json_t *item;
    json_array_foreach(json_object_get(c->doc, "extends"), i, item) {
        const char *parent = json_string_value(item);
        int depth = parent ? cycle_depth(c, parent, chain, 0, visited) : -1;
        if (depth < 0)
            continue;
        size_t o = (size_t)snprintf(desc, sizeof desc, "%s", c->self);
        for (int d = 0; d <= depth && o < sizeof desc; d++)
            o += (size_t)snprintf(desc + o, sizeof desc - o, " -> %s", chain[d]);
        snprintf(path, sizeof path, "/extends/%zu", i);
        ierr(c, path, "extends_cycle", "extends cycle: %s", desc);
    }
    json_decref(visited);
}

/* ---- shared properties ------------------------------------------------------ */

static void check_shared_properties(ictx *c)
{
    size_t i;
    const json_t *prop;
    char path[64];
    json_array_foreach(json_object_get(c->doc, "properties"), i, prop) {
        const char *sp_name = oms_ont_str(prop, "shared_property");
        const json_t *sp = sp_name ? resolve(c, OMS_KIND_SHARED_PROPERTY, sp_name) : NULL;
        if (!sp)
            continue; /* none, or unresolved (reported as such) */
        const char *type = oms_ont_str(prop, "type"), *sp_type = oms_ont_str(sp, "type");
        if (sp_type && (!type || strcmp(type, sp_type) != 0)) {
            snprintf(path, sizeof path, "/properties/%zu/type", i);
            ierr(c, path, "shared_property_mismatch",
                 "property has type %s but shared property '%s' has type %s",
                 type ? type : "(none)", sp_name, sp_type);
        }
        bool sp_array = json_is_true(json_object_get(sp, "array"));
        if (json_is_true(json_object_get(prop, "array")) != sp_array) {
            snprintf(path, sizeof path, "/properties/%zu/array", i);
            ierr(c, path, "shared_property_mismatch",
                 "property must%s be an array, as shared property '%s'", sp_array ? "" : " not",
                 sp_name);
        }
    }
}

int oms_check_integrity(oms_kind k, const json_t *doc, oms_lookup_fn lookup, void *ctx,
                        json_t *errors)
{
    ictx c = {.errors = errors,
              .lookup = lookup,
              .lctx = ctx,
              .kind = k,
              .doc = doc,
              .self = oms_ont_str(doc, "api_name")};
    if (!json_is_object(doc) || (unsigned)k >= OMS_KIND__COUNT)
        return 0;
    oms_document_refs(k, doc, check_ref, &c);
    switch (k) {
    case OMS_KIND_OBJECT_TYPE:
        check_keys(&c);
        check_interfaces(&c);
        check_shared_properties(&c);
        break;
    case OMS_KIND_INTERFACE:
        if (c.self)
            check_extends_cycle(&c);
        check_shared_properties(&c);
        break;
    default:
        break;
    }
    return c.added;
}
