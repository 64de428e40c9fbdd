/* `oms index rebuild --branch B [--wait] [--json] [--reason TEXT]`: a client
 * of the public API only (OMS_URL, OMS_TOKEN or OMS_TOKEN_FILE). It starts
 * a rebuild and, with --wait, follows the job until it ends: a progress bar
 * on a terminal, one plain line per change otherwise (logs, CI).
 * Exit codes: 0 done (or started, without --wait), 1 the job failed,
 * 2 usage or configuration, 3 the service refused or could not be reached. */
#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/alloc.h"

#include "search/cli.h"

enum { EXIT_DONE = 0, EXIT_JOB_FAILED = 1, EXIT_USAGE = 2, EXIT_REFUSED = 3 };

static int usage(void)
{
    fprintf(stderr, "usage: oms index rebuild --branch BRANCH [--wait] [--json] [--reason TEXT] [--interval-ms N]\n"
                    "  OMS_URL (e.g. http://127.0.0.1:8080) and OMS_TOKEN or OMS_TOKEN_FILE name the service\n");
    return EXIT_USAGE;
}

typedef struct {
    char *buf;
    size_t len;
} body;

static size_t on_data(char *p, size_t size, size_t n, void *ctx)
{
    body *b = ctx;
    size_t add = size * n;
    char *nb = oms_xrealloc(b->buf, b->len + add + 1);
    memcpy(nb + b->len, p, add);
    b->buf = nb;
    b->len += add;
    b->buf[b->len] = '\0';
    return add;
}

typedef struct {
    CURL *curl;
    const char *base;
    struct curl_slist *headers;
} client;

/* One request; *status gets the HTTP status, *out the parsed JSON body
 * (NULL when it is not JSON). False when the service could not be reached. */
