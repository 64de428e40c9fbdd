/* The verified-token memo (src/auth/token_memo.h) behind oms_jwt_verify: a
 * thread's repeat of a token it verified is answered from the memo, and
 * never where a full verification would refuse it: after the secret that
 * signed it was rotated out, once it expired, before its nbf, for a token
 * one byte different, or through another verifier. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwt.h"
#include "auth/token_memo.h"
#include "t.h"

#define NOW 1700000000LL
#define TTL 3600

static const char SECRET_A[] = "0123456789abcdef0123456789abcdef-secret-a";
static const char SECRET_B[] = "fedcba9876543210fedcba9876543210-secret-b";

static oms_jwt_verifier *verifier(const char *secret)
{
    oms_jwt_config cfg = {.alg = OMS_JWT_HS256, .secret = (const unsigned char *)secret,
                          .secret_len = strlen(secret), .leeway = OMS_JWT_LEEWAY};
    oms_jwt_verifier *v = NULL;
    oms_error err = {0};
    if (oms_jwt_verifier_new(&v, &cfg, &err) != OMS_OK)
        fprintf(stderr, "  verifier: %s\n", err.msg);
    return v;
}

static char *token(const char *secret, const char *sub, int64_t now)
{
    const char *roles[] = {"developer", "reviewer"};
    char *tok = NULL;
    oms_error err = {0};
    if (oms_jwt_sign_hmac(&tok, OMS_JWT_HS256, (const unsigned char *)secret, strlen(secret), sub, roles, 2, now, TTL,
                          NULL, NULL, &err) != OMS_OK)
        fprintf(stderr, "  sign: %s\n", err.msg);
    return tok;
}

/* One verification at `now`; *from_memo: the memo answered it. */
static int verify(const oms_jwt_verifier *v, const char *tok, int64_t now, oms_jwt_claims *c, bool *from_memo)
{
    static oms_arena *a;
    if (!a)
        a = oms_arena_new(4096);
    oms_jwt_claims tmp;
    oms_error err = {0};
    uint64_t before = oms_token_memo_hits();
    int rc = oms_jwt_verify(v, tok, strlen(tok), now, c ? c : &tmp, a, &err);
    *from_memo = oms_token_memo_hits() != before;
    return rc;
}

static void a_repeat_is_answered_from_the_memo_with_the_same_claims(void)
{
    oms_jwt_verifier *v = verifier(SECRET_A);
    char *t = token(SECRET_A, "alice", NOW);
    oms_jwt_claims first, again;
    bool memo = true;
    CHECK_EQ_INT(verify(v, t, NOW, &first, &memo), OMS_OK);
    CHECK(!memo);
    CHECK_EQ_INT(verify(v, t, NOW + 5, &again, &memo), OMS_OK);
    CHECK(memo);
    CHECK_EQ_STR(again.sub, "alice");
    CHECK_EQ_INT(again.nroles, 2);
    if (again.nroles == 2) {
        CHECK_EQ_STR(again.roles[0], first.roles[0]);
        CHECK_EQ_STR(again.roles[1], "reviewer");
    }
    CHECK_EQ_INT(again.exp, NOW + TTL);
    CHECK(again.sub != first.sub); /* the request's own copy */
    free(t);
    oms_jwt_verifier_free(v);
}

static void a_rotated_out_secret_ends_its_tokens_at_once(void)
{
    oms_jwt_verifier *v = verifier(SECRET_A);
    char *t = token(SECRET_A, "alice", NOW);
    bool memo;
    CHECK_EQ_INT(verify(v, t, NOW, NULL, &memo), OMS_OK);
    CHECK_EQ_INT(verify(v, t, NOW, NULL, &memo), OMS_OK);
    CHECK(memo);
    /* B current, A previous: still accepted */
    oms_jwt_config both = {.alg = OMS_JWT_HS256, .secret = (const unsigned char *)SECRET_B,
                           .secret_len = strlen(SECRET_B), .previous_secret = (const unsigned char *)SECRET_A,
                           .previous_secret_len = strlen(SECRET_A), .leeway = OMS_JWT_LEEWAY};
    oms_error err = {0};
    CHECK_EQ_INT(oms_jwt_verifier_reload(v, &both, &err), OMS_OK);
    CHECK_EQ_INT(verify(v, t, NOW, NULL, &memo), OMS_OK);
    CHECK(!memo); /* verified again with the new keys */
    /* B alone: A's token is refused, though the memo had it */
    oms_jwt_config alone = {.alg = OMS_JWT_HS256, .secret = (const unsigned char *)SECRET_B,
                            .secret_len = strlen(SECRET_B), .leeway = OMS_JWT_LEEWAY};
    CHECK_EQ_INT(oms_jwt_verifier_reload(v, &alone, &err), OMS_OK);
    CHECK_EQ_INT(verify(v, t, NOW, NULL, &memo), OMS_ETOKEN);
    CHECK(!memo);
    free(t);
    oms_jwt_verifier_free(v);
}

