/* A route added to the table is covered by the pipeline and the change
 * transaction with no other edit. new_change_route_is_enforced registers a
 * route of its own next to the application's, starts the real server
 * in-process, and checks that the new route refuses a change without an
 * issue reference before its handler ever runs. new_change_route_gets_the_
 * change_transaction gives a new route a handler that does what every change
 * handler does (one step through oms_change_run, src/txn/change.h) and
 * checks over HTTP that it is refused by another holder's lock (423, nothing
 * written), let through by an approved lock override that it consumes, and
 * recorded by one audit event. a_declared_resource_is_lock_checked gives a
 * new route the key spec OMS_TOUCH_RESOURCE ({kind}/{api_name}) and a step
 * that reports nothing: another holder's lock on that resource still refuses
 * it (423, nothing written), from the table alone. (tests/unit/
 * test_change_txn.c drives the helper directly: issue keys, rollback,
 * retry.) */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth/jwt.h"
#include "governance/issue_check.h"
#include "http/app.h"
#include "http/request.h"
#include "infra/log.h"
#include "store/db.h"
#include "t.h"
#include "txn/change.h"
#include "util/time.h"

/* Route entries leave their optional trailing fields out. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#define SECRET "Zr8Qm2Lx6Vp4Tn9Kw3Hj7Fd1Gs5Bc0Ya"

static atomic_int g_calls;

static int h_touch(oms_request *req)
{
    atomic_fetch_add(&g_calls, 1);
    return oms_resp_json(req, 200, json_pack("{s:b}", "touched", 1));
}

/* ---- a new change route: one step through the change transaction ---- */

static atomic_int g_steps;

/* What both steps write: one row named after the request. */
static int insert_touch(oms_dbconn *c, const char *name, oms_change_out *out, oms_error *err)
{
    atomic_fetch_add(&g_steps, 1);
    oms_dbparam p[] = {DBP_TEXT(name)};
    int rc = oms_db_exec(c, "INSERT INTO txn_touch (name) VALUES ($1)", p, 1, NULL, err);
    out->resource_kind = "touches";
    out->resource_id = name;
    out->status = 201;
    return rc;
}

static int touch_step(oms_dbconn *c, oms_ctx *ctx, void *arg, oms_change_out *out, oms_error *err)
{
    const char *name = arg;
    int rc = insert_touch(c, name, out, err);
    if (rc)
        return rc;
    out->touched[out->ntouched++] = oms_arena_printf(ctx->arena, "touches/%s", name);
    out->detail = json_pack("{s:s}", "touched", name);
    return OMS_OK;
}

/* ---- a route whose table declares {kind}/{api_name}; its step reports nothing ---- */

static int silent_step(oms_dbconn *c, oms_ctx *ctx, void *arg, oms_change_out *out, oms_error *err)
{
    return insert_touch(c, arg, out, err); /* out->touched left empty: the step "forgot" its resource */
}

/* What every change handler does: context -> one change -> response. */
static int run_change(oms_request *req, oms_change_fn step)
{
    oms_ctx *ctx = oms_req_ctx(req);
    const char *name = ctx->request_id;
    oms_change_spec spec = {.branch = ctx->branch, .check_locks = true, .step = step, .arg = (void *)name};
    oms_change_out out;
    oms_error err;
    int rc = oms_change_run(ctx, &spec, &out, &err);
    if (rc)
        return oms_resp_error(req, rc, &err);
    return oms_resp_json(req, 201, json_pack("{s:s}", "touched", name));
}

static int h_txn_touch(oms_request *req) { return run_change(req, touch_step); }
static int h_keyed(oms_request *req) { return run_change(req, silent_step); }

/* ---- the client side ---- */

