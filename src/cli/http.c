/* The client's HTTP over libcurl: one reused handle (one kept-alive
 * connection), the bearer token only ever in the Authorization header, TLS
 * verification always on (OMS_CA_FILE names a private CA), no redirects
 * followed (a redirect must not carry the token to another host). */
#include <ctype.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"
#include "util/alloc.h"

typedef struct {
    char *buf;
    size_t len, cap;
} growbuf;

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
    growbuf *b = ctx;
    size_t add = size * n;
    if (b->len + add + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 16384;
        while (cap < b->len + add + 1)
            cap *= 2;
        b->buf = oms_xrealloc(b->buf, cap);
        b->cap = cap;
    }
    memcpy(b->buf + b->len, p, add);
    b->len += add;
    b->buf[b->len] = '\0';
    return add;
}

/* Keeps the response headers the commands use. */
static void keep(char *dst, size_t dstsz, const char *v, size_t n)
{
    while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
        n--;
    if (n >= dstsz)
        n = dstsz - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static size_t on_header(char *p, size_t size, size_t n, void *ctx)
{
    oms_cli_resp *r = ctx;
    size_t len = size * n;
    static const struct {
        const char *name;
        size_t off, sz;
    } want[] = {
        {"etag:", offsetof(oms_cli_resp, etag), sizeof ((oms_cli_resp *)0)->etag},
        {"x-commit:", offsetof(oms_cli_resp, commit), sizeof ((oms_cli_resp *)0)->commit},
        {"x-request-id:", offsetof(oms_cli_resp, request_id), sizeof ((oms_cli_resp *)0)->request_id},
        {"retry-after:", offsetof(oms_cli_resp, retry_after), sizeof ((oms_cli_resp *)0)->retry_after},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        size_t k = strlen(want[i].name);
        if (len > k && strncasecmp(p, want[i].name, k) == 0) {
            const char *v = p + k;
            size_t vn = len - k;
            while (vn && *v == ' ') {
                v++;
                vn--;
            }
            keep((char *)r + want[i].off, want[i].sz, v, vn);
        }
    }
    return len;
}

char *oms_cli_escape(const char *s)
{
    size_t n = strlen(s);
    char *out = oms_xmalloc(3 * n + 1), *w = out;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            *w++ = (char)*p;
        } else {
            sprintf(w, "%%%02X", *p);
            w += 3;
        }
    }
    *w = '\0';
    return out;
}

void oms_cli_resp_clear(oms_cli_resp *r)
{
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

int oms_cli_request_raw(oms_cli *c, const char *method, const char *path, const char *body, size_t len,
                        const char *const *headers, oms_cli_resp *out)
{
    int code = OMS_CLI_UNAVAILABLE;
    struct curl_slist *h = NULL, *nh;
    char *url = NULL, *auth = NULL;
    growbuf b = {0};
    memset(out, 0, sizeof *out);
    if (!c->curl && !(c->curl = curl_easy_init())) {
        fprintf(stderr, "oms: cannot initialise the HTTP client\n");
        return OMS_CLI_FAILED;
    }
    CURL *curl = c->curl;
    url = oms_xasprintf("%s%s", c->url, path);
    auth = oms_xasprintf("Authorization: Bearer %s", c->token);
    /* "Expect:" off: curl would otherwise wait for a 100 Continue before
     * sending a large body */
    const char *fixed[] = {auth, "Accept: application/json, application/problem+json",
                           body ? "Content-Type: application/json" : NULL, body ? "Expect:" : NULL};
    for (size_t i = 0; i < 4; i++) {
        if (!fixed[i])
            continue;
        if (!(nh = curl_slist_append(h, fixed[i])))
            goto oom;
        h = nh;
    }
    for (size_t i = 0; headers && headers[i]; i++) {
        if (!(nh = curl_slist_append(h, headers[i])))
            goto oom;
        h = nh;
    }
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "oms-cli/1");
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, out);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 600L);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    if (c->ca_file)
        curl_easy_setopt(curl, CURLOPT_CAINFO, c->ca_file);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    if (!strcmp(method, "HEAD"))
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    if (body) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    CURLcode rc = curl_easy_perform(curl);
    if (rc != CURLE_OK) {
        /* the path and the library's reason; never the headers */
        fprintf(stderr, "oms: %s %s: cannot reach the service: %s\n", method, path, curl_easy_strerror(rc));
        goto cleanup;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out->status);
    out->body = b.buf;
    out->len = b.len;
    b.buf = NULL;
    if (out->body && out->len)
        out->json = json_loadb(out->body, out->len, 0, NULL);
    code = OMS_CLI_OK;
    goto cleanup;
oom:
    fprintf(stderr, "oms: out of memory\n");
    code = OMS_CLI_FAILED;
cleanup:
    curl_slist_free_all(h);
    if (auth) {
        memset(auth, 0, strlen(auth));
        free(auth);
    }
    free(url);
    free(b.buf);
    return code;
}

int oms_cli_request(oms_cli *c, const char *method, const char *path, const json_t *body,
                    const char *const *headers, oms_cli_resp *out)
{
    if (!body)
        return oms_cli_request_raw(c, method, path, NULL, 0, headers, out);
    char *text = json_dumps(body, JSON_COMPACT);
    if (!text) {
        memset(out, 0, sizeof *out);
        fprintf(stderr, "oms: out of memory\n");
        return OMS_CLI_FAILED;
    }
    int rc = oms_cli_request_raw(c, method, path, text, strlen(text), headers, out);
    free(text);
    return rc;
}

void oms_cli_http_cleanup(oms_cli *c)
{
    if (c->curl)
        curl_easy_cleanup(c->curl);
    c->curl = NULL;
}
