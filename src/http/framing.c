#include "http/framing.h"

#include <microhttpd.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

/* libmicrohttpd 0.9.75 accepts every request this file refuses: it takes the
 * first of several Content-Length, Host or Authorization headers, keeps the
 * space of "Transfer-Encoding : chunked" in the name (and so reads no body),
 * ends a line at a bare LF, and hands names and values over as C strings, so
 * a NUL inside a value or the target silently cuts what we see of it.
 *
 * What it leaves in its connection buffer is exact, though: it parses the
 * head in place, turning each CRLF into two NULs, the colon after a name into
 * one, and the spaces around the target into one each. So the walk below goes
 * from the method to the end of the head (MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE)
 * and requires each piece to start where the previous one ended: a NUL byte,
 * a bare CR or LF line end, or a folded line (which the library moves out of
 * the buffer) breaks the chain. One case leaves no trace: a NUL right before
 * a bare LF reads as CRLF; what we see is then still the whole value. */

typedef struct {
    const char *p, *end;  /* the walk through the head buffer */
    const char *problem;  /* why the head is refused, or NULL */
    size_t content_length, transfer_encoding, host, authorization;
    const char *transfer_coding;
} head_walk;

/* The library's strings are compared as addresses, not as text. */
static bool same(const void *a, const void *b) { return (uintptr_t)a == (uintptr_t)b; }

/* A CRLF the library overwrote with two NULs. */
static bool line_end(head_walk *w)
{
    if (w->end - w->p < 2 || w->p[0] != '\0' || w->p[1] != '\0')
        return false;
    w->p += 2;
    return true;
}

/* RFC 9110 §5.6.2: a field name is a token; whitespace before the colon is
 * not part of it. */
static bool is_token(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (!alnum && !strchr("!#$%&'*+-.^_`|~", c))
            return false;
    }
    return true;
}

/* method SP target SP version CRLF; the library tolerates extra spaces
 * before the target, which leave nothing ambiguous. */
static const char *walk_request_line(head_walk *w, const oms_request *req)
{
    w->p = req->wire.method + strlen(req->wire.method) + 1;
    while (w->p < w->end && *w->p == ' ')
        w->p++;
    if (!same(w->p, req->wire.target) || !same(req->wire.target, req->wire.url))
        return "the request line cannot be read";
    w->p += req->wire.target_len + 1;
    if (!same(w->p, req->wire.version))
        return "the request target holds a NUL byte";
    w->p += strlen(req->wire.version);
    if (!line_end(w))
        return "the request line does not end with CRLF";
    return NULL;
}

static void count_header(head_walk *w, const char *name, const char *value)
{
    if (strcasecmp(name, "Content-Length") == 0)
        w->content_length++;
    else if (strcasecmp(name, "Transfer-Encoding") == 0) {
        w->transfer_encoding++;
        w->transfer_coding = value;
    } else if (strcasecmp(name, "Host") == 0)
        w->host++;
    else if (strcasecmp(name, "Authorization") == 0)
        w->authorization++;
}

static enum MHD_Result refuse_header(head_walk *w, const char *problem)
{
    w->problem = problem;
    return MHD_NO;
}

/* name ":" OWS value CRLF, each header where the previous one ended. */
static enum MHD_Result walk_header(void *cls, enum MHD_ValueKind kind, const char *name, const char *value)
{
    head_walk *w = cls;
    if (w->p >= w->end || !same(name, w->p))
        return refuse_header(w, "a header line holds a NUL byte, ends without CRLF or is folded");
    if (!is_token(name))
        return refuse_header(w, "a header name is not a token (whitespace before its colon?)");
    w->p += strlen(name) + 1;
    while (w->p < w->end && (*w->p == ' ' || *w->p == '\t'))
        w->p++;
    if (!value || !same(value, w->p))
        return refuse_header(w, "a header line cannot be read");
    if (strpbrk(value, "\r\n"))
        return refuse_header(w, "a header value holds a CR or LF");
    w->p += strlen(value);
    if (!line_end(w))
        return refuse_header(w, "a header value holds a NUL byte, or its line does not end with CRLF");
    count_header(w, name, value);
    return MHD_YES;
}

/* One reading of where the body ends and of who is asking (RFC 9112 §3.2,
 * §6.1, §6.3). The library reads a body of any coding but chunked until the
 * connection closes: that is refused as not implemented. */
static int check_headers(const head_walk *w, const oms_request *req, oms_error *err)
{
    if (w->content_length > 1)
        return oms_err_set(err, OMS_EFRAMING, "several Content-Length headers");
    if (w->content_length && w->transfer_encoding)
        return oms_err_set(err, OMS_EFRAMING, "Content-Length together with Transfer-Encoding");
    if (w->transfer_encoding > 1)
        return oms_err_set(err, OMS_EFRAMING, "several Transfer-Encoding headers");
    if (w->transfer_encoding && strcasecmp(w->transfer_coding, "chunked") != 0)
        return oms_err_set(err, OMS_ENOTIMPL, "the only transfer coding accepted is chunked");
    if (w->host > 1 || (w->host == 0 && strcmp(req->wire.version, "HTTP/1.0") != 0))
        return oms_err_set(err, OMS_EFRAMING, "an HTTP/1.1 request needs exactly one Host header");
    if (w->authorization > 1)
        return oms_err_set(err, OMS_EFRAMING, "several Authorization headers");
    return OMS_OK;
}

int oms_framing_check(oms_request *req, oms_error *err)
{
    /* whitespace would make the request line split another way elsewhere */
    if (strpbrk(req->raw_target, " \t\r\n"))
        return oms_err_set(err, OMS_EFRAMING, "the request target holds whitespace, a CR or an LF");
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    if (!ci || !req->wire.method || !req->wire.target || !req->wire.url || !req->wire.version)
        return oms_err_set(err, OMS_EFRAMING, "the request head cannot be read");
    head_walk w = {.end = req->wire.method + ci->header_size};
    const char *problem = walk_request_line(&w, req);
    if (!problem) {
        MHD_get_connection_values(req->conn, MHD_HEADER_KIND, walk_header, &w);
        problem = w.problem;
    }
    if (!problem && !(line_end(&w) && same(w.p, w.end))) /* the empty line, then the body */
        problem = "the header block holds a NUL byte or does not end with an empty CRLF line";
    if (problem)
        return oms_err_set(err, OMS_EFRAMING, "%s", problem);
    return check_headers(&w, req, err);
}
