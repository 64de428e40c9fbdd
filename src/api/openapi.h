/* The OpenAPI 3.1 document (SPEC §14), generated from the live route table
 * (method, pattern, permission, change flag) and the per-route metadata of
 * openapi_routes.c, with one JSON Schema per resource kind generated from
 * the validation tables (src/ontology/kind_schema.h). */
#ifndef OMS_API_OPENAPI_H
#define OMS_API_OPENAPI_H

#include <jansson.h>
#include <stddef.h>

#include "http/routes.h"

/* What the route table does not say about a route. JSON texts are parsed
 * when the document is built (a malformed one fails the unit test). */
typedef struct {
    const char *method, *pattern;
    const char *summary;
    const char *query;    /* space-separated query parameter names (grammars in openapi.c) */
    const char *body;     /* request body schema (JSON), "KIND" for the kind's document, or NULL */
    const char *example;  /* request body example (JSON); required with a body */
    int status;           /* success status */
    const char *response; /* success body schema (JSON), "KIND" for a kind document, "KINDPAGE" for a
                           * page of them, or NULL: none */
    const char *media;    /* success media type when not application/json */
} oms_openapi_route;

extern const oms_openapi_route oms_openapi_routes[];
extern const size_t oms_openapi_routes_count;

/* Components of the overrides, ACL policies, audit events, alerts and
 * proposal comments (src/api/openapi_schemas.c): a JSON object of schemas. */
extern const char oms_openapi_gov_schemas[];

/* Components of webhooks, events, index jobs, writes, search and the audit
 * verification and report (src/api/openapi_schemas_ops.c). */
extern const char oms_openapi_ops_schemas[];

/* The metadata of method+pattern, or NULL. */
const oms_openapi_route *oms_openapi_find(const char *method, const char *pattern);

/* Builds the document for the routes; NULL with a message in `why` (cap
 * bytes) when a route has no metadata or a JSON text does not parse. */
json_t *oms_openapi_build(const oms_route *const *routes, size_t n, char *why, size_t cap);

/* The example document of kind k (JSON text), used in the document and
 * fed to the validate route by tests/api/test_openapi.py. */
const char *oms_openapi_kind_example(int k);

/* GET /api/v1/openapi.json */
int oms_h_openapi(oms_request *req);

#endif
