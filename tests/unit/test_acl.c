/* ACL policies: glob grammar and matching (against a reference matcher),
 * document validation, the decision table (acl_policies.txt,
 * acl_decisions.rules / .eval, pgbouncer hba_test style), and the shared
 * refreshed set under threads on a real SQLite database (run it under TSan:
 * docs/security.md). */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "auth/acl.h"
#include "auth/acl_store.h"
#include "http/app.h"
#include "http/routes.h"
#include "store/store.h"
#include "t.h"
#include "util/time.h"

/* ---- globs ---- */

static void glob_cases(void)
{
    static const struct {
        const char *glob, *branch;
        bool match;
    } cases[] = {
        {"main", "main", true},
        {"main", "mainline", false},
        {"main", "mai", false},
        {"main", "feature/main", false},
        {"team-a/**", "team-a/x", true},
        {"team-a/**", "team-a/x/y", true},
        {"team-a/**", "team-a/x/y/z", true},
        {"team-a/**", "team-a", false},
        {"team-a/**", "team-ab/x", false},
        {"team-a/**", "team-b/x", false},
        {"feature/*", "feature/x", true},
        {"feature/*", "feature/x/y", false},
        {"feature/*", "feature", false},
        {"feature/*", "feature/", true}, /* not a branch name, but the glob's answer is consistent */
        {"*", "main", true},
        {"*", "feature/x", false},
        {"**", "main", true},
        {"**", "feature/x/y", true},
        {"**/x", "feature/x", true},
        {"**/x", "a/b/c/x", true},
        {"**/x", "x", false},
        {"*/x", "feature/x", true},
        {"*/x", "a/b/x", false},
        {"sandbox/*/work", "sandbox/me/work", true},
        {"sandbox/*/work", "sandbox/me/you/work", false},
        {"sandbox/**/work", "sandbox/me/you/work", true},
        {"sandbox/**/work", "sandbox/work", false},
        {"sandbox/**work", "sandbox/work", true},
        {"release-*", "release-1.0", true},
        {"release-*", "release-1.0/hotfix", false},
        {"release-**", "release-1.0/hotfix", true},
        {"*-fix", "bug-fix", true},
        {"*-fix", "a/bug-fix", false},
        {"a*b*c", "abc", true},
        {"a*b*c", "axxbyyc", true},
        {"a*b*c", "axxbyy/c", false},
        {"a**b*c", "ax/xbyyc", true},
        {"v1.*", "v1.2", true},
        {"v1.*", "v1x2", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool m = oms_acl_glob_match(cases[i].glob, cases[i].branch);
        if (m != cases[i].match) {
            fprintf(stderr, "  glob %s on %s: %d, expected %d\n", cases[i].glob, cases[i].branch, m,
                    cases[i].match);
            t_failed_current = 1;
        }
    }
}

static void glob_grammar(void)
{
    const char *good[] = {"main", "team-a/**", "feature/*", "*", "**", "a*b", "v1.2", "x_y", "**/x",
                          "sandbox/*/work", "a**"};
    const char *bad[] = {"", "Main", "/main", "main/", "a//b", "a/../b", "a..b", "***", "a***", ".x", "-x",
                         "_x", "a b", "a\\b", "a?b", "a[b]", "é"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!oms_acl_glob_valid(good[i])) {
            fprintf(stderr, "  glob %s should be valid\n", good[i]);
            t_failed_current = 1;
        }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (oms_acl_glob_valid(bad[i])) {
            fprintf(stderr, "  glob \"%s\" should be invalid\n", bad[i]);
            t_failed_current = 1;
        }
    char long_glob[OMS_ACL_MAX_GLOB + 2];
    memset(long_glob, 'a', sizeof long_glob - 1);
    long_glob[sizeof long_glob - 1] = '\0';
    CHECK(!oms_acl_glob_valid(long_glob));
    long_glob[OMS_ACL_MAX_GLOB] = '\0';
    CHECK(oms_acl_glob_valid(long_glob));
}

/* The obvious recursive definition, exponential but fine for short inputs. */
static bool ref_match(const char *p, const char *s)
{
    if (!*p)
        return !*s;
    if (p[0] == '*' && p[1] == '*') {
        for (const char *t = s;; t++) {
            if (ref_match(p + 2, t))
                return true;
            if (!*t)
                return false;
        }
    }
    if (p[0] == '*') {
        for (const char *t = s;; t++) {
            if (ref_match(p + 1, t))
                return true;
            if (!*t || *t == '/')
                return false;
        }
    }
    return *s == *p && ref_match(p + 1, s + 1);
}

/* Compiled matching (all four shapes) against the reference on random
 * globs and names over a small alphabet, where the corner cases live. */
static void glob_matches_reference(void)
{
    static const char *const pieces[] = {"a", "b", "/", "*", "**"};
    unsigned seed = 12345;
    int checked = 0;
    for (int n = 0; n < 20000; n++) {
        char g[40] = "", s[24] = "";
        int gl = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 6;
        for (int i = 0; i < gl; i++)
            strcat(g, pieces[((seed = seed * 1103515245u + 12345u) >> 16) % 5]);
        int sl = (int)((seed = seed * 1103515245u + 12345u) >> 16) % 8;
        for (int i = 0; i < sl; i++)
            strncat(s, pieces[((seed = seed * 1103515245u + 12345u) >> 16) % 3], 1);
        if (!oms_acl_glob_valid(g))
            continue;
        checked++;
        if (oms_acl_glob_match(g, s) != ref_match(g, s)) {
            fprintf(stderr, "  glob %s on %s: compiled %d, reference %d\n", g, s, oms_acl_glob_match(g, s),
                    ref_match(g, s));
            t_failed_current = 1;
            return;
        }
    }
    CHECK(checked > 5000);
}

/* The same beyond 63 tokens, where the byte-per-state automaton runs. */
static void long_glob_matches_reference(void)
{
    static const char *const pieces[] = {"a", "b", "/", "*", "**"};
    char pad[64];
    memset(pad, 'x', 62);
    pad[62] = '\0';
    unsigned seed = 777;
    for (int n = 0; n < 5000; n++) {
        char g[120], s[100];
        snprintf(g, sizeof g, "%s", pad);
        snprintf(s, sizeof s, "%s", pad);
        int gl = 2 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 6;
        for (int i = 0; i < gl; i++)
            strcat(g, pieces[((seed = seed * 1103515245u + 12345u) >> 16) % 5]);
        int sl = (int)((seed = seed * 1103515245u + 12345u) >> 16) % 8;
        for (int i = 0; i < sl; i++)
            strncat(s, pieces[((seed = seed * 1103515245u + 12345u) >> 16) % 3], 1);
        if (!oms_acl_glob_valid(g))
            continue;
        if (oms_acl_glob_match(g, s) != ref_match(g, s)) {
            fprintf(stderr, "  glob %s on %s: compiled %d, reference %d\n", g, s, oms_acl_glob_match(g, s),
                    ref_match(g, s));
            t_failed_current = 1;
            return;
        }
    }
}

/* Many stars against a long near-miss: linear-time matching stays fast. */
static void glob_no_blowup(void)
{
    const char *g = "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b";
    char s[101];
    memset(s, 'a', 100);
    s[100] = '\0';
    CHECK(!oms_acl_glob_match(g, s));
    const char *g2 = "**a**a**a**a**a**a**a**a**a**a**a**a**a**a**a**a**b";
    CHECK(!oms_acl_glob_match(g2, s));
}

/* ---- documents ---- */

static int check_doc(const char *text)
{
    json_t *doc = json_loads(text, JSON_ALLOW_NUL, NULL); /* the pipeline refuses \u0000; be safe anyway */
    if (!doc)
        return 999;
    oms_error err;
    int rc = oms_acl_policy_check(doc, &err);
    json_decref(doc);
    return rc;
}

static void document_validation(void)
{
    CHECK_EQ_INT(check_doc("{\"subject\":\"role:developer\",\"effect\":\"deny\",\"permissions\":[\"schema:write\"],"
                           "\"branches\":[\"main\"],\"description\":\"freeze\"}"),
                 OMS_OK);
    CHECK_EQ_INT(check_doc("{\"subject\":\"user:alice@example.com\",\"effect\":\"allow\",\"permissions\":[\"acl:read\"],"
                           "\"branches\":[],\"issue_id\":\"OMS-1\",\"issue_ids\":[\"OMS-2\"]}"),
                 OMS_OK);
    const char *bad[] = {
        "[]",
        "{\"subject\":\"role:developer\",\"effect\":\"deny\",\"permissions\":[\"schema:write\"],\"branches\":[],\"x\":1}",
        "{\"subject\":\"role:developer\",\"effect\":\"deny\",\"permissions\":[\"schema:fly\"],\"branches\":[]}",
        "{\"subject\":\"role:developer\",\"effect\":\"deny\",\"permissions\":[\"public\"],\"branches\":[]}",
        "{\"subject\":\"role:developer\",\"effect\":\"deny\",\"permissions\":[],\"branches\":[]}",
        "{\"subject\":\"role:developer\",\"effect\":\"deny\",\"permissions\":[\"schema:write\",\"schema:write\"],"
        "\"branches\":[]}",
        "{\"subject\":\"role:developer\",\"effect\":\"deny\",\"permissions\":[\"schema:write\"]}",
        "{\"subject\":\"role:developer\",\"effect\":\"deny\",\"permissions\":[\"schema:write\"],\"branches\":[\"Main\"]}",
        "{\"subject\":\"role:developer\",\"effect\":\"deny\",\"permissions\":[\"schema:write\"],\"branches\":[\"a\",\"a\"]}",
        "{\"subject\":\"role:developer\",\"effect\":\"deny\",\"permissions\":[\"schema:write\"],\"branches\":\"main\"}",
        "{\"subject\":\"role:developer\",\"effect\":\"maybe\",\"permissions\":[\"schema:write\"],\"branches\":[]}",
        "{\"subject\":\"role:developer\",\"effect\":\"allow\\u0000\",\"permissions\":[\"schema:write\"],\"branches\":[]}",
        "{\"subject\":\"group:developer\",\"effect\":\"deny\",\"permissions\":[\"schema:write\"],\"branches\":[]}",
        "{\"subject\":\"role:\",\"effect\":\"deny\",\"permissions\":[\"schema:write\"],\"branches\":[]}",
        "{\"subject\":\"role:dev eloper\",\"effect\":\"deny\",\"permissions\":[\"schema:write\"],\"branches\":[]}",
        "{\"subject\":\"user:al ice\",\"effect\":\"deny\",\"permissions\":[\"schema:write\"],\"branches\":[]}",
        "{\"subject\":\"user:\",\"effect\":\"deny\",\"permissions\":[\"schema:write\"],\"branches\":[]}",
        "{\"subject\":\"user:a\\u0000b\",\"effect\":\"deny\",\"permissions\":[\"schema:write\"],\"branches\":[]}",
        "{\"subject\":\"developer\",\"effect\":\"deny\",\"permissions\":[\"schema:write\"],\"branches\":[]}",
        "{\"subject\":7,\"effect\":\"deny\",\"permissions\":[\"schema:write\"],\"branches\":[]}",
        "{\"subject\":\"role:developer\",\"effect\":\"deny\",\"permissions\":[\"schema:write\"],\"branches\":[],"
        "\"description\":5}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (check_doc(bad[i]) != OMS_EINVAL) {
            fprintf(stderr, "  document %zu should be refused: %s\n", i, bad[i]);
            t_failed_current = 1;
        }
    /* at most 64 globs */
    json_t *doc = json_pack("{s:s,s:s,s:[s],s:[]}", "subject", "role:viewer", "effect", "allow", "permissions",
                            "schema:write", "branches");
    json_t *br = json_object_get(doc, "branches");
    oms_error err;
    for (int i = 0; i < 64; i++)
        json_array_append_new(br, json_sprintf("b%d/**", i));
    CHECK_EQ_INT(oms_acl_policy_check(doc, &err), OMS_OK);
    json_array_append_new(br, json_string("b64"));
    CHECK_EQ_INT(oms_acl_policy_check(doc, &err), OMS_EINVAL);
    json_decref(doc);
}

static void ids(void)
{
    char a[OMS_ACL_ID_LEN + 1], b[OMS_ACL_ID_LEN + 1];
    oms_acl_new_id(a);
    oms_acl_new_id(b);
    CHECK(oms_acl_id_valid(a) && oms_acl_id_valid(b) && strcmp(a, b) != 0);
    CHECK(strncmp(a, "acl_", 4) == 0 && strlen(a) == 36);
    CHECK(!oms_acl_id_valid("acl_XYZ"));
    CHECK(!oms_acl_id_valid("lck_0123456789abcdef0123456789abcdef"));
}

/* ---- the decision table ---- */

static char *next_line(FILE *f, char *buf, size_t cap)
{
    while (fgets(buf, (int)cap, f)) {
        buf[strcspn(buf, "\r\n")] = '\0';
        if (buf[0] && buf[0] != '#')
            return buf;
    }
    return NULL;
}

/* "a,b" -> ["a","b"], "-" -> [] */
static char *json_list(const char *txt)
{
    json_t *a = json_array();
    if (strcmp(txt, "-") != 0) {
        char buf[512];
        snprintf(buf, sizeof buf, "%s", txt);
        for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
            json_array_append_new(a, json_string(t));
    }
    char *s = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    return s;
}

static oms_acl *table_set(void)
{
    FILE *f = fopen("tests/unit/acl_policies.txt", "r");
    CHECK(f != NULL);
    if (!f)
        return NULL;
    oms_acl *a = oms_acl_new(1, NULL);
    char line[512];
    while (next_line(f, line, sizeof line)) {
        char id[64], subject[128], effect[16], perms[256], branches[256];
        CHECK(sscanf(line, "%63s %127s %15s %255s %255s", id, subject, effect, perms, branches) == 5);
        char *pj = json_list(perms), *bj = json_list(branches);
        oms_error err;
        int rc = oms_acl_add(a, id, subject, effect, pj, bj, &err);
        if (rc)
            fprintf(stderr, "  policy %s: %s\n", id, err.msg);
        CHECK_EQ_INT(rc, OMS_OK);
        free(pj);
        free(bj);
    }
    fclose(f);
    CHECK_EQ_INT(oms_acl_seal(a), OMS_OK);
    return a;
}

static void decision_table(void)
{
    oms_acl *a = table_set();
    FILE *rules = fopen("tests/unit/acl_decisions.rules", "r");
    FILE *eval = fopen("tests/unit/acl_decisions.eval", "r");
    CHECK(a && rules && eval);
    if (!a || !rules || !eval)
        return;
    char rl[512], el[512];
    int n = 0;
    while (next_line(rules, rl, sizeof rl)) {
        n++;
        CHECK(next_line(eval, el, sizeof el) != NULL);
        char sub[64], roles_txt[256], perm_txt[64], branch[128];
        CHECK(sscanf(rl, "%63s %255s %63s %127s", sub, roles_txt, perm_txt, branch) == 4);
        const char *roles[16];
        size_t nroles = 0;
        if (strcmp(roles_txt, "-") != 0)
            for (char *save = NULL, *t = strtok_r(roles_txt, ",", &save); t && nroles < 16;
                 t = strtok_r(NULL, ",", &save))
                roles[nroles++] = t;
        oms_principal p = {.sub = sub, .roles = roles, .nroles = nroles,
                           .perms = oms_rbac_permissions(roles, nroles)};
        oms_perm perm;
        CHECK(oms_perm_parse(&perm, perm_txt) == 0);
        oms_acl_verdict v = oms_acl_decide(a, &p, perm, strcmp(branch, "-") == 0 ? NULL : branch);
        char got[128];
        snprintf(got, sizeof got, "%s%s%s", v.allowed ? "allow" : "deny", v.denied_by ? " " : "",
                 v.denied_by ? v.denied_by : "");
        if (strcmp(got, el) != 0) {
            fprintf(stderr, "  rule %d: %s -> %s, expected %s\n", n, rl, got, el);
            t_failed_current = 1;
        }
    }
    CHECK(next_line(eval, el, sizeof el) == NULL); /* same length */
    CHECK(n >= 40);
    fclose(rules);
    fclose(eval);
    oms_acl_unref(a);
}

/* Without a set (or with an empty one) the decision is RBAC's. */
static void empty_set_is_rbac(void)
{
    oms_acl *a = oms_acl_new(0, NULL);
    CHECK_EQ_INT(oms_acl_seal(a), OMS_OK);
    const char *roles[] = {"viewer"};
    oms_principal p = {.sub = "v", .roles = roles, .nroles = 1, .perms = oms_rbac_permissions(roles, 1)};
    for (int perm = OMS_PERM_SCHEMA_READ; perm < OMS_PERM__COUNT; perm++) {
        bool rbac = oms_rbac_allows(p.perms, (oms_perm)perm);
        CHECK(oms_acl_decide(a, &p, (oms_perm)perm, "main").allowed == rbac);
        CHECK(oms_acl_decide(NULL, &p, (oms_perm)perm, NULL).allowed == rbac);
    }
    CHECK(!oms_acl_decide(a, &p, OMS_PERM_AUTHENTICATED, NULL).allowed);
    oms_acl_unref(a);
}

static void stored_rows_are_checked(void)
{
    oms_acl *a = oms_acl_new(0, NULL);
    oms_error err;
    CHECK_EQ_INT(oms_acl_add(a, "acl_x", "role:viewer", "allow", "[\"schema:fly\"]", "[]", &err), OMS_EINVAL);
    CHECK_EQ_INT(oms_acl_add(a, "acl_x", "role:viewer", "allow", "[\"schema:write\"]", "[\"Bad\"]", &err),
                 OMS_EINVAL);
    CHECK_EQ_INT(oms_acl_add(a, "acl_x", "viewer", "allow", "[\"schema:write\"]", "[]", &err), OMS_EINVAL);
    CHECK_EQ_INT(oms_acl_add(a, "acl_x", "role:viewer", "allow", "not json", "[]", &err), OMS_EINVAL);
    CHECK_EQ_INT(oms_acl_count(a), 0);
    oms_acl_unref(a);
}

/* ---- the shared set, refreshed from a real database, under threads ---- */

typedef struct {
    oms_app *app;
    atomic_int *stop;
    int decisions, errors;
} worker_arg;

static const oms_route k_route = {.method = "POST", .pattern = "/api/v1/schemas/{branch}/{kind}",
                                  .perm = OMS_PERM_SCHEMA_WRITE, .audit_action = "x", .change = true};

/* One authorization as the pipeline makes it; *denied_by gets the deciding
 * policy id ("" when none). */
static int authorize_one(oms_app *app, const char *sub, const char *role, const char *branch, bool *allowed,
                         char denied_by[OMS_ACL_ID_LEN + 1])
{
    oms_acl_verdict v;
    oms_request req;
    memset(&req, 0, sizeof req);
    req.arena = oms_arena_new(0);
    req.start_ns = oms_mono_ns();
    req.app = app;
    req.route = &k_route;
    req.params[0] = branch;
    req.params[1] = "object-types";
    req.nparams = 2;
    const char *roles[] = {role};
    req.principal = (oms_principal){.sub = sub, .roles = roles, .nroles = 1, .perms = oms_rbac_permissions(roles, 1)};
    req.authenticated = true;
    oms_error err;
    int rc = oms_acl_authorize(oms_req_ctx(&req), req.route->perm, &v, &err);
    if (rc)
        fprintf(stderr, "  authorize: %s\n", err.msg);
    *allowed = rc == OMS_OK && v.allowed;
    snprintf(denied_by, OMS_ACL_ID_LEN + 1, "%s", rc == OMS_OK && v.denied_by ? v.denied_by : "");
    oms_arena_free(req.arena);
    return rc;
}

static void *worker(void *p)
{
    worker_arg *w = p;
    while (!atomic_load(w->stop)) {
        bool allowed;
        char by[OMS_ACL_ID_LEN + 1];
        if (authorize_one(w->app, "dev", "developer", "main", &allowed, by))
            w->errors++;
        w->decisions++;
    }
    return NULL;
}

static int exec(oms_store *s, const char *sql)
{
    oms_dbconn *c;
    oms_error err;
    int rc = oms_db_conn(s->db, &c, &err);
    if (rc == OMS_OK)
        rc = oms_db_exec(c, sql, NULL, 0, NULL, &err);
    if (rc)
        fprintf(stderr, "  %s: %s\n", sql, err.msg);
    return rc;
}

static void shared_set_follows_the_database(void)
{
    char dir[] = "/tmp/oms-acl-test.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char url[128];
    snprintf(url, sizeof url, "sqlite:%s/oms.db", dir);
    oms_store *s = NULL;
    oms_error err;
    int applied = 0;
    CHECK_EQ_INT(oms_store_open(&s, url, 5000, &err), OMS_OK);
    if (!s)
        return;
    CHECK_EQ_INT(oms_store_migrate(s, &applied, &err), OMS_OK);
    oms_app app;
    memset(&app, 0, sizeof app);
    app.store = s;

    bool allowed;
    char by[OMS_ACL_ID_LEN + 1];
    CHECK_EQ_INT(authorize_one(&app, "dev", "developer", "main", &allowed, by), OMS_OK);
    CHECK(allowed);

    atomic_int stop = 0;
    enum { NT = 4 };
    pthread_t th[NT];
    worker_arg args[NT];
    for (int i = 0; i < NT; i++) {
        args[i] = (worker_arg){&app, &stop, 0, 0};
        pthread_create(&th[i], NULL, worker, &args[i]);
    }
    /* Changes while the workers decide: each one bumps the version, as the
     * handlers do, and the set is swapped under them. */
    char sql[512];
    for (int i = 0; i < 20; i++) {
        snprintf(sql, sizeof sql,
                 "INSERT INTO acl_policies (id, subject, effect, permissions, branches, description, revision, etag,"
                 " created_at, created_by, updated_at, updated_by) VALUES ('acl_t%02d', 'role:developer', '%s',"
                 " '[\"schema:write\"]', '[\"%s\"]', '', 1, 'e', %d, 't', %d, 't')",
                 i, i == 19 ? "deny" : "allow", i == 19 ? "main" : "other/**", i, i);
        CHECK_EQ_INT(exec(s, sql), OMS_OK);
        CHECK_EQ_INT(exec(s, "UPDATE acl_version SET version = version + 1 WHERE id = 1"), OMS_OK);
        usleep(2000);
    }
    /* The last change (a deny on main) is visible to the very next decision. */
    CHECK_EQ_INT(authorize_one(&app, "dev", "developer", "main", &allowed, by), OMS_OK);
    CHECK(!allowed);
    CHECK_EQ_STR(by, "acl_t19");
    atomic_store(&stop, 1);
    int total = 0;
    for (int i = 0; i < NT; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ_INT(args[i].errors, 0);
        total += args[i].decisions;
    }
    CHECK(total > 0);
    CHECK_EQ_INT(exec(s, "DELETE FROM acl_policies WHERE id = 'acl_t19'"), OMS_OK);
    CHECK_EQ_INT(exec(s, "UPDATE acl_version SET version = version + 1 WHERE id = 1"), OMS_OK);
    CHECK_EQ_INT(authorize_one(&app, "dev", "developer", "main", &allowed, by), OMS_OK);
    CHECK(allowed);
    /* A viewer gets schema:write from the allow policies, on their glob only. */
    CHECK_EQ_INT(authorize_one(&app, "vic", "viewer", "other/x", &allowed, by), OMS_OK);
    CHECK(!allowed); /* the policies name role:developer */

    /* One version check per request: a handler's second decision in the
     * same request sees the policies the pipeline's decision saw; the next
     * request sees the change. */
    oms_request req;
    memset(&req, 0, sizeof req);
    req.arena = oms_arena_new(0);
    req.start_ns = oms_mono_ns();
    req.app = &app;
    req.route = &k_route;
    req.params[0] = "main";
    req.params[1] = "object-types";
    req.nparams = 2;
    const char *dev_roles[] = {"developer"};
    req.principal = (oms_principal){.sub = "dev", .roles = dev_roles, .nroles = 1,
                                    .perms = oms_rbac_permissions(dev_roles, 1)};
    req.authenticated = true;
    oms_acl_verdict v;
    CHECK_EQ_INT(oms_acl_authorize(oms_req_ctx(&req), req.route->perm, &v, &err), OMS_OK);
    CHECK(v.allowed);
    CHECK_EQ_INT(exec(s, "INSERT INTO acl_policies (id, subject, effect, permissions, branches, description, revision,"
                         " etag, created_at, created_by, updated_at, updated_by) VALUES ('acl_lock', 'role:developer',"
                         " 'deny', '[\"lock:admin\",\"schema:write\"]', '[]', '', 1, 'e', 99, 't', 99, 't')"),
                 OMS_OK);
    CHECK_EQ_INT(exec(s, "UPDATE acl_version SET version = version + 1 WHERE id = 1"), OMS_OK);
    CHECK_EQ_INT(oms_acl_check(oms_req_ctx(&req), OMS_PERM_SCHEMA_WRITE, "main", &v, &err), OMS_OK);
    CHECK(v.allowed);
    oms_arena_free(req.arena);
    CHECK_EQ_INT(authorize_one(&app, "dev", "developer", "feature/x", &allowed, by), OMS_OK);
    CHECK(!allowed);
    CHECK_EQ_STR(by, "acl_lock");
    oms_store_close(s);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

int main(void)
{
    static const t_case cases[] = {T(glob_cases),         T(glob_grammar),        T(glob_matches_reference),
                                   T(long_glob_matches_reference),
                                   T(glob_no_blowup),     T(document_validation), T(ids),
                                   T(decision_table),     T(empty_set_is_rbac),   T(stored_rows_are_checked),
                                   T(shared_set_follows_the_database)};
    return T_RUN("acl", cases);
}
