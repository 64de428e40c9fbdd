/* One error type for the whole service (libgit2 / PostgreSQL style): a negative
 * code plus a message. The code maps to an HTTP status and a stable problem
 * `code` in exactly one table (error.c). Propagate, never overwrite. */
#ifndef OMS_ERROR_H
#define OMS_ERROR_H

typedef enum {
    OMS_OK = 0,
    OMS_EINVAL = -1,          /* 400 invalid_request */
    OMS_EBADPATH = -2,        /* 400 invalid_path */
    OMS_ENOAUTH = -3,         /* 401 token_missing */
    OMS_ETOKEN = -4,          /* 401 token_invalid */
    OMS_EEXPIRED = -5,        /* 401 token_expired */
    OMS_EFORBIDDEN = -6,      /* 403 forbidden */
    OMS_ENOTFOUND = -7,       /* 404 not_found */
    OMS_EMETHOD = -8,         /* 405 method_not_allowed */
    OMS_ECONFLICT = -9,       /* 409 conflict */
    OMS_EPRECOND = -10,       /* 412 precondition_failed */
    OMS_ETOOBIG = -11,        /* 413 payload_too_large */
    OMS_EURI = -12,           /* 414 uri_too_long */
    OMS_EMEDIA = -13,         /* 415 unsupported_media_type */
    OMS_EUNPROCESSABLE = -14, /* 422 unprocessable */
    OMS_ELOCKED = -15,        /* 423 locked */
    OMS_EPRECONDREQ = -16,    /* 428 precondition_required */
    OMS_ERATE = -17,          /* 429 rate_limited */
    OMS_EHEADERS = -18,       /* 431 headers_too_large */
    OMS_EINTERNAL = -19,      /* 500 internal */
    OMS_EUNAVAIL = -20,       /* 503 unavailable */
    OMS_EDB = -21,            /* 503 database_unavailable */
    OMS_ECONFIG = -22,        /* configuration refused (start-up, exit 2) */
    OMS_ENOMEM = -23,         /* 500 internal */
    OMS_EIO = -24,            /* 500 internal */
    OMS_EAUDIT = -25,         /* 503 audit_unavailable */
    OMS_ENOTMODIFIED = -26,   /* 304 */
    OMS_ELOCKLOST = -27,      /* 409 lock_expired: X-Lock-ID names no live lock of the caller (fencing) */
    OMS_EFRAMING = -28,       /* 400 ambiguous_framing: the request's extent or head reads two ways */
    OMS_ENOTIMPL = -29,       /* 501 not_implemented: e.g. a transfer coding but chunked */
    OMS_ELOCKNOTHOLDER = -30, /* 403 not_lock_holder: another principal's lock (X-Lock-ID, heartbeat) */
    OMS_ETIMEOUT = -31,       /* 503 database_timeout: database work exceeded its deadline */
    OMS_EFULL = -32,          /* 507 storage_full: the database has no room left */
} oms_err;

/* An error with its message; `msg` never holds secrets. `problem`, when
 * set, is a more precise problem `code` than the error's own (a static
 * string such as "integrity_violation" for an OMS_ECONFLICT). */
typedef struct {
    oms_err code;
    const char *problem;
    char msg[256];
} oms_error;

int oms_err_set(oms_error *e, oms_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same with a precise problem code (static). */
int oms_err_set_as(oms_error *e, oms_err code, const char *problem, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void oms_err_clear(oms_error *e);

int oms_err_http_status(oms_err code);
const char *oms_err_problem_code(oms_err code);
const char *oms_err_title(oms_err code);

#endif
