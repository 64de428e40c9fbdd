/* Authorization decision cost (SPEC §12: an RBAC decision <= 1 us): RBAC
 * alone, and RBAC refined by compiled ACL policy sets of 10 and 100
 * policies (a realistic mix, and a worst case where every policy names the
 * asked permission and the caller's role and its globs must all be tried).
 * Then the whole per-request path of the server, oms_acl_authorize (the
 * one-row version check on the thread's connection + the decision), on
 * each database URL given, beside the raw version query alone.
 *
 *   rbac_bench [DATABASE_URL ...]      (bench/rbac_bench.sh builds and runs it)
 *
 * Prints one line per measurement: name, ns per operation, the best of 5
 * runs (the mean of each run; for the reload, the mean of 20). */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/acl.h"
#include "auth/acl_store.h"
#include "auth/rbac.h"
#include "http/app.h"
#include "http/routes.h"
#include "store/store.h"

static volatile long g_sink;

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static unsigned g_seed = 2463534242u;
static unsigned rnd(unsigned n)
{
    g_seed ^= g_seed << 13;
    g_seed ^= g_seed >> 17;
    g_seed ^= g_seed << 5;
    return g_seed % n;
}

/* ---- the queries: a rotating mix of principals, permissions, branches ---- */

#define NQ 64
typedef struct {
    oms_principal p;
    oms_perm perm;
    const char *branch;
} query;

static const char *k_roles[][2] = {{"developer", NULL}, {"viewer", NULL}, {"reviewer", NULL}, {"admin", NULL},
                                   {"viewer", "developer"}};
static const oms_perm k_perms[] = {OMS_PERM_SCHEMA_WRITE, OMS_PERM_SCHEMA_READ, OMS_PERM_BRANCH_CREATE,
                                   OMS_PERM_PROPOSAL_MERGE, OMS_PERM_LOCK_WRITE};
static const char *k_branches[] = {"main", "feature/x", "team-3/a/b", "release-7", "sandbox/u1/work", NULL,
                                   "team-42/deep/er/branch"};
static char k_subs[8][8];

static void make_queries(query *q)
{
    for (int i = 0; i < 8; i++)
        snprintf(k_subs[i], sizeof k_subs[i], "u%d", i);
    for (int i = 0; i < NQ; i++) {
        const char **roles = k_roles[rnd(5)];
        size_t nroles = roles[1] ? 2 : 1;
        q[i].p = (oms_principal){.sub = k_subs[rnd(8)], .roles = roles, .nroles = nroles,
                                 .perms = oms_rbac_permissions(roles, nroles)};
        q[i].perm = k_perms[rnd(5)];
        q[i].branch = k_branches[rnd(7)];
    }
}

/* ---- policy sets ---- */

static const char *const k_perm_names[] = {"schema:write", "schema:read", "branch:create", "proposal:merge",
                                           "lock:write", "acl:read", "index:rebuild"};

/* A mix like a real installation's: role and user subjects, mostly allows,
 * globs of every shape. */
static oms_acl *typical_set(int n)
{
    oms_acl *a = oms_acl_new(1, NULL);
    for (int i = 0; i < n; i++) {
        char id[40], subject[40], perms[128], branches[256];
        snprintf(id, sizeof id, "acl_%032d", i);
        if (rnd(3) == 0)
            snprintf(subject, sizeof subject, "user:u%u", rnd(8));
        else
            snprintf(subject, sizeof subject, "role:%s", k_roles[rnd(4)][0]);
        snprintf(perms, sizeof perms, "[\"%s\"]", k_perm_names[rnd(7)]);
        switch (rnd(5)) {
        case 0: snprintf(branches, sizeof branches, "[\"team-%u/**\"]", rnd(50)); break;
        case 1: snprintf(branches, sizeof branches, "[\"feature/*\",\"release-%u\"]", rnd(10)); break;
        case 2: snprintf(branches, sizeof branches, "[\"main\"]"); break;
        case 3: snprintf(branches, sizeof branches, "[\"sandbox/*/work\"]"); break;
        default: snprintf(branches, sizeof branches, "[]"); break;
        }
        oms_error err;
        if (oms_acl_add(a, id, subject, rnd(4) == 0 ? "deny" : "allow", perms, branches, &err)) {
            fprintf(stderr, "policy: %s\n", err.msg);
            exit(1);
        }
    }
    oms_acl_seal(a);
    return a;
}

