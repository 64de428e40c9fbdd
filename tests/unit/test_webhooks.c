/* Webhooks: the Standard Webhooks signature (the specification's own test
 * vector) and the outbound URL rules (docs/events.md, docs/security.md). */
#include <string.h>

#include "t.h"
#include "webhooks/sender.h"
#include "webhooks/webhooks.h"

static void signature_vector(void)
{
    char sig[128];
    const char *body = "{\"test\": 2432232314}";
    oms_webhook_sign(sig, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body,
                     strlen(body));
    CHECK(strcmp(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=") == 0);
    /* a secret without the prefix is its bytes: another signature */
    oms_webhook_sign(sig, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body,
                     strlen(body));
    CHECK(strncmp(sig, "v1,", 3) == 0 && strcmp(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=") != 0);
}

static void urls(void)
{
    static const char *const good[] = {"http://127.0.0.1:8080/hook", "https://hooks.example.com/oms?team=a",
                                       "https://[::1]:9/x"};
    static const char *const bad[] = {"ftp://h/x",        "file:///etc/passwd",         "http://u:p@h/",
                                      "http://u@h/",      "https://h/#f",               "http://",
                                      "not a url",        "//h/x",                      "http://h/a b",
                                      "gopher://h/",      "HTTP://h/",                  ""};
    oms_error err;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        CHECK_EQ_INT(oms_webhook_check_url(good[i], &err), OMS_OK);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_EQ_INT(oms_webhook_check_url(bad[i], &err), OMS_EINVAL);
}

int main(void)
{
    static const t_case cases[] = {T(signature_vector), T(urls)};
    return T_RUN("webhooks", cases);
}
