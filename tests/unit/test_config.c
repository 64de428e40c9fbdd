/* Configuration: precedence, the _FILE convention, bounds, secret rules. */
#include <stdlib.h>
#include <unistd.h>

#include "auth/config_rules.h"
#include "infra/config.h"
#include "t.h"

#define GOOD_SECRET "Jq7vN2xL9pR4tW8zK3mB6cF1hD5gS0yA"

static int load(oms_config **c, char **argv, int argc, char **env, oms_error *err)
{
    return oms_config_load(c, &argc, argv, env, err);
}

static void defaults_and_precedence(void)
{
    char *argv[] = {"oms", "--listen", "127.0.0.1:9999", "serve", NULL};
    char *env[] = {"OMS_LISTEN=0.0.0.0:1", "JWT_SECRET=" GOOD_SECRET, "OMS_WORKERS=3", NULL};
    oms_config *c = NULL;
    oms_error err;
    CHECK_EQ_INT(load(&c, argv, 4, env, &err), OMS_OK);
    CHECK_EQ_STR(oms_config_str(c, "OMS_LISTEN"), "127.0.0.1:9999");
    CHECK_EQ_STR(oms_config_source(c, "OMS_LISTEN"), "flag");
    CHECK_EQ_STR(oms_config_str(c, "DATABASE_URL"), "sqlite:oms-data/oms.db");
    CHECK_EQ_STR(oms_config_source(c, "DATABASE_URL"), "default");
    CHECK_EQ_INT(oms_config_int(c, "OMS_WORKERS"), 3);
    CHECK_EQ_STR(argv[1], "serve"); /* consumed flags are removed */
    CHECK_EQ_INT(oms_config_validate_serve(c, &err), OMS_OK);
    oms_config_free(c);
}

static void config_file_is_lowest(void)
{
    char path[] = "/tmp/oms-cfg-XXXXXX";
    int fd = mkstemp(path);
    const char *text = "# comment\nOMS_LISTEN=127.0.0.1:7000\nOMS_LOG_LEVEL = debug\n";
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    char *argv[] = {"oms", "--config", path, "serve", NULL};
    char *env[] = {"OMS_LOG_LEVEL=warn", NULL};
    oms_config *c = NULL;
    oms_error err;
    CHECK_EQ_INT(load(&c, argv, 4, env, &err), OMS_OK);
    CHECK_EQ_STR(oms_config_str(c, "OMS_LISTEN"), "127.0.0.1:7000");
    CHECK_EQ_STR(oms_config_str(c, "OMS_LOG_LEVEL"), "warn");
    oms_config_free(c);
    unlink(path);
}

static void file_form_and_both_forms(void)
{
    char path[] = "/tmp/oms-sec-XXXXXX";
    int fd = mkstemp(path);
    CHECK(write(fd, GOOD_SECRET "\n", 33) == 33);
    close(fd);
    char envfile[128];
    snprintf(envfile, sizeof envfile, "JWT_SECRET_FILE=%s", path);
    char *argv[] = {"oms", NULL};
    char *env1[] = {envfile, NULL};
    oms_config *c = NULL;
    oms_error err;
    CHECK_EQ_INT(load(&c, argv, 1, env1, &err), OMS_OK);
    CHECK_EQ_STR(oms_config_str(c, "JWT_SECRET"), GOOD_SECRET); /* newline stripped */
    oms_config_free(c);
    c = NULL;
    char *env2[] = {envfile, "JWT_SECRET=" GOOD_SECRET, NULL};
    CHECK_EQ_INT(load(&c, argv, 1, env2, &err), OMS_ECONFIG);
    CHECK(strstr(err.msg, "both JWT_SECRET and JWT_SECRET_FILE") != NULL);
    CHECK(strstr(err.msg, GOOD_SECRET) == NULL);
    unlink(path);
}

