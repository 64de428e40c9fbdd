/* Request framing (SPEC §5): a request whose extent or head two HTTP parsers
 * could read differently is refused before anything else reads it, and its
 * connection is closed, since the bytes after it may be a smuggled request.
 * docs/security.md "HTTP framing" lists the attacks and their tests. */
#ifndef OMS_FRAMING_H
#define OMS_FRAMING_H

#include "http/request.h"

/* OMS_OK, or OMS_EFRAMING (400) / OMS_ENOTIMPL (501, a transfer coding but
 * chunked) with the reason in err. Call first thing in the head phase: it
 * reads the library's connection buffer, which later phases may reuse. */
int oms_framing_check(oms_request *req, oms_error *err);

#endif
