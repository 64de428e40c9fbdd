/* Ontology as code on disk: DIR/KIND/API_NAME.yaml (or .yml, .json), one
 * resource per file. Reading checks what the service cannot know: that the
 * file parses, that it holds one mapping with an api_name, and that the name
 * matches the file's, so a renamed file is never a silent second resource. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "util/alloc.h"

static const char *ext_of(const char *f)
{
    const char *dot = strrchr(f, '.');
    if (!dot)
        return NULL;
    if (!strcmp(dot, ".yaml") || !strcmp(dot, ".yml") || !strcmp(dot, ".json"))
        return dot;
    return NULL;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The sorted resource file names of one folder (missing folder: none). */
static int list_files(const char *folder, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(folder);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    size_t cap = 0;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !ext_of(e->d_name))
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nl = oms_xrealloc(*out, cap * sizeof *nl);
            *out = nl;
        }
        (*out)[(*n)++] = oms_xstrdup(e->d_name);
    }
    closedir(d);
    if (*n > 1)
        qsort(*out, *n, sizeof **out, cmp_str);
    return rc;
}

static void free_list(char **l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(l[i]);
    free(l);
}

static int push(oms_cli_locals *l, oms_cli_local *item)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        oms_cli_local *ni = oms_xrealloc(l->items, cap * sizeof *ni);
        l->items = ni;
        l->cap = cap;
    }
    l->items[l->n++] = *item;
    return 0;
}

/* Checks one parsed file; prints the problem and returns false if bad. */
static bool check(oms_cli_local *it, const char *file)
{
    if (!json_is_object(it->doc)) {
        fprintf(stderr, "%s:1:1: a resource file holds one mapping (a YAML or JSON object)\n", it->path);
        return false;
    }
    json_object_del(it->doc, "meta"); /* served by the service, never stored */
    const char *name = json_string_value(json_object_get(it->doc, "api_name"));
    size_t stem = (size_t)(ext_of(file) - file);
    if (!name) {
        fprintf(stderr, "%s:%d: api_name is required (a string)\n", it->path,
                oms_cli_lines_find(it->lines, "/api_name") ?: 1);
        return false;
    }
    if (strlen(name) != stem || strncmp(name, file, stem)) {
        fprintf(stderr, "%s:%d: api_name \"%s\" does not match the file name\n", it->path,
                oms_cli_lines_find(it->lines, "/api_name") ?: 1, name);
        return false;
    }
    return (it->name = oms_xstrdup(name)) != NULL;
}

int oms_cli_read_dir(oms_cli *c, const char *dir, oms_cli_locals *out, size_t *nerrors)
{
    memset(out, 0, sizeof *out);
    *nerrors = 0;
    struct stat st;
    if (stat(dir, &st) || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "oms: %s is not a directory\n", dir);
        return OMS_CLI_USAGE;
    }
    char **files[8] = {0};
    json_t *names = json_object(); /* "KIND/NAME" -> index in out, for duplicates */
    size_t counts[8] = {0}, total = 0, folders = 0;
    int code = OMS_CLI_OK;
    if (!names)
        return OMS_CLI_FAILED;
    for (size_t k = 0; oms_cli_kinds[k]; k++) {
        char *folder = oms_xasprintf("%s/%s", dir, oms_cli_kinds[k]);
        struct stat fst;
        if (!stat(folder, &fst) && S_ISDIR(fst.st_mode))
            folders++;
        if (list_files(folder, &files[k], &counts[k])) {
            fprintf(stderr, "oms: cannot read %s/%s\n", dir, oms_cli_kinds[k]);
            free(folder);
            code = OMS_CLI_FAILED;
            goto cleanup;
        }
        free(folder);
        total += counts[k];
    }
    if (!folders) {
        fprintf(stderr, "oms: %s has none of the folders object-types, link-types, action-types, function-types, "
                        "interfaces, shared-properties\n", dir);
        code = OMS_CLI_USAGE;
        goto cleanup;
    }
    oms_cli_progress p;
    oms_cli_progress_start(&p, c, "reading", total);
    size_t done = 0;
    for (size_t k = 0; oms_cli_kinds[k]; k++) {
        for (size_t i = 0; i < counts[k]; i++) {
            oms_cli_local it = {.kind = oms_cli_kinds[k]};
            char msg[512];
            it.path = oms_xasprintf("%s/%s/%s", dir, oms_cli_kinds[k], files[k][i]);
            if (oms_cli_yaml_load(&it.doc, &it.lines, it.path, msg, sizeof msg)) {
                fprintf(stderr, "%s\n", msg);
                (*nerrors)++;
            } else if (!check(&it, files[k][i])) {
                (*nerrors)++;
            } else {
                char *key = oms_xasprintf("%s/%s", it.kind, it.name);
                json_t *prev = json_object_get(names, key);
                if (prev) {
                    fprintf(stderr, "%s:1: %s is also defined in %s\n", it.path, key,
                            out->items[json_integer_value(prev)].path);
                    (*nerrors)++;
                    free(key);
                    goto drop;
                }
                if (json_object_set_new(names, key, json_integer((json_int_t)out->n)) || push(out, &it)) {
                    free(key);
                    code = OMS_CLI_FAILED;
                    goto drop;
                }
                free(key);
                oms_cli_progress_step(&p, ++done);
                continue;
            }
        drop:
            json_decref(it.doc);
            oms_cli_lines_free(it.lines);
            free(it.name);
            free(it.path);
            if (code)
                goto cleanup;
            oms_cli_progress_step(&p, ++done);
        }
    }
    oms_cli_progress_end(&p);
cleanup:
    json_decref(names);
    for (size_t k = 0; k < 8; k++)
        free_list(files[k], counts[k]);
    return code;
}

void oms_cli_locals_free(oms_cli_locals *l)
{
    for (size_t i = 0; i < l->n; i++) {
        json_decref(l->items[i].doc);
        oms_cli_lines_free(l->items[i].lines);
        free(l->items[i].name);
        free(l->items[i].path);
    }
    free(l->items);
    memset(l, 0, sizeof *l);
}

int oms_cli_write_resource(const char *dir, const char *kind, const char *name, const json_t *doc, bool json)
{
    char *folder = oms_xasprintf("%s/%s", dir, kind);
    char *path = oms_xasprintf("%s/%s.%s", folder, name, json ? "json" : "yaml");
    char *tmp = oms_xasprintf("%s.tmp", path);
    char *text = json ? json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS) : oms_cli_yaml_dump(doc);
    int rc = -1;
    FILE *fp = NULL;
    if (!text || strchr(name, '/')) {
        errno = ENOMEM;
        goto cleanup;
    }
    if (mkdir(folder, 0777) && errno != EEXIST)
        goto cleanup;
    if (!(fp = fopen(tmp, "w")))
        goto cleanup;
    size_t n = strlen(text);
    bool bad = fwrite(text, 1, n, fp) != n || (json && fputc('\n', fp) == EOF);
    bad |= fclose(fp) != 0;
    fp = NULL;
    if (bad || rename(tmp, path)) {
        unlink(tmp);
        goto cleanup;
    }
    rc = 0;
cleanup:
    free(folder);
    free(path);
    free(tmp);
    free(text);
    return rc;
}
