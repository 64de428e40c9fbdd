/* The request pipeline in one place (Redis processCommand, nginx phases):
 * limits and raw-path checks, route lookup, authentication, authorization,
 * body checks, handler. Every refusal goes through refuse(), which records
 * the audit event durably before the response is sent. */
#ifndef OMS_PIPELINE_H
#define OMS_PIPELINE_H

#include "http/request.h"
#include "store/freshness.h"

/* Phase 1, once the headers are in. Returns true when the request was
 * answered already (refused) and its body must be ignored. */
bool oms_pipeline_head(oms_request *req);
/* On the event loop, for a request without a body: answers it there when
 * its route allows (answer_inline) and every step can be taken without
 * waiting and without a refusal: then true, with the response set. False,
 * having answered and recorded nothing, otherwise: the request goes to a
 * handler, where oms_pipeline_head starts from the beginning
 * (docs/architecture.md "Answers on the event loop"). SQLite only. */
bool oms_pipeline_try_inline(oms_request *req);
/* The same on PostgreSQL, where the freshness read is a round trip the
 * loop cannot wait for: the checks before it (as try_inline's) pass, and
 * the request may park for its branch's next read (the branch returned;
 * NULL, having recorded nothing: hand it over). Once the read answered it,
 * back on the loop: oms_pipeline_answer_parked answers it from memory as
 * try_inline would (true), or gives up as try_inline does (false); a
 * request handed over instead after parking is first reset by
 * oms_pipeline_unpark. */
const char *oms_pipeline_may_park(oms_request *req);
bool oms_pipeline_answer_parked(oms_request *req, const oms_fresh_parked *read);
void oms_pipeline_unpark(oms_request *req);
/* Body bytes as they arrive. */
void oms_pipeline_body(oms_request *req, const char *data, size_t len);
/* Phase 2, once the body is complete: body checks and the handler. */
void oms_pipeline_finish(oms_request *req);
/* Refuses a request the server cannot take now: the audit event (status
 * 503, `problem_code` as its reason), then a 503 problem document with
 * Retry-After. Runs on any thread but the HTTP library's event loops. */
void oms_pipeline_refuse_unavailable(oms_request *req, const char *problem_code, const char *detail,
                                     const char *retry_after);

/* Governance of a change route, once the body is parsed and before the
 * handler (src/http/governance.c): the override named by X-Override-ID,
 * then the issue references (stored in the context). False when refused:
 * the problem is answered. */
bool oms_pipeline_governance(oms_request *req);

/* The decision for `perm` on `branch` (NULL: none), for a handler whose
 * route does not name the branch it reads or changes. False when refused:
 * the 403 (or 503, failing closed) is answered and audited. */
bool oms_authorize_on(oms_request *req, oms_perm perm, const char *branch);
/* The answer to a change's failure on a route that decides its checks in
 * the change transaction (authorize_in_change): a route-style refusal of
 * the settle is answered as the route's own check answers it (403,
 * authz.denied); anything else as oms_resp_error (resetting a broken
 * connection). */
int oms_resp_change_failure(oms_request *req, int rc, const oms_error *err);
/* Answers an audited 403 for content the caller may not read (a commit on
 * no branch it may read). */
void oms_refuse_unreadable(oms_request *req, const char *detail);

#endif
