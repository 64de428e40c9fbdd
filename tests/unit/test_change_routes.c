/* A route added to the table with the `change` flag is covered by issue
 * enforcement with no other edit: this test registers a route of its own
 * next to the application's, starts the real server in-process, and checks
 * that the new route refuses a change without an issue reference before its
 * handler ever runs. */
#include <arpa/inet.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth/jwt.h"
#include "governance/issue_check.h"
#include "http/app.h"
#include "infra/log.h"
#include "t.h"
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

static int http_status(unsigned port, const char *request)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    if (write(fd, request, strlen(request)) < 0) {
        close(fd);
        return -1;
    }
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n < 12)
        return -1;
    buf[n] = '\0';
    return atoi(buf + 9);
}

static char *request_text(const char *path, const char *token, const char *extra_header)
{
    char *out = malloc(4096);
    snprintf(out, 4096,
             "POST %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer %s\r\n%s"
             "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
             path, token, extra_header);
    return out;
}

static void new_change_route_is_enforced(void)
{
    char dir[] = "/tmp/oms-change-route-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char dburl[128];
    snprintf(dburl, sizeof dburl, "DATABASE_URL=sqlite:%s/oms.db", dir);
    char *argv[] = {"oms", NULL};
    char *env[] = {dburl, "JWT_SECRET=" SECRET, "OMS_LISTEN=127.0.0.1:0", "OMS_LOG_LEVEL=off", "OMS_WORKERS=1", NULL};
    int argc = 1;
    oms_error err;
    oms_app app = {0};
    CHECK_EQ_INT(oms_config_load(&app.cfg, &argc, argv, env, &err), OMS_OK);
    oms_log_set_level("off");
    oms_jwt_config jc = {.alg = OMS_JWT_HS256, .secret = (const unsigned char *)SECRET, .secret_len = strlen(SECRET),
                         .leeway = OMS_JWT_LEEWAY};
    CHECK_EQ_INT(oms_jwt_verifier_new(&app.jwt, &jc, &err), OMS_OK);
    CHECK_EQ_INT(oms_issue_check_configure(app.cfg, &err), OMS_OK);

    /* The application's table plus two routes of the test's own. */
    size_t n = oms_app_routes_count;
    oms_route *routes = calloc(n + 2, sizeof *routes);
    memcpy(routes, oms_app_routes, n * sizeof *routes);
    routes[n] = (oms_route){"POST", "/api/v1/test-only/{branch}/touch", h_touch, OMS_PERM_SCHEMA_WRITE, "test.touch", true};
    routes[n + 1] = (oms_route){"POST", "/api/v1/test-only/{branch}/look", h_touch, OMS_PERM_SCHEMA_READ, NULL, false};
    CHECK_EQ_INT(oms_routes_new(&app.routes, routes, n + 2, &err), OMS_OK);
    CHECK_EQ_INT(oms_store_open(&app.store, dburl + strlen("DATABASE_URL="), 5000, &err), OMS_OK);
    int applied;
    CHECK_EQ_INT(oms_store_migrate(app.store, &applied, &err), OMS_OK);
    oms_server *srv = NULL;
    CHECK_EQ_INT(oms_server_start(&app, &srv, &err), OMS_OK);
    if (!srv)
        return;
    unsigned port = oms_server_port(srv);
    const char *roles[] = {"developer"};
    char *token = NULL;
    CHECK_EQ_INT(oms_jwt_sign_hmac(&token, OMS_JWT_HS256, (const unsigned char *)SECRET, strlen(SECRET), "dev", roles,
                                   1, oms_now_ms() / 1000, 600, NULL, NULL, &err),
                 OMS_OK);

    char *no_issue = request_text("/api/v1/test-only/feature%2Fx/touch", token, "");
    char *with_issue = request_text("/api/v1/test-only/feature%2Fx/touch", token, "X-Issue-ID: OMS-1\r\n");
    char *exempt = request_text("/api/v1/test-only/sandbox%2Fx/touch", token, "");
    char *not_a_change = request_text("/api/v1/test-only/feature%2Fx/look", token, "");
    CHECK_EQ_INT(http_status(port, no_issue), 422);
    CHECK_EQ_INT(atomic_load(&g_calls), 0); /* refused before the handler */
    CHECK_EQ_INT(http_status(port, with_issue), 200);
    CHECK_EQ_INT(http_status(port, exempt), 200);
    CHECK_EQ_INT(http_status(port, not_a_change), 200);
    CHECK_EQ_INT(atomic_load(&g_calls), 3);

    oms_server_stop(srv);
    free(no_issue);
    free(with_issue);
    free(exempt);
    free(not_a_change);
    free(token);
    oms_store_close(app.store);
    oms_routes_free(app.routes);
    oms_jwt_verifier_free(app.jwt);
    oms_config_free(app.cfg);
    free(routes);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

int main(void)
{
    static const t_case cases[] = {T(new_change_route_is_enforced)};
    return T_RUN("change_routes", cases);
}