static void int_bounds(void)
{
    char *argv[] = {"oms", NULL};
    char *env[] = {"OMS_WORKERS=100000", NULL};
    oms_config *c = NULL;
    oms_error err;
    CHECK_EQ_INT(load(&c, argv, 1, env, &err), OMS_ECONFIG);
    char *env2[] = {"OMS_WORKERS=two", NULL};
    CHECK_EQ_INT(load(&c, argv, 1, env2, &err), OMS_ECONFIG);
}

static int validate_with(const char *secret_kv)
{
    char *argv[] = {"oms", NULL};
    char *env[] = {(char *)secret_kv, NULL};
    oms_config *c = NULL;
    oms_error err;
    if (load(&c, argv, 1, env, &err))
        return err.code;
    int rc = oms_config_validate_serve(c, &err);
    oms_config_free(c);
    return rc;
}

static void secret_rules(void)
{
    CHECK_EQ_INT(validate_with("X=1"), OMS_ECONFIG); /* none */
    CHECK_EQ_INT(validate_with("JWT_SECRET=short"), OMS_ECONFIG);
    CHECK_EQ_INT(validate_with("JWT_SECRET=your-secret-key-padding-to-32-bytes!!"), OMS_ECONFIG);
    CHECK_EQ_INT(validate_with("JWT_SECRET=CHANGEME-0123456789-0123456789-xyz"), OMS_ECONFIG);
    CHECK_EQ_INT(validate_with("JWT_SECRET=abababababababababababababababababab"), OMS_ECONFIG);
    CHECK_EQ_INT(validate_with("JWT_SECRET=" GOOD_SECRET), OMS_OK);
    CHECK(oms_config_weak_secret("secret", 6));
    CHECK(!oms_config_weak_secret(GOOD_SECRET, strlen(GOOD_SECRET)));
}

static void public_key_algorithms_refuse_hmac_secret(void)
{
    char *argv[] = {"oms", NULL};
    char *env[] = {"JWT_ALGORITHM=RS256", "JWT_SECRET=" GOOD_SECRET, "JWT_PUBLIC_KEY_FILE=/x.pem", NULL};
    oms_config *c = NULL;
    oms_error err;
    CHECK_EQ_INT(load(&c, argv, 1, env, &err), OMS_OK);
    CHECK_EQ_INT(oms_config_validate_serve(c, &err), OMS_ECONFIG);
    oms_config_free(c);
}

/* An algorithm off the list is refused as itself, whatever else is set:
 * the message names JWT_ALGORITHM, never the secret or the key file. */
static void unknown_algorithm_names_the_setting(void)
{
    static const char *const algs[] = {"JWT_ALGORITHM=none", "JWT_ALGORITHM=None", "JWT_ALGORITHM=hs256",
                                       "JWT_ALGORITHM=HS2560", "JWT_ALGORITHM=\001bad"};
    for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++)
        for (int with_secret = 0; with_secret < 2; with_secret++) {
            char *argv[] = {"oms", NULL};
            char *env[] = {(char *)algs[i], with_secret ? "JWT_SECRET=" GOOD_SECRET : "X=1", NULL};
            oms_config *c = NULL;
            oms_error err;
            CHECK_EQ_INT(load(&c, argv, 1, env, &err), OMS_OK);
            CHECK_EQ_INT(oms_config_validate_serve(c, &err), OMS_ECONFIG);
            CHECK(strncmp(err.msg, "JWT_ALGORITHM", 13) == 0);
            CHECK(strstr(err.msg, "JWT_SECRET") == NULL && strstr(err.msg, "JWT_PUBLIC_KEY_FILE") == NULL);
            CHECK(strchr(err.msg, '\001') == NULL);
            oms_config_free(c);
        }
}

int main(void)
{
    static const t_case cases[] = {T(defaults_and_precedence), T(config_file_is_lowest),
                                   T(file_form_and_both_forms), T(int_bounds), T(secret_rules),
                                   T(public_key_algorithms_refuse_hmac_secret),
                                   T(unknown_algorithm_names_the_setting)};
    return T_RUN("config", cases);
}