/* Every policy denies schema:write to role:developer on globs that do not
 * match (two per policy, one a general NFA glob): each decision for a
 * developer's write tries them all, then RBAC. */
static oms_acl *worst_set(int n)
{
    oms_acl *a = oms_acl_new(1, NULL);
    for (int i = 0; i < n; i++) {
        char id[40], branches[128];
        snprintf(id, sizeof id, "acl_%032d", i);
        snprintf(branches, sizeof branches, "[\"frozen-%d/**\",\"*/legacy-%d/*-old\"]", i, i);
        oms_error err;
        if (oms_acl_add(a, id, "role:developer", "deny", "[\"schema:write\"]", branches, &err)) {
            fprintf(stderr, "policy: %s\n", err.msg);
            exit(1);
        }
    }
    oms_acl_seal(a);
    return a;
}

/* Each figure is the best of REPEATS runs: the machine is shared, and the
 * quietest run is the closest to the cost itself. */
#define REPEATS 5

static double bench_decide_once(const oms_acl *a, const query *q, long iters)
{
    long allowed = 0;
    double t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        const query *x = &q[i & (NQ - 1)];
        allowed += oms_acl_decide(a, &x->p, x->perm, x->branch).allowed;
    }
    double t = now_ns() - t0;
    g_sink += allowed;
    return t / (double)iters;
}

static double bench_decide(const oms_acl *a, const query *q, long iters)
{
    double best = 1e30;
    for (int r = 0; r < REPEATS; r++) {
        double t = bench_decide_once(a, q, iters);
        best = t < best ? t : best;
    }
    return best;
}

static double bench_rbac_once(const query *q, long iters)
{
    long allowed = 0;
    double t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        const query *x = &q[i & (NQ - 1)];
        allowed += oms_rbac_allows(x->p.perms, x->perm);
        __asm__ volatile("" ::: "memory"); /* keep the loop a loop of decisions */
    }
    double t = now_ns() - t0;
    g_sink += allowed;
    return t / (double)iters;
}

static double bench_rbac(const query *q, long iters)
{
    double best = 1e30;
    for (int r = 0; r < REPEATS; r++) {
        double t = bench_rbac_once(q, iters);
        best = t < best ? t : best;
    }
    return best;
}

/* ---- the per-request path on a database ---- */

static int setup_db(const char *url, oms_store **out, int npolicies)
{
    oms_error err;
    int applied;
    if (oms_store_open(out, url, 5000, &err) || oms_store_migrate(*out, &applied, &err)) {
        fprintf(stderr, "%s: %s\n", url, err.msg);
        return -1;
    }
    oms_dbconn *c;
    oms_db_conn((*out)->db, &c, &err);
    oms_db_exec(c, "DELETE FROM acl_policies", NULL, 0, NULL, &err);
    for (int i = 0; i < npolicies; i++) {
        char sql[512];
        snprintf(sql, sizeof sql,
                 "INSERT INTO acl_policies (id, subject, effect, permissions, branches, description, revision, etag,"
                 " created_at, created_by, updated_at, updated_by) VALUES ('acl_%032d', 'role:viewer', 'allow',"
                 " '[\"schema:write\"]', '[\"team-%d/**\"]', '', 1, 'e', %d, 'bench', %d, 'bench')",
                 i, i, i, i);
        if (oms_db_exec(c, sql, NULL, 0, NULL, &err)) {
            fprintf(stderr, "insert: %s\n", err.msg);
            return -1;
        }
    }
    return oms_acl_db_bump(c, &err);
}

