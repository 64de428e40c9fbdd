/* oms export --branch B -o DIR [--at REF] [--format yaml|json]: the whole
 * ontology of a branch (or of a commit or tag) as one file per resource,
 * DIR/object-types/Person.yaml, deterministic bytes. Files of resources that
 * are no longer there are removed, so exporting into a git work tree and
 * committing records exactly the change. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "util/alloc.h"

static bool is_resource_file(const char *f)
{
    const char *dot = strrchr(f, '.');
    return f[0] != '.' && dot && (!strcmp(dot, ".yaml") || !strcmp(dot, ".yml") || !strcmp(dot, ".json"));
}

/* Removes the resource files of DIR/KIND not named in `keep` (file name -> true). */
static int prune(const char *dir, const char *kind, const json_t *keep, size_t *removed)
{
    char *folder = oms_xasprintf("%s/%s", dir, kind);
    DIR *d = opendir(folder);
    int rc = 0;
    if (!d) {
        rc = errno == ENOENT ? 0 : -1;
        goto cleanup;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!is_resource_file(e->d_name) || json_object_get(keep, e->d_name))
            continue;
        char *p = oms_xasprintf("%s/%s", folder, e->d_name);
        if (unlink(p))
            rc = -1;
        else
            (*removed)++;
        free(p);
    }
    closedir(d);
cleanup:
    free(folder);
    return rc;
}

int oms_cli_cmd_export(oms_cli *c, int argc, char **argv)
{
    static const char use[] = "oms export --branch B -o DIR [--at REF] [--format yaml|json]";
    const char *branch = NULL, *dir = NULL, *at = NULL, *format = "yaml";
    oms_cli_opt opts[] = {{"--branch", "-b", &branch, NULL}, {"--output", "-o", &dir, NULL},
                          {"--at", NULL, &at, NULL}, {"--format", NULL, &format, NULL}, {0}};
    int code = oms_cli_parse(c, argc, argv, opts, NULL, 0, NULL);
    if (code)
        return code;
    if (!branch || !dir || (strcmp(format, "yaml") && strcmp(format, "json")))
        return oms_cli_usage(use);
    bool as_json = !strcmp(format, "json");
    char *b = oms_cli_escape(branch), *a = at ? oms_cli_escape(at) : NULL;
    char *path = oms_xasprintf("/api/v1/schemas/%s%s%s", b, a ? "?at=" : "", a ? a : "");
    oms_cli_resp r = {0};
    size_t written = 0, removed = 0, total = 0;
    if ((code = oms_cli_request(c, "GET", path, NULL, NULL, &r)))
        goto cleanup;
    if (r.status != 200) {
        code = oms_cli_problem(c, "export", &r);
        goto cleanup;
    }
    if (at && (code = oms_cli_check_at(c, "export", at, oms_cli_str(r.json, "commit"))))
        goto cleanup;
    code = OMS_CLI_FAILED;
    if (mkdir(dir, 0777) && errno != EEXIST) {
        fprintf(stderr, "oms: export: cannot create %s: %s\n", dir, strerror(errno));
        goto cleanup;
    }
    for (size_t k = 0; oms_cli_kinds[k]; k++)
        total += json_array_size(json_object_get(r.json, oms_cli_kinds[k]));
    oms_cli_progress p;
    oms_cli_progress_start(&p, c, "exporting", total);
    for (size_t k = 0; oms_cli_kinds[k]; k++) {
        const char *kind = oms_cli_kinds[k];
        json_t *keep = json_object();
        size_t i;
        json_t *doc;
        if (!keep)
            goto cleanup;
        json_array_foreach(json_object_get(r.json, kind), i, doc) {
            const char *name = oms_cli_str(doc, "api_name");
            char *fname = oms_xasprintf("%s.%s", name, as_json ? "json" : "yaml");
            if (json_object_set_new(keep, fname, json_true()) ||
                oms_cli_write_resource(dir, kind, name, doc, as_json)) {
                fprintf(stderr, "oms: export: cannot write %s/%s/%s: %s\n", dir, kind, fname, strerror(errno));
                free(fname);
                json_decref(keep);
                goto cleanup;
            }
            free(fname);
            oms_cli_progress_step(&p, ++written);
        }
        int prc = prune(dir, kind, keep, &removed);
        json_decref(keep);
        if (prc) {
            fprintf(stderr, "oms: export: cannot remove old files in %s/%s\n", dir, kind);
            goto cleanup;
        }
    }
    oms_cli_progress_end(&p);
    if (c->json) {
        json_t *o = json_pack("{s:s,s:s,s:s,s:I,s:I}", "branch", branch, "commit", oms_cli_str(r.json, "commit"),
                              "directory", dir, "resources", (json_int_t)written, "removed", (json_int_t)removed);
        oms_cli_print_json(o);
        json_decref(o);
    } else {
        printf("exported %zu resources of %s at %s to %s", written, branch, oms_cli_str(r.json, "commit"), dir);
        if (removed)
            printf(" (%zu old files removed)", removed);
        putchar('\n');
    }
    code = OMS_CLI_OK;
cleanup:
    oms_cli_resp_clear(&r);
    free(b);
    free(a);
    free(path);
    return code;
}
