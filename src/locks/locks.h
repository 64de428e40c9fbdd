/* The lock model (SPEC §7, docs/locks.md): what a lock is, which locks
 * conflict, what a lock covers, how long it lives, and how it is read from
 * and written to the `locks` table. Handlers (handlers.c), the write-path
 * check (lock_check.c) and the reaper (reaper.c) share it.
 *
 * Every time here is epoch milliseconds on the database clock: PostgreSQL's
 * clock_timestamp() on PostgreSQL, the process clock on SQLite (one process
 * owns the file). A lock is live while state = 'active' and now < deadline_at;
 * deadline_at is min(expires_at, last_heartbeat_at + 3 * heartbeat_seconds)
 * and is recomputed by every statement that moves either term. */
#ifndef OMS_LOCKS_H
#define OMS_LOCKS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/db.h"
#include "store/locks_sql.h"
#include "util/arena.h"

#define OMS_LOCK_ID_LEN 36 /* "lck_" + 32 hex */
#define OMS_LOCK_TTL_MIN_S 1
#define OMS_LOCK_TTL_MAX_S (7 * 24 * 3600)
#define OMS_LOCK_HEARTBEAT_MAX_S (24 * 3600)
#define OMS_LOCK_MISSED_HEARTBEATS 3
#define OMS_LOCK_REASON_MAX 1000
#define OMS_LOCK_PHASE_MAX 64
#define OMS_LOCK_MESSAGE_MAX 1000

typedef struct {
    const char *id, *branch, *scope, *resource_type, *resource_id, *kind, *holder, *reason;
    int64_t acquired_at, expires_at, heartbeat_seconds, last_heartbeat_at, deadline_at;
    bool has_percent;
    double percent;
    const char *phase, *message;
    int64_t progress_updated_at; /* 0: no progress reported yet */
    int64_t fencing_token;
    const char *state; /* as stored: active, released, force_released, expired */
    int64_t ended_at;  /* 0 while active */
    const char *ended_by;
} oms_lock;

/* Fills *l from row `row` starting at column `col0`; strings are copied
 * into the arena. */
void oms_lock_from_row(oms_lock *l, const oms_dbres *r, size_t row, size_t col0, oms_arena *a);

/* Lock kinds and their default TTL in seconds; -1 for an unknown kind. */
int64_t oms_lock_default_ttl(const char *kind);
bool oms_lock_scope_valid(const char *scope);

/* A new opaque id: "lck_" + 32 random hex digits. */
void oms_lock_new_id(char out[OMS_LOCK_ID_LEN + 1]);
bool oms_lock_id_valid(const char *s);

/* live while stored active and now < deadline */
bool oms_lock_live(const oms_lock *l, int64_t now);
/* The state a reader sees: a stored 'active' lock past its deadline reads
 * 'expired' even before the reaper has written it. */
const char *oms_lock_effective_state(const oms_lock *l, int64_t now);

/* Scope nesting (SPEC §7): a branch lock conflicts with every lock on its
 * branch; a resource-type lock with locks of that type and resource locks in
 * it; a resource lock with the same resource and with locks covering it. */
bool oms_locks_conflict(const oms_lock *a, const oms_lock *b);
/* Does the lock cover the resource "KIND/API_NAME" on its branch? */
bool oms_lock_covers(const oms_lock *l, const char *resource);
/* The lock's region as text: KIND/NAME, KIND followed by slash-star, or a lone star (the branch). */
const char *oms_lock_pattern(const oms_lock *l, oms_arena *a);

/* Seconds until the work is done, extrapolated from the progress percent and
 * its rate since acquisition; false when unknown (no progress yet, 0 %, or
 * no time elapsed). */
bool oms_lock_eta_seconds(const oms_lock *l, int64_t now, int64_t *out);

/* The lock document of the API (with eta_seconds). */
json_t *oms_lock_json(const oms_lock *l, int64_t now);


#endif
