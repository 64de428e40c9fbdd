#include "util/encoding.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <string.h>

static const char k_b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

long oms_b64url_decode(unsigned char *out, const char *in, size_t len)
{
    if (len % 4 == 1)
        return -1;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64val((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    /* Leftover bits must be zero so each value has exactly one encoding. */
    if (bits && (acc & ((1u << bits) - 1)))
        return -1;
    return (long)o;
}

size_t oms_b64url_encode(char *out, const unsigned char *in, size_t len)
{
    size_t o = 0, i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = k_b64url[v >> 18];
        out[o++] = k_b64url[(v >> 12) & 63];
        out[o++] = k_b64url[(v >> 6) & 63];
        out[o++] = k_b64url[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = k_b64url[v >> 18];
        out[o++] = k_b64url[(v >> 12) & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = k_b64url[v >> 18];
        out[o++] = k_b64url[(v >> 12) & 63];
        out[o++] = k_b64url[(v >> 6) & 63];
    }
    out[o] = '\0';
    return o;
}

void oms_hex(char *out, const unsigned char *in, size_t len)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = d[in[i] >> 4];
        out[2 * i + 1] = d[in[i] & 15];
    }
    out[2 * len] = '\0';
}

/* SHA-256 on a digest context kept per thread, with the algorithm fetched
 * once: OpenSSL 3's one-shot SHA256() fetches the algorithm and allocates
 * a context at every call (393 ns for a 21-byte key here, against 109 ns
 * reusing them; a GET hashes its resource key, a commit every entry and
 * tree node it writes). Any failure falls back to the one-shot. */
static EVP_MD *g_sha256;
static pthread_once_t g_sha256_once = PTHREAD_ONCE_INIT;
static pthread_key_t g_ctx_key;
static _Thread_local EVP_MD_CTX *tl_ctx;

static void free_ctx(void *p) { EVP_MD_CTX_free(p); }

static void fetch_sha256(void)
{
    if (pthread_key_create(&g_ctx_key, free_ctx) == 0)
        g_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static EVP_MD_CTX *thread_ctx(void)
{
    if (tl_ctx)
        return tl_ctx;
    pthread_once(&g_sha256_once, fetch_sha256);
    if (!g_sha256 || !(tl_ctx = EVP_MD_CTX_new()))
        return NULL;
    pthread_setspecific(g_ctx_key, tl_ctx); /* freed when the thread exits */
    return tl_ctx;
}

void oms_sha256(unsigned char out[32], const void *data, size_t len)
{
    EVP_MD_CTX *c = thread_ctx();
    if (c && EVP_DigestInit_ex2(c, g_sha256, NULL) && EVP_DigestUpdate(c, data, len) &&
        EVP_DigestFinal_ex(c, out, NULL))
        return;
    SHA256(data, len, out);
}

void oms_sha256_hex(char out[65], const void *data, size_t len)
{
    unsigned char md[32];
    oms_sha256(md, data, len);
    oms_hex(out, md, 32);
}

bool oms_ct_equal(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}

bool oms_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) { i++; continue; }
        size_t n;
        uint32_t cp;
        if ((c & 0xE0) == 0xC0) { n = 1; cp = c & 0x1F; }
        else if ((c & 0xF0) == 0xE0) { n = 2; cp = c & 0x0F; }
        else if ((c & 0xF8) == 0xF0) { n = 3; cp = c & 0x07; }
        else return false;
        if (i + n >= len)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        /* Overlong forms, surrogates and values past U+10FFFF are invalid. */
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n + 1;
    }
    return true;
}
