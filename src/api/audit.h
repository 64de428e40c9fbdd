/* Handlers of the audit and compliance routes (SPEC §9). Every successful
 * read of the audit log records an audit.read / audit.export /
 * audit.verify / compliance.report event before the response. */
#ifndef OMS_API_AUDIT_H
#define OMS_API_AUDIT_H

#include "http/request.h"

int oms_h_audit_list(oms_request *req);
int oms_h_audit_get(oms_request *req);
int oms_h_audit_verify(oms_request *req);
int oms_h_audit_export(oms_request *req);
int oms_h_compliance_report(oms_request *req);

#endif
