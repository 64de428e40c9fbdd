/* The locks this process granted, remembered by id (docs/locks.md "One
 * round trip"): what a holder's release needs to write its audit event and
 * outbox row before the database answers (the lock's branch, target, kind
 * and fencing token, none of which a lock ever changes). A bounded table:
 * a lock granted by another instance, or pushed out by later ones, is
 * released the usual way. Nothing here is trusted: the release's statement
 * matches the remembered branch and fencing token against the row. */
#ifndef OMS_LOCKS_GRANTED_H
#define OMS_LOCKS_GRANTED_H

#include <stdbool.h>

#include "locks/locks.h"
#include "util/arena.h"

/* Remembers `l` (fields longer than a lock's validated limits: not kept). */
void oms_locks_granted_remember(const oms_lock *l);
/* The remembered lock `id` into *l (strings in `a`): false when none. */
bool oms_locks_granted_recall(const char *id, oms_arena *a, oms_lock *l);
void oms_locks_granted_forget(const char *id);

#endif