static bool call(client *cl, const char *method, const char *path, const char *payload, long *status, json_t **out)
{
    body b = {0};
    char *url = oms_xmalloc(strlen(cl->base) + strlen(path) + 1);
    sprintf(url, "%s%s", cl->base, path);
    curl_easy_reset(cl->curl);
    curl_easy_setopt(cl->curl, CURLOPT_URL, url);
    curl_easy_setopt(cl->curl, CURLOPT_HTTPHEADER, cl->headers);
    curl_easy_setopt(cl->curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(cl->curl, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(cl->curl, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(cl->curl, CURLOPT_NOSIGNAL, 1L);
    if (payload) {
        curl_easy_setopt(cl->curl, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(cl->curl, CURLOPT_POSTFIELDS, payload);
    }
    CURLcode rc = curl_easy_perform(cl->curl);
    free(url);
    if (rc != CURLE_OK) {
        fprintf(stderr, "oms: %s %s: %s\n", method, path, curl_easy_strerror(rc));
        free(b.buf);
        return false;
    }
    curl_easy_getinfo(cl->curl, CURLINFO_RESPONSE_CODE, status);
    *out = b.buf ? json_loads(b.buf, 0, NULL) : NULL;
    free(b.buf);
    return true;
}

static void print_problem(long status, const json_t *p)
{
    const char *code = json_string_value(json_object_get(p, "code"));
    const char *detail = json_string_value(json_object_get(p, "detail"));
    fprintf(stderr, "oms: the service answered %ld%s%s%s%s\n", status, code ? " " : "", code ? code : "",
            detail ? ": " : "", detail ? detail : "");
}

static char *read_token(void)
{
    const char *t = getenv("OMS_TOKEN"), *f = getenv("OMS_TOKEN_FILE");
    if (t && f) {
        fprintf(stderr, "oms: set OMS_TOKEN or OMS_TOKEN_FILE, not both\n");
        return NULL;
    }
    if (t && *t)
        return oms_xstrdup(t);
    if (!f) {
        fprintf(stderr, "oms: OMS_TOKEN or OMS_TOKEN_FILE is required\n");
        return NULL;
    }
    FILE *fp = fopen(f, "r");
    if (!fp) {
        fprintf(stderr, "oms: OMS_TOKEN_FILE: cannot read %s\n", f);
        return NULL;
    }
    char buf[16384];
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    return *buf ? oms_xstrdup(buf) : NULL;
}

static double num(const json_t *o, const char *k) { return json_number_value(json_object_get(o, k)); }
static const char *txt(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* The bar: [#########...........]  42.0%  build  4200/10000  ETA 3s */
static void show_bar(const json_t *job, bool final)
{
    double pct = num(job, "percent");
    int width = 30, full = (int)(pct / 100.0 * width + 0.5);
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < full ? '#' : '.';
    bar[width] = '\0';
    const json_t *eta = json_object_get(job, "eta_seconds");
    char etas[32] = "";
    if (json_is_integer(eta))
        snprintf(etas, sizeof etas, "  ETA %llds", (long long)json_integer_value(eta));
    printf("\r[%s] %5.1f%%  %-8s %lld/%lld%s\033[K", bar, pct, txt(job, "phase"),
           (long long)json_integer_value(json_object_get(job, "done")),
           (long long)json_integer_value(json_object_get(job, "total")), etas);
    if (final)
        printf("\n");
    fflush(stdout);
}

static void show_plain(const json_t *job)
{
    const json_t *eta = json_object_get(job, "eta_seconds");
    char etas[24] = "unknown";
    if (json_is_integer(eta))
        snprintf(etas, sizeof etas, "%lld", (long long)json_integer_value(eta));
    printf("job=%s state=%s phase=%s percent=%.1f done=%lld total=%lld eta_seconds=%s\n", txt(job, "id"),
           txt(job, "state"), txt(job, "phase"), num(job, "percent"),
           (long long)json_integer_value(json_object_get(job, "done")),
           (long long)json_integer_value(json_object_get(job, "total")), etas);
    fflush(stdout);
}

static int rebuild(const char *branch, bool wait, bool as_json, const char *reason, long interval_ms)
{
    const char *base = getenv("OMS_URL");
    if (!base || !*base) {
        fprintf(stderr, "oms: OMS_URL is required (e.g. http://127.0.0.1:8080)\n");
        return EXIT_USAGE;
    }
    char *token = read_token();
    if (!token)
        return EXIT_USAGE;
    int code = EXIT_REFUSED;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    client cl = {curl_easy_init(), base, NULL};
    char *auth = oms_xmalloc(strlen(token) + 32);
    sprintf(auth, "Authorization: Bearer %s", token);
    cl.headers = curl_slist_append(cl.headers, auth);
    cl.headers = curl_slist_append(cl.headers, "Content-Type: application/json");
    cl.headers = curl_slist_append(cl.headers, "Accept: application/json");
    char *enc = curl_easy_escape(cl.curl, branch, 0);
    char path[512];
    snprintf(path, sizeof path, "/api/v1/branches/%s/index/rebuild", enc);
    json_t *req = reason ? json_pack("{s:s}", "reason", reason) : json_object();
    char *payload = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    long status = 0;
    json_t *job = NULL;
    if (!call(&cl, "POST", path, payload, &status, &job))
        goto out;
    if (status != 202) {
        print_problem(status, job);
        goto out;
    }
    char id[64];
    snprintf(id, sizeof id, "%s", txt(job, "id"));
    bool tty = isatty(STDOUT_FILENO) && !as_json;
    if (!wait) {
        if (as_json) {
            char *s = json_dumps(job, JSON_INDENT(2));
            printf("%s\n", s);
            free(s);
        } else {
            printf("index job %s started on branch %s (generation %lld)\n", id, branch,
                   (long long)json_integer_value(json_object_get(job, "generation")));
        }
        code = EXIT_DONE;
        goto out;
    }
    snprintf(path, sizeof path, "/api/v1/index-jobs/%s", id);
    char last[160] = "";
    for (;;) {
        const char *state = txt(job, "state");
        bool over = strcmp(state, "running") != 0;
        char now[160];
        snprintf(now, sizeof now, "%s %s %.1f %lld", state, txt(job, "phase"), num(job, "percent"),
                 (long long)json_integer_value(json_object_get(job, "done")));
        if (tty)
            show_bar(job, over);
        else if (!as_json && strcmp(now, last) != 0)
            show_plain(job);
        snprintf(last, sizeof last, "%s", now);
        if (over) {
            if (as_json) {
                char *s = json_dumps(job, JSON_INDENT(2));
                printf("%s\n", s);
                free(s);
            } else if (strcmp(state, "succeeded") == 0) {
                const json_t *sw = json_object_get(job, "switch");
                printf("succeeded: branch %s now searches generation %lld (%lld resources, %lld caught up; writes"
                       " blocked %lld ms)\n",
                       branch, (long long)json_integer_value(json_object_get(job, "generation")),
                       (long long)json_integer_value(json_object_get(job, "done")),
                       (long long)json_integer_value(json_object_get(job, "caught_up")),
                       (long long)json_integer_value(json_object_get(sw, "blocked_ms")));
            } else {
                printf("failed: %s\n", txt(job, "error"));
            }
            code = strcmp(state, "succeeded") == 0 ? EXIT_DONE : EXIT_JOB_FAILED;
            break;
        }
        usleep((useconds_t)interval_ms * 1000);
        json_decref(job);
        job = NULL;
        if (!call(&cl, "GET", path, NULL, &status, &job))
            goto out;
        if (status != 200) {
            if (tty)
                printf("\n");
            print_problem(status, job);
            goto out;
        }
    }
out:
    json_decref(job);
    free(payload);
    curl_free(enc);
    curl_slist_free_all(cl.headers);
    curl_easy_cleanup(cl.curl);
    curl_global_cleanup();
    memset(auth, 0, strlen(auth));
    memset(token, 0, strlen(token));
    free(auth);
    free(token);
    return code;
}

int oms_index_cli(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "rebuild") != 0)
        return usage();
    const char *branch = NULL, *reason = NULL;
    bool wait = false, as_json = false;
    long interval = 500;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--branch") && v)
            branch = v, i++;
        else if (!strcmp(a, "--reason") && v)
            reason = v, i++;
        else if (!strcmp(a, "--interval-ms") && v) {
            char *end;
            interval = strtol(v, &end, 10);
            if (*end || interval < 50 || interval > 60000)
                return usage();
            i++;
        } else if (!strcmp(a, "--wait"))
            wait = true;
        else if (!strcmp(a, "--json"))
            as_json = true;
        else
            return usage();
    }
    if (!branch || !*branch)
        return usage();
    return rebuild(branch, wait, as_json, reason, interval);
}
