/* libFuzzer target for oms_jwt_verify (SPEC §6.1).
 *
 * Each input is used twice:
 *  1. as a raw token, which exercises the size cap, splitting, base64url and
 *     header handling of arbitrary bytes;
 *  2. as JSON that we sign correctly with the verifier's own secret, so the
 *     claims parser (only reached after a good signature) is fuzzed too. If the
 *     input contains a NUL byte, the part before it is the header JSON and the
 *     part after it the payload JSON; otherwise the whole input is the payload
 *     under a standard HS256 header.
 * Besides not crashing, a successful verification must honour the documented
 * limits on what it returns. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/jwt.h"
#include "util/encoding.h"

#define FUZZ_NOW 1700000000

static const char k_secret[] = "fuzz-secret-0123456789abcdef-0123456789";

static const oms_jwt_verifier *verifier(void)
{
    static oms_jwt_verifier *v;
    if (!v) {
        oms_jwt_config cfg = {
            .alg = OMS_JWT_HS256,
            .secret = (const unsigned char *)k_secret,
            .secret_len = sizeof k_secret - 1,
            .previous_secret = (const unsigned char *)"fuzz-previous-secret-0123456789abcdef",
            .previous_secret_len = 37,
            .issuer = "https://idp.example",
            .audience = "oms",
            .leeway = OMS_JWT_LEEWAY,
        };
        oms_error err;
        if (oms_jwt_verifier_new(&v, &cfg, &err) != OMS_OK)
            abort();
    }
    return v;
}

static void check(const char *tok, size_t len)
{
    oms_arena *a = oms_arena_new(1024);
    oms_jwt_claims c;
    oms_error err;
    int rc = oms_jwt_verify(verifier(), tok, len, FUZZ_NOW, &c, a, &err);
    if (rc == OMS_OK) {
        if (!c.sub || !*c.sub || strlen(c.sub) > 255 || c.nroles > 64 || (c.nroles && !c.roles))
            abort();
        for (size_t i = 0; i < c.nroles; i++)
            if (!c.roles[i] || strlen(c.roles[i]) > 64)
                abort();
    } else if (rc != OMS_ETOKEN && rc != OMS_EEXPIRED) {
        abort();
    } else if (c.sub || c.roles || c.nroles) {
        abort(); /* claims must not leak out of a refused token */
    }
    oms_arena_free(a);
}

/* Builds "b64(header).b64(payload).b64(HMAC-SHA256)" in a malloc'd buffer. */
static char *sign(const uint8_t *hdr, size_t hlen, const uint8_t *pay, size_t plen, size_t *len)
{
    char *tok = malloc(((hlen + 2) / 3) * 4 + ((plen + 2) / 3) * 4 + 48);
    if (!tok)
        return NULL;
    size_t n = oms_b64url_encode(tok, hdr, hlen);
    tok[n++] = '.';
    n += oms_b64url_encode(tok + n, pay, plen);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), k_secret, (int)sizeof k_secret - 1, (const unsigned char *)tok, n, mac,
         &maclen);
    tok[n++] = '.';
    n += oms_b64url_encode(tok + n, mac, maclen);
    *len = n;
    return tok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy so that any over-read is caught by ASan. */
    char *raw = malloc(size ? size : 1);
    if (!raw)
        return 0;
    memcpy(raw, data, size);
    check(raw, size);
    free(raw);

    if (size > OMS_JWT_MAX_TOKEN)
        return 0; /* a signed token would be refused on size alone */
    static const char std_hdr[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    const uint8_t *hdr = (const uint8_t *)std_hdr, *pay = data;
    size_t hlen = sizeof std_hdr - 1, plen = size;
    const uint8_t *nul = memchr(data, 0, size);
    if (nul) {
        hdr = data;
        hlen = (size_t)(nul - data);
        pay = nul + 1;
        plen = size - hlen - 1;
    }
    size_t len = 0;
    char *tok = sign(hdr, hlen, pay, plen, &len);
    if (tok)
        check(tok, len);
    free(tok);
    return 0;
}
