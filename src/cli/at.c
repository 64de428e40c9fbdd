/* `--at REF` reads (SPEC §4 time travel): the client checks that what was
 * served is the commit asked for. A service that does not know `?at=` would
 * otherwise answer with the branch head, and an export "as of v12" would
 * silently be today's ontology. A tag is resolved through /api/v1/tags. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/alloc.h"

static bool is_commit_id(const char *s)
{
    return strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

int oms_cli_check_at(oms_cli *c, const char *what, const char *at, const char *served)
{
    char want[80] = "";
    if (is_commit_id(at)) {
        snprintf(want, sizeof want, "%s", at);
    } else {
        char *t = oms_cli_escape(at), *path = oms_xasprintf("/api/v1/tags/%s", t);
        oms_cli_resp r = {0};
        int code = oms_cli_request(c, "GET", path, NULL, NULL, &r);
        if (!code && r.status == 200)
            snprintf(want, sizeof want, "%s", oms_cli_str(r.json, "commit"));
        oms_cli_resp_clear(&r);
        free(t);
        free(path);
        if (code)
            return code;
    }
    if (*want && served && !strcmp(want, served))
        return OMS_CLI_OK;
    fprintf(stderr, "oms: %s: asked for %s, but the service answered with commit %s: it does not serve "
                    "reads at a commit or tag (?at=), or does not know that tag; nothing was read as of %s\n",
            what, at, served && *served ? served : "(none)", at);
    return OMS_CLI_FAILED;
}
