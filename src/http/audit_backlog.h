/* Audit events of failed requests that could not be written when the
 * request ended because the database itself was failing (busy past its
 * deadline, out of disk, unreachable). They wait here, in memory and
 * bounded, and the background task writes them as soon as the database
 * takes writes again (docs/operations.md "Timeouts and deadlines"). */
#ifndef OMS_AUDIT_BACKLOG_H
#define OMS_AUDIT_BACKLOG_H

#include <stddef.h>

#include "audit/audit.h"

/* At most this many events wait; past it the oldest stay and new ones are
 * counted as lost (and logged). */
#define OMS_AUDIT_BACKLOG_MAX 10000

/* Copies the event into the backlog. False when the backlog is full. */
bool oms_audit_backlog_add(const oms_audit_event *ev);
size_t oms_audit_backlog_pending(void);
/* Background task: writes what waits, in one transaction, oldest first. */
void oms_audit_backlog_task(oms_app *app);

#endif
