#include "http/authenticate.h"

#include <string.h>
#include <strings.h>

#include "auth/authenticate.h"
#include "http/app.h"

int oms_authenticate(oms_request *req, oms_error *err)
{
    const char *h = oms_req_header(req, "Authorization");
    if (!h || !*h)
        return oms_err_set(err, OMS_ENOAUTH, "no credentials");
    if (strncasecmp(h, "Bearer ", 7) != 0)
        return oms_err_set(err, OMS_ETOKEN, "not a bearer token");
    const char *tok = h + 7;
    while (*tok == ' ')
        tok++;
    size_t len = strlen(tok);
    while (len && tok[len - 1] == ' ')
        len--;
    if (len == 0)
        return oms_err_set(err, OMS_ENOAUTH, "empty bearer token");
    int rc = oms_auth_verify_token(req->app->jwt, tok, len, req->arena, &req->principal, err);
    if (rc != OMS_OK)
        return rc;
    req->authenticated = true;
    return OMS_OK;
}