/* One request; returns the status and puts the body (parsed) in *body. */
static int http_json(unsigned port, const char *method, const char *path, const char *token, const char *headers,
                     const char *json, json_t **body)
{
    *body = NULL;
    char req[8192];
    snprintf(req, sizeof req,
             "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer %s\r\n%s"
             "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
             method, path, token, headers, strlen(json), json);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || write(fd, req, strlen(req)) < 0) {
        close(fd);
        return -1;
    }
    static char buf[65536];
    size_t got = 0;
    ssize_t n;
    while (got < sizeof buf - 1 && (n = read(fd, buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)n;
    close(fd);
    buf[got] = '\0';
    if (got < 12)
        return -1;
    const char *b = strstr(buf, "\r\n\r\n");
    if (b)
        *body = json_loads(b + 4, 0, NULL);
    return atoi(buf + 9);
}

/* A POST whose body is not looked at: its status. */
static int post(unsigned port, const char *path, const char *token, const char *headers, const char *json)
{
    json_t *body = NULL;
    int status = http_json(port, "POST", path, token, headers, json, &body);
    json_decref(body);
    return status;
}

static char *token_for(const char *sub, const char *role)
{
    const char *roles[] = {role};
    char *token = NULL;
    oms_error err;
    CHECK_EQ_INT(oms_jwt_sign_hmac(&token, OMS_JWT_HS256, (const unsigned char *)SECRET, strlen(SECRET), sub, roles, 1,
                                   oms_now_ms() / 1000, 600, NULL, NULL, &err),
                 OMS_OK);
    return token;
}

/* ---- the database side ---- */

static long long count(oms_store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The one number a SELECT count(*) (formatted from fmt) answers, -1 on failure. */
static long long count(oms_store *s, const char *fmt, ...)
{
    char sql[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    oms_dbconn *c;
    oms_dbres *r = NULL;
    oms_error err;
    long long v = -1;
    if (oms_db_conn(s->db, &c, &err) == OMS_OK && oms_db_exec(c, sql, NULL, 0, &r, &err) == OMS_OK && r->nrows == 1)
        v = oms_dbres_int(r, 0, 0);
    else
        fprintf(stderr, "  %s: %s\n", sql, err.msg);
    oms_dbres_free(r);
    return v;
}

static long long touched(oms_store *s, const char *name)
{
    return count(s, "SELECT count(*) FROM txn_touch WHERE name = '%s'", name);
}

/* A branch from main, and a maintenance lock of another holder (`ops`) on it. */
static void branch_with_lock(unsigned port, const char *branch, const char *lock_json)
{
    char *dev = token_for("dev", "developer"), *ops = token_for("ops", "developer");
    char json[256];
    snprintf(json, sizeof json, "{\"name\": \"%s\", \"from\": \"main\"}", branch);
    CHECK_EQ_INT(post(port, "/api/v1/branches", dev, "", json), 201);
    CHECK_EQ_INT(post(port, "/api/v1/locks", ops, "", lock_json), 201);
    free(dev);
    free(ops);
}

/* The request `id` was refused 423 locked after its step ran: its work was
 * rolled back and no success recorded. `body` is the answer (taken). */
static void refused_locked(oms_store *store, const char *id, int steps_before, json_t *body)
{
    CHECK_EQ_STR(json_string_value(json_object_get(body, "code")), "locked");
    json_decref(body);
    CHECK_EQ_INT(atomic_load(&g_steps), steps_before + 1);
    CHECK_EQ_INT(touched(store, id), 0);
    CHECK_EQ_INT(count(store, "SELECT count(*) FROM audit_events WHERE request_id = '%s' AND outcome = 'success'", id),
                 0);
}

#define TXN "/api/v1/test-only/feature%2Fx/txn"
#define JUSTIFICATION "Production incident: the maintenance lock blocks an urgent schema fix."

static void new_route_through_the_change_transaction(unsigned port, oms_store *store)
{
    char *dev = token_for("dev", "developer"), *sec = token_for("sec", "security_officer");
    json_t *body = NULL;
    /* with an issue reference: committed, one audit event */
    CHECK_EQ_INT(post(port, TXN, dev, "X-Issue-ID: OMS-1\r\nX-Request-ID: txn-first\r\n", "{}"), 201);
    CHECK_EQ_INT(touched(store, "txn-first"), 1);
    CHECK_EQ_INT(count(store, "SELECT count(*) FROM audit_events WHERE action = 'test.txn' AND outcome = 'success'"
                              " AND request_id = 'txn-first' AND resource_id = 'txn-first' AND http_status = 201"),
                 1);

    /* another holder's lock on the branch: 423, nothing written */
    branch_with_lock(port, "feature/x",
                     "{\"branch\": \"feature/x\", \"scope\": \"branch\", \"kind\": \"maintenance\", \"reason\": \"test\"}");
    int steps = atomic_load(&g_steps);
    CHECK_EQ_INT(http_json(port, "POST", TXN, dev, "X-Issue-ID: OMS-1\r\nX-Request-ID: txn-locked\r\n", "{}", &body),
                 423);
    refused_locked(store, "txn-locked", steps, body);

    /* an approved lock override lets one change through, and is used */
    CHECK_EQ_INT(http_json(port, "POST", "/api/v1/overrides", dev, "",
                           "{\"kind\": \"lock\", \"branch\": \"feature/x\", \"justification\": \"" JUSTIFICATION
                           "\", \"incident\": \"INC-1\", \"ttl_seconds\": 600}",
                           &body),
                 201);
    char oid[128] = "";
    const char *id = json_string_value(json_object_get(body, "id"));
    CHECK(id != NULL);
    snprintf(oid, sizeof oid, "%s", id ? id : "");
    json_decref(body);
    char path[256], hdr[256];
    snprintf(path, sizeof path, "/api/v1/overrides/%s/approve", oid);
    CHECK_EQ_INT(post(port, path, sec, "", "{}"), 200);
    snprintf(hdr, sizeof hdr, "X-Issue-ID: OMS-1\r\nX-Request-ID: txn-override\r\nX-Override-ID: %s\r\n", oid);
    CHECK_EQ_INT(post(port, TXN, dev, hdr, "{}"), 201);
    CHECK_EQ_INT(touched(store, "txn-override"), 1);
    CHECK_EQ_INT(count(store,
                       "SELECT count(*) FROM overrides WHERE id = '%s' AND state = 'used'"
                       " AND used_request_id = 'txn-override'",
                       oid),
                 1);
    CHECK_EQ_INT(count(store,
                       "SELECT count(*) FROM audit_events WHERE action = 'test.txn' AND request_id = 'txn-override'"
                       " AND override_id = '%s'",
                       oid),
                 1);
    /* used once */
    snprintf(hdr, sizeof hdr, "X-Issue-ID: OMS-1\r\nX-Request-ID: txn-again\r\nX-Override-ID: %s\r\n", oid);
    CHECK_EQ_INT(post(port, TXN, dev, hdr, "{}"), 403);
    CHECK_EQ_INT(touched(store, "txn-again"), 0);
    free(dev);
    free(sec);
}

#define KEYED(api_name) "/api/v1/test-only/feature%2Fy/object-types/" api_name "/keyed"

static void a_declared_resource_is_lock_checked(unsigned port, oms_store *store)
{
    char *dev = token_for("dev", "developer");
    json_t *body = NULL;
    branch_with_lock(port, "feature/y",
                     "{\"branch\": \"feature/y\", \"scope\": \"resource\", \"resource_type\": \"object-types\","
                     " \"resource_id\": \"Widget\", \"kind\": \"maintenance\", \"reason\": \"test\"}");
    /* the locked resource: refused although the step reported nothing */
    int steps = atomic_load(&g_steps);
    CHECK_EQ_INT(http_json(port, "POST", KEYED("Widget"), dev, "X-Issue-ID: OMS-1\r\nX-Request-ID: keyed-locked\r\n",
                           "{}", &body),
                 423);
    CHECK_EQ_STR(json_string_value(json_array_get(json_object_get(body, "blocked_resources"), 0)),
                 "object-types/Widget");
    refused_locked(store, "keyed-locked", steps, body);
    /* another resource of the same branch is free: the key is the resource */
    CHECK_EQ_INT(post(port, KEYED("Gadget"), dev, "X-Issue-ID: OMS-1\r\nX-Request-ID: keyed-free\r\n", "{}"), 201);
    CHECK_EQ_INT(touched(store, "keyed-free"), 1);
    CHECK_EQ_INT(count(store, "SELECT count(*) FROM audit_events WHERE action = 'test.keyed' AND outcome = 'success'"
                              " AND request_id = 'keyed-free'"),
                 1);
    free(dev);
}

/* The fixture: the real server in-process on a fresh SQLite database, with
 * the application's route table plus the test's own routes and the table
 * their steps write. NULL when it could not start. */
typedef struct {
    char dir[32];
    oms_app app;
    oms_route *routes;
    oms_server *srv;
} fixture;

static oms_server *fixture_start(fixture *f)
{
    snprintf(f->dir, sizeof f->dir, "/tmp/oms-change-route-XXXXXX");
    CHECK(mkdtemp(f->dir) != NULL);
    char dburl[128];
    snprintf(dburl, sizeof dburl, "DATABASE_URL=sqlite:%s/oms.db", f->dir);
    char *argv[] = {"oms", NULL};
    char *env[] = {dburl, "JWT_SECRET=" SECRET, "OMS_LISTEN=127.0.0.1:0", "OMS_LOG_LEVEL=off", "OMS_WORKERS=1", NULL};
    int argc = 1;
    oms_error err;
    oms_app *app = &f->app;
    CHECK_EQ_INT(oms_config_load(&app->cfg, &argc, argv, env, &err), OMS_OK);
    oms_log_set_level("off");
    oms_jwt_config jc = {.alg = OMS_JWT_HS256, .secret = (const unsigned char *)SECRET, .secret_len = strlen(SECRET),
                         .leeway = OMS_JWT_LEEWAY};
    CHECK_EQ_INT(oms_jwt_verifier_new(&app->jwt, &jc, &err), OMS_OK);
    CHECK_EQ_INT(oms_issue_check_configure(app->cfg, &err), OMS_OK);

    size_t n = oms_app_routes_count;
    oms_route *routes = f->routes = calloc(n + 4, sizeof *routes);
    memcpy(routes, oms_app_routes, n * sizeof *routes);
    routes[n] = (oms_route){"POST", "/api/v1/test-only/{branch}/touch", h_touch, OMS_PERM_SCHEMA_WRITE,
                            "test.touch", true, OMS_TOUCH_NONE};
    routes[n + 1] = (oms_route){"POST", "/api/v1/test-only/{branch}/look", h_touch, OMS_PERM_SCHEMA_READ, NULL, false};
    routes[n + 2] = (oms_route){"POST", "/api/v1/test-only/{branch}/txn", h_txn_touch, OMS_PERM_SCHEMA_WRITE,
                                "test.txn", true, OMS_TOUCH_BODY};
    routes[n + 3] = (oms_route){"POST", "/api/v1/test-only/{branch}/{kind}/{api_name}/keyed", h_keyed,
                                OMS_PERM_SCHEMA_WRITE, "test.keyed", true, OMS_TOUCH_RESOURCE};
    CHECK_EQ_INT(oms_routes_new(&app->routes, routes, n + 4, &err), OMS_OK);
    CHECK_EQ_INT(oms_store_open(&app->store, dburl + strlen("DATABASE_URL="), 5000, &err), OMS_OK);
    int applied;
    CHECK_EQ_INT(oms_store_migrate(app->store, &applied, &err), OMS_OK);
    oms_dbconn *c;
    CHECK_EQ_INT(oms_db_conn(app->store->db, &c, &err), OMS_OK);
    CHECK_EQ_INT(oms_db_exec(c, "CREATE TABLE txn_touch (name TEXT PRIMARY KEY)", NULL, 0, NULL, &err), OMS_OK);
    CHECK_EQ_INT(oms_server_start(app, &f->srv, &err), OMS_OK);
    return f->srv;
}

static void fixture_stop(fixture *f)
{
    oms_server_stop(f->srv);
    oms_store_close(f->app.store);
    oms_routes_free(f->app.routes);
    oms_jwt_verifier_free(f->app.jwt);
    oms_config_free(f->app.cfg);
    free(f->routes);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    CHECK(system(cmd) == 0);
}

static void new_change_route_is_enforced(void)
{
    fixture f = {0};
    if (!fixture_start(&f))
        return;
    unsigned port = oms_server_port(f.srv);
    char *token = token_for("dev", "developer");
    CHECK_EQ_INT(post(port, "/api/v1/test-only/feature%2Fx/touch", token, "", "{}"), 422);
    CHECK_EQ_INT(atomic_load(&g_calls), 0); /* refused before the handler */
    CHECK_EQ_INT(post(port, "/api/v1/test-only/feature%2Fx/touch", token, "X-Issue-ID: OMS-1\r\n", "{}"), 200);
    CHECK_EQ_INT(post(port, "/api/v1/test-only/sandbox%2Fx/touch", token, "", "{}"), 200); /* an exempt branch */
    CHECK_EQ_INT(post(port, "/api/v1/test-only/feature%2Fx/look", token, "", "{}"), 200);  /* not a change */
    CHECK_EQ_INT(atomic_load(&g_calls), 3);
    free(token);

    new_route_through_the_change_transaction(port, f.app.store);
    a_declared_resource_is_lock_checked(port, f.app.store);
    fixture_stop(&f);
}

int main(void)
{
    static const t_case cases[] = {T(new_change_route_is_enforced)};
    return T_RUN("change_routes", cases);
}