static void expiry_and_not_before_are_checked_on_every_answer(void)
{
    oms_jwt_verifier *v = verifier(SECRET_A);
    char *t = token(SECRET_A, "bob", NOW); /* nbf = iat = NOW, exp = NOW + TTL */
    bool memo;
    CHECK_EQ_INT(verify(v, t, NOW, NULL, &memo), OMS_OK);
    CHECK_EQ_INT(verify(v, t, NOW + TTL + OMS_JWT_LEEWAY, NULL, &memo), OMS_OK);
    CHECK(memo); /* the last second of the leeway */
    CHECK_EQ_INT(verify(v, t, NOW + TTL + OMS_JWT_LEEWAY + 1, NULL, &memo), OMS_EEXPIRED);
    CHECK(!memo);
    CHECK_EQ_INT(verify(v, t, NOW - OMS_JWT_LEEWAY - 1, NULL, &memo), OMS_ETOKEN); /* before nbf */
    CHECK(!memo);
    CHECK_EQ_INT(verify(v, t, NOW, NULL, &memo), OMS_OK);
    CHECK(memo);
    free(t);
    oms_jwt_verifier_free(v);
}

static void a_token_one_byte_different_is_verified_in_full(void)
{
    oms_jwt_verifier *v = verifier(SECRET_A);
    char *t = token(SECRET_A, "carol", NOW);
    bool memo;
    CHECK_EQ_INT(verify(v, t, NOW, NULL, &memo), OMS_OK);
    size_t n = strlen(t);
    for (size_t at = 0; at < n; at += n / 7 + 1) {
        char *bad = strdup(t);
        bad[at] = bad[at] == 'A' ? 'B' : 'A';
        CHECK(verify(v, bad, NOW, NULL, &memo) != OMS_OK);
        CHECK(!memo);
        free(bad);
    }
    char *longer = malloc(n + 2);
    memcpy(longer, t, n);
    memcpy(longer + n, "A", 2);
    CHECK(verify(v, longer, NOW, NULL, &memo) != OMS_OK);
    CHECK(!memo);
    free(longer);
    free(t);
    oms_jwt_verifier_free(v);
}

/* A verifier with another secret (even one allocated where a freed one
 * was) never answers from what another verifier remembered. */
static void another_verifier_does_not_share_the_memo(void)
{
    oms_jwt_verifier *a = verifier(SECRET_A);
    char *t = token(SECRET_A, "dave", NOW);
    bool memo;
    CHECK_EQ_INT(verify(a, t, NOW, NULL, &memo), OMS_OK);
    oms_jwt_verifier *b = verifier(SECRET_B);
    CHECK_EQ_INT(verify(b, t, NOW, NULL, &memo), OMS_ETOKEN);
    CHECK(!memo);
    oms_jwt_verifier_free(a);
    for (int i = 0; i < 8; i++) {
        oms_jwt_verifier *c = verifier(SECRET_B);
        CHECK_EQ_INT(verify(c, t, NOW, NULL, &memo), OMS_ETOKEN);
        CHECK(!memo);
        oms_jwt_verifier_free(c);
    }
    oms_jwt_verifier_free(b);
    free(t);
}

typedef struct {
    const oms_jwt_verifier *v;
    const char *tok;
    bool from_memo;
    int rc;
} thread_arg;

static void *verify_on_another_thread(void *p)
{
    thread_arg *a = p;
    a->rc = verify(a->v, a->tok, NOW, NULL, &a->from_memo);
    return NULL;
}

/* The memo is the thread's: another thread verifies in full. */
static void each_thread_has_its_own_memo(void)
{
    oms_jwt_verifier *v = verifier(SECRET_A);
    char *t = token(SECRET_A, "erin", NOW);
    bool memo;
    CHECK_EQ_INT(verify(v, t, NOW, NULL, &memo), OMS_OK);
    thread_arg arg = {.v = v, .tok = t};
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, verify_on_another_thread, &arg), 0);
    pthread_join(th, NULL);
    CHECK_EQ_INT(arg.rc, OMS_OK);
    CHECK(!arg.from_memo);
    free(t);
    oms_jwt_verifier_free(v);
}

int main(void)
{
    static const t_case cases[] = {
        T(a_repeat_is_answered_from_the_memo_with_the_same_claims),
        T(a_rotated_out_secret_ends_its_tokens_at_once),
        T(expiry_and_not_before_are_checked_on_every_answer),
        T(a_token_one_byte_different_is_verified_in_full),
        T(another_verifier_does_not_share_the_memo),
        T(each_thread_has_its_own_memo),
    };
    return T_RUN("token_memo", cases);
}
