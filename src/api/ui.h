/* The web console (SPEC §14): static files built into the binary, served
 * as public static content under /ui/ (docs/security.md: they hold no data;
 * every API call the console makes carries the user's token). */
#ifndef OMS_API_UI_H
#define OMS_API_UI_H

#include "http/request.h"

/* GET /ui: index.html at /ui/ (the path check lets exactly "/ui/" through
 * as this route), a 308 to /ui/ from /ui. */
int oms_h_ui_index(oms_request *req);
/* GET /ui/{file}: one embedded file; config.json is made from the
 * configuration (the OIDC issuer and client id, no secret). */
int oms_h_ui_file(oms_request *req);

/* The Content-Security-Policy of console responses (connect-src gets the
 * OIDC issuer's origin when one is configured). */
const char *oms_ui_csp(oms_request *req);

#endif