static void bench_db(const char *url, long iters)
{
    oms_store *s = NULL;
    if (setup_db(url, &s, 100))
        exit(1);
    const char *name = oms_db_backend_of(s->db) == OMS_DB_PG ? "PostgreSQL" : "SQLite";
    oms_error err;
    oms_dbconn *c;
    oms_db_conn(s->db, &c, &err);

    /* the raw version query */
    int64_t v = 0;
    for (int i = 0; i < 200; i++)
        oms_acl_db_version(c, &v, &err);
    double raw = 1e30, t0;
    for (int r = 0; r < REPEATS; r++) {
        t0 = now_ns();
        for (long i = 0; i < iters; i++)
            oms_acl_db_version(c, &v, &err);
        double t = (now_ns() - t0) / (double)iters;
        raw = t < raw ? t : raw;
    }

    /* reload: the version moved, so the next authorization recompiles */
    oms_acl *a = NULL;
    t0 = now_ns();
    for (int i = 0; i < 20; i++) {
        oms_acl_db_load(c, NULL, &a, &err);
        oms_acl_unref(a);
    }
    double load = (now_ns() - t0) / 20.0;

    /* the whole authorization as the pipeline makes it */
    static const oms_route route = {.method = "POST", .pattern = "/api/v1/schemas/{branch}/{kind}",
                                    .perm = OMS_PERM_SCHEMA_WRITE, .audit_action = "x", .change = true};
    oms_app app;
    memset(&app, 0, sizeof app);
    app.store = s;
    oms_request req;
    memset(&req, 0, sizeof req);
    req.arena = oms_arena_new(0);
    req.app = &app;
    req.route = &route;
    req.params[0] = "team-7/x";
    req.params[1] = "object-types";
    req.nparams = 2;
    const char *roles[] = {"viewer"};
    req.principal = (oms_principal){.sub = "vic", .roles = roles, .nroles = 1, .perms = oms_rbac_permissions(roles, 1)};
    long allowed = 0;
    oms_acl_verdict verdict;
    for (int i = 0; i < 200; i++)
        oms_acl_authorize(&req, &verdict, &err);
    double full = 1e30;
    for (int r = 0; r < REPEATS; r++) {
        t0 = now_ns();
        for (long i = 0; i < iters; i++) {
            if (oms_acl_authorize(&req, &verdict, &err)) {
                fprintf(stderr, "authorize: %s\n", err.msg);
                exit(1);
            }
            allowed += verdict.allowed;
        }
        double t = (now_ns() - t0) / (double)iters;
        full = t < full ? t : full;
    }
    g_sink += allowed;
    if (allowed != iters * REPEATS) {
        fprintf(stderr, "unexpected decision\n");
        exit(1);
    }
    printf("%-58s %10.0f ns\n", oms_arena_printf(req.arena, "%s: SELECT version (raw, one row)", name), raw);
    printf("%-58s %10.0f ns\n", oms_arena_printf(req.arena, "%s: oms_acl_authorize, 100 policies (check + decide)", name), full);
    printf("%-58s %10.0f ns\n", oms_arena_printf(req.arena, "%s: reload + compile 100 policies", name), load);
    oms_arena_free(req.arena);
    oms_store_close(s);
}

int main(int argc, char **argv)
{
    long iters = getenv("RBAC_BENCH_ITERATIONS") ? atol(getenv("RBAC_BENCH_ITERATIONS")) : 2000000;
    query q[NQ];
    make_queries(q);
    oms_acl *empty = oms_acl_new(1, NULL);
    oms_acl_seal(empty);
    oms_acl *t10 = typical_set(10), *t100 = typical_set(100), *w10 = worst_set(10), *w100 = worst_set(100);

    /* a developer writing, every time: the worst case's target */
    query dev[NQ];
    const char *droles[] = {"developer"};
    for (int i = 0; i < NQ; i++)
        dev[i] = (query){{.sub = "dev", .roles = droles, .nroles = 1, .perms = oms_rbac_permissions(droles, 1)},
                         OMS_PERM_SCHEMA_WRITE, k_branches[i % 5]};

    bench_decide(t100, q, iters / 10); /* warm */
    printf("%-58s %10.1f ns\n", "RBAC alone (one AND)", bench_rbac(q, iters));
    printf("%-58s %10.1f ns\n", "RBAC + ACL, no policies", bench_decide(empty, q, iters));
    printf("%-58s %10.1f ns\n", "RBAC + ACL, 10 policies (mixed)", bench_decide(t10, q, iters));
    printf("%-58s %10.1f ns\n", "RBAC + ACL, 100 policies (mixed)", bench_decide(t100, q, iters));
    printf("%-58s %10.1f ns\n", "RBAC + ACL, 10 policies (worst case: all tried)", bench_decide(w10, dev, iters));
    printf("%-58s %10.1f ns\n", "RBAC + ACL, 100 policies (worst case: all tried)", bench_decide(w100, dev, iters / 10));
    oms_acl_unref(empty);
    oms_acl_unref(t10);
    oms_acl_unref(t100);
    oms_acl_unref(w10);
    oms_acl_unref(w100);

    long db_iters = getenv("RBAC_BENCH_DB_ITERATIONS") ? atol(getenv("RBAC_BENCH_DB_ITERATIONS")) : 5000;
    for (int i = 1; i < argc; i++)
        bench_db(argv[i], db_iters);
    return 0;
}
